//! Parsing of positional JSON-RPC parameters: quantities, data, addresses,
//! hashes, block parameters (tags, numbers, EIP-1898 objects) and call objects.
//!
//! Error messages follow go-ethereum's shape, "invalid argument N: ...", so that
//! the caller can see which parameter was wrong.

use primitives::history::{HistoryCursor, MAX_HISTORY_PAGE, Subject};
use primitives::{Address, B256, Bytes, U256};
use serde_json::Value;

use crate::backend::{Backend, CallRequest};
use crate::error::RpcError;

/// The positional parameters of one call.
#[derive(Debug, Clone, Default)]
pub(crate) struct Params {
    items: Vec<Value>,
}

impl Params {
    /// `params` absent or null is no parameters; an object (by-name parameters) is refused.
    pub fn new(params: Option<Value>) -> Result<Self, RpcError> {
        match params {
            None | Some(Value::Null) => Ok(Params::default()),
            Some(Value::Array(items)) => Ok(Params { items }),
            Some(_) => {
                Err(RpcError::invalid_params("non-array args: params must be an array of positional parameters"))
            }
        }
    }

    /// Refuse more than `n` parameters.
    pub fn at_most(&self, n: usize) -> Result<(), RpcError> {
        if self.items.len() > n {
            return Err(RpcError::invalid_params(format!("too many arguments, want at most {n}")));
        }
        Ok(())
    }

    /// Parameter `i`; absent and null are `None`.
    pub fn opt(&self, i: usize) -> Option<&Value> {
        self.items.get(i).filter(|v| !v.is_null())
    }

    /// Parameter `i`, which must be present and not null.
    pub fn req(&self, i: usize, what: &str) -> Result<&Value, RpcError> {
        self.opt(i).ok_or_else(|| RpcError::invalid_params(format!("missing value for required argument {i} ({what})")))
    }

    /// Parse parameter `i` with `f`, naming the argument in the error.
    pub fn parse<T>(&self, i: usize, what: &str, f: impl FnOnce(&Value) -> Result<T, String>) -> Result<T, RpcError> {
        f(self.req(i, what)?).map_err(|e| arg_error(i, e))
    }

    /// Parse optional parameter `i` with `f`.
    pub fn parse_opt<T>(&self, i: usize, f: impl FnOnce(&Value) -> Result<T, String>) -> Result<Option<T>, RpcError> {
        self.opt(i).map(f).transpose().map_err(|e| arg_error(i, e))
    }
}

pub(crate) fn arg_error(i: usize, e: String) -> RpcError {
    RpcError::invalid_params(format!("invalid argument {i}: {e}"))
}

fn as_str<'a>(v: &'a Value, what: &str) -> Result<&'a str, String> {
    v.as_str().ok_or_else(|| format!("{what} must be a hex string, got {v}"))
}

fn strip_0x(s: &str) -> Option<&str> {
    s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))
}

/// A u64 quantity: "0x1a" (leading zeros tolerated), a decimal string, or a JSON number.
pub(crate) fn quantity_u64(v: &Value) -> Result<u64, String> {
    match v {
        Value::Number(n) => n.as_u64().ok_or_else(|| format!("quantity {n} is not a non-negative 64-bit integer")),
        Value::String(s) => match strip_0x(s) {
            Some("") => Err("empty hex quantity \"0x\"".into()),
            Some(h) => {
                u64::from_str_radix(h, 16).map_err(|_| format!("invalid hex quantity {s:?} (want at most 64 bits)"))
            }
            None => s.parse::<u64>().map_err(|_| format!("invalid quantity {s:?}: want a 0x-prefixed hex number")),
        },
        _ => Err(format!("quantity must be a hex string, got {v}")),
    }
}

