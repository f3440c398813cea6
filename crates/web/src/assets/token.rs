//! One share token (`/assets/{n}`): its model and owner, supplies, its
//! holders, the price history of its pool, and the model's licence offers.
//!
//! Holders and prices come from the history index, where a contract's own
//! logs are filed under it (`ROLE_EMITTER`): the token's `Transfer`s name
//! every address that ever held shares, the pool's `Sync`s are its reserves
//! after each trade. A page reads at most [`MAX_TRANSFERS`] transfers and
//! [`MAX_SYNCS`] reserve updates, newest first, so its work does not grow
//! with the chain; it says when there were more.

use std::collections::{BTreeMap, BTreeSet};

use alloy_sol_types::SolEvent;
use maud::{Markup, html};
use primitives::abi::{IInference, IShareToken, LicenceOffer};
use primitives::history::{MAX_HISTORY_PAGE, ROLE_EMITTER, Subject};
use primitives::system::{Module, share_token_address};
use primitives::{Address, U256};
use runtime::assets::{AssetsRead, KIND_MODEL, asset_parts, view::pending};

use super::{asset_cell, pool, price};
use crate::chart::{Chart, Open, Series, line_chart};
use crate::explorer::{account_link, amount, block_link, summary};
use crate::format;
use crate::page::{Page, Section, WebError, table};
use crate::view::ChainView;

/// Transfers a page reads to find holders, at most.
pub const MAX_TRANSFERS: usize = 1_000;
/// Reserve updates a page reads for the price history, at most.
pub const MAX_SYNCS: usize = 500;
/// Holders a page lists, at most (the largest first).
pub const MAX_HOLDERS: usize = 25;

alloy_sol_types::sol! {
    event Sync(uint112 reserve0, uint112 reserve1);
}

/// The logs `contract` emitted, newest first, up to `max`: (block, log).
/// Whether there were more is the second value.
fn emitted(v: &ChainView, contract: Address, max: usize) -> Result<(Vec<(u64, primitives::Log)>, bool), WebError> {
    let subject = Subject::Address(contract);
    let mut out = Vec::new();
    let mut receipts: BTreeMap<u64, Vec<primitives::block::Receipt>> = BTreeMap::new();
    let mut before = None;
    loop {
        let page = v.history(&subject, before, MAX_HISTORY_PAGE)?;
        for e in &page.entries {
            if e.roles & ROLE_EMITTER == 0 {
                continue;
            }
            let Some(li) = e.log_index else { continue };
            if out.len() == max {
                return Ok((out, true));
            }
            if let std::collections::btree_map::Entry::Vacant(slot) = receipts.entry(e.block) {
                slot.insert(v.receipts(e.block)?);
            }
            let log = receipts[&e.block].get(e.tx_index as usize).and_then(|r| r.logs.get(li as usize)).cloned();
            if let Some(log) = log {
                out.push((e.block, log));
            }
        }
        match page.next {
            Some(c) => before = Some(c),
            None => return Ok((out, false)),
        }
    }
}

/// Share amounts: like OPEN amounts (18 decimals), with the token's symbol.
fn shares(x: U256, symbol: &str) -> Markup {
    html! { span.amount title=(format!("{x} base units")) { (format::open(x)) " " (symbol) } }
}

