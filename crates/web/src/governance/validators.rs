//! Staking: the validator set at the head (`/validators`) with each
//! validator's power, stake, commission and standing, and how concentrated
//! the power is; one operator (`/validators/{address}?offset=O&limit=L`): its
//! bonds, a page of its stakers with their stake, rewards and unbondings.
//!
//! Staking from the browser: the operator page's form (`#stake-amount`, in
//! OPEN) leads to the same page with `?amount=A`, which carries the calls the
//! CLI sends for that amount (`button.stake-delegate`: `bond(operator)` with
//! the amount as value; `button.stake-undelegate`: `unbond(operator,
//! amount)`); `button.stake-claim` (`claimRewards(operator)`) needs no amount.
//! Their outcome goes to `#stake-result`. An amount that is not a positive
//! decimal of at most 18 decimals is a 400 page.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use maud::{Markup, html};
use primitives::abi::IStaking;
use primitives::system::Module;
use primitives::{Address, Amount, U256};
use runtime::staking::{OperatorRecord, ROLE_SERVING, ROLE_VALIDATOR, StakingRead};

use super::decentralisation::{largest, nakamoto_coefficient};
use super::{percent, subnav};
use crate::Web;
use crate::explorer::{account_link, amount, block_link, pager, path_param, summary};
use crate::page::{Page, Section, WebError, render, table};
use crate::query;
use crate::view::ChainView;

/// Stakers one operator page lists, by default and at most.
pub const STAKERS: u64 = 25;
pub const MAX_STAKERS: u64 = 50;

pub fn href(a: &Address) -> String {
    format!("/validators/{a:#x}")
}

fn operator(v: &ChainView, a: &Address) -> Result<Option<OperatorRecord>, WebError> {
    v.state().operator(a).map_err(WebError::unavailable)
}

/// Commission in basis points as a percentage, exactly.
fn commission(bps: u16) -> String {
    crate::format::bps(u64::from(bps))
}

/// An operator's standing, in words with a symbol.
fn standing(v: &ChainView, a: &Address, o: &OperatorRecord) -> Result<Markup, WebError> {
    use runtime::params::ParamsRead;
    let tombstoned = v.state().tombstoned(a).map_err(WebError::unavailable)?;
    let min = v.state().param(&runtime::staking::params::STAKING_MIN_SELF_BOND).map_err(WebError::unavailable)?;
    // What the chain asks of an active operator (a slash can leave it short).
    let short = o.selfBond < primitives::U256::from(min);
    Ok(html! {
        @if tombstoned { span.failed { "☠ tombstoned" } }
        @else if o.jailed { span.failed { "✗ jailed" } " until " (block_link(o.jailedUntil)) }
        @else if short {
            span.failed { "✗ inactive" } ": its self bond is below the minimum of "
            (crate::format::open(primitives::U256::from(min))) " OPEN"
        }
        @else { span.ok { "✓ active" } }
    })
}

pub async fn list_handler(State(web): State<Web>, RawQuery(q): RawQuery) -> Response {
    render(web, move |v| {
        query::params(q.as_deref(), &[])?;
        list(v)
    })
    .await
}

