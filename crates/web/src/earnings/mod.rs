//! The Earnings section: a form (`/earnings`, `?address=` leads on) and what
//! one address earned (`/earnings/{address}`):
//! - as a contributor: each of its contributions with what attribution
//!   credited it, what it may claim now and what it claimed, and its earnings
//!   over time (cumulative, by block) from the `Credited` and `Claimed` events
//!   in the contributions' histories;
//! - as a model owner: its models, and the owner part of each settled receipt
//!   in its own history or in its models' histories (the history index files
//!   `ReceiptSettled` under the model named in its data, so receipts others
//!   paid and served are there);
//! - as a serving operator: the serving part of each receipt it settled.
//!
//! Everything comes from the node's history index and the modules' typed
//! reads, a bounded number of entries a page: the work never grows with the
//! chain.

use std::collections::{BTreeMap, HashMap, HashSet};

use alloy_sol_types::{SolCall, SolEvent};
use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::{Markup, html};
use primitives::abi::{IDatanets, IInference};
use primitives::history::{HistoryCursor, MAX_HISTORY_PAGE, Subject};
use primitives::system::Module;
use primitives::{Address, B256, Log, U256};
use runtime::datanets::DatanetsRead;
use runtime::inference::InferenceRead;
use runtime::models::ModelsRead;

use crate::Web;
use crate::chart::{Chart, Open, Series, line_chart};
use crate::explorer::{amount, block_link, model_href, path_param, summary, tx_link};
use crate::page::{Page, Section, WebError, render, table};
use crate::query;
use crate::view::ChainView;

/// Contributions one page shows, at most.
pub const MAX_CONTRIBUTIONS: u64 = 50;
/// History entries (of the contributions, or of the address) one page reads, at most.
pub const MAX_ENTRIES: usize = 1000;
/// Models listed (and whose histories are read for receipts), at most.
const MAX_MODELS: usize = 100;
/// History entries of the owner's models one page reads, at most, shared
/// evenly among the models listed.
const MAX_MODEL_ENTRIES: usize = 1000;

/// The Earnings section's routes.
pub fn routes() -> Router<Web> {
    Router::new().route("/earnings", get(form_handler)).route("/earnings/{address}", get(handler))
}

pub fn href(a: &Address) -> String {
    format!("/earnings/{a:#x}")
}

async fn form_handler(State(web): State<Web>, RawQuery(q): RawQuery) -> Response {
    render(web, move |_| {
        let params = query::params(q.as_deref(), &["address"])?;
        if let Some(a) = query::get(&params, "address") {
            let a = query::address(a.trim())?;
            return Ok((StatusCode::SEE_OTHER, [(header::LOCATION, href(&a))]).into_response());
        }
        let body = html! {
            p { "What an address earned: as a contributor to Datanets (attribution credits), as a model owner and as a serving operator." }
            form.address method="get" action="/earnings" {
                label for="address" { "Address" }
                input #address type="text" name="address" required maxlength="42" pattern="0[xX][0-9a-fA-F]{40}"
                    placeholder="0x…" autocomplete="off" spellcheck="false";
                button type="submit" { "Show earnings" }
            }
        };
        Ok(Page::new("Earnings", Section::Earnings, body).into_response())
    })
    .await
}

pub async fn handler(
    State(web): State<Web>,
    address: Result<Path<String>, PathRejection>,
    RawQuery(q): RawQuery,
) -> Response {
    let writes = web.writes.clone();
    render(web, move |v| {
        query::params(q.as_deref(), &[])?;
        page(v, &writes, query::address(&path_param(address)?)?)
    })
    .await
}

/// The logs of the blocks a page looks at, each block's receipts read once.
#[derive(Default)]
struct Logs {
    blocks: HashMap<u64, Vec<primitives::Receipt>>,
}

impl Logs {
    fn get(&mut self, v: &ChainView, block: u64, tx: u32, log: u32) -> Result<Option<Log>, WebError> {
        if let std::collections::hash_map::Entry::Vacant(slot) = self.blocks.entry(block) {
            slot.insert(v.receipts(block)?);
        }
        Ok(self.blocks[&block].get(tx as usize).and_then(|r| r.logs.get(log as usize)).cloned())
    }
}

/// An event of the inference module, if `log` is one of type `E`.
fn inference_event<E: SolEvent>(log: &Log) -> Option<E> {
    if log.address != Module::Inference.address() {
        return None;
    }
    E::decode_log_data(&log.data).ok()
}

