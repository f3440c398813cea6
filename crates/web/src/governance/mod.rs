//! The Governance section: proposals (`/governance?before=N&limit=L`, newest
//! first; `/governance/{id}`: state, tallies, voting window and the calls it
//! would make, decoded) and staking (`/validators`: the validator set at the
//! head with its decentralisation figures, uptime and slashes;
//! `/validators/decentralisation`: the Nakamoto coefficient, largest share and
//! Gini of rewards at up to 20 heights, charted; `/validators/{address}`: one
//! operator, its bonds, stakers, unbondings, uptime and slashes).
//!
//! Proposals are read through `runtime::governance::GovernanceRead`, their
//! state derived at the head as the governance contract derives it
//! (`effective_state`); while voting is open a proposal's page has vote
//! buttons (`button.vote-for`, `.vote-against`, `.vote-abstain`,
//! `.vote-veto`) carrying the encoded `castVote` for the browser's wallet
//! ([`crate::actions`]); once it passed (the contract queues it itself when
//! it tallies the vote) a `button.gov-execute` carries `execute`, its outcome
//! in `#gov-result`; stake through `runtime::staking::StakingRead` and the
//! staking contract's views. Every page reads a bounded number of records.

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::routing::get;
use maud::{Markup, html};
use primitives::U256;
use runtime::governance::{self as gov, GovernanceRead, ProposalRecord};
use runtime::params::{self, ParamsRead};

use crate::Web;
use crate::decode::{CallKind, decode_call};
use crate::explorer::{
    NewestFirst, account_link, amount, block_link, call_summary, fields, paragraphs, path_param, summary,
};
use crate::page::{Page, Section, WebError, render, table};
use crate::query;
use crate::view::ChainView;

pub mod decentralisation;
pub mod health;
pub mod validators;

/// Proposals on one page, by default and at most.
pub const PAGE: u64 = 20;
pub const MAX_PAGE: u64 = 100;

/// The section's routes.
pub fn routes() -> Router<Web> {
    Router::new()
        .route("/governance", get(list_handler))
        .route("/governance/{id}", get(handler))
        .route("/validators", get(validators::list_handler))
        .route(decentralisation::href(), get(decentralisation::handler))
        .route("/validators/{address}", get(validators::handler))
}

pub fn href(id: u64) -> String {
    format!("/governance/{id}")
}

/// The section's own links, on each of its pages.
pub fn subnav() -> Markup {
    html! {
        nav aria-label="Governance" { ul.inline {
            li { a href="/governance" { "Proposals" } }
            li { a href="/validators" { "Validators and stake" } }
            li { a href=(decentralisation::href()) { "Decentralisation over time" } }
        } }
    }
}

/// A proposal's state at the head, as the governance contract derives it.
fn state_at_head(v: &ChainView, p: &ProposalRecord) -> Result<u8, WebError> {
    let grace = v.state().param(&params::GOV_GRACE_PERIOD).map_err(WebError::unavailable)?;
    Ok(gov::effective_state(p, v.head().number, u64::try_from(grace).unwrap_or(u64::MAX)))
}

/// A state in words with a symbol (never colour alone).
fn state(s: u8) -> Markup {
    let name = gov::state_name(s);
    match s {
        gov::SUCCEEDED | gov::QUEUED | gov::EXECUTED => html! { span.ok { "✓ " (name) } },
        gov::DEFEATED | gov::VETOED | gov::EXPIRED | gov::CANCELED => html! { span.failed { "✗ " (name) } },
        _ => html! { span { "… " (name) } },
    }
}

/// The first line of a description, shortened to 40 characters.
fn headline(d: &str) -> String {
    query::truncate(d.lines().next().unwrap_or(""))
}

/// `part` of `total` as a percentage with two decimals, from integers.
pub fn percent(part: U256, total: U256) -> String {
    if total.is_zero() {
        return "—".into();
    }
    // In 512 bits: `part × 10 000` never overflows, so the share is exact (rounded down).
    let wide = |x: U256| alloy_primitives::U512::from_limbs_slice(x.as_limbs());
    let bps = (wide(part) * alloy_primitives::U512::from(10_000u64) / wide(total)).saturating_to::<u64>();
    crate::format::bps(bps)
}

