//! Writes from the browser: the wallet script ([`SCRIPT_PATH`]), the account
//! selector a write page shows ([`panel`]), the buttons that carry
//! server-encoded transactions ([`tx_button`]), and on a dev chain the dev
//! wallet ([`DEV_WALLET_PATH`]).
//!
//! The server encodes every call (so the browser needs no ABI) and the user's
//! wallet signs it: `window.ethereum` (EIP-1193, such as MetaMask), or on a
//! dev chain a dev account, whose key the node holds because it is public
//! anyway (the standard test mnemonic). The chain checks every transaction as
//! it checks the CLI's: nothing the browser sends is trusted.
//!
//! The dev wallet speaks the JSON-RPC subset an EIP-1193 provider needs:
//! `eth_chainId`, `eth_accounts` (and `eth_requestAccounts`), `personal_sign`,
//! `eth_sendTransaction` (the node fills nonce, gas and fees, signs with that
//! dev key and submits to its pool; a call that would revert is refused with
//! its decoded error, as wallets do) and `eth_getTransactionReceipt`. It is
//! routed only on a dev chain; it refuses other methods, accounts that are not
//! dev accounts, bodies over [`MAX_DEV_WALLET_BODY`], and bodies not sent as
//! `application/json` (which another site's page cannot send without a CORS
//! preflight that the node never grants).

use alloy_consensus::TxEip1559;
use alloy_dyn_abi::DynSolValue;
use alloy_primitives::TxKind;
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use primitives::system::Module;
use primitives::{Address, Amount, B256, U256};
use serde_json::{Value, json};

use crate::Web;
use crate::decode::{self, Field};
use crate::view::ChainView;

/// The path of the wallet script.
pub const SCRIPT_PATH: &str = "/assets/wallet.js";
/// The dev wallet's JSON-RPC endpoint (dev chains only).
pub const DEV_WALLET_PATH: &str = "/web/dev-wallet";
/// The largest request the dev wallet reads.
pub const MAX_DEV_WALLET_BODY: usize = 64 * 1024;
/// The tip the dev wallet offers (what the node's `eth_maxPriorityFeePerGas` suggests).
const TIP: u128 = 1_000_000_000;

const SCRIPT: &str = include_str!("wallet.js");

/// What the write pages need from the node.
#[derive(Clone, Default)]
pub struct Writes {
    /// The dev accounts: on a dev chain only (`None` elsewhere, and no dev wallet route).
    pub dev_wallet: Option<std::sync::Arc<DevWallet>>,
    /// The node's ingest attester, which a new Datanet trusts by default (as the CLI's `datanet create`).
    pub attester: Option<Address>,
    /// Contributions' rows from the node's blob store, for tombstones (`None`: a node without one).
    pub rows: Option<std::sync::Arc<dyn crate::datanets::write::ContributionRows>>,
}

/// The dev accounts a dev chain's web app signs with.
pub struct DevWallet {
    keys: Vec<keys::SecretKey>,
}

impl DevWallet {
    pub fn new(keys: Vec<keys::SecretKey>) -> DevWallet {
        DevWallet { keys }
    }

    pub fn addresses(&self) -> Vec<Address> {
        self.keys.iter().map(|k| k.address()).collect()
    }

    fn key(&self, a: &Address) -> Option<&keys::SecretKey> {
        self.keys.iter().find(|k| k.address() == *a)
    }
}

/// The script's route, and the dev wallet's when `dev` (a dev chain).
pub fn routes(dev: bool) -> Router<Web> {
    let r = Router::new().route(SCRIPT_PATH, get(script));
    if dev { r.route(DEV_WALLET_PATH, post(dev_wallet).layer(DefaultBodyLimit::max(MAX_DEV_WALLET_BODY))) } else { r }
}

async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")],
        SCRIPT,
    )
}