/// Walk `subject`'s history newest first, at most `budget` entries, calling
/// `each` with every log entry's block, transaction index and log. Returns
/// whether the history went further back than the budget.
fn walk_logs(
    v: &ChainView,
    logs: &mut Logs,
    subject: Subject,
    budget: &mut usize,
    mut each: impl FnMut(u64, u32, &Log),
) -> Result<bool, WebError> {
    let mut before: Option<HistoryCursor> = None;
    loop {
        if *budget == 0 {
            return Ok(true);
        }
        let page = v.history(&subject, before, (*budget).min(MAX_HISTORY_PAGE))?;
        *budget -= page.entries.len().min(*budget);
        for e in &page.entries {
            if let Some(i) = e.log_index
                && let Some(log) = logs.get(v, e.block, e.tx_index, i)?
            {
                each(e.block, e.tx_index, &log);
            }
        }
        match page.next {
            Some(next) => before = Some(next),
            None => return Ok(false),
        }
    }
}

/// One contribution's earnings.
struct Earned {
    id: u64,
    datanet: u64,
    credited: U256,
    claimable: U256,
    claimed: U256,
}

fn page(v: &ChainView, writes: &crate::wallet::Writes, a: Address) -> Result<Page, WebError> {
    let ids = v
        .call(
            Module::Datanets,
            &IDatanets::contributionsByCall { contributor: a, offset: 0, limit: MAX_CONTRIBUTIONS },
        )?
        .unwrap_or_default();
    let mut logs = Logs::default();
    let mut budget = MAX_ENTRIES;
    let mut truncated = false;
    // Per block: (credited, claimed) in that block, over every contribution.
    let mut by_block: BTreeMap<u64, (U256, U256)> = BTreeMap::new();
    let mut earned = Vec::with_capacity(ids.len());
    for id in ids {
        let Some(c) = v.state().contribution(id).map_err(WebError::unavailable)? else { continue };
        let account = v.state().contribution_account(id).map_err(WebError::unavailable)?;
        let claimable = v.state().claimable(id).map_err(WebError::unavailable)?;
        let mut claimed = U256::ZERO;
        truncated |= walk_logs(v, &mut logs, Subject::Contribution(id), &mut budget, |block, _, log| {
            if let Some(e) = inference_event::<IInference::Credited>(log) {
                by_block.entry(block).or_default().0 += U256::from(e.amount);
            } else if let Some(e) = inference_event::<IInference::Claimed>(log) {
                by_block.entry(block).or_default().1 += U256::from(e.amount);
                claimed += U256::from(e.amount);
            }
        })?;
        earned.push(Earned {
            id,
            datanet: c.attestation.datanetId,
            credited: U256::from(account.totalCredited),
            claimable: claimable.to_u256(),
            claimed,
        });
    }
    let body = html! {
        (summary(&[
            ("Address", html! {
                span.mono.wrap { (a.to_checksum(None)) } " " a href=(crate::explorer::account_href(&a)) { "(in the Explorer)" }
            }),
            ("Credited to its contributions", amount(earned.iter().map(|e| e.credited).sum())),
            ("Claimable now", amount(earned.iter().map(|e| e.claimable).sum())),
            ("Claimed", amount(earned.iter().map(|e| e.claimed).sum())),
        ]))
        section aria-labelledby="contributor" {
            h2 #contributor { "As a contributor" }
            (contributions(&a, &earned, writes))
            h3 { "Over time" }
            (over_time(&by_block))
            @if truncated {
                p.muted { "Only the newest " (MAX_ENTRIES) " entries of the contributions' histories are counted in the chart and in “claimed”." }
            }
        }
        (as_owner_and_operator(v, &a, &mut logs)?)
    };
    Ok(Page::new(format!("Earnings of {}", crate::format::short(&a.to_checksum(None))), Section::Earnings, body))
}

