//! The ModelFactory's, governance's, staking's and attribution's transactions a page offers the
//! browser's wallet: [`crate::wallet::TxButton`]s that carry their call
//! encoded on the server (`data-to`, `data-data`, `data-value`), which
//! `wallet.js` sends as they are. The page encodes exactly what the CLI would
//! send for the same action, so the script decides nothing and the chain
//! checks everything.
//!
//! [`SCRIPT_PATH`] is the job form's and the live job section's script
//! (`jobs.js`), loaded after the wallet (`window.OpenLedgerWallet`).

use alloy_sol_types::SolCall;
use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use maud::{Markup, html};
use primitives::abi::{IAttribution, IGovernance, IModels, IStaking};
use primitives::system::Module;
use primitives::{Address, Amount, B256, U256};

use crate::Web;
use crate::view::ChainView;

/// The job form's and the action buttons' script.
pub const SCRIPT_PATH: &str = "/assets/jobs.js";

const SCRIPT: &str = include_str!("jobs.js");

pub fn routes() -> Router<Web> {
    Router::new().route(SCRIPT_PATH, get(script))
}

async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")],
        SCRIPT,
    )
}

/// The wallet's account selector with its script, then this module's script
/// (both deferred, in that order).
pub fn scripts(v: &ChainView) -> Markup {
    html! {
        (crate::wallet::panel(v.dev_wallet()))
        script src=(SCRIPT_PATH) defer {}
    }
}

/// One transaction, encoded: its target, calldata and value (base units).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tx {
    pub to: Address,
    pub data: Vec<u8>,
    pub value: U256,
}

impl Tx {
    pub fn call<C: SolCall>(m: Module, call: &C, value: U256) -> Tx {
        Tx { to: m.address(), data: call.abi_encode(), value }
    }
}

/// What `openledger model propose --job N` sends first: `models.register` of the
/// job's model at the CLI's default prices (`r`: the job as the API shows it).
pub fn model_register(r: &factory::JobRecord) -> Result<Tx, String> {
    let price = |s: &str| s.parse::<primitives::Amount>().map(|a| a.0).map_err(|e| format!("price {s}: {e}"));
    let j = serde_json::to_value(r).map_err(|e| e.to_string())?;
    let registration = factory::registration::registration(
        &j,
        r.id,
        None,
        price(factory::registration::DEFAULT_PRICE_IN_PER_1K)?,
        price(factory::registration::DEFAULT_PRICE_OUT_PER_1K)?,
    )
    .map_err(|e| e.to_string())?;
    Ok(Tx::call(Module::Models, &IModels::registerCall { registration }, U256::ZERO))
}

/// What `openledger model propose` sends after registering: `models.propose(id)`, no value.
pub fn model_propose(id: u64) -> Tx {
    Tx::call(Module::Models, &IModels::proposeCall { id }, U256::ZERO)
}

/// The governance proposal the demo and `openledger gov propose --call "models.approve [ID]"`
/// make for a proposed model, with the deposit `proposalDeposit()` asks for now.
pub fn approve_proposal(id: u64, deposit: U256) -> Tx {
    let approve = IModels::approveCall { ids: vec![id] }.abi_encode();
    let call = IGovernance::proposeCall {
        description: format!("Make m{id} live"),
        targets: vec![Module::Models.address()],
        calldatas: vec![approve.into()],
    };
    Tx::call(Module::Governance, &call, deposit)
}

/// The choices of `castVote`: class, label, support (as `openledger gov vote` numbers them).
pub const VOTES: [(&str, &str, u8); 4] = [
    ("vote-for", "Vote for", 1),
    ("vote-against", "Vote against", 0),
    ("vote-abstain", "Abstain", 2),
    ("vote-veto", "Veto", 3),
];

/// `governance.castVote(id, support)`, what `openledger gov vote ID CHOICE` sends.
pub fn vote(id: u64, support: u8) -> Tx {
    Tx::call(Module::Governance, &IGovernance::castVoteCall { id, support }, U256::ZERO)
}

/// `governance.execute(id)`, what `openledger gov execute ID` sends. There is
/// no queue call: the governance contract queues a passed proposal itself when
/// it tallies the vote (at the end of block `voteEnd`).
pub fn execute(id: u64) -> Tx {
    Tx::call(Module::Governance, &IGovernance::executeCall { id }, U256::ZERO)
}

/// `staking.bond(operator)` with `amount` as value, what `openledger stake delegate OP AMOUNT`
/// (and `stake bond`, for the operator itself) sends.
pub fn delegate(operator: Address, amount: Amount) -> Tx {
    Tx::call(Module::Staking, &IStaking::bondCall { operator }, amount.to_u256())
}