/// The account selector of a write page: a labelled `<select id="wallet-account">`
/// (the script adds "Browser wallet" when `window.ethereum` is there), the dev
/// accounts on a dev chain, the status line `#wallet-status` and the script.
pub fn panel(dev: Option<&DevWallet>) -> Markup {
    html! {
        section.wallet aria-label="Wallet" {
            label for="wallet-account" { "Sign with" }
            select #wallet-account data-dev-wallet=[dev.map(|_| DEV_WALLET_PATH)] {
                @if let Some(d) = dev {
                    @for (i, a) in d.addresses().iter().enumerate() {
                        option value=(format!("dev:{a:#x}")) { "Dev account " (i) " (" (crate::format::short(&a.to_checksum(None))) ")" }
                    }
                }
            }
            p #wallet-status role="status" aria-live="polite" {
                @if dev.is_some() { "Signing with a dev account (this is a dev chain)." }
                @else { "Install a browser wallet (EIP-1193, such as MetaMask) to sign; this page needs its script." }
            }
        }
        script src=(SCRIPT_PATH) defer {}
    }
}

/// A `<button>` that has the chosen wallet send `data` to `to` with `value`
/// (base units): `id` or `class` name it, `result` is the id of the element
/// that says what happened.
pub struct TxButton<'a> {
    pub label: &'a str,
    pub id: Option<&'a str>,
    pub class: Option<&'a str>,
    pub to: Address,
    pub data: Vec<u8>,
    pub value: U256,
    pub result: &'a str,
    /// What the result says once mined.
    pub done: &'a str,
    /// Reload the page once mined (its rows changed).
    pub reload: bool,
    /// (event topic 0, topic index of the id, link with `{id}`, link text with `{id}`).
    pub link: Option<(B256, u8, &'a str, &'a str)>,
}

impl<'a> TxButton<'a> {
    pub fn new(label: &'a str, to: Address, data: Vec<u8>, result: &'a str) -> TxButton<'a> {
        TxButton {
            label,
            id: None,
            class: None,
            to,
            data,
            value: U256::ZERO,
            result,
            done: "Done",
            reload: false,
            link: None,
        }
    }
}

/// A [`TxButton`] as HTML.
pub fn tx_button(b: &TxButton) -> Markup {
    let (topic, index, link, link_text) = match b.link {
        Some((t, i, l, lt)) => (Some(t.to_string()), Some(i), Some(l), Some(lt)),
        None => (None, None, None, None),
    };
    html! {
        button type="button" id=[b.id] class=[b.class]
            data-to=(format!("{:#x}", b.to)) data-data=(format!("0x{}", hex::encode(&b.data)))
            data-value=(b.value.to_string()) data-result=(b.result) data-done=(b.done)
            data-reload=[b.reload.then_some("1")]
            data-event-topic=[topic] data-event-index=[index] data-link=[link] data-link-text=[link_text] {
            (b.label)
        }
    }
}

/// A JSON-RPC refusal with its HTTP status.
struct Refusal {
    status: StatusCode,
    code: i64,
    message: String,
}

fn refuse(status: StatusCode, code: i64, message: impl Into<String>) -> Refusal {
    Refusal { status, code, message: message.into() }
}

fn invalid(message: impl Into<String>) -> Refusal {
    refuse(StatusCode::BAD_REQUEST, -32602, message)
}

async fn dev_wallet(State(web): State<Web>, headers: axum::http::HeaderMap, body: Bytes) -> Response {
    let Some(dev) = web.writes.dev_wallet.clone() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    // JSON only: another site's page cannot send that without a CORS preflight,
    // which this node never grants, so it cannot have the dev keys sign.
    let json_body = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/json"));
    if !json_body {
        let refusal = refuse(StatusCode::UNSUPPORTED_MEDIA_TYPE, -32600, "the dev wallet reads application/json only");
        return answer(Value::Null, Err(refusal));
    }
    let req: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return answer(Value::Null, Err(refuse(StatusCode::BAD_REQUEST, -32700, format!("not JSON: {e}")))),
    };
    let id = req.get("id").cloned().unwrap_or(Value::Null);
    let method = req.get("method").and_then(Value::as_str).unwrap_or("").to_string();
    let params = req.get("params").cloned().unwrap_or(json!([]));
    let result = match method.as_str() {
        "eth_chainId" => Ok(json!(format!("{:#x}", web.chain.chain_id()))),
        "eth_accounts" | "eth_requestAccounts" => {
            Ok(json!(dev.addresses().iter().map(|a| format!("{a:#x}")).collect::<Vec<_>>()))
        }
        "personal_sign" => personal_sign(&dev, &params),
        "eth_sendTransaction" => send_transaction(&web, &dev, &params).await,
        "eth_getTransactionReceipt" => receipt(&web, &params).await,
        other => Err(refuse(
            StatusCode::BAD_REQUEST,
            -32601,
            format!(
                "the dev wallet does not answer {:?} (it answers eth_chainId, eth_accounts, eth_requestAccounts, \
                 personal_sign, eth_sendTransaction, eth_getTransactionReceipt)",
                crate::query::truncate(other)
            ),
        )),
    };
    answer(id, result)
}