pub fn page(v: &ChainView, n: u32) -> Result<Page, WebError> {
    let state = v.state();
    let t = state
        .share_token(n)
        .map_err(WebError::unavailable)?
        .ok_or_else(|| WebError::not_found(format!("there is no share token {n}")))?;
    let token = share_token_address(n);
    let owner = v.call(Module::Assets, &primitives::abi::IAssets::ownerOfCall { tokenId: t.assetId })?.ok();
    let pool = pool(v, token)?;

    // Holders: every address a transfer named, with its balance now.
    let (transfers, more_transfers) = emitted(v, token, MAX_TRANSFERS)?;
    let mut seen = BTreeSet::new();
    for (_, log) in &transfers {
        if let Ok(e) = IShareToken::Transfer::decode_log_data(&log.data) {
            seen.extend([e.from, e.to].into_iter().filter(|a| *a != Address::ZERO));
        }
    }
    let mut holders = Vec::new();
    for a in seen {
        let h = state.holder(n, &a).map_err(WebError::unavailable)?;
        if !h.balance.is_zero() {
            holders.push((a, h.balance, h.owed + pending(&t, &h), h.earning));
        }
    }
    let holder_count = holders.len();
    holders.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
    holders.truncate(MAX_HOLDERS);

    // Price history: the pool's reserves after each trade, oldest first.
    let mut points = Vec::new();
    let mut more_syncs = false;
    if let Some((pair, _, _)) = pool {
        let t0 = v.call_at(pair, &super::token0Call {})?.ok();
        let (syncs, more) = emitted(v, pair, MAX_SYNCS)?;
        more_syncs = more;
        for (block, log) in syncs.iter().rev() {
            if let Ok(s) = Sync::decode_log_data(&log.data) {
                let (r0, r1) = (U256::from(s.reserve0), U256::from(s.reserve1));
                let (sh, open) = if t0 == Some(token) { (r0, r1) } else { (r1, r0) };
                if let Some(p) = price(sh, open) {
                    points.push((*block, Open(p)));
                }
            }
        }
    }

    // Licences of the model.
    let mut offers: Vec<(u64, LicenceOffer)> = Vec::new();
    if let Some((KIND_MODEL, model)) = asset_parts(t.assetId) {
        let ids = v.call(Module::Inference, &IInference::licenceOffersCall { modelId: model })?.unwrap_or_default();
        for id in ids {
            if let Ok(o) = v.call(Module::Inference, &IInference::licenceOfferCall { offerId: id })? {
                offers.push((id, o));
            }
        }
    }

    let sym = t.symbol.clone();
    let body = html! {
        (summary(&[
            ("Token", html! { (account_link(&token)) " " span.muted { (sym) } }),
            ("Asset", asset_cell(&t)),
            ("Owner of the asset", match owner { Some(o) => account_link(&o), None => html! { span.muted { "—" } } }),
            ("Total supply", shares(t.totalSupply, &sym)),
            ("Earning supply", shares(t.earningSupply, &sym)),
            ("Held for holders", amount(t.held)),
            ("Pool", match pool {
                Some((p, s, o)) => html! { (account_link(&p)) " " span.muted { (format::open(s)) " " (sym) ", " (format::open(o)) " OPEN" } },
                None => html! { span.muted { "no pool in the dev market" } },
            }),
            ("Price", match pool.and_then(|(_, s, o)| price(s, o)) {
                Some(p) => html! { (amount(p)) " per share" },
                None => html! { span.muted { "—" } },
            }),
        ]))
        h2 { "Holders" }
        @if holders.is_empty() { p.muted { "No holder found among the token's transfers." } }
        @else {
            p.muted {
                (holder_count) " holders"
                @if more_transfers { " among the addresses of the latest " (MAX_TRANSFERS) " transfers" }
                @if holder_count > MAX_HOLDERS { "; the " (MAX_HOLDERS) " largest:" } @else { ":" }
            }
            (table("Holders", &["Holder", "Shares", "Share of supply", "Earned, not claimed", "Earns"], html! {
                @for (a, bal, earned, earns) in &holders {
                    tr {
                        td { (account_link(a)) }
                        td.num { (shares(*bal, &sym)) }
                        td.num { (format::bps((*bal * U256::from(10_000u64) / t.totalSupply.max(U256::from(1u64))).saturating_to::<u64>())) }
                        td.num { (amount(*earned)) }
                        td { @if *earns { "yes" } @else { span.muted { "no (a contract that has not opted in)" } } }
                    }
                }
            }))
        }
        h2 { "Price history" }
        @if more_syncs { p.muted { "The latest " (MAX_SYNCS) " trades of the pool." } }
        (line_chart(&Chart { title: "Price per share", x_label: "block", y_label: "OPEN per share" }, &[Series { name: "price".into(), points: points.clone() }]))
        @if let Some((b, _)) = points.last() { p.muted { "Last trade in block " (block_link(*b)) "." } }
        h2 { "Licences" }
        @if offers.is_empty() { p.muted { "The model offers no licences (openledger licence offer)." } }
        @else {
            (table("Licence offers", &["Offer", "Price", "Duration (blocks)", "Tokens", "Use"], html! {
                @for (id, o) in &offers {
                    tr {
                        td { (id) }
                        td.num { (amount(U256::from(o.price))) }
                        td.num { @if o.durationBlocks == 0 { span.muted { "no bound" } } @else { (o.durationBlocks) } }
                        td.num { @if o.tokens == 0 { span.muted { "no bound" } } @else { (o.tokens) } }
                        td { @if o.commercial { "commercial" } @else { "non-commercial" } }
                    }
                }
            }))
        }
    };
    Ok(Page { title: format!("Share token {n} ({})", t.symbol), section: Section::Assets, body, refresh: None })
}
