//! How well validators do their job: uptime (the share of recent commit
//! certificates that carry their precommit signature) and slashes (each
//! slash's evidence as the staking module records it), for the validators
//! list and an operator's page.
//!
//! Uptime is counted over the newest [`UPTIME_WINDOW`] blocks (fewer near
//! genesis or the oldest block this node holds). Every block of a BFT chain
//! carries its parent's commit certificate (`last_commit`, part of the block,
//! so every node counts the same signatures); a validator's uptime is the
//! number of those certificates its signature is in, divided by the number of
//! certificates read, in basis points rounded down. A certificate needs only
//! precommits of more than two thirds of the power, so a validator whose
//! vote came after the proposer had enough counts as missing for that block,
//! as the staking module's downtime tracking counts it too. A validator that
//! joined the set within the window is measured against the whole window. A
//! dev chain's blocks are sealed by one key and carry no certificate: uptime
//! is "n/a (dev sealer)".
//!
//! Slashes are read from the staking module's per-operator list of
//! `SlashRecord`s (every slash, whether a transaction's evidence or the end of
//! a block's downtime check caused it); the "jailed until" of a slash comes
//! from its `Slashed` event when a transaction of the slash's block emitted it.

use std::collections::{HashMap, HashSet};

use alloy_sol_types::SolEvent;
use maud::{Markup, html};
use primitives::abi::IStaking;
use primitives::consensus::CommitCertificate;
use primitives::system::Module;
use primitives::{Address, U256};
use runtime::staking::{SlashRecord, StakingRead};

use crate::explorer::{account_link, amount, block_link, summary};
use crate::page::{WebError, table};
use crate::view::ChainView;

/// Blocks whose carried certificates uptime counts, at most.
pub const UPTIME_WINDOW: u64 = 1_000;
/// Slashes of one operator summed into its total, newest first, at most.
pub const SLASHES_SUMMED: u64 = 100;
/// Slashes an operator's page lists, newest first.
pub const SLASH_ROWS: u64 = 20;

/// Signatures counted over a run of commit certificates.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Uptime {
    /// The oldest and newest certified heights counted.
    pub from: u64,
    pub to: u64,
    /// Certificates counted.
    pub certificates: u64,
    signed: HashMap<Address, u64>,
}

impl Uptime {
    /// Count `certs`: each validator at most once per certificate.
    pub fn count<'a>(certs: impl IntoIterator<Item = &'a CommitCertificate>) -> Uptime {
        let mut u = Uptime { from: u64::MAX, ..Default::default() };
        for c in certs {
            u.certificates += 1;
            u.from = u.from.min(c.height);
            u.to = u.to.max(c.height);
            let signers: HashSet<Address> = c.signatures.iter().map(|s| s.validator).collect();
            for a in signers {
                *u.signed.entry(a).or_default() += 1;
            }
        }
        if u.certificates == 0 {
            u.from = 0;
        }
        u
    }

    /// Certificates `a` signed.
    pub fn signed(&self, a: &Address) -> u64 {
        self.signed.get(a).copied().unwrap_or(0)
    }

    /// `a`'s uptime in basis points, rounded down; `None` with no certificate.
    pub fn bps(&self, a: &Address) -> Option<u64> {
        (self.certificates > 0).then(|| self.signed(a) * 10_000 / self.certificates)
    }
}

/// Uptime over the newest [`UPTIME_WINDOW`] blocks; `None` on a dev chain
/// (its head is not a BFT block).
pub fn uptime(v: &ChainView) -> Result<Option<Uptime>, WebError> {
    let head = v.head().number;
    if !chain::is_bft_header(v.head()) {
        return Ok(None);
    }
    // Block 0 carries nothing; block b carries block b − 1's certificate.
    let lowest = head.saturating_sub(UPTIME_WINDOW - 1).max(v.first_block()?).max(1);
    let mut certs = Vec::new();
    for b in lowest..=head {
        let Some(bytes) = v.state().last_commit(b).map_err(WebError::unavailable)? else { continue };
        // A certificate that does not decode, or names another height, is not counted.
        if let Ok(c) = CommitCertificate::decode(&bytes)
            && c.height + 1 == b
        {
            certs.push(c);
        }
    }
    Ok(Some(Uptime::count(&certs)))
}

