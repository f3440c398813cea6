//! The client of the system contracts: read-only calls ([`view`]), sending a
//! call with a preflight and a receipt check ([`send_call`]), the events of a
//! receipt, and revert data shown as the named custom error with its fields
//! ([`decode_revert`]). [`abi`] encodes and describes calls given as text
//! (`gov propose --call`, `gov call`), with arguments read by [`args`].

pub mod abi;
pub mod args;

use alloy_primitives::TxKind;
use alloy_sol_types::{SolCall, SolEvent};
use anyhow::{Context, anyhow, bail};
use primitives::{Address, Amount, B256, Bytes};
use rpc::client::{ClientError, RpcClient};
use rpc::types::{Log, Receipt, revert_reason};
use serde_json::{Value, json};

use crate::commands::RpcArgs;
use crate::commands::keys::SignerArgs;

/// A hex quantity of a JSON-RPC answer.
fn hex_u64(v: &Value) -> anyhow::Result<u64> {
    let s = v.as_str().ok_or_else(|| anyhow!("expected a hex quantity, got {v}"))?;
    u64::from_str_radix(s.trim_start_matches("0x"), 16).with_context(|| format!("bad quantity {s}"))
}

/// The signer's address, without decrypting anything (no password prompt).
pub fn signer_address(s: &SignerArgs) -> anyhow::Result<Address> {
    match (s.from, s.dev_account) {
        (_, Some(i)) => Ok(keys::derive_account(keys::DEV_MNEMONIC, i)?.address()),
        (Some(a), None) => Ok(a),
        (None, None) => bail!("give --from ADDRESS (keystore) or --dev-account N"),
    }
}

/// The revert data of a JSON-RPC error, if it is an "execution reverted" (code 3).
pub fn revert_data(e: &ClientError) -> Option<Vec<u8>> {
    match e {
        ClientError::Rpc { code: 3, data: Some(d), .. } => {
            let s = d.as_str()?;
            hex::decode(s.strip_prefix("0x").unwrap_or(s)).ok()
        }
        _ => None,
    }
}

/// `eth_call` of a typed call at the head; a revert is shown by name.
pub fn view<C: SolCall>(c: &mut RpcClient, to: Address, call: &C) -> anyhow::Result<C::Return> {
    match try_view(c, to, call)? {
        Ok(r) => Ok(r),
        Err(d) => bail!("{} reverted: {}", C::SIGNATURE, decode_revert(&d)),
    }
}

/// [`view`], a revert given back as its data (`Err`) for the caller to explain.
pub fn try_view<C: SolCall>(c: &mut RpcClient, to: Address, call: &C) -> anyhow::Result<Result<C::Return, Vec<u8>>> {
    let data = Bytes::from(call.abi_encode());
    let out = match c.call("eth_call", json!([{"to": to, "data": data}, "latest"])) {
        Ok(v) => v,
        Err(e) => match revert_data(&e) {
            Some(d) => return Ok(Err(d)),
            None => return Err(e.into()),
        },
    };
    let s = out.as_str().ok_or_else(|| anyhow!("eth_call returned {out}"))?;
    let bytes = hex::decode(s.trim_start_matches("0x")).context("eth_call result")?;
    let r = C::abi_decode_returns(&bytes).map_err(|e| anyhow!("cannot decode the result of {}: {e}", C::SIGNATURE))?;
    Ok(Ok(r))
}

pub fn head(c: &mut RpcClient) -> anyhow::Result<u64> {
    Ok(c.block_number()?)
}

/// The chain refused a transaction: its preflight reverted (nothing was sent)
/// or its receipt has status 0 (nothing changed but the fee).
#[derive(Debug)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// Estimate the call as `from`: a revert is an error naming the custom error.
pub fn preflight(
    rpc: &RpcArgs,
    from: Address,
    to: Address,
    value: Amount,
    data: &[u8],
    what: &str,
) -> anyhow::Result<u64> {
    preflight_decoding(rpc, from, TxKind::Call(to), value, data, what, &decode_revert)
}

/// Reads revert data as the user should see it (see [`decode_revert`]).
pub type RevertDecoder<'a> = &'a dyn Fn(&[u8]) -> String;

/// [`preflight`] of a call or a creation, its revert read by `decode`.
pub fn preflight_decoding(
    rpc: &RpcArgs,
    from: Address,
    to: TxKind,
    value: Amount,
    data: &[u8],
    what: &str,
    decode: RevertDecoder<'_>,
) -> anyhow::Result<u64> {
    let mut c = rpc.client();
    let req = crate::commands::tx::call_request(from, to, value, data);
    match c.call("eth_estimateGas", json!([req])) {
        Ok(g) => hex_u64(&g),
        Err(e) => match revert_data(&e) {
            Some(d) => Err(Refused(format!("{what} refused by the node (nothing sent): {}", decode(&d))).into()),
            None => bail!("{what}: the node refuses this transaction: {e}"),
        },
    }
}