/// A 256-bit quantity.
pub(crate) fn quantity_u256(v: &Value) -> Result<U256, String> {
    match v {
        Value::Number(n) => {
            n.as_u64().map(U256::from).ok_or_else(|| format!("quantity {n} is not a non-negative integer"))
        }
        Value::String(s) => match strip_0x(s) {
            Some("") => Err("empty hex quantity \"0x\"".into()),
            Some(h) => {
                U256::from_str_radix(h, 16).map_err(|_| format!("invalid hex quantity {s:?} (want at most 256 bits)"))
            }
            None => U256::from_str_radix(s, 10)
                .map_err(|_| format!("invalid quantity {s:?}: want a 0x-prefixed hex number")),
        },
        _ => Err(format!("quantity must be a hex string, got {v}")),
    }
}

/// Hex data of any even length ("0x" is empty).
pub(crate) fn data(v: &Value) -> Result<Bytes, String> {
    let s = as_str(v, "data")?;
    let h = strip_0x(s).unwrap_or(s);
    if h.len() % 2 == 1 {
        return Err(format!("hex data has odd length {}", h.len()));
    }
    hex::decode(h).map(Bytes::from).map_err(|e| format!("invalid hex data: {e}"))
}

fn fixed<const N: usize>(v: &Value, what: &str) -> Result<[u8; N], String> {
    let s = as_str(v, what)?;
    let h = strip_0x(s).ok_or_else(|| format!("{what} {s:?} lacks the 0x prefix"))?;
    if h.len() != 2 * N {
        return Err(format!("hex string has length {}, want {} for {what}", h.len(), 2 * N));
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(h, &mut out).map_err(|e| format!("invalid {what} {s:?}: {e}"))?;
    Ok(out)
}

pub(crate) fn address(v: &Value) -> Result<Address, String> {
    fixed::<20>(v, "address").map(Address::from)
}

pub(crate) fn hash(v: &Value) -> Result<B256, String> {
    fixed::<32>(v, "hash").map(B256::from)
}

pub(crate) fn boolean(v: &Value) -> Result<bool, String> {
    v.as_bool().ok_or_else(|| format!("want a boolean, got {v}"))
}

/// A block parameter before resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BlockSpec {
    /// latest, safe, finalized.
    Latest,
    Pending,
    Earliest,
    Number(u64),
    Hash(B256),
}

/// A tag, a hex number, a block hash, or an EIP-1898 object
/// (`{"blockNumber": ..}` or `{"blockHash": .., "requireCanonical": ..}`).
pub(crate) fn block_spec(v: &Value) -> Result<BlockSpec, String> {
    match v {
        Value::String(s) => match s.as_str() {
            "latest" | "safe" | "finalized" => Ok(BlockSpec::Latest),
            "pending" => Ok(BlockSpec::Pending),
            "earliest" => Ok(BlockSpec::Earliest),
            _ if s.len() == 66 && strip_0x(s).is_some() => hash(v).map(BlockSpec::Hash),
            _ => quantity_u64(v).map(BlockSpec::Number).map_err(|e| {
                format!("{e}; a block is a hex number or one of latest, pending, safe, finalized, earliest")
            }),
        },
        Value::Number(_) => quantity_u64(v).map(BlockSpec::Number),
        Value::Object(o) => {
            match (o.get("blockNumber").filter(|v| !v.is_null()), o.get("blockHash").filter(|v| !v.is_null())) {
                (Some(_), Some(_)) => {
                    Err("cannot specify both blockHash and blockNumber, choose one or the other".into())
                }
                (Some(n), None) => match block_spec(n)? {
                    BlockSpec::Hash(_) => Err("blockNumber must be a number or a tag".into()),
                    spec => Ok(spec),
                },
                (None, Some(h)) => hash(h).map(BlockSpec::Hash),
                (None, None) => Err("block object needs blockNumber or blockHash".into()),
            }
        }
        _ => Err(format!("invalid block parameter {v}")),
    }
}

impl BlockSpec {
    /// The committed block whose state is read: pending reads the head's state.
    /// A number above the head or an unknown hash is go-ethereum's "header not found".
    pub fn resolve_state(self, backend: &dyn Backend) -> Result<u64, RpcError> {
        self.resolve(backend).ok_or_else(RpcError::header_not_found)
    }