fn answer(id: Value, result: Result<Value, Refusal>) -> Response {
    match result {
        Ok(r) => Json(json!({"jsonrpc": "2.0", "id": id, "result": r})).into_response(),
        Err(e) => {
            (e.status, Json(json!({"jsonrpc": "2.0", "id": id, "error": {"code": e.code, "message": e.message}})))
                .into_response()
        }
    }
}

/// The dev key of `a`, or a 403 naming the dev accounts.
fn dev_key<'a>(dev: &'a DevWallet, a: &Value, what: &str) -> Result<&'a keys::SecretKey, Refusal> {
    let s = a.as_str().ok_or_else(|| invalid(format!("{what}: an address")))?;
    let addr = crate::query::address(s)
        .map_err(|_| invalid(format!("{what} {:?} is not an address", crate::query::truncate(s))))?;
    dev.key(&addr).ok_or_else(|| {
        refuse(
            StatusCode::FORBIDDEN,
            4100,
            format!("{addr} is not a dev account: the dev wallet signs only for the dev accounts"),
        )
    })
}

/// `personal_sign [message, address]`: the message as 0x-hex bytes (what
/// wallets send) or as text.
fn personal_sign(dev: &DevWallet, params: &Value) -> Result<Value, Refusal> {
    let msg = params.get(0).and_then(Value::as_str).ok_or_else(|| invalid("personal_sign: [message, address]"))?;
    let key = dev_key(dev, params.get(1).unwrap_or(&Value::Null), "personal_sign's account")?;
    let bytes = match msg.strip_prefix("0x") {
        Some(h) => hex::decode(h).map_err(|_| invalid("personal_sign: the message is 0x but not hex"))?,
        None => msg.as_bytes().to_vec(),
    };
    Ok(json!(format!("0x{}", hex::encode(key.sign_message(&bytes).as_bytes()))))
}

fn hex_field(o: &Value, k: &str) -> Result<Option<Vec<u8>>, Refusal> {
    match o.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            let h = s.strip_prefix("0x").ok_or_else(|| invalid(format!("{k}: 0x-prefixed hex")))?;
            hex::decode(h).map(Some).map_err(|_| invalid(format!("{k}: 0x-prefixed hex")))
        }
        Some(_) => Err(invalid(format!("{k}: 0x-prefixed hex"))),
    }
}

/// A revert's custom error in words: `Name(field=value, ...)`.
pub fn revert_message(to: &Address, data: &[u8]) -> String {
    match decode::decode_error(Module::from_address(to), data) {
        Some(e) => {
            let fields: Vec<String> = e.fields.iter().map(field_text).collect();
            format!("{}({})", e.name, fields.join(", "))
        }
        None if data.is_empty() => "reverted".into(),
        None => format!("reverted with 0x{}", hex::encode(data)),
    }
}

fn field_text(f: &Field) -> String {
    let v = match &f.value {
        decode::Value::Leaf(DynSolValue::Uint(u, _)) => u.to_string(),
        decode::Value::Leaf(DynSolValue::Int(i, _)) => i.to_string(),
        decode::Value::Leaf(DynSolValue::Address(a)) => a.to_checksum(None),
        decode::Value::Leaf(DynSolValue::String(s)) => format!("{s:?}"),
        decode::Value::Leaf(DynSolValue::Bool(b)) => b.to_string(),
        decode::Value::Leaf(DynSolValue::FixedBytes(w, n)) => format!("0x{}", hex::encode(&w[..*n])),
        _ => "…".into(),
    };
    format!("{}={v}", f.name)
}