async fn list_handler(State(web): State<Web>, RawQuery(q): RawQuery) -> Response {
    render(web, move |v| list(v, q.as_deref())).await
}

fn list(v: &ChainView, q: Option<&str>) -> Result<Page, WebError> {
    let params = query::params(q, &["before", "limit"])?;
    let limit = query::limit(&params, PAGE, MAX_PAGE)?;
    let count = v.state().proposal_count().map_err(WebError::unavailable)?;
    let before = query::optional_number(&params, "before", "proposal id")?;
    let window = NewestFirst::new(count, before, limit);
    let mut rows = Vec::new();
    for id in window.ids() {
        if let Some(p) = v.state().proposal(id).map_err(WebError::unavailable)? {
            let s = state_at_head(v, &p)?;
            rows.push((id, p, s));
        }
    }
    let body = html! {
        (subnav())
        p { (count) " proposals. Holders of stake vote for, against, abstain or veto; a proposal that passes runs its calls on the system contracts after a timelock." }
        @if rows.is_empty() { p.muted { "No proposal here." } }
        @else {
            (table(
                "Proposals, newest first",
                &["Id", "State", "Description", "Voting (blocks)", "For", "Against"],
                html! { @for (id, p, s) in &rows { tr {
                    td { a href=(href(*id)) { "#" (id) } }
                    td { (state(*s)) }
                    td { a href=(href(*id)) { (headline(&p.description)) } }
                    td { (p.voteStart) "–" (p.voteEnd) }
                    td.num { (amount(p.forVotes)) }
                    td.num { (amount(p.againstVotes)) }
                } } },
            ))
        }
        (window.nav(&format!("/governance?limit={limit}&"), "before", "proposals"))
    };
    Ok(Page::new("Governance", Section::Governance, body))
}

async fn handler(State(web): State<Web>, id: Result<Path<String>, PathRejection>, RawQuery(q): RawQuery) -> Response {
    render(web, move |v| {
        query::params(q.as_deref(), &[])?;
        proposal(v, query::number(&path_param(id)?, "proposal id")?)
    })
    .await
}

/// Where the head stands in the voting window, in blocks.
fn window(p: &ProposalRecord, head: u64) -> Markup {
    html! {
        "blocks " (block_link(p.voteStart)) " to " (block_link(p.voteEnd)) " ("
        @if head < p.voteStart { "opens in " (p.voteStart - head) " blocks" }
        @else if head <= p.voteEnd { "open; closes in " (p.voteEnd - head) " blocks" }
        @else { "closed " (head - p.voteEnd) " blocks ago" }
        ")"
    }
}

fn tallies(p: &ProposalRecord) -> Markup {
    let total = p.forVotes.saturating_add(p.againstVotes).saturating_add(p.abstainVotes).saturating_add(p.vetoVotes);
    let rows = [("For", p.forVotes), ("Against", p.againstVotes), ("Abstain", p.abstainVotes), ("Veto", p.vetoVotes)];
    html! {
        div.scroll { table {
            caption { "Votes, weighted by stake" }
            thead { tr { th scope="col" { "Vote" } th scope="col" { "Power" } th scope="col" { "Share of votes cast" } } }
            tbody {
                @for (name, x) in rows { tr { th scope="row" { (name) } td.num { (amount(x)) } td.num { (percent(x, total)) } } }
                tr { th scope="row" { "Total" } td.num { (amount(total)) } td.num { } }
            }
        } }
    }
}

