//! One account (`/explorer/accounts/{address}`): balance and nonce, stake
//! (what it owns, as an operator, unbonding), the models it owns and the
//! contributions it made, and its transactions among the latest blocks.
//!
//! A full history needs an index of transactions by address, which the node
//! does not keep yet; until then the page lists what the last
//! [`RECENT_BLOCKS`] blocks hold and says so.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use maud::{Markup, html};
use primitives::Address;
use primitives::abi::{IDatanets, IModels, IStaking};
use primitives::system::Module;

use super::records::read;
use super::{
    RECENT_BLOCKS, account_link, address_label, amount, block_link, call_summary, fields, path_param, summary, tx_link,
};
use crate::Web;
use crate::decode::decode_call;
use crate::page::{Page, Section, WebError, render};
use crate::query;
use crate::view::{ChainView, MAX_SCANNED};

/// The account's transactions listed, at most.
pub const MAX_RECENT: usize = 25;
/// Contributions listed, at most (the view pages them).
pub const MAX_CONTRIBUTIONS: u64 = 50;

pub async fn handler(State(web): State<Web>, address: Result<Path<String>, PathRejection>) -> Response {
    render(web, move |v| page(v, &path_param(address)?)).await
}

fn page(v: &ChainView, address: &str) -> Result<Page, WebError> {
    let a = query::address(address)?;
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
        (recent(v, &a)?)
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
                div.scroll { table {
                    thead { tr { th scope="col" { "From operator" } th scope="col" { "Amount" } th scope="col" { "Released at block" } } }
                    tbody {
                        @for ((op, amt), at) in u.operators.iter().zip(&u.amounts).zip(&u.releaseHeights) {
                            tr { td { (account_link(op)) } td.num { (amount(*amt)) } td.num { (at) } }
                        }
                    }
                } }
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

fn recent(v: &ChainView, a: &Address) -> Result<Markup, WebError> {
    let txs = v.recent_transactions(RECENT_BLOCKS, MAX_RECENT, |t| t.sender == *a || t.to() == Some(*a))?;
    Ok(html! {
        section aria-labelledby="history" {
            h2 #history { "Recent transactions" }
            p.note {
                "History: not indexed yet. This list shows the account's transactions (sent or received) among the last "
                (RECENT_BLOCKS) " blocks (at most " (MAX_SCANNED) " transactions looked at); older ones need the index of "
                "transactions by address that the node does not keep yet."
            }
            @if txs.is_empty() { p.muted { "None in the last " (RECENT_BLOCKS) " blocks." } } @else {
                div.scroll { table {
                    thead { tr {
                        th scope="col" { "Transaction" } th scope="col" { "Block" } th scope="col" { "Direction" }
                        th scope="col" { "Counterparty" } th scope="col" { "Value" } th scope="col" { "Call" }
                    } }
                    tbody {
                        @for t in &txs {
                            @let out = t.tx.sender == *a;
                            @let other = if out { t.tx.to() } else { Some(t.tx.sender) };
                            tr {
                                td { (tx_link(&t.tx.hash)) }
                                td { (block_link(t.block)) }
                                td { @if out { "sent" } @else { "received" } }
                                td { @if let Some(o) = other { (account_link(&o)) } }
                                td.num { (amount(t.tx.value())) }
                                td { (call_summary(&decode_call(t.tx.to(), t.tx.input()))) }
                            }
                        }
                    }
                } }
            }
        }
    })
}
