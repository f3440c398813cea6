//! One account (`/explorer/accounts/{address}`): balance and nonce, stake
//! (what it owns, as an operator, unbonding), the models it owns and the
//! contributions it made, and its full history from the node's index: the
//! transactions it sent or received and the events naming it, newest first,
//! paged with `?before=<cursor>`.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use maud::{Markup, html};
use primitives::Address;
use primitives::abi::{IDatanets, IModels, IStaking};
use primitives::history::{HistoryCursor, HistoryEntry, ROLE_SENDER, Subject};
use primitives::system::Module;

use super::records::read;
use super::{
    account_href, account_link, address_label, amount, block_link, call_summary, fields, path_param, summary, tx_link,
};
use crate::Web;
use crate::decode::{decode_call, decode_log};
use crate::page::{Page, Section, WebError, render, table};
use crate::query;
use crate::view::ChainView;

/// History entries (transactions and events) per page.
pub const HISTORY_PAGE: usize = 25;
/// Contributions listed, at most (the view pages them).
pub const MAX_CONTRIBUTIONS: u64 = 50;

pub async fn handler(
    State(web): State<Web>,
    address: Result<Path<String>, PathRejection>,
    RawQuery(q): RawQuery,
) -> Response {
    render(web, move |v| page(v, &path_param(address)?, q.as_deref())).await
}

fn page(v: &ChainView, address: &str, q: Option<&str>) -> Result<Page, WebError> {
    let a = query::address(address)?;
    let params = query::params(q, &["before"])?;
    let before = match query::get(&params, "before") {
        Some(b) => Some(b.parse::<HistoryCursor>().map_err(WebError::bad)?),
        None => None,
    };
    let (nonce, balance) = v.account(&a)?;
    let power = v.call(Module::Staking, &IStaking::votingPowerCall { account: a })?.unwrap_or_default();
    let body = html! {
        (summary(&[
            ("Address", html! { span.mono.wrap { (a.to_checksum(None)) } }),
            ("Kind", match address_label(&a) {
                Some(l) => html! { "protocol account: " (l) },
                None => html! { "account" },
            }),
            ("Balance", amount(balance.to_u256())),
            ("Nonce", html! { (nonce) " (transactions sent)" }),
            ("Stake owned", html! { (amount(power)) " " span.muted { "(its voting power)" } }),
        ]))
        (staking(v, &a)?)
        (holdings(v, &a)?)
        (history(v, &a, before)?)
    };
    Ok(Page::new(format!("Account {}", crate::format::short(&a.to_checksum(None))), Section::Explorer, body))
}

fn staking(v: &ChainView, a: &Address) -> Result<Markup, WebError> {
    let operator = read(v, Module::Staking, &IStaking::operatorInfoCall { operator: *a })?.ok();
    let unbonding = v.call(Module::Staking, &IStaking::unbondingsCall { account: *a })?.ok();
    Ok(html! {
        @if let Some(op) = operator {
            section aria-labelledby="operator" {
                h2 #operator { "As an operator" }
                p { "Role 1 is a validator, 2 a serving operator." }
                (fields(&op))
            }
        }
        @if let Some(u) = unbonding.filter(|u| !u.operators.is_empty()) {
            section aria-labelledby="unbonding" {
                h2 #unbonding { "Unbonding" }
                (table(
                    "Unbonding stakes",
                    &["From operator", "Amount", "Released at block"],
                    html! { @for ((op, amt), at) in u.operators.iter().zip(&u.amounts).zip(&u.releaseHeights) {
                            tr { td { (account_link(op)) } td.num { (amount(*amt)) } td.num { (at) } }
                        } },
                ))
            }
        }
    })
}

fn holdings(v: &ChainView, a: &Address) -> Result<Markup, WebError> {
    let models = v.call(Module::Models, &IModels::modelsOfCall { owner: *a })?.unwrap_or_default();
    let contributions = v
        .call(
            Module::Datanets,
            &IDatanets::contributionsByCall { contributor: *a, offset: 0, limit: MAX_CONTRIBUTIONS },
        )?
        .unwrap_or_default();
    Ok(html! {
        @if !models.is_empty() {
            section aria-labelledby="models" {
                h2 #models { "Models owned (" (models.len()) ")" }
                ul.inline { @for id in models.iter().take(super::MAX_LIST) { li { a href=(super::model_href(*id)) { "m" (id) } } } }
            }
        }
        @if !contributions.is_empty() {
            section aria-labelledby="contributions" {
                h2 #contributions { "Contributions" }
                p { "Ids of its first " (contributions.len()) " contributions to Datanets (their pages come with the Datanets section):" }
                ul.inline { @for id in &contributions { li { (id) } } }
            }
        }
    })
}

fn history(v: &ChainView, a: &Address, before: Option<HistoryCursor>) -> Result<Markup, WebError> {
    let page = v.history(&Subject::Address(*a), before, HISTORY_PAGE)?;
    let mut blocks = std::collections::HashMap::new();
    let mut rows = Vec::with_capacity(page.entries.len());
    for e in &page.entries {
        if let std::collections::hash_map::Entry::Vacant(slot) = blocks.entry(e.block) {
            slot.insert((v.transactions(e.block)?, v.receipts(e.block)?));
        }
        rows.push(history_row(a, e, &blocks[&e.block]));
    }
    Ok(html! {
        section aria-labelledby="history" {
            h2 #history { "History" }
            p.note {
                "Transactions the account sent or received, and events naming it, newest first (every block from "
                (page.indexed_from) " on)."
            }
            @if rows.is_empty() { p.muted { @if before.is_some() { "Nothing older." } @else { "None yet." } } } @else {
                (table("The account's history, newest first", &["Transaction", "Block", "What", "Counterparty", "Value", "Details"], html! { @for r in rows { (r) } }))
            }
            nav.pager aria-label="Pages of history" {
                @if before.is_some() { a href=(format!("{}#history", account_href(a))) { "Newest" } }
                @if let Some(next) = page.next {
                    a href=(format!("{}?before={next}#history", account_href(a))) { "Older" }
                }
            }
        }
    })
}

/// One entry: a transaction (direction, counterparty, value, call) or an event (its fields).
fn history_row(
    a: &Address,
    e: &HistoryEntry,
    (txs, receipts): &(Vec<primitives::SignedTransaction>, Vec<primitives::Receipt>),
) -> Markup {
    let Some(tx) = txs.get(e.tx_index as usize) else { return html! {} };
    let log = e.log_index.and_then(|i| receipts.get(e.tx_index as usize)?.logs.get(i as usize));
    let out = e.roles & ROLE_SENDER != 0;
    let other = if out { tx.to().filter(|t| t != a) } else { Some(tx.sender) };
    html! {
        tr {
            td { (tx_link(&tx.hash)) }
            td { (block_link(e.block)) }
            @match (e.log_index, log) {
                (None, _) => {
                    td { @if out { "sent" } @else { "received" } }
                    td { @if let Some(o) = other { (account_link(&o)) } }
                    td.num { (amount(tx.value())) }
                    td { (call_summary(&decode_call(tx.to(), tx.input()))) }
                },
                (Some(i), l) => {
                    td { "event #" (i) }
                    td { @if let Some(l) = l { (account_link(&l.address)) } }
                    td {}
                    td { @match l.and_then(decode_log) {
                        Some(d) => { code { (d.name) } (fields(&d.fields)) },
                        None => "an event no system contract declares",
                    } }
                },
            }
        }
    }
}
