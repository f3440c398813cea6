//! Blocks: the list (`/explorer/blocks?before=N&limit=L`, newest first, a
//! page at a time) and one block (`/explorer/blocks/{number or hash}`): its
//! header fields and its transactions.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use maud::{Markup, html};
use primitives::Header;

use super::{account_link, amount, block_href, block_link, bytes, call_summary, path_param, summary, tx_link};
use crate::Web;
use crate::decode::decode_call;
use crate::format;
use crate::page::{Page, Section, WebError, render, table};
use crate::query;
use crate::view::ChainView;

/// Blocks on one page of the list, by default and at most.
pub const PAGE: u64 = 20;
pub const MAX_PAGE: u64 = 100;
/// Transactions one block's page lists, at most.
pub const MAX_TXS: usize = 500;

/// A table of `count` blocks from `top` downwards (fewer at the chain's start).
pub fn blocks_table(v: &ChainView, top: u64, count: u64) -> Result<Markup, WebError> {
    let lowest = top.saturating_sub(count.saturating_sub(1)).max(v.first_block()?);
    let mut rows = Vec::new();
    for n in (lowest..=top).rev() {
        if let Some(h) = v.header(n)? {
            let txs = v.transaction_count(n)?;
            rows.push((h, txs));
        }
    }
    Ok(html! {
        div.scroll {
            table {
                caption.visually-hidden { "Blocks, newest first" }
                thead { tr {
                    th scope="col" { "Block" } th scope="col" { "Hash" } th scope="col" { "Time" }
                    th scope="col" { "Transactions" } th scope="col" { "Gas used" }
                } }
                tbody {
                    @for (h, txs) in &rows {
                        tr {
                            td { (block_link(h.number)) }
                            td.mono { (format::short(&h.hash_slow().to_string())) }
                            td { (format::utc(h.timestamp)) }
                            td.num { (txs) }
                            td.num { (h.gas_used) }
                        }
                    }
                }
            }
        }
    })
}

pub async fn list_handler(State(web): State<Web>, RawQuery(q): RawQuery) -> Response {
    render(web, move |v| list(v, q.as_deref())).await
}

fn list(v: &ChainView, q: Option<&str>) -> Result<Page, WebError> {
    let params = query::params(q, &["before", "limit"])?;
    let head = v.head().number;
    let limit = match query::get(&params, "limit") {
        Some(l) => query::number(l, "page size")?.clamp(1, MAX_PAGE),
        None => PAGE,
    };
    let top = match query::get(&params, "before") {
        Some(b) => query::number(b, "block number")?.min(head.saturating_add(1)),
        None => head.saturating_add(1),
    };
    if top == 0 {
        return Err(WebError::not_found("there is no block before block 0"));
    }
    let top = top - 1;
    let lowest = top.saturating_sub(limit - 1);
    let body = html! {
        (blocks_table(v, top, limit)?)
        nav.pager aria-label="Pages of blocks" {
            @if top < head { a href=(format!("/explorer/blocks?limit={limit}")) { "Newest" } }
            @if lowest > v.first_block()? {
                a href=(format!("/explorer/blocks?before={lowest}&limit={limit}")) { "Older blocks" }
            }
        }
    };
    Ok(Page::new("Blocks", Section::Explorer, body))
}

pub async fn handler(State(web): State<Web>, id: Result<Path<String>, PathRejection>) -> Response {
    render(web, move |v| page(v, &path_param(id)?)).await
}

/// A block by number or `0x` hash.
fn find(v: &ChainView, id: &str) -> Result<Header, WebError> {
    let number = if id.starts_with("0x") {
        let hash = query::hash(id)?;
        v.block_number(&hash)?.ok_or_else(|| WebError::not_found(format!("no block with hash {hash}")))?
    } else {
        query::number(id, "block number")?
    };
    v.header(number)?.ok_or_else(|| {
        WebError::not_found(format!("no block {number} on this node (the head is block {})", v.head().number))
    })
}

fn page(v: &ChainView, id: &str) -> Result<Page, WebError> {
    let h = find(v, id)?;
    let count = v.transaction_count(h.number)?;
    let txs = v.first_transactions(h.number, MAX_TXS)?;
    let receipts = v.receipts(h.number)?;
    let seal = if chain::is_bft_header(&h) { "BFT consensus (format 1)" } else { "dev sealer (format 0)" };
    let body = html! {
        (summary(&[
            ("Number", html! { (h.number) }),
            ("Hash", html! { span.mono.wrap { (h.hash_slow()) } }),
            ("Parent", if h.number == 0 { html! { span.muted { "(genesis)" } } } else {
                html! { a.mono.wrap href=(block_href(h.number - 1)) { (h.parent_hash) } }
            }),
            ("Time", html! { (format::utc(h.timestamp)) " (" (h.timestamp) ")" }),
            ("Producer", account_link(&h.beneficiary)),
            ("Sealed by", html! { (seal) }),
            ("Transactions", html! { (count) }),
            ("Gas used", html! { (h.gas_used) " of " (h.gas_limit) }),
            ("Base fee", html! { (h.base_fee_per_gas.unwrap_or(0)) " wei per gas" }),
            ("State root", html! { span.mono.wrap { (h.state_root) } }),
            ("Transactions root", html! { span.mono.wrap { (h.transactions_root) } }),
            ("Receipts root", html! { span.mono.wrap { (h.receipts_root) } }),
            ("Extra data", bytes(&h.extra_data)),
        ]))
        nav.pager aria-label="Neighbouring blocks" {
            @if h.number > 0 { a href=(block_href(h.number - 1)) rel="prev" { "Previous block" } }
            @if h.number < v.head().number { a href=(block_href(h.number + 1)) rel="next" { "Next block" } }
        }
        h2 { "Transactions" }
        @if txs.is_empty() { p.muted { "This block has no transactions." } }
        @if count > txs.len() { p.note { "The first " (txs.len()) " of " (count) " transactions are listed." } }
        @if !txs.is_empty() {
            (table(
                "The block's transactions in order",
                &["#", "Transaction", "From", "To", "Value", "Call", "Status"],
                html! { @for (i, t) in txs.iter().enumerate() {
                        tr {
                            td.num { (i) }
                            td { (tx_link(&t.hash)) }
                            td { (account_link(&t.sender)) }
                            td { @if let Some(to) = t.to() { (account_link(&to)) } }
                            td.num { (amount(t.value())) }
                            td { (call_summary(&decode_call(t.to(), t.input()))) }
                            td { (status(receipts.get(i).map(|r| r.success))) }
                        }
                    } },
            ))
        }
    };
    Ok(Page::new(format!("Block {}", h.number), Section::Explorer, body))
}

/// A receipt's status, in words and not by colour alone.
pub fn status(success: Option<bool>) -> Markup {
    match success {
        Some(true) => html! { span.ok { "✓ success" } },
        Some(false) => html! { span.failed { "✗ failed" } },
        None => html! { span.muted { "pending" } },
    }
}