fn contributions(a: &Address, earned: &[Earned], writes: &crate::wallet::Writes) -> Markup {
    let claimable = earned.iter().any(|e| !e.claimable.is_zero());
    html! {
        @if earned.is_empty() { p.muted { "No contribution to a Datanet." } }
        @else {
            p {
                "Attribution credits a contribution a share of each inference its data influenced; the contributor claims them "
                "(with its share of any fallback paid to its Datanet version)."
            }
            (table(
                "Contributions and their earnings",
                &["Contribution", "Datanet", "Credited", "Claimable now", "Claimed", "Claim"],
                html! {
                @for e in earned { tr data-contribution=(e.id) {
                    td { a href=(crate::datanets::contribution_href(e.datanet, e.id)) { "#" (e.id) } }
                    td { a href=(crate::datanets::href(e.datanet)) { "d" (e.datanet) } }
                    td.num { (amount(e.credited)) }
                    td.num { (amount(e.claimable)) }
                    td.num { (amount(e.claimed)) }
                    td { @if !e.claimable.is_zero() {
                        (crate::wallet::tx_button(&crate::wallet::TxButton {
                            class: Some("claim"), done: "Claimed", reload: true,
                            ..crate::wallet::TxButton::new(
                                &format!("Claim #{}", e.id),
                                Module::Inference.address(),
                                IInference::claimCall { contributionId: e.id }.abi_encode(),
                                "claim-result",
                            )
                        }))
                    } }
                } }
            },
            ))
            @if let Some(e) = earned.iter().find(|e| !e.claimable.is_zero()) {
                p { "Only the contributor may claim (the chain refuses anyone else): sign with its wallet here, or with the CLI:" }
                pre { code { "openledger rewards claim " (e.id) " --from " (a.to_checksum(None)) } }
            }
            @if claimable {
                (crate::wallet::panel(writes.dev_wallet.as_deref()))
                p #claim-result role="status" aria-live="polite" {}
            }
        }
    }
}

/// Cumulative credited and claimed amounts by block.
fn over_time(by_block: &BTreeMap<u64, (U256, U256)>) -> Markup {
    let (mut credited, mut claimed) = (U256::ZERO, U256::ZERO);
    let (mut c, mut k) = (Vec::new(), Vec::new());
    for (block, (cr, cl)) in by_block {
        credited = credited.saturating_add(*cr);
        claimed = claimed.saturating_add(*cl);
        c.push((*block, Open(credited)));
        k.push((*block, Open(claimed)));
    }
    let series = [Series { name: "credited".into(), points: c }, Series { name: "claimed".into(), points: k }];
    line_chart(&Chart { title: "Earnings over time", x_label: "block", y_label: "OPEN (cumulative)" }, &series)
}

/// The address's part of a receipt, when it had that role in it.
fn part(had_role: bool, x: u128) -> Markup {
    if had_role {
        amount(U256::from(x))
    } else {
        html! { span.muted { "—" } }
    }
}

/// One settled receipt in the address's history or in one of its models'.
struct Settled {
    hash: B256,
    block: u64,
    tx: Option<B256>,
    receipt: primitives::abi::SettledReceipt,
}