/// A mined, successful transaction.
pub struct Sent {
    pub hash: B256,
    pub receipt: Receipt,
}

impl Sent {
    pub fn block(&self) -> u64 {
        self.receipt.block_number.unwrap_or(0)
    }
    pub fn gas_used(&self) -> u64 {
        self.receipt.gas_used
    }
    /// hash, blockNumber, gasUsed and status ("0x1", as in the receipt), plus `extra`'s fields.
    pub fn json(&self, extra: Value) -> Value {
        let mut v = json!({
            "hash": self.hash,
            "blockNumber": self.block(),
            "gasUsed": self.gas_used(),
            "status": format!("{:#x}", u8::from(self.receipt.status())),
        });
        if let (Some(m), Value::Object(e)) = (v.as_object_mut(), extra) {
            m.extend(e);
        }
        v
    }
    pub fn human(&self, what: &str) -> String {
        format!("{what}: mined {} in block {} (gas {})", self.hash, self.block(), self.gas_used())
    }
    /// The first log of event `E` emitted by `address`.
    pub fn event<E: SolEvent>(&self, address: Address) -> Option<E> {
        self.events::<E>(address).into_iter().next()
    }
    pub fn events<E: SolEvent>(&self, address: Address) -> Vec<E> {
        log_events(self.receipt.inner.logs(), address)
    }
}

/// Every log of event `E` by `address` among `logs` (a receipt's, or `eth_getLogs`').
pub fn log_events<E: SolEvent>(logs: &[Log], address: Address) -> Vec<E> {
    logs.iter()
        .filter(|l| l.address() == address && l.topic0() == Some(&E::SIGNATURE_HASH))
        .filter_map(|l| E::decode_raw_log(l.topics().iter().copied(), &l.data().data).ok())
        .collect()
}

/// Every log of `E` emitted by `address` whose first indexed topic is `topic1`, oldest first.
pub fn events<E: SolEvent>(c: &mut RpcClient, address: Address, topic1: B256) -> anyhow::Result<Vec<E>> {
    let filter = rpc::types::Filter::new()
        .from_block(0)
        .to_block(rpc::types::BlockNumberOrTag::Latest)
        .address(address)
        .event_signature(E::SIGNATURE_HASH)
        .topic1(topic1);
    Ok(log_events::<E>(&c.logs(&filter)?, address))
}

/// Preflight, sign, send and wait for the receipt; a revert at either step is
/// a [`Refused`] error naming the custom error and its fields.
pub fn send_call(
    signer: &SignerArgs,
    rpc: &RpcArgs,
    to: Address,
    value: Amount,
    data: Vec<u8>,
    what: &str,
) -> anyhow::Result<Sent> {
    send_decoding(signer, rpc, TxKind::Call(to), value, data, what, &decode_revert)
}

/// [`send_call`] of a call or a creation (`TxKind::Create`, `data` the init
/// code), its revert read by `decode`.
pub fn send_decoding(
    signer: &SignerArgs,
    rpc: &RpcArgs,
    to: TxKind,
    value: Amount,
    data: Vec<u8>,
    what: &str,
    decode: RevertDecoder<'_>,
) -> anyhow::Result<Sent> {
    let from = signer_address(signer)?;
    preflight_decoding(rpc, from, to, value, &data, what, decode)?;
    let (hash, receipt) = crate::commands::tx::send(signer, rpc, to, value, Bytes::from(data), false)?;
    let receipt = receipt.ok_or_else(|| anyhow!("no receipt for {hash}"))?;
    if !receipt.status() {
        let reason = revert_reason(&receipt).map(|d| decode(&d)).unwrap_or_else(|| "no revert data".into());
        let block = receipt.block_number.unwrap_or(0);
        return Err(Refused(format!("{what} failed in block {block} (transaction {hash}, status 0): {reason}")).into());
    }
    Ok(Sent { hash, receipt })
}

/// [`send_call`] of a typed call that sends no value.
pub fn send_sol<C: SolCall>(
    signer: &SignerArgs,
    rpc: &RpcArgs,
    to: Address,
    call: &C,
    what: &str,
) -> anyhow::Result<Sent> {
    send_call(signer, rpc, to, Amount::ZERO, call.abi_encode(), what)
}

/// Revert data as `ErrorName(field: value, ...)`: the shared errors, the custom
/// errors of IStaking, IGovernance and IParams, `Error(string)` and `Panic(uint256)`.
pub fn decode_revert(data: &[u8]) -> String {
    abi::decode_error(data)
}