    /// The committed block this designates, if it exists.
    pub fn resolve(self, backend: &dyn Backend) -> Option<u64> {
        let head = backend.head_number();
        match self {
            BlockSpec::Latest | BlockSpec::Pending => Some(head),
            BlockSpec::Earliest => Some(0),
            BlockSpec::Number(n) => (n <= head).then_some(n),
            BlockSpec::Hash(h) => backend.block_number_by_hash(&h),
        }
    }
}

/// A call object for `eth_call` / `eth_estimateGas`. Fee fields are accepted and
/// ignored; `data` and `input` may both be given only if equal.
pub(crate) fn call_request(v: &Value) -> Result<CallRequest, String> {
    let o = v.as_object().ok_or_else(|| format!("call object must be a JSON object, got {v}"))?;
    let field = |name: &str| o.get(name).filter(|v| !v.is_null());
    let named = |name: &str, e: String| format!("field {name:?}: {e}");
    let mut req = CallRequest::default();
    if let Some(v) = field("from") {
        req.from = Some(address(v).map_err(|e| named("from", e))?);
    }
    if let Some(v) = field("to") {
        req.to = Some(address(v).map_err(|e| named("to", e))?);
    }
    if let Some(v) = field("gas") {
        req.gas = Some(quantity_u64(v).map_err(|e| named("gas", e))?);
    }
    for fee in ["gasPrice", "maxFeePerGas", "maxPriorityFeePerGas"] {
        if let Some(v) = field(fee) {
            quantity_u256(v).map_err(|e| named(fee, e))?;
        }
    }
    if let Some(v) = field("value") {
        req.value = quantity_u256(v).map_err(|e| named("value", e))?;
    }
    if let Some(v) = field("accessList") {
        let items = v.as_array().ok_or_else(|| named("accessList", "must be an array".into()))?;
        for item in items {
            address(&item["address"]).map_err(|e| named("accessList", e))?;
            let keys = match &item["storageKeys"] {
                Value::Null => 0,
                Value::Array(k) => k.len() as u64,
                _ => return Err(named("accessList", "storageKeys must be an array".into())),
            };
            req.access_list_gas = req
                .access_list_gas
                .saturating_add(primitives::tx::ACCESS_LIST_ADDRESS_GAS)
                .saturating_add(primitives::tx::ACCESS_LIST_KEY_GAS.saturating_mul(keys));
        }
    }
    let input = field("input").map(data).transpose().map_err(|e| named("input", e))?;
    let dat = field("data").map(data).transpose().map_err(|e| named("data", e))?;
    req.data = match (input, dat) {
        (Some(i), Some(d)) if i != d => {
            return Err(
                "both \"data\" and \"input\" are set and not equal. Please use \"input\" to pass transaction call data"
                    .into(),
            );
        }
        (Some(i), _) => i,
        (None, Some(d)) => d,
        (None, None) => Bytes::new(),
    };
    Ok(req)
}

/// `ol_getHistory`'s subject: an address, or `{"datanet"|"model"|"contribution": id}`.
pub(crate) fn history_subject(v: &Value) -> Result<Subject, String> {
    let obj = match v {
        Value::String(_) => return address(v).map(Subject::Address),
        Value::Object(o) if o.len() == 1 => o,
        _ => return Err(format!("want an address or {{\"datanet\"|\"model\"|\"contribution\": id}}, got {v}")),
    };
    let (kind, id) = obj.iter().next().expect("one entry");
    let id = quantity_u64(id)?;
    match kind.as_str() {
        "datanet" => Ok(Subject::Datanet(id)),
        "model" => Ok(Subject::Model(id)),
        "contribution" => Ok(Subject::Contribution(id)),
        k => Err(format!("unknown history subject {k:?} (want datanet, model or contribution)")),
    }
}

