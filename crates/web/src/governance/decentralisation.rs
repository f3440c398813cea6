//! How spread out a validator set's power and rewards are, computed exactly
//! with integers: the Nakamoto coefficient (the fewest validators that
//! together hold more than a third of the power, enough to halt a BFT chain),
//! the largest single share, and the Gini coefficient (0 when every value is
//! equal, `(n - 1) / n` when one of `n` holds everything).

use alloy_primitives::U512;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use chain::HistoricState;
use maud::html;
use primitives::U256;
use runtime::staking::{StakingRead, ValidatorSetRecord};

use super::subnav;
use crate::Web;
use crate::chart::{Chart, Series, line_chart};
use crate::explorer::block_link;
use crate::page::{Page, Section, WebError, render, table};
use crate::query;
use crate::view::ChainView;

/// Heights the page samples, at most.
pub const SAMPLES: u64 = 20;
/// Operator records the page reads from past states for the Gini of
/// rewards, at most (each a read of a past version of the state tree).
pub const MAX_HISTORIC_READS: usize = 400;

pub fn href() -> &'static str {
    "/validators/decentralisation"
}

/// The fewest validators whose powers sum to more than a third of the total
/// (`3 × sum > total`, exact: sums in 512 bits never overflow); 0 for an
/// empty or powerless set.
pub fn nakamoto_coefficient(powers: &[U256]) -> usize {
    let wide = |p: &U256| U512::from_limbs_slice(p.as_limbs());
    let total = powers.iter().map(wide).fold(U512::ZERO, |a, p| a + p);
    if total.is_zero() {
        return 0;
    }
    let mut sorted: Vec<U512> = powers.iter().map(wide).collect();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    let three = U512::from(3u64);
    let mut sum = U512::ZERO;
    for (i, p) in sorted.iter().enumerate() {
        sum += *p;
        if sum * three > total {
            return i + 1;
        }
    }
    sorted.len()
}

/// The largest single power (its share of the total is the most one validator holds).
pub fn largest(powers: &[U256]) -> Option<U256> {
    powers.iter().max().copied()
}

/// An exact non-negative fraction `num / den` (`den > 0`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fraction {
    pub num: U512,
    pub den: U512,
}

impl Fraction {
    /// The fraction in ten-thousandths, rounded down (integer division).
    pub fn ten_thousandths(&self) -> u64 {
        (self.num * U512::from(10_000u64) / self.den).saturating_to::<u64>()
    }

    /// `0.1234`: four decimals, rounded down.
    pub fn decimal(&self) -> String {
        let t = self.ten_thousandths();
        format!("{}.{:04}", t / 10_000, t % 10_000)
    }
}

/// The Gini coefficient of `values`: the mean absolute difference over all
/// ordered pairs divided by twice the mean, `Σᵢ Σⱼ |xᵢ − xⱼ| / (2 n Σ x)`.
///
/// Computed exactly: with the values sorted ascending (index `i` from 0) the
/// double sum is `2 Σᵢ (2i + 1 − n) xᵢ`, so the coefficient is
/// `Σᵢ (2i + 1 − n) xᵢ / (n Σ x)`; positive and negative terms are summed
/// apart in 512 bits, which never overflow for fewer than 2³² values of 256
/// bits. `None` for no values or a zero sum (the measure is undefined).
pub fn gini(values: &[U256]) -> Option<Fraction> {
    let n = values.len();
    let wide = |p: &U256| U512::from_limbs_slice(p.as_limbs());
    let mut sorted: Vec<U512> = values.iter().map(wide).collect();
    sorted.sort_unstable();
    let total = sorted.iter().fold(U512::ZERO, |a, x| a + x);
    if n == 0 || total.is_zero() {
        return None;
    }
    let (mut above, mut below) = (U512::ZERO, U512::ZERO);
    for (i, x) in sorted.iter().enumerate() {
        // Weight 2i + 1 − n, split by sign (usize arithmetic: 2i + 1 ≤ 2n − 1).
        let up = 2 * i + 1;
        if up > n {
            above += U512::from(up - n) * x;
        } else {
            below += U512::from(n - up) * x;
        }
    }
    // Sorted ascending, the weighted sum is never negative.
    Some(Fraction { num: above - below, den: U512::from(n) * total })
}

/// Up to `max` heights spread evenly over `first..=last`, ascending, always
/// ending at `last` (integer steps; fewer when the range is shorter).
pub fn sample_heights(first: u64, last: u64, max: u64) -> Vec<u64> {
    if max == 0 || first > last {
        return Vec::new();
    }
    let span = last - first;
    let steps = max.saturating_sub(1).min(span);
    if steps == 0 {
        return vec![last];
    }
    // first + span × k / steps for k = 0..=steps, in 128 bits.
    (0..=steps).map(|k| first + (u128::from(span) * u128::from(k) / u128::from(steps)) as u64).collect()
}