/// `eth_sendTransaction [{from, to, data, value}]`: filled, signed with the
/// dev key of `from`, submitted; its hash.
async fn send_transaction(web: &Web, dev: &DevWallet, params: &Value) -> Result<Value, Refusal> {
    let o = params
        .get(0)
        .filter(|o| o.is_object())
        .ok_or_else(|| invalid("eth_sendTransaction: [{from, to, data, value}]"))?;
    let key = dev_key(dev, o.get("from").unwrap_or(&Value::Null), "from")?.clone();
    let to = match o.get("to").and_then(Value::as_str) {
        Some(s) => crate::query::address(s).map_err(|_| invalid("to: an address"))?,
        None => return Err(invalid("to: the dev wallet sends calls, not contract creations")),
    };
    let data = hex_field(o, "data")?.or(hex_field(o, "input")?).unwrap_or_default();
    let value = match o.get("value").and_then(Value::as_str) {
        Some(s) => U256::from_str_radix(s.strip_prefix("0x").ok_or_else(|| invalid("value: a 0x quantity"))?, 16)
            .map_err(|_| invalid("value: a 0x quantity"))?,
        None => U256::ZERO,
    };
    let amount = Amount::from_u256(value).map_err(|_| invalid("value is more OPEN than exists"))?;
    let chain = web.chain.clone();
    let from = key.address();
    let input = data.clone();
    let filled = tokio::task::spawn_blocking(move || -> Result<(u64, u64, u64), Refusal> {
        let unavailable = |e: String| refuse(StatusCode::SERVICE_UNAVAILABLE, -32603, e);
        let snap = chain.snapshot().map_err(|e| unavailable(e.to_string()))?;
        let head = chain.head();
        let mut env = chain.env_at(&head.header);
        env.number += 1;
        env.base_fee = head.next_base_fee;
        let out = runtime::estimate_gas(&snap, &env, from, Some(to), amount, &input)
            .map_err(|e| unavailable(e.to_string()))?;
        if !out.success {
            return Err(refuse(
                StatusCode::OK,
                3,
                format!("the call would revert: {}", revert_message(&to, &out.output)),
            ));
        }
        let nonce = chain.pending_nonce(&from).map_err(|e| unavailable(e.to_string()))?;
        // A margin over the estimate, as wallets add, within the block.
        let gas = out.gas_used.saturating_add(out.gas_used / 5).min(head.header.gas_limit);
        Ok((nonce, gas, head.next_base_fee))
    })
    .await
    .map_err(|e| refuse(StatusCode::SERVICE_UNAVAILABLE, -32603, e.to_string()))??;
    let (nonce, gas, base_fee) = filled;
    let tx = TxEip1559 {
        chain_id: web.chain.chain_id(),
        nonce,
        gas_limit: gas,
        max_fee_per_gas: u128::from(base_fee) * 2 + TIP,
        max_priority_fee_per_gas: TIP,
        to: TxKind::Call(to),
        value,
        access_list: Default::default(),
        input: data.into(),
    };
    let raw = keys::encode_2718(&keys::sign_eip1559(&key, tx));
    let hash = web.chain.submit(&raw).await.map_err(|e| refuse(StatusCode::OK, -32000, e.0))?;
    Ok(json!(format!("{hash:#x}")))
}