/// `ol_getHistory`'s options `{"before": "block-tx-slot", "limit": n}`: the
/// cursor (a previous page's `next`) and the page size (default and most:
/// [`MAX_HISTORY_PAGE`]; larger is clamped).
pub(crate) fn history_options(v: &Value) -> Result<(Option<HistoryCursor>, usize), String> {
    let Value::Object(o) = v else { return Err(format!("want {{\"before\": cursor, \"limit\": n}}, got {v}")) };
    let mut out = (None, MAX_HISTORY_PAGE);
    for (k, v) in o {
        match k.as_str() {
            "before" if v.is_null() => {}
            "before" => {
                out.0 = Some(v.as_str().ok_or_else(|| format!("before must be a cursor string, got {v}"))?.parse()?)
            }
            "limit" => out.1 = usize::try_from(quantity_u64(v)?).unwrap_or(usize::MAX),
            k => return Err(format!("unknown option {k:?} (want before, limit)")),
        }
    }
    Ok(out)
}

/// `debug_traceTransaction`'s options: only `{tracer: "callTracer"}` is
/// offered; its `tracerConfig.onlyTopCall` is the answer.
pub(crate) fn call_tracer_options(v: &Value) -> Result<bool, String> {
    let o = v.as_object().ok_or_else(|| format!("tracer options must be a JSON object, got {v}"))?;
    match o.get("tracer").and_then(Value::as_str) {
        Some("callTracer") => {}
        other => {
            return Err(format!(
                "tracer {other:?} is not offered: this node traces with {{\"tracer\": \"callTracer\"}} only"
            ));
        }
    }
    let cfg = o.get("tracerConfig").filter(|c| !c.is_null());
    if let Some(c) = cfg
        && c.get("withLog").and_then(Value::as_bool) == Some(true)
    {
        return Err("tracerConfig.withLog is not offered".into());
    }
    Ok(cfg.and_then(|c| c.get("onlyTopCall")).and_then(Value::as_bool).unwrap_or(false))
}

/// Most accounts one state override set may change.
pub const MAX_OVERRIDE_ACCOUNTS: usize = 64;
/// Most storage slots one overridden account may set.
pub const MAX_OVERRIDE_SLOTS: usize = 1024;

/// `eth_call`'s state override set: `{address: {balance, nonce, code, state,
/// stateDiff}}`, as go-ethereum accepts it (`state` and `stateDiff` exclude
/// each other). Bounded: [`MAX_OVERRIDE_ACCOUNTS`] accounts, [`MAX_OVERRIDE_SLOTS`]
/// slots each, code up to the EIP-170 limit.
pub(crate) fn state_overrides(v: &Value) -> Result<Vec<crate::backend::AccountOverride>, String> {
    let o = v.as_object().ok_or_else(|| format!("state override set must be a JSON object, got {v}"))?;
    if o.len() > MAX_OVERRIDE_ACCOUNTS {
        return Err(format!("state override set names {} accounts, at most {MAX_OVERRIDE_ACCOUNTS}", o.len()));
    }
    let mut out = Vec::with_capacity(o.len());
    for (addr, acct) in o {
        let address = address(&Value::String(addr.clone()))?;
        let a = acct.as_object().ok_or_else(|| format!("override of {addr} must be a JSON object"))?;
        let at = |e: String| format!("override of {addr}: {e}");
        let mut ov = crate::backend::AccountOverride { address, ..Default::default() };
        for key in a.keys() {
            if !["balance", "nonce", "code", "state", "stateDiff"].contains(&key.as_str()) {
                return Err(at(format!("unknown field {key:?}")));
            }
        }
        let field = |name: &str| a.get(name).filter(|v| !v.is_null());
        ov.balance = field("balance").map(quantity_u256).transpose().map_err(at)?;
        ov.nonce = field("nonce").map(quantity_u64).transpose().map_err(at)?;
        ov.code = field("code").map(data).transpose().map_err(at)?;
        if ov.code.as_ref().is_some_and(|c| c.len() > 24_576) {
            return Err(at("code exceeds 24576 bytes (EIP-170)".into()));
        }
        if field("state").is_some() && field("stateDiff").is_some() {
            return Err(at("state and stateDiff cannot both be given".into()));
        }
        ov.state = field("state").map(slots).transpose().map_err(at)?;
        ov.state_diff = field("stateDiff").map(slots).transpose().map_err(at)?.unwrap_or_default();
        out.push(ov);
    }
    Ok(out)
}