fn as_owner_and_operator(v: &ChainView, a: &Address, logs: &mut Logs) -> Result<Markup, WebError> {
    let models = v.state().models_of(a).map_err(WebError::unavailable)?;
    let listed = &models[..models.len().min(MAX_MODELS)];
    // Receipt hash → where it was settled, each receipt once: one the address
    // paid or served for its own model is in both histories.
    let mut hashes: Vec<(B256, u64, u32)> = Vec::new();
    let mut seen: HashSet<B256> = HashSet::new();
    let mut each = |block, tx, log: &Log| {
        if let Some(e) = inference_event::<IInference::ReceiptSettled>(log)
            && seen.insert(e.receiptHash)
        {
            hashes.push((e.receiptHash, block, tx));
        }
    };
    let mut budget = MAX_ENTRIES;
    let truncated = walk_logs(v, logs, Subject::Address(*a), &mut budget, &mut each)?;
    let per_model = MAX_MODEL_ENTRIES / listed.len().max(1);
    let mut models_truncated = false;
    for id in listed {
        let mut budget = per_model;
        models_truncated |= walk_logs(v, logs, Subject::Model(id.0), &mut budget, &mut each)?;
    }
    let mut settled = Vec::new();
    for (hash, block, tx) in hashes {
        if let Some(receipt) = v.state().settled_receipt(&hash).map_err(WebError::unavailable)?
            && (receipt.modelOwner == *a || receipt.operator == *a)
        {
            let tx_hash = v.transactions(block)?.get(tx as usize).map(|t| t.hash);
            settled.push((tx, Settled { hash, block, tx: tx_hash, receipt }));
        }
    }
    // Two histories merged: newest first again.
    settled.sort_by(|(ti, s), (tj, t)| (t.block, tj).cmp(&(s.block, ti)));
    let settled: Vec<Settled> = settled.into_iter().map(|(_, s)| s).collect();
    let owner_total: U256 =
        settled.iter().filter(|s| s.receipt.modelOwner == *a).map(|s| U256::from(s.receipt.ownerPart)).sum();
    let serving_total: U256 =
        settled.iter().filter(|s| s.receipt.operator == *a).map(|s| U256::from(s.receipt.servingPart)).sum();
    Ok(html! {
        section aria-labelledby="owner" {
            h2 #owner { "As a model owner" }
            @if models.is_empty() { p.muted { "No model." } }
            @else {
                p { "Models owned: " }
                ul.inline { @for id in listed { li { a href=(model_href(id.0)) { "m" (id.0) } } } }
                p { "Owner parts of the receipts below: " (amount(owner_total)) "." }
                p.muted {
                    "Receipts of these models are read from each model's history, whoever paid and served them"
                    @if models.len() > MAX_MODELS { " (for the first " (MAX_MODELS) " models only)" }
                    "."
                    @if models_truncated {
                        " Only the newest " (per_model) " entries of each model's history were read; older receipts are not counted."
                    }
                }
            }
        }
        section aria-labelledby="serving" {
            h2 #serving { "As a serving operator" }
            p { "Serving parts of the receipts it settled: " (amount(serving_total)) "." }
        }
        @if !settled.is_empty() {
            (table(
                "Settled receipts this address served or earned an owner part of, newest first",
                &["Receipt", "Block", "Model", "Cost", "Owner part", "Serving part"],
                html! {
                @for s in &settled { tr {
                    td { @match &s.tx {
                        Some(h) => (tx_link(h)),
                        None => span.mono { (crate::format::short(&s.hash.to_string())) },
                    } }
                    td { (block_link(s.block)) }
                    td { a href=(model_href(s.receipt.modelId)) { "m" (s.receipt.modelId) } }
                    td.num { (amount(U256::from(s.receipt.cost))) }
                    td.num { (part(s.receipt.modelOwner == *a, s.receipt.ownerPart)) }
                    td.num { (part(s.receipt.operator == *a, s.receipt.servingPart)) }
                } }
            },
            ))
        }
        @if truncated { p.muted { "Only the newest " (MAX_ENTRIES) " entries of this address's history were read." } }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earnings_over_time_are_cumulative_by_block() {
        let one = U256::from(primitives::ONE_OPEN);
        let mut by_block = BTreeMap::new();
        by_block.insert(12, (one, U256::ZERO));
        by_block.insert(5, (U256::from(1u64), U256::ZERO));
        by_block.insert(20, (U256::ZERO, one));
        let html = over_time(&by_block).into_string();
        // The hidden table: credited 0.000000000000000001, then 1.000000000000000001 and kept; claimed 1 at block 20.
        for want in [
            "<td>credited</td><td>5</td><td>0.000000000000000001</td>",
            "<td>credited</td><td>12</td><td>1.000000000000000001</td>",
            "<td>credited</td><td>20</td><td>1.000000000000000001</td>",
            "<td>claimed</td><td>12</td><td>0</td>",
            "<td>claimed</td><td>20</td><td>1</td>",
        ] {
            assert!(html.contains(want), "{want} in {html}");
        }
        assert!(over_time(&BTreeMap::new()).into_string().contains("no data yet"));
    }

    #[test]
    fn a_claimable_contribution_has_a_claim_button() {
        let a = Address::repeat_byte(9);
        let e = |id, claimable: u64| Earned {
            id,
            datanet: 1,
            credited: U256::from(10u64),
            claimable: U256::from(claimable),
            claimed: U256::ZERO,
        };
        let html = contributions(&a, &[e(4, 0), e(5, 3)], &crate::wallet::Writes::default()).into_string();
        assert_eq!(html.matches("class=\"claim\"").count(), 1, "{html}");
        let call = IInference::claimCall { contributionId: 5 }.abi_encode();
        assert!(html.contains(&format!("data-data=\"0x{}\"", hex::encode(call))), "{html}");
        assert!(html.contains(&format!("data-to=\"{:#x}\"", Module::Inference.address())), "{html}");
        assert!(html.contains("id=\"claim-result\" role=\"status\""), "{html}");
        assert!(html.contains("<label for=\"wallet-account\">"), "{html}");
        let none = contributions(&a, &[e(4, 0)], &crate::wallet::Writes::default()).into_string();
        assert!(!none.contains("claim-result") && !none.contains("wallet-account"), "{none}");
    }
}