/// An uptime cell: the share and the count, or why there is none.
pub fn uptime_cell(u: Option<&Uptime>, a: &Address) -> Markup {
    match u {
        None => html! { span.muted { "n/a (dev sealer)" } },
        Some(u) => match u.bps(a) {
            None => html! { span.muted { "no certificate yet" } },
            Some(bps) => html! {
                span.uptime title=(format!("signed {} of {} certificates", u.signed(a), u.certificates)) {
                    (crate::format::bps(bps))
                }
            },
        },
    }
}

/// How often an operator was slashed and how much it lost.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SlashSummary {
    pub count: u64,
    /// Sum of the newest [`SLASHES_SUMMED`] slashes' amounts.
    pub total: U256,
    /// Whether `total` covers every slash.
    pub complete: bool,
}

/// Sum `records`' amounts, `count` being how many slashes there are in all.
pub fn summarise(count: u64, records: &[SlashRecord]) -> SlashSummary {
    let total = records.iter().fold(U256::ZERO, |a, r| a.saturating_add(r.amount));
    SlashSummary { count, total, complete: records.len() as u64 >= count }
}

/// The newest `limit` slashes of `op`, newest first, with how many there are.
fn newest_slashes(v: &ChainView, op: &Address, limit: u64) -> Result<(u64, Vec<SlashRecord>), WebError> {
    let count = v.state().slash_count(op).map_err(WebError::unavailable)?;
    let mut page = v.state().slashes_page(op, count.saturating_sub(limit), limit).map_err(WebError::unavailable)?;
    page.reverse();
    Ok((count, page))
}

pub fn slash_summary(v: &ChainView, op: &Address) -> Result<SlashSummary, WebError> {
    let (count, records) = newest_slashes(v, op, SLASHES_SUMMED)?;
    Ok(summarise(count, &records))
}

fn slash_cells(s: &SlashSummary) -> Markup {
    html! {
        td.num { (s.count) }
        td.num {
            @if s.count == 0 { span.muted { "—" } }
            @else {
                (amount(s.total))
                @if !s.complete { " " span.muted { "(newest " (SLASHES_SUMMED) ")" } }
            }
        }
    }
}

/// The validators list's "Uptime and slashes" table, one row per operator.
pub fn validators_table(v: &ChainView, operators: &[Address]) -> Result<Markup, WebError> {
    let u = uptime(v)?;
    let mut rows = Vec::with_capacity(operators.len());
    for a in operators {
        rows.push((a, slash_summary(v, a)?));
    }
    Ok(html! {
        h2 { "Uptime and slashes" }
        p.muted { (uptime_scope(u.as_ref())) }
        @if !rows.is_empty() {
            (table(
                "Uptime and slashes of the validators",
                &["Operator", "Uptime", "Slashes", "Slashed in total"],
                html! { @for (a, s) in &rows { tr {
                    td { a.mono href=(super::validators::href(a)) title=(a.to_checksum(None)) { (crate::format::short(&a.to_checksum(None))) } }
                    td.num { (uptime_cell(u.as_ref(), a)) }
                    (slash_cells(s))
                } } },
            ))
        }
    })
}

/// What the uptime figures cover, in words.
fn uptime_scope(u: Option<&Uptime>) -> Markup {
    match u {
        None => html! { "Uptime: n/a on this chain: a dev sealer's blocks carry no commit certificates." },
        Some(u) if u.certificates == 0 => html! { "Uptime: no block carries a commit certificate yet." },
        Some(u) => html! {
            "Uptime: the share of the commit certificates of blocks #" (u.from) " to #" (u.to) " ("
            (u.certificates) ", the newest within " (UPTIME_WINDOW) " blocks) that carry the validator's signature, rounded down."
        },
    }
}

/// The `Slashed` event of `op` for `r`, if a transaction of the slash's block emitted it.
fn slashed_event(v: &ChainView, op: &Address, r: &SlashRecord) -> Result<Option<IStaking::Slashed>, WebError> {
    let staking = Module::Staking.address();
    for receipt in v.receipts(r.height)? {
        for log in &receipt.logs {
            if log.address != staking {
                continue;
            }
            if let Ok(e) = IStaking::Slashed::decode_log_data(&log.data)
                && e.operator == *op
                && e.amount == r.amount
                && e.fractionPpm == r.fractionPpm
            {
                return Ok(Some(e));
            }
        }
    }
    Ok(None)
}