/// `{slot: value}` with 32-byte hex keys and values.
fn slots(v: &Value) -> Result<Vec<(U256, U256)>, String> {
    let o = v.as_object().ok_or_else(|| "storage must be a JSON object of slot: value".to_string())?;
    if o.len() > MAX_OVERRIDE_SLOTS {
        return Err(format!("{} storage slots, at most {MAX_OVERRIDE_SLOTS}", o.len()));
    }
    let word = |v: &Value| hash(v).map(|h| U256::from_be_bytes(h.0));
    o.iter().map(|(k, v)| Ok((word(&Value::String(k.clone()))?, word(v)?))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quantities() {
        assert_eq!(quantity_u64(&json!("0x0")), Ok(0));
        assert_eq!(quantity_u64(&json!("0x1a")), Ok(26));
        assert_eq!(quantity_u64(&json!("0x001a")), Ok(26));
        assert_eq!(quantity_u64(&json!(7)), Ok(7));
        assert_eq!(quantity_u64(&json!("12")), Ok(12));
        assert!(quantity_u64(&json!("0x")).is_err());
        assert!(quantity_u64(&json!("0xzz")).is_err());
        assert!(quantity_u64(&json!("0x10000000000000000")).is_err());
        assert_eq!(quantity_u256(&json!("0xde0b6b3a7640000")), Ok(U256::from(10u64.pow(18))));
    }

    #[test]
    fn data_and_addresses() {
        assert_eq!(data(&json!("0x")).unwrap(), Bytes::new());
        assert_eq!(data(&json!("0x0102")).unwrap(), Bytes::from(vec![1, 2]));
        assert!(data(&json!("0x012")).is_err());
        let a = address(&json!("0x00000000000000000000000000000000000000Ab")).unwrap();
        assert_eq!(a, Address::with_last_byte(0xab));
        let e = address(&json!("0x1234")).unwrap_err();
        assert!(e.contains("length 4, want 40"), "{e}");
    }

    #[test]
    fn block_specs() {
        assert_eq!(block_spec(&json!("latest")), Ok(BlockSpec::Latest));
        assert_eq!(block_spec(&json!("safe")), Ok(BlockSpec::Latest));
        assert_eq!(block_spec(&json!("finalized")), Ok(BlockSpec::Latest));
        assert_eq!(block_spec(&json!("pending")), Ok(BlockSpec::Pending));
        assert_eq!(block_spec(&json!("earliest")), Ok(BlockSpec::Earliest));
        assert_eq!(block_spec(&json!("0x10")), Ok(BlockSpec::Number(16)));
        assert_eq!(block_spec(&json!({"blockNumber": "0x2"})), Ok(BlockSpec::Number(2)));
        assert_eq!(block_spec(&json!({"blockNumber": "latest"})), Ok(BlockSpec::Latest));
        let h = B256::repeat_byte(0x11);
        assert_eq!(block_spec(&json!({"blockHash": h.to_string(), "requireCanonical": true})), Ok(BlockSpec::Hash(h)));
        assert_eq!(block_spec(&json!(h.to_string())), Ok(BlockSpec::Hash(h)));
        assert!(block_spec(&json!("newest")).is_err());
        assert!(block_spec(&json!({"blockHash": h.to_string(), "blockNumber": "0x1"})).is_err());
    }

    #[test]
    fn call_objects() {
        let r = call_request(&json!({"to": "0x0000000000000000000000000000000000000001", "input": "0x01",
            "maxFeePerGas": "0x10", "gas": "0x5208", "value": "0x1"}))
        .unwrap();
        assert_eq!(r.to, Some(Address::with_last_byte(1)));
        assert_eq!(r.data, Bytes::from(vec![1]));
        assert_eq!(r.gas, Some(21000));
        assert_eq!(r.value, U256::from(1));
        assert_eq!(call_request(&json!({"data": "0x02", "input": "0x02"})).unwrap().data, Bytes::from(vec![2]));
        let e = call_request(&json!({"data": "0x02", "input": "0x03"})).unwrap_err();
        assert!(e.contains("both \"data\" and \"input\""), "{e}");
        assert!(call_request(&json!({"to": "0x12"})).unwrap_err().contains("\"to\""));
    }
}