/// One sampled height's figures.
struct Sample {
    height: u64,
    validators: usize,
    nakamoto: usize,
    /// The largest power's share of the total, in basis points (rounded down).
    largest_bps: Option<u64>,
    /// The Gini of the validators' unclaimed rewards, when that state is kept.
    gini: Option<Fraction>,
}

fn wide(x: U256) -> U512 {
    U512::from_limbs_slice(x.as_limbs())
}

fn largest_bps(set: &ValidatorSetRecord) -> Option<u64> {
    let total = set.powers.iter().fold(U512::ZERO, |a, p| a + wide(*p));
    let top = largest(&set.powers)?;
    (!total.is_zero()).then(|| (wide(top) * U512::from(10_000u64) / total).saturating_to::<u64>())
}

/// The Gini of the unclaimed rewards of `set`'s operators in state `st`.
fn rewards_gini(st: &dyn storage::StateRead, set: &ValidatorSetRecord) -> Result<Option<Fraction>, WebError> {
    let mut rewards = Vec::with_capacity(set.operators.len());
    for a in &set.operators {
        rewards.push(st.operator(a).map_err(WebError::unavailable)?.map(|o| o.rewards).unwrap_or_default());
    }
    Ok(gini(&rewards))
}

pub async fn handler(State(web): State<Web>, RawQuery(q): RawQuery) -> Response {
    render(web, move |v| {
        query::params(q.as_deref(), &[])?;
        page(v)
    })
    .await
}