/// `eth_getTransactionReceipt [hash]`: null until mined; then status, block,
/// logs (and, for a revert, its decoded error as `revertReason`).
async fn receipt(web: &Web, params: &Value) -> Result<Value, Refusal> {
    let s = params.get(0).and_then(Value::as_str).ok_or_else(|| invalid("eth_getTransactionReceipt: [hash]"))?;
    let hash = crate::query::hash(s).map_err(|_| invalid("a 0x-prefixed 32-byte hash"))?;
    let chain = web.chain.clone();
    let found = tokio::task::spawn_blocking(move || ChainView::open(&chain)?.transaction(&hash))
        .await
        .map_err(|e| refuse(StatusCode::SERVICE_UNAVAILABLE, -32603, e.to_string()))?
        .map_err(|e| refuse(StatusCode::SERVICE_UNAVAILABLE, -32603, format!("{e:?}")))?;
    let Some(f) = found else { return Ok(Value::Null) };
    let to = f.tx.to().unwrap_or_default();
    let logs: Vec<Value> = f
        .receipt
        .logs
        .iter()
        .map(|l| {
            json!({
                "address": format!("{:#x}", l.address),
                "topics": l.data.topics().iter().map(|t| format!("{t:#x}")).collect::<Vec<_>>(),
                "data": format!("0x{}", hex::encode(&l.data.data)),
            })
        })
        .collect();
    let mut r = json!({
        "transactionHash": format!("{hash:#x}"),
        "blockNumber": format!("{:#x}", f.header.number),
        "transactionIndex": format!("{:#x}", f.index),
        "from": format!("{:#x}", f.tx.sender),
        "to": format!("{to:#x}"),
        "status": if f.receipt.success { "0x1" } else { "0x0" },
        "gasUsed": format!("{:#x}", f.receipt.gas_used),
        "logs": logs,
    });
    if !f.receipt.success {
        r["revertReason"] = json!(revert_message(&to, &f.receipt.revert_data));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_sol_types::SolCall;
    use primitives::abi::IDatanets;

    /// wallet.js's BLAKE3 against the Rust one (`primitives::content_hash`) at
    /// the chunk and block boundaries, run with `node` when it is installed
    /// (the browser test runs it in a browser).
    #[test]
    fn the_scripts_blake3_is_the_nodes() {
        let lens = [0usize, 1, 63, 64, 65, 1023, 1024, 1025, 2048, 2049, 3073, 8193, 100_000];
        let script = format!(
            "{SCRIPT}\nconst out = [];\nfor (const n of {lens:?}) {{ const b = new Uint8Array(n); \
             for (let i = 0; i < n; i++) b[i] = i % 251; out.push(module.exports.blake3(b)); }}\n\
             console.log(out.join(' '));"
        );
        let Ok(out) = std::process::Command::new("node").args(["-e", &script]).output() else {
            eprintln!("node is not installed: wallet.js's BLAKE3 is checked by the browser test only");
            return;
        };
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let got = String::from_utf8(out.stdout).unwrap();
        let got: Vec<&str> = got.split_whitespace().collect();
        for (n, h) in lens.iter().zip(&got) {
            let input: Vec<u8> = (0..*n).map(|i| (i % 251) as u8).collect();
            assert_eq!(*h, hex::encode(primitives::content_hash(&input)), "length {n}");
        }
        assert_eq!(got.len(), lens.len());
    }

    #[test]
    fn a_button_carries_the_call_and_the_panel_is_labelled() {
        let call = IDatanets::approveCall { contributionId: 7 };
        let b = TxButton {
            class: Some("curate-approve"),
            value: U256::from(5u64),
            link: Some((B256::repeat_byte(1), 2, "/x/{id}", "#{id}")),
            ..TxButton::new("Approve", Module::Datanets.address(), call.abi_encode(), "curate-result")
        };
        let html = tx_button(&b).into_string();
        for want in [
            "<button type=\"button\" class=\"curate-approve\"",
            &format!("data-to=\"{:#x}\"", Module::Datanets.address()),
            &format!("data-data=\"0x{}\"", hex::encode(call.abi_encode())),
            "data-value=\"5\"",
            "data-result=\"curate-result\"",
            "data-event-index=\"2\"",
            "data-link=\"/x/{id}\"",
        ] {
            assert!(html.contains(want), "{want} in {html}");
        }
        let dev = DevWallet::new(vec![keys::derive_account(keys::DEV_MNEMONIC, 0).unwrap()]);
        let p = panel(Some(&dev)).into_string();
        assert!(p.contains("<label for=\"wallet-account\">"), "{p}");
        assert!(p.contains("data-dev-wallet=\"/web/dev-wallet\""), "{p}");
        assert!(p.contains("value=\"dev:0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266\""), "{p}");
        assert!(p.contains("id=\"wallet-status\" role=\"status\" aria-live=\"polite\""), "{p}");
        assert!(!panel(None).into_string().contains("data-dev-wallet"));
    }

    #[test]
    fn reverts_read_as_their_custom_error() {
        let caller = Address::repeat_byte(0x42);
        let data = alloy_sol_types::SolError::abi_encode(&IDatanets::NotCurator { caller });
        let m = revert_message(&Module::Datanets.address(), &data);
        assert_eq!(m, format!("NotCurator(caller={})", caller.to_checksum(None)));
        assert_eq!(revert_message(&Module::Datanets.address(), &[]), "reverted");
        assert_eq!(revert_message(&Module::Datanets.address(), &[1, 2]), "reverted with 0x0102");
    }
}