/// A fraction in parts per million as a percentage, exactly (`12.3456 %`).
fn ppm(p: u32) -> String {
    format!("{}.{:04} %", p / 10_000, p % 10_000)
}

/// The operator page's "Uptime and slashes" section.
pub fn operator_section(v: &ChainView, op: &Address) -> Result<Markup, WebError> {
    let u = uptime(v)?;
    let (count, newest) = newest_slashes(v, op, SLASHES_SUMMED)?;
    let s = summarise(count, &newest);
    let mut rows = Vec::new();
    for r in newest.iter().take(SLASH_ROWS as usize) {
        rows.push((r, slashed_event(v, op, r)?.map(|e| e.jailedUntil)));
    }
    Ok(html! {
        h2 { "Uptime and slashes" }
        (summary(&[
            ("Uptime", html! {
                (uptime_cell(u.as_ref(), op))
                @if let Some(u) = u.as_ref().filter(|u| u.certificates > 0) {
                    " " span.muted { "(signed " (u.signed(op)) " of the " (u.certificates) " certificates of blocks #" (u.from) " to #" (u.to) ")" }
                }
            }),
            ("Slashes", html! { (s.count) }),
            ("Slashed in total", html! {
                (amount(s.total))
                @if !s.complete { " " span.muted { "(the newest " (SLASHES_SUMMED) " slashes)" } }
            }),
        ]))
        @if !rows.is_empty() {
            @if count > SLASH_ROWS { p.muted { "The newest " (SLASH_ROWS) " of " (count) " slashes." } }
            (table(
                "Slashes of this operator, newest first",
                &["Block", "Amount", "Fraction", "Reason", "Reporter", "Jailed until"],
                html! { @for (r, jailed) in &rows { tr {
                    td { (block_link(r.height)) }
                    td.num { (amount(r.amount)) }
                    td.num { (ppm(r.fractionPpm)) }
                    td { (r.reason) }
                    td { @if r.reporter == Address::ZERO { span.muted { "the chain (downtime)" } } @else { (account_link(&r.reporter)) } }
                    td { @match jailed {
                        Some(0) => span.muted { "not jailed" },
                        Some(h) => (block_link(*h)),
                        None => span.muted { "—" },
                    } }
                } } },
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use primitives::B256;
    use primitives::consensus::CommitSignature;

    fn cert(height: u64, signers: &[u8]) -> CommitCertificate {
        CommitCertificate {
            height,
            round: 0,
            block_hash: B256::ZERO,
            signatures: signers
                .iter()
                .map(|s| CommitSignature { validator: Address::repeat_byte(*s), signature: [0; 64] })
                .collect(),
        }
    }

    #[test]
    fn uptime_counts_each_validator_once_per_certificate() {
        let certs = [cert(5, &[1, 2, 3]), cert(6, &[1, 2]), cert(7, &[1, 1, 3])];
        let u = Uptime::count(&certs);
        assert_eq!((u.from, u.to, u.certificates), (5, 7, 3));
        let a = |b| Address::repeat_byte(b);
        assert_eq!([u.signed(&a(1)), u.signed(&a(2)), u.signed(&a(3)), u.signed(&a(4))], [3, 2, 2, 0]);
        // 2 of 3 is 66.66 %, rounded down.
        assert_eq!([u.bps(&a(1)), u.bps(&a(2)), u.bps(&a(4))], [Some(10_000), Some(6_666), Some(0)]);
        let none = Uptime::count(&[]);
        assert_eq!((none.from, none.to, none.certificates, none.bps(&a(1))), (0, 0, 0, None));
    }

    #[test]
    fn slash_summary_sums_and_says_when_it_is_partial() {
        let r = |amount: u64| SlashRecord {
            height: 1,
            fractionPpm: 10_000,
            amount: U256::from(amount),
            reason: "downtime".into(),
            reporter: Address::ZERO,
        };
        assert_eq!(summarise(0, &[]), SlashSummary { count: 0, total: U256::ZERO, complete: true });
        assert_eq!(summarise(2, &[r(5), r(7)]), SlashSummary { count: 2, total: U256::from(12u64), complete: true });
        assert!(!summarise(3, &[r(5), r(7)]).complete);
        assert_eq!(ppm(10_000), "1.0000 %");
        assert_eq!(ppm(1_000_000), "100.0000 %");
        assert_eq!(ppm(5), "0.0005 %");
    }
}