fn page(v: &ChainView) -> Result<Page, WebError> {
    let head = v.head().number;
    let first = v.first_block()?;
    // State older than this is pruned: the Gini of rewards is not known there.
    let oldest_state = v.state().oldest_state().map_err(WebError::unavailable)?;
    let mut samples = Vec::new();
    let mut historic_reads = 0;
    // Newest first, so that the read budget goes to the recent past.
    for h in sample_heights(first, head, SAMPLES).into_iter().rev() {
        // Past sets are snapshots the head's state still holds, never rewritten.
        let set = v.state().validator_set_at(h).map_err(WebError::unavailable)?;
        let gini = if h == head {
            rewards_gini(v.state(), &set)?
        } else if h >= oldest_state && historic_reads + set.operators.len() <= MAX_HISTORIC_READS {
            historic_reads += set.operators.len();
            rewards_gini(&HistoricState { snap: v.state(), version: h }, &set)?
        } else {
            None
        };
        samples.push(Sample {
            height: h,
            validators: set.operators.len(),
            nakamoto: nakamoto_coefficient(&set.powers),
            largest_bps: largest_bps(&set),
            gini,
        });
    }
    samples.reverse();
    let now = samples.last();
    // The charts place points approximately; the table below them is exact.
    let nakamoto_points: Vec<(u64, f64)> = samples.iter().map(|s| (s.height, s.nakamoto as f64)).collect();
    let share_points: Vec<(u64, f64)> =
        samples.iter().filter_map(|s| Some((s.height, s.largest_bps? as f64 / 10_000.0))).collect();
    let gini_points: Vec<(u64, f64)> =
        samples.iter().filter_map(|s| Some((s.height, s.gini?.ten_thousandths() as f64 / 10_000.0))).collect();
    let body = html! {
        (subnav())
        p {
            "How concentrated the validator set is (the set in force at each height), at up to " (SAMPLES) " heights spread evenly from block #"
            (first) " to the head (#" (head) "). Every figure is computed with integers:"
        }
        ul {
            li { strong { "Nakamoto coefficient" } ": the fewest validators whose power together is more than a third of the set's power (enough to halt the chain)." }
            li { strong { "Largest share" } ": the largest single validator's power over the total, rounded down to 0.01 %." }
            li {
                strong { "Gini of rewards" } ": the Gini coefficient of the validators' unclaimed rewards (each operator's commission and self-bond rewards the staking module holds for it, before it claims them), "
                "Σᵢ Σⱼ |xᵢ − xⱼ| / (2 n Σ x) over the set's n operators: 0 when all hold the same, (n − 1)/n when one holds all. "
                "Shown to 4 digits, rounded down; a claim resets an operator's figure, so it measures how rewards accumulate between claims. "
                "Known only where this node keeps the state (from block #" (oldest_state) ") and within a bounded number of reads."
            }
        }
        @if let Some(s) = now {
            p { "At the head: Nakamoto coefficient " strong { (s.nakamoto) } ", largest share "
                @match s.largest_bps { Some(b) => (crate::format::bps(b)), None => "—" }
                ", Gini of rewards "
                @match &s.gini { Some(g) => (g.decimal()), None => "— (no rewards yet)" } "." }
        }
        h2 { "Nakamoto coefficient over time" }
        (line_chart(&Chart { title: "Nakamoto coefficient", x_label: "block", y_label: "validators" },
            &[Series { name: "Nakamoto coefficient".into(), points: nakamoto_points }]))
        h2 { "Largest share and Gini of rewards over time" }
        (line_chart(&Chart { title: "Largest share and Gini of rewards", x_label: "block", y_label: "fraction (0 to 1)" },
            &[Series { name: "largest share".into(), points: share_points },
              Series { name: "Gini of rewards".into(), points: gini_points }]))
        h2 { "Samples" }
        (table(
            "Decentralisation at each sampled height",
            &["Block", "Validators", "Nakamoto coefficient", "Largest share", "Gini of rewards"],
            html! { @for s in &samples { tr {
                td { (block_link(s.height)) }
                td.num { (s.validators) }
                td.num { (s.nakamoto) }
                td.num { @match s.largest_bps { Some(b) => (crate::format::bps(b)), None => "—" } }
                td.num { @match &s.gini { Some(g) => (g.decimal()), None => span.muted { "—" } } }
            } } },
        ))
    };
    Ok(Page::new("Decentralisation over time", Section::Governance, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(xs: &[u64]) -> Option<(u64, u64)> {
        gini(&xs.iter().map(|x| U256::from(*x)).collect::<Vec<_>>())
            .map(|f| (f.num.saturating_to::<u64>(), f.den.saturating_to::<u64>()))
    }

    #[test]
    fn gini_exact_on_hand_computed_cases() {
        assert_eq!(g(&[]), None);
        assert_eq!(g(&[0, 0, 0]), None);
        // All equal: 0.
        assert_eq!(g(&[7, 7, 7, 7]).map(|(n, _)| n), Some(0));
        assert_eq!(g(&[5]).map(|(n, _)| n), Some(0));
        // One holds all of n: (n − 1) / n, here (n − 1) x / (n x).
        assert_eq!(g(&[0, 0, 0, 10]), Some((30, 40)));
        assert_eq!(g(&[9, 0]), Some((9, 18)));
        // 1, 2, 3: Σ|xi − xj| over ordered pairs = 8, 2 n Σx = 36: 8/36 = 4/18.
        assert_eq!(g(&[3, 1, 2]), Some((4, 18)));
        // 1, 3: |1 − 3| × 2 / (2 × 2 × 4) = 4/16 = 2/8.
        assert_eq!(g(&[1, 3]), Some((2, 8)));
        let f = gini(&[U256::ZERO, U256::ZERO, U256::from(1u64)]).unwrap();
        assert_eq!(f.decimal(), "0.6666");
        assert_eq!(gini(&[U256::from(4u64); 3]).unwrap().decimal(), "0.0000");
        assert_eq!(gini(&[U256::ZERO, U256::MAX]).unwrap().decimal(), "0.5000");
        // Huge values do not overflow.
        assert_eq!(gini(&[U256::MAX, U256::MAX, U256::MAX]).unwrap().ten_thousandths(), 0);
    }

    #[test]
    fn sample_heights_spread_evenly_and_end_at_the_last() {
        assert_eq!(sample_heights(0, 0, 20), vec![0]);
        assert_eq!(sample_heights(5, 4, 20), Vec::<u64>::new());
        assert_eq!(sample_heights(0, 3, 20), vec![0, 1, 2, 3]);
        assert_eq!(sample_heights(0, 100, 5), vec![0, 25, 50, 75, 100]);
        assert_eq!(sample_heights(10, 20, 1), vec![20]);
        let s = sample_heights(1, 10_000, 20);
        assert_eq!((s.len(), s[0], s[19]), (20, 1, 10_000));
        assert!(s.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(sample_heights(0, u64::MAX, 3), vec![0, u64::MAX / 2, u64::MAX]);
    }

    fn n(xs: &[u64]) -> usize {
        nakamoto_coefficient(&xs.iter().map(|x| U256::from(*x)).collect::<Vec<_>>())
    }

    #[test]
    fn the_fewest_validators_holding_more_than_a_third() {
        assert_eq!(n(&[]), 0);
        assert_eq!(n(&[0, 0]), 0);
        assert_eq!(n(&[1000]), 1);
        // Exactly a third is not more than a third.
        assert_eq!(n(&[1, 1, 1]), 2);
        assert_eq!(n(&[34, 33, 33]), 1);
        assert_eq!(n(&[33, 33, 34]), 1);
        assert_eq!(n(&[10; 10]), 4);
        assert_eq!(n(&[10, 10, 10, 10, 10, 10, 10, 10, 10, 11]), 4);
        // Order does not matter and huge powers do not overflow.
        assert_eq!(nakamoto_coefficient(&[U256::MAX, U256::MAX, U256::MAX]), 2);
        assert_eq!(nakamoto_coefficient(&[U256::from(1u64), U256::MAX]), 1);
    }
}