fn list(v: &ChainView) -> Result<Page, WebError> {
    let head = v.head().number;
    let set = v.state().validator_set_at(head).map_err(WebError::unavailable)?;
    let total = set.powers.iter().fold(U256::ZERO, |a, p| a.saturating_add(*p));
    let mut rows = Vec::new();
    for (a, power) in set.operators.iter().zip(&set.powers) {
        let o =
            operator(v, a)?.ok_or_else(|| WebError::unavailable(format!("validator {a} has no operator record")))?;
        let s = standing(v, a, &o)?;
        rows.push((a, *power, o, s));
    }
    let coefficient = nakamoto_coefficient(&set.powers);
    let body = html! {
        (subnav())
        p { "The validator set that decides the block after the head (#" (head) "): " (set.operators.len()) " validators." }
        h2 { "Decentralisation" }
        (summary(&[
            ("Nakamoto coefficient", html! { strong { (coefficient) } " " span.muted { "(the fewest validators holding more than a third of the power, enough to halt the chain)" } }),
            ("Total power", amount(total)),
            ("Largest validator", html! { (percent(largest(&set.powers).unwrap_or_default(), total)) " of the power" }),
        ]))
        h2 { "Validators" }
        @if rows.is_empty() { p.muted { "The set is empty." } }
        @else {
            (table(
                "Validators by position in the set",
                &["Operator", "Power", "Share", "Self bond", "Delegated", "Commission", "Standing"],
                html! { @for (a, power, o, s) in &rows { tr {
                    td { a.mono href=(href(a)) title=(a.to_checksum(None)) { (crate::format::short(&a.to_checksum(None))) } }
                    td.num { (amount(*power)) }
                    td.num { (percent(*power, total)) }
                    td.num { (amount(o.selfBond)) }
                    td.num { (amount(o.delegated)) }
                    td.num { (commission(o.commissionBps)) }
                    td { (s) }
                } } },
            ))
        }
        (super::health::validators_table(v, &set.operators)?)
    };
    Ok(Page::new("Validators and stake", Section::Governance, body))
}

pub async fn handler(
    State(web): State<Web>,
    a: Result<Path<String>, PathRejection>,
    RawQuery(q): RawQuery,
) -> Response {
    render(web, move |v| {
        let params = query::params(q.as_deref(), &["offset", "limit", "amount"])?;
        let limit = query::limit(&params, STAKERS, MAX_STAKERS)?;
        let offset = query::optional_number(&params, "offset", "offset")?.unwrap_or(0);
        let amount = query::get(&params, "amount").map(stake_amount).transpose()?;
        operator_page(v, query::address(&path_param(a)?)?, offset, limit, amount)
    })
    .await
}

/// An amount of OPEN to stake or unstake, exactly: a positive decimal with at
/// most 18 decimals (the CLI's parser), never a float.
pub fn stake_amount(s: &str) -> Result<Amount, WebError> {
    let a: Amount = s.trim().parse().map_err(|_| {
        WebError::bad(format!("amount {:?}: a number of OPEN such as 1.5 (at most 18 decimals)", query::truncate(s)))
    })?;
    if a == Amount::ZERO {
        return Err(WebError::bad("amount: more than 0 OPEN"));
    }
    Ok(a)
}

/// The staking form, and with an amount the buttons that send it.
fn stake_form(v: &ChainView, op: &Address, amount: Option<Amount>) -> Markup {
    use crate::actions::{self, Then};
    let value = amount.map(|a| a.to_string());
    html! {
        p { "Delegate OPEN to this operator (if your account is the operator, this adds to its self bond), start             unbonding what you staked (withdrawable after the cooldown), or claim your rewards. Your wallet signs." }
        form.write method="get" action=(href(op)) {
            div.field {
                label for="stake-amount" { "Amount (OPEN)" }
                input #stake-amount name="amount" inputmode="decimal" required autocomplete="off" spellcheck="false"
                    value=[value.as_deref()] aria-describedby="stake-amount-hint";
                small.muted #stake-amount-hint { "A decimal number of OPEN, such as 1.5; at most 18 decimals." }
            }
            button type="submit" { "Review" }
        }
        div.actions role="group" aria-label="Staking transactions" {
            @if let Some(a) = amount {
                (actions::button(None, "stake-delegate", &format!("Delegate {a} OPEN"), &actions::delegate(*op, a), "stake-result", Then::Reload))
                " "
                (actions::button(None, "stake-undelegate", &format!("Undelegate {a} OPEN"), &actions::undelegate(*op, a), "stake-result", Then::Reload))
                " "
            }
            (actions::button(None, "stake-claim", "Claim rewards", &actions::claim_rewards(*op), "stake-result", Then::Reload))
        }
        p #stake-result role="status" aria-live="polite" {}
        noscript { p.note { "Staking signs with your wallet, which needs a script. Without one: "
            code { "openledger stake delegate " (format!("{op:#x}")) " " (value.as_deref().unwrap_or("<amount>")) " --from <your address>" } } }
        (crate::wallet::panel(v.dev_wallet()))
    }
}

