//! One transaction (`/explorer/tx/{hash}`): who sent what to whom, its status
//! and gas, the call decoded when it goes to a system contract, the error it
//! reverted with, and its logs decoded as events.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use maud::{Markup, html};
use primitives::system::Module;
use primitives::{Log, SignedTransaction, U256};

use super::block::status;
use super::{account_link, amount, block_link, bytes, fields, path_param, summary};
use crate::Web;
use crate::decode::{CallKind, decode_call, decode_error, decode_log};
use crate::page::{Page, Section, WebError, render};
use crate::query;
use crate::view::{ChainView, FoundTx};

/// Logs shown on one transaction's page.
pub const MAX_LOGS: usize = 256;

pub async fn handler(State(web): State<Web>, hash: Result<Path<String>, PathRejection>) -> Response {
    render(web, move |v| page(v, &path_param(hash)?)).await
}

fn page(v: &ChainView, hash: &str) -> Result<Page, WebError> {
    let hash = query::hash(hash)?;
    let title = format!("Transaction {}", crate::format::short(&hash.to_string()));
    if let Some(found) = v.transaction(&hash)? {
        return Ok(Page::new(title, Section::Explorer, committed(&found)));
    }
    if let Some(tx) = v.pending(&hash) {
        let body = html! {
            p.note { "This transaction waits in this node's pool: it is not in a block yet." }
            (common(&tx, None))
            (call_section(&tx))
        };
        return Ok(Page::new(title, Section::Explorer, body));
    }
    Err(WebError::not_found(format!("no transaction {hash} in a block or in this node's pool")))
}

/// The rows a committed and a pending transaction share.
fn common(tx: &SignedTransaction, extra: Option<Vec<(&str, Markup)>>) -> Markup {
    let mut rows = vec![
        ("Hash", html! { span.mono.wrap { (tx.hash) } }),
        ("From", account_link(&tx.sender)),
        (
            "To",
            match tx.to() {
                Some(to) => account_link(&to),
                None => html! { span.muted { "(contract creation)" } },
            },
        ),
        ("Value", amount(tx.value())),
        ("Nonce", html! { (tx.nonce()) }),
        ("Gas limit", html! { (tx.gas_limit()) }),
        ("Max fee per gas", html! { (tx.max_fee_per_gas()) " wei" }),
        ("Max priority fee per gas", html! { (tx.max_priority_fee_per_gas()) " wei" }),
    ];
    rows.extend(extra.unwrap_or_default());
    summary(&rows)
}

fn committed(f: &FoundTx) -> Markup {
    let r = &f.receipt;
    let fee = U256::from(r.gas_used) * U256::from(r.effective_gas_price);
    let module = f.tx.to().as_ref().and_then(Module::from_address);
    let extra = vec![
        ("Status", status(Some(r.success))),
        ("Block", html! { (block_link(f.header.number)) ", position " (f.index) }),
        ("Time", html! { (crate::format::utc(f.header.timestamp)) }),
        ("Gas used", html! { (r.gas_used) }),
        ("Gas price", html! { (r.effective_gas_price) " wei" }),
        ("Fee", amount(fee)),
    ];
    html! {
        (common(&f.tx, Some(extra)))
        @if !r.success { (revert(module, &r.revert_data)) }
        (call_section(&f.tx))
        (logs(&f.receipt.logs))
    }
}

fn revert(module: Option<Module>, data: &[u8]) -> Markup {
    html! {
        section aria-labelledby="revert" {
            h2 #revert { "Why it failed" }
            @match decode_error(module, data) {
                Some(e) => { p { "Reverted with " code { (e.name) } } (fields(&e.fields)) },
                None => { p { "Reverted with data " (bytes(data)) } },
            }
        }
    }
}

fn call_section(tx: &SignedTransaction) -> Markup {
    let input = tx.input();
    html! {
        section aria-labelledby="call" {
            h2 #call { "Call" }
            @match decode_call(tx.to(), input) {
                CallKind::Plain => {
                    p { "A transfer of OPEN." }
                    @if !input.is_empty() { p { "Input (not interpreted): " (bytes(input)) } }
                },
                CallKind::Decoded(c) => {
                    p { "Calls " code { (c.module.name()) "." (c.function) } " on the " (c.module.name())
                        " system contract (" code { (c.signature) } ")." }
                    @if c.args.is_empty() { p.muted { "No arguments." } } @else { (fields(&c.args)) }
                },
                CallKind::Undecodable { module, reason } => {
                    p { "A call to the " (module.name()) " system contract that its interface does not describe: " (reason) "." }
                    p { "Input: " (bytes(input)) }
                },
            }
        }
    }
}

fn logs(logs: &[Log]) -> Markup {
    html! {
        section aria-labelledby="logs" {
            h2 #logs { "Events (" (logs.len()) ")" }
            @if logs.is_empty() { p.muted { "No logs." } }
            ol.logs {
                @for log in logs.iter().take(MAX_LOGS) {
                    li {
                        @match decode_log(log) {
                            Some(e) => {
                                h3 { code { (e.name) } " from " (account_link(&log.address)) }
                                (fields(&e.fields))
                            },
                            None => {
                                h3 { "Log from " (account_link(&log.address)) }
                                ul { @for t in log.data.topics() { li.mono.wrap { (t) } } }
                                p { "Data: " (bytes(&log.data.data)) }
                            },
                        }
                    }
                }
            }
            @if logs.len() > MAX_LOGS { p.muted { "… and " (logs.len() - MAX_LOGS) " more logs." } }
        }
    }
}