/// `staking.unbond(operator, amount)`, what `openledger stake unbond OP AMOUNT` sends.
pub fn undelegate(operator: Address, amount: Amount) -> Tx {
    Tx::call(Module::Staking, &IStaking::unbondCall { operator, amount: amount.to_u256() }, U256::ZERO)
}

/// `staking.claimRewards(operator)`, what `openledger stake claim OP` sends.
pub fn claim_rewards(operator: Address) -> Tx {
    Tx::call(Module::Staking, &IStaking::claimRewardsCall { operator }, U256::ZERO)
}

/// `attribution.challenge(receipt, recomputed)` with `bond` as value, what
/// `openledger attribution challenge RECEIPT` sends (its bond defaulting to `challengeBond()`).
pub fn challenge(receipt: B256, recomputed: B256, bond: U256) -> Tx {
    let call = IAttribution::challengeCall { receiptHash: receipt, challengerRecordHash: recomputed };
    Tx::call(Module::Attribution, &call, bond)
}

/// What a button's page does once its transaction is in a block.
#[derive(Clone, Copy, Debug)]
pub enum Then {
    /// Reload: the page shows the next step.
    Reload,
    /// Link the new governance proposal, its id read from the receipt's `ProposalCreated` log.
    Proposal,
}

/// A button that sends `tx` from the wallet's account. `result` is the id of
/// the status element the script writes the outcome to.
pub fn button(id: Option<&str>, class: &str, label: &str, tx: &Tx, result: &str, then: Then) -> Markup {
    let mut b = crate::wallet::TxButton::new(label, tx.to, tx.data.clone(), result);
    b.id = id;
    b.class = Some(class);
    b.value = tx.value;
    match then {
        Then::Reload => {
            b.done = "Done; updating the page";
            b.reload = true;
        }
        Then::Proposal => {
            use alloy_sol_types::SolEvent;
            let topic = IGovernance::ProposalCreated::SIGNATURE_HASH;
            b.done = "Proposed";
            b.link = Some((topic, 1, "/governance/{id}", "Governance proposal #{id}"));
        }
    }
    crate::wallet::tx_button(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buttons_carry_the_encoded_call() {
        let tx = vote(7, 1);
        let b = button(None, "vote-for", "Vote for", &tx, "vote-result", Then::Reload).into_string();
        assert!(b.starts_with("<button type=\"button\" class=\"vote-for\" data-to=\"0x"), "{b}");
        assert!(b.contains(&format!("data-data=\"0x{}\"", hex::encode(&tx.data))), "{b}");
        assert!(b.contains("data-value=\"0\"") && b.contains("data-reload=\"1\""), "{b}");
        let c = IGovernance::castVoteCall::abi_decode(&tx.data).unwrap();
        assert_eq!((c.id, c.support), (7, 1));
        let p = approve_proposal(3, U256::from(5u64));
        let d = IGovernance::proposeCall::abi_decode(&p.data).unwrap();
        assert_eq!(d.targets, vec![Module::Models.address()]);
        assert_eq!(IModels::approveCall::abi_decode(&d.calldatas[0]).unwrap().ids, vec![3]);
        assert_eq!(format!("{:#x}", p.value), "0x5");
        assert_eq!(IModels::proposeCall::abi_decode(&model_propose(9).data).unwrap().id, 9);
    }

    #[test]
    fn staking_governance_and_challenge_calls_are_the_clis() {
        let op = Address::repeat_byte(7);
        let amount: Amount = "1.000000000000000001".parse().unwrap();
        let d = delegate(op, amount);
        assert_eq!((d.to, d.value), (Module::Staking.address(), U256::from(1_000_000_000_000_000_001u128)));
        assert_eq!(IStaking::bondCall::abi_decode(&d.data).unwrap().operator, op);
        let u = undelegate(op, amount);
        let c = IStaking::unbondCall::abi_decode(&u.data).unwrap();
        assert_eq!((c.operator, c.amount, u.value), (op, amount.to_u256(), U256::ZERO));
        assert_eq!(IStaking::claimRewardsCall::abi_decode(&claim_rewards(op).data).unwrap().operator, op);
        let x = execute(4);
        assert_eq!(
            (x.to, IGovernance::executeCall::abi_decode(&x.data).unwrap().id),
            (Module::Governance.address(), 4)
        );
        let (r, m) = (B256::repeat_byte(1), B256::repeat_byte(2));
        let ch = challenge(r, m, U256::from(9u64));
        let c = IAttribution::challengeCall::abi_decode(&ch.data).unwrap();
        assert_eq!(
            (ch.to, c.receiptHash, c.challengerRecordHash, ch.value),
            (Module::Attribution.address(), r, m, U256::from(9u64))
        );
    }
}