fn operator_page(v: &ChainView, a: Address, offset: u64, limit: u64, stake: Option<Amount>) -> Result<Page, WebError> {
    let o = operator(v, &a)?.ok_or_else(|| WebError::not_found(format!("{a} is not a registered operator")))?;
    let role = match o.role {
        ROLE_VALIDATOR => "validator",
        ROLE_SERVING => "serving node",
        _ => "unknown",
    };
    let own_unbonding = unbonding_from(v, &a, &a)?;
    let body = html! {
        (subnav())
        (summary(&[
            ("Operator", account_link(&a)),
            ("Role", html! { (role) }),
            ("Standing", standing(v, &a, &o)?),
            ("Self bond", amount(o.selfBond)),
            ("Delegated", amount(o.delegated)),
            ("Counted stake", html! { (amount(o.countedStake)) " " span.muted { "(what earns rewards and power while active)" } }),
            ("Commission", html! { (commission(o.commissionBps)) }),
            ("Its own unbonding", amount(own_unbonding)),
            ("Unclaimed rewards", amount(o.rewards)),
            ("Consensus key", html! { span.mono.wrap { (o.consensusKey.to_string()) } }),
            ("Serving key", account_link(&o.servingKey)),
            ("Registered", block_link(o.registeredAt)),
        ]))
        (super::health::operator_section(v, &a)?)
        h2 #stake { "Stake" }
        (stake_form(v, &a, stake))
        h2 { "Stakers" }
        (stakers(v, &a, offset, limit)?)
    };
    Ok(Page::new(format!("Operator {}", crate::format::short(&a.to_checksum(None))), Section::Governance, body))
}

/// What `account` has unbonding from `op`, valued as the staking contract values it.
fn unbonding_from(v: &ChainView, account: &Address, op: &Address) -> Result<U256, WebError> {
    let u = v
        .call(Module::Staking, &IStaking::unbondingsCall { account: *account })?
        .map_err(|_| WebError::unavailable("staking.unbondings refused"))?;
    Ok(u.operators.iter().zip(&u.amounts).filter(|(o, _)| *o == op).fold(U256::ZERO, |s, (_, x)| s.saturating_add(*x)))
}

fn stakers(v: &ChainView, op: &Address, offset: u64, limit: u64) -> Result<Markup, WebError> {
    let total = v.state().delegator_count(op).map_err(WebError::unavailable)?;
    let mut rows = Vec::new();
    for d in v.state().delegators_page(op, offset, limit).map_err(WebError::unavailable)? {
        let s = v
            .call(Module::Staking, &IStaking::stakeOfCall { operator: *op, account: d })?
            .map_err(|_| WebError::unavailable("staking.stakeOf refused"))?;
        rows.push((d, s.amount, s.pendingRewards, unbonding_from(v, &d, op)?));
    }
    Ok(html! {
        p { "Accounts bonded to this operator, besides its self bond: " (total) "." }
        @if !rows.is_empty() {
            (table(
                "Stakers in order of first bond",
                &["Staker", "Bonded", "Pending rewards", "Unbonding"],
                html! { @for (d, bonded, rewards, unbonding) in &rows { tr {
                    td { (account_link(d)) }
                    td.num { (amount(*bonded)) }
                    td.num { (amount(*rewards)) }
                    td.num { (amount(*unbonding)) }
                } } },
            ))
        }
        (pager(&href(op), "", "stakers", offset, limit, total))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stake_amounts_parse_exactly_or_are_refused() {
        assert_eq!(stake_amount("2.5").unwrap(), Amount(2_500_000_000_000_000_000));
        assert_eq!(stake_amount(" 0.000000000000000001 ").unwrap(), Amount(1));
        assert_eq!(stake_amount("3").unwrap(), Amount(3_000_000_000_000_000_000));
        for bad in ["", "0", "0.0", "-1", "1e3", "abc", "1.2.3", "0.0000000000000000001", "1,5", "NaN", "inf"] {
            let e = stake_amount(bad).unwrap_err();
            assert!(format!("{e:?}").contains("amount"), "{bad}: {e:?}");
        }
        // More OPEN than a u128 of base units holds.
        assert!(stake_amount("340282366920938463464").is_err());
    }
}