fn proposal(v: &ChainView, id: u64) -> Result<Page, WebError> {
    let p = v
        .state()
        .proposal(id)
        .map_err(WebError::unavailable)?
        .ok_or_else(|| WebError::not_found(format!("there is no proposal {id}")))?;
    let s = state_at_head(v, &p)?;
    let body = html! {
        (subnav())
        (summary(&[
            ("State", state(s)),
            ("Proposer", account_link(&p.proposer)),
            ("Voting", window(&p, v.head().number)),
            ("Executable from", if p.eta > 0 { block_link(p.eta) } else { html! { span.muted { "not queued" } } }),
            ("Deposit", amount(p.deposit)),
        ]))
        h2 { "Description" }
        (paragraphs(&p.description))
        h2 { "Tally" }
        (tallies(&p))
        h2 { "Calls (" (p.targets.len()) ")" }
        (calls(&p))
        @if s == gov::ACTIVE {
            h2 #vote { "Vote" }
            (vote_buttons(v, id))
        }
        @if s == gov::QUEUED {
            h2 #execute { "Execute" }
            (execute_button(v, id, p.eta))
        }
    };
    Ok(Page::new(format!("Proposal #{id}"), Section::Governance, body))
}

/// While voting is open: a button per choice, each carrying the `castVote`
/// call `openledger gov vote` sends, for the browser's wallet.
fn vote_buttons(v: &ChainView, id: u64) -> Markup {
    html! {
        p { "Vote with the stake of your wallet's account (bonded before voting opened); one vote per account." }
        div.actions role="group" aria-label="Your vote" {
            @for (class, label, support) in crate::actions::VOTES {
                (crate::actions::button(None, class, label, &crate::actions::vote(id, support), "vote-result", crate::actions::Then::Reload))
                " "
            }
        }
        p #vote-result role="status" aria-live="polite" {}
        noscript { p.note { "Voting signs with your wallet, which needs a script. Without one: "
            code { "openledger gov vote " (id) " for --from <your address>" } } }
        (crate::actions::scripts(v))
    }
}

/// Once queued (the contract queues a passed proposal itself when it tallies
/// the vote: there is no queue call to send): the `execute` call `openledger
/// gov execute` sends. Shown from the queueing on; before the timelock ends
/// the wallet refuses it with the chain's `TimelockNotExpired`.
fn execute_button(v: &ChainView, id: u64, eta: u64) -> Markup {
    // The transaction lands in the block after the head.
    let next = v.head().number.saturating_add(1);
    html! {
        p { "The proposal passed and is queued. Anyone may execute it from block " (block_link(eta))
            @if next < eta { " (in " (eta - next) " blocks; before then the chain refuses it)" }
            @else { " (now)" }
            ": its calls then run on the system contracts." }
        div.actions role="group" aria-label="Execute the proposal" {
            (crate::actions::button(None, "gov-execute", "Execute", &crate::actions::execute(id), "gov-result", crate::actions::Then::Reload))
        }
        p #gov-result role="status" aria-live="polite" {}
        noscript { p.note { "Executing signs with your wallet, which needs a script. Without one: "
            code { "openledger gov execute " (id) " --from <your address>" } } }
        (crate::actions::scripts(v))
    }
}

/// The proposal's calls, each decoded from its target's interface.
fn calls(p: &ProposalRecord) -> Markup {
    html! {
        ol.logs {
            @for (target, data) in p.targets.iter().zip(&p.calldatas).take(gov::MAX_CALLS) {
                @let kind = decode_call(Some(*target), data);
                li {
                    p { (call_summary(&kind)) " on " (account_link(target)) }
                    @match &kind {
                        CallKind::Decoded(c) => { p.mono.muted { (c.signature) } (fields(&c.args)) },
                        _ => { p { "Calldata that the target's interface does not decode: " (crate::explorer::bytes(data)) } },
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_exact_and_round_down() {
        assert_eq!(percent(U256::from(1u64), U256::from(3u64)), "33.33 %");
        assert_eq!(percent(U256::from(2u64), U256::from(3u64)), "66.66 %");
        assert_eq!(percent(U256::from(5u64), U256::from(5u64)), "100.00 %");
        assert_eq!(percent(U256::ZERO, U256::ZERO), "—");
        assert_eq!(percent(U256::MAX, U256::MAX), "100.00 %");
    }
}
