//! The Explorer's home (`GET /` and `/explorer`): the chain at a glance, the
//! latest blocks and the latest transactions.

use axum::extract::State;
use axum::response::Response;
use maud::html;

use super::{RECENT_BLOCKS, account_link, amount, block::blocks_table, block_link, call_summary, summary, tx_link};
use crate::Web;
use crate::decode::decode_call;
use crate::format;
use crate::page::{Page, Section, WebError, render};
use crate::view::ChainView;

/// Blocks and transactions the home page lists.
pub const LATEST: usize = 10;

pub async fn handler(State(web): State<Web>) -> Response {
    render(web, page).await
}

fn page(v: &ChainView) -> Result<Page, WebError> {
    let head = v.head();
    let txs = v.recent_transactions(RECENT_BLOCKS, LATEST, |_| true)?;
    let body = html! {
        (summary(&[
            ("Chain id", html! { (v.chain_id()) }),
            ("Head", html! { (block_link(head.number)) " at " (format::utc(head.timestamp)) }),
            ("Head hash", html! { span.mono.wrap { (head.hash_slow()) } }),
            ("Base fee of the head", html! { (head.base_fee_per_gas.unwrap_or(0)) " wei per gas" }),
        ]))
        section aria-labelledby="latest-blocks" {
            h2 #latest-blocks { "Latest blocks" }
            (blocks_table(v, head.number, LATEST as u64)?)
            p { a href="/explorer/blocks" { "All blocks" } }
        }
        section aria-labelledby="latest-txs" {
            h2 #latest-txs { "Latest transactions" }
            @if txs.is_empty() {
                p.muted { "No transactions in the last " (RECENT_BLOCKS) " blocks." }
            } @else {
                div.scroll {
                    table {
                        caption.visually-hidden { "The newest transactions, newest first" }
                        thead { tr {
                            th scope="col" { "Transaction" } th scope="col" { "Block" } th scope="col" { "From" }
                            th scope="col" { "To" } th scope="col" { "Value" } th scope="col" { "Call" }
                        } }
                        tbody {
                            @for t in &txs {
                                tr {
                                    td { (tx_link(&t.tx.hash)) }
                                    td { (block_link(t.block)) }
                                    td { (account_link(&t.tx.sender)) }
                                    td { @if let Some(to) = t.tx.to() { (account_link(&to)) } }
                                    td.num { (amount(t.tx.value())) }
                                    td { (call_summary(&decode_call(t.tx.to(), t.tx.input()))) }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(Page::new("Explorer", Section::Explorer, body))
}
