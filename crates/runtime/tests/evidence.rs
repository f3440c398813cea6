//! The validator set is accountable, through staking's public ABI:
//! - two conflicting votes or proposals signed with a validator's consensus
//!   key (the key it held in the set of that height) slash it, jail it for
//!   good and tombstone it, and pay whoever reported them; every malformed,
//!   unproven, stale, premature or repeated report is refused by name;
//! - a validator that misses more than its share of a full downtime window of
//!   commit certificates is slashed and jailed, one that misses less is not,
//!   and blocks sealed without consensus change nothing;
//! - the supply equation holds across slashes by evidence.

use alloy_primitives::{B256, U256};
use alloy_sol_types::{SolCall, SolEvent, SolInterface};
use keys::{ConsensusKey, SecretKey};
use primitives::abi::IStaking::{self, IStakingErrors};
use primitives::abi::{SignedProposal, SignedVote};
use primitives::block::Receipt;
use primitives::consensus::VoteKind;
use primitives::system::{Module, TREASURY};
use primitives::{Address, Amount, ONE_OPEN};
use proptest::prelude::*;
use runtime::bank::BankRead;
use runtime::staking::StakingRead;
use runtime::{Genesis, LastCommit};

mod common;
use common::Ledger;

const CHAIN: u64 = 31337;
const STAKING: Address = Module::Staking.address();
/// Validators at genesis; `NEWCOMER` registers later.
const VALIDATORS: u8 = 3;
const NEWCOMER: u8 = 3;
const REPORTER: u8 = 9;
const DELEGATOR: u8 = 8;
const MAX_AGE: u64 = 50;
const WINDOW: u64 = 10;
const DOWNTIME_JAIL: u64 = 20;

fn key(i: u8) -> SecretKey {
    SecretKey::from_bytes(&[i + 1; 32]).unwrap()
}
fn addr(i: u8) -> Address {
    key(i).address()
}
fn ck(i: u8) -> ConsensusKey {
    ConsensusKey::dev(&format!("evidence-test-{i}"))
}

fn genesis() -> Genesis {
    let alloc = (0..=NEWCOMER).chain([DELEGATOR, REPORTER]).map(|i| (addr(i), Amount::open(10_000))).collect();
    let operators = (0..VALIDATORS)
        .map(|i| runtime::staking::genesis::GenesisOperator {
            operator: addr(i),
            role: 1,
            consensus_key: ck(i).public(),
            serving_key: Address::ZERO,
            commission_bps: 0,
            bond: Amount::open(1_000),
        })
        .collect();
    Genesis {
        chain_id: CHAIN,
        timestamp: 1_800_000_000,
        alloc,
        params: vec![
            ("staking.min_self_bond".into(), 100 * ONE_OPEN),
            ("staking.evidence_max_age".into(), MAX_AGE as u128),
            ("staking.downtime_window".into(), WINDOW as u128),
            ("staking.downtime_jail_blocks".into(), DOWNTIME_JAIL as u128),
        ],
        operators,
        calls: vec![],
        base_model: None,
    }
}

fn id(b: u8) -> B256 {
    B256::repeat_byte(b)
}

fn vote(k: &ConsensusKey, height: u64, round: u32, kind: VoteKind, value: Option<B256>) -> SignedVote {
    let unsigned = SignedVote::new(height, round, kind, value, [0; 64]);
    SignedVote::new(height, round, kind, value, k.sign(&unsigned.sign_bytes(CHAIN).unwrap()))
}

fn proposal(k: &ConsensusKey, height: u64, round: u32, pol: Option<u32>, value: B256) -> SignedProposal {
    let unsigned = SignedProposal::new(height, round, pol, value, [0; 64]);
    SignedProposal::new(height, round, pol, value, k.sign(&unsigned.sign_bytes(CHAIN)))
}

fn report_votes(l: &mut Ledger, operator: Address, a: SignedVote, b: SignedVote) -> Receipt {
    let call = IStaking::reportDoubleVoteCall { operator, a, b };
    l.send(&key(REPORTER), STAKING, Amount::ZERO, call.abi_encode())
}

fn report_proposals(l: &mut Ledger, operator: Address, a: SignedProposal, b: SignedProposal) -> Receipt {
    let call = IStaking::reportDoubleProposalCall { operator, a, b };
    l.send(&key(REPORTER), STAKING, Amount::ZERO, call.abi_encode())
}

fn refusal(r: &Receipt) -> IStakingErrors {
    assert!(!r.success, "expected a revert");
    IStakingErrors::abi_decode(&r.revert_data).expect("a named staking error")
}

/// A staking view through the public `eth_call` path.
fn view<C: SolCall>(l: &Ledger, call: C) -> C::Return {
    let env = l.env(l.height + 1);
    let out = runtime::call(&l.mem, &env, addr(REPORTER), STAKING, Amount::ZERO, &call.abi_encode(), None).unwrap();
    assert!(out.success);
    C::abi_decode_returns(&out.output).unwrap()
}

fn in_set(l: &Ledger, i: u8) -> bool {
    l.mem.validator_set_at(l.height).unwrap().operators.contains(&addr(i))
}

#[test]
fn a_double_vote_slashes_tombstones_and_pays_the_reporter() {
    let mut l = Ledger::new(&genesis());
    let delegate = IStaking::bondCall { operator: addr(0) }.abi_encode();
    assert!(l.send(&key(DELEGATOR), STAKING, Amount::open(1_000), delegate.clone()).success);
    l.until(6);
    let (reporter_before, treasury_before) =
        (l.mem.balance(&addr(REPORTER)).unwrap(), l.mem.balance(&TREASURY).unwrap());
    let a = vote(&ck(0), 4, 0, VoteKind::Precommit, Some(id(0xaa)));
    let b = vote(&ck(0), 4, 0, VoteKind::Precommit, None);
    let r = report_votes(&mut l, addr(0), a.clone(), b.clone());
    assert!(r.success, "{:?}", IStakingErrors::abi_decode(&r.revert_data));
    assert!(r.gas_used >= runtime::staking::evidence::REPORT_GAS, "two verifications and a slash are paid for");

    // 5% (the default rate) of the self bond and the delegation: 100 OPEN.
    let slashed = Amount::open(100);
    let share = Amount(slashed.0 / 10); // staking.slash_reporter_bps = 10%
    let fee = Amount(u128::from(r.gas_used) * r.effective_gas_price);
    assert_eq!(l.mem.balance(&addr(REPORTER)).unwrap().0, reporter_before.0 + share.0 - fee.0);
    assert!(l.mem.balance(&TREASURY).unwrap().0 >= treasury_before.0 + slashed.0 - share.0);
    let reported: Vec<_> =
        r.logs.iter().filter_map(|g| IStaking::DoubleSignReported::decode_log_data(&g.data).ok()).collect();
    assert_eq!(
        reported,
        vec![IStaking::DoubleSignReported {
            operator: addr(0),
            height: 4,
            round: 0,
            kind: 2,
            reporter: addr(REPORTER)
        }]
    );
    let s = l.mem.slashes(&addr(0)).unwrap();
    assert_eq!(
        (s.len(), s[0].reason.as_str(), s[0].reporter, s[0].amount),
        (1, "double vote", addr(REPORTER), slashed.to_u256())
    );
    let info = view(&l, IStaking::operatorInfoCall { operator: addr(0) });
    assert_eq!((info.selfBond, info.jailedUntil), (U256::from(950 * ONE_OPEN), u64::MAX), "jailed for good");

    // Tombstoned: out of the set for good, never unjailed, nobody bonds to it.
    assert!(view(&l, IStaking::tombstonedCall { operator: addr(0) }));
    assert!(!view(&l, IStaking::tombstonedCall { operator: addr(1) }));
    let ev = |kind| view(&l, IStaking::evidenceSubmittedCall { operator: addr(0), height: 4, round: 0, kind });
    assert!(ev(2) && !ev(1));
    assert!(!in_set(&l, 0) && in_set(&l, 1));
    l.until(l.height + 100);
    let unjail = l.send(&key(0), STAKING, Amount::ZERO, IStaking::unjailCall {}.abi_encode());
    assert!(matches!(refusal(&unjail), IStakingErrors::Tombstoned(_)));
    let bond = l.send(&key(DELEGATOR), STAKING, Amount::open(1), delegate);
    assert!(matches!(refusal(&bond), IStakingErrors::Tombstoned(_)));
    assert!(!in_set(&l, 0));
}

#[test]
fn a_double_proposal_is_evidence_and_its_proof_of_lock_round_is_no_difference() {
    let mut l = Ledger::new(&genesis());
    l.until(5);
    let same =
        report_proposals(&mut l, addr(1), proposal(&ck(1), 3, 1, None, id(1)), proposal(&ck(1), 3, 1, Some(0), id(1)));
    assert!(matches!(refusal(&same), IStakingErrors::EvidenceNotConflicting(_)));
    let r =
        report_proposals(&mut l, addr(1), proposal(&ck(1), 3, 1, None, id(1)), proposal(&ck(1), 3, 1, Some(0), id(2)));
    assert!(r.success, "{:?}", IStakingErrors::abi_decode(&r.revert_data));
    assert!(view(&l, IStaking::tombstonedCall { operator: addr(1) }));
    assert!(view(&l, IStaking::evidenceSubmittedCall { operator: addr(1), height: 3, round: 1, kind: 0 }));
    assert_eq!(l.mem.slashes(&addr(1)).unwrap()[0].reason, "double proposal");
    assert!(!in_set(&l, 1));
}

#[test]
fn every_unproven_stale_premature_or_repeated_report_is_refused_by_name() {
    let mut l = Ledger::new(&genesis());
    l.until(10);
    let k0 = ck(0);
    let pc = VoteKind::Precommit;
    let refused = |l: &mut Ledger, a: SignedVote, b: SignedVote| refusal(&report_votes(l, addr(0), a, b));
    let not_conflicting = [
        (vote(&k0, 5, 0, pc, Some(id(1))), vote(&k0, 5, 0, pc, Some(id(1)))),
        (vote(&k0, 5, 0, pc, None), vote(&k0, 5, 0, pc, None)),
        (vote(&k0, 5, 0, pc, Some(id(1))), vote(&k0, 6, 0, pc, Some(id(2)))),
        (vote(&k0, 5, 0, pc, Some(id(1))), vote(&k0, 5, 1, pc, Some(id(2)))),
        (vote(&k0, 5, 0, VoteKind::Prevote, Some(id(1))), vote(&k0, 5, 0, pc, Some(id(2)))),
    ];
    for (a, b) in not_conflicting {
        assert!(matches!(refused(&mut l, a, b), IStakingErrors::EvidenceNotConflicting(_)));
    }
    // A nil vote's `value` is not signed: two nil votes differing there are one vote.
    let mut nil = vote(&k0, 5, 0, pc, None);
    nil.value = id(9);
    assert!(matches!(refused(&mut l, vote(&k0, 5, 0, pc, None), nil), IStakingErrors::EvidenceNotConflicting(_)));

    // Malformed.
    let mut bad_kind = vote(&k0, 5, 0, pc, None);
    bad_kind.kind = 3;
    let b = vote(&k0, 5, 0, pc, Some(id(1)));
    assert!(matches!(refused(&mut l, bad_kind, b.clone()), IStakingErrors::InvalidEvidence(_)));
    let genesis_height = refused(&mut l, vote(&k0, 0, 0, pc, None), vote(&k0, 0, 0, pc, Some(id(1))));
    assert!(matches!(genesis_height, IStakingErrors::InvalidEvidence(_)));

    // Signatures: tampered, short, by another validator's key.
    let a = vote(&k0, 5, 0, pc, None);
    let mut tampered = b.clone();
    let mut sig = tampered.signature.to_vec();
    sig[10] ^= 1;
    tampered.signature = sig.into();
    let e = refused(&mut l, a.clone(), tampered);
    assert_eq!(e, IStakingErrors::BadEvidenceSignature(IStaking::BadEvidenceSignature { index: 1 }));
    let mut short = a.clone();
    short.signature = short.signature[..63].to_vec().into();
    let e = refused(&mut l, short, b.clone());
    assert_eq!(e, IStakingErrors::BadEvidenceSignature(IStaking::BadEvidenceSignature { index: 0 }));
    let e = refused(&mut l, vote(&ck(1), 5, 0, pc, None), vote(&ck(1), 5, 0, pc, Some(id(1))));
    assert_eq!(e, IStakingErrors::BadEvidenceSignature(IStaking::BadEvidenceSignature { index: 0 }));
    let wrong_chain = {
        let unsigned = SignedVote::new(5, 0, pc, None, [0; 64]);
        SignedVote::new(5, 0, pc, None, k0.sign(&unsigned.sign_bytes(CHAIN + 1).unwrap()))
    };
    let e = refused(&mut l, wrong_chain, b.clone());
    assert_eq!(e, IStakingErrors::BadEvidenceSignature(IStaking::BadEvidenceSignature { index: 0 }));

    // Heights: from the future (the report lands in block 11 + the refusals so far), too old.
    let now = l.height + 1;
    let e = refused(&mut l, vote(&k0, now + 1, 0, pc, None), vote(&k0, now + 1, 0, pc, Some(id(1))));
    assert_eq!(e, IStakingErrors::EvidenceFromFuture(IStaking::EvidenceFromFuture { height: now + 1, current: now }));
    l.until(MAX_AGE + 10);
    let now = l.height + 1;
    let e = refused(&mut l, vote(&k0, 5, 0, pc, None), vote(&k0, 5, 0, pc, Some(id(1))));
    assert_eq!(
        e,
        IStakingErrors::EvidenceTooOld(IStaking::EvidenceTooOld { height: 5, oldestAccepted: now - MAX_AGE })
    );

    // Not in the set: an account that is no operator.
    let stranger = ConsensusKey::dev("stranger");
    let r = report_votes(
        &mut l,
        addr(REPORTER),
        vote(&stranger, now, 0, pc, None),
        vote(&stranger, now, 0, pc, Some(id(1))),
    );
    assert!(matches!(refusal(&r), IStakingErrors::NotInValidatorSet(_)));

    // Accepted once; the same (operator, height, round, kind) again, even with
    // another pair of values, is refused; evidence of another fault of a
    // tombstoned validator adds nothing.
    let h = l.height;
    let ok = report_votes(&mut l, addr(0), vote(&k0, h, 2, pc, None), vote(&k0, h, 2, pc, Some(id(1))));
    assert!(ok.success);
    let e = refused(&mut l, vote(&k0, h, 2, pc, Some(id(3))), vote(&k0, h, 2, pc, Some(id(4))));
    assert_eq!(
        e,
        IStakingErrors::EvidenceAlreadySubmitted(IStaking::EvidenceAlreadySubmitted {
            operator: addr(0),
            height: h,
            round: 2,
            kind: 2
        })
    );
    let e = refused(&mut l, vote(&k0, h, 3, pc, Some(id(3))), vote(&k0, h, 3, pc, Some(id(4))));
    assert!(matches!(e, IStakingErrors::Tombstoned(_)));
}

#[test]
fn the_key_and_the_set_are_those_of_the_evidence_height() {
    let mut l = Ledger::new(&genesis());
    l.until(4);
    // A validator registered in block N decides heights from N + 1 on.
    let register = IStaking::registerOperatorCall {
        role: 1,
        consensusKey: ck(NEWCOMER).public(),
        servingKey: Address::ZERO,
        commissionBps: 0,
    };
    assert!(l.send(&key(NEWCOMER), STAKING, Amount::open(500), register.abi_encode()).success);
    let joined = l.height;
    // Validator 2 rotates its key in block R: the old key is in force up to height R.
    let rotated_to = ConsensusKey::dev("rotated");
    let rotate = IStaking::rotateConsensusKeyCall { key: rotated_to.public() };
    assert!(l.send(&key(2), STAKING, Amount::ZERO, rotate.abi_encode()).success);
    let rotated = l.height;
    l.until(rotated + 3);
    let pc = VoteKind::Prevote;

    let k3 = ck(NEWCOMER);
    let r = report_votes(&mut l, addr(NEWCOMER), vote(&k3, joined, 0, pc, None), vote(&k3, joined, 0, pc, Some(id(1))));
    assert_eq!(
        refusal(&r),
        IStakingErrors::NotInValidatorSet(IStaking::NotInValidatorSet { operator: addr(NEWCOMER), height: joined })
    );
    let r = report_votes(
        &mut l,
        addr(NEWCOMER),
        vote(&k3, joined + 1, 0, pc, None),
        vote(&k3, joined + 1, 0, pc, Some(id(1))),
    );
    assert!(r.success, "{:?}", IStakingErrors::abi_decode(&r.revert_data));

    let (old, new) = (ck(2), rotated_to);
    let after = rotated + 1;
    let r = report_votes(&mut l, addr(2), vote(&old, after, 0, pc, None), vote(&old, after, 0, pc, Some(id(1))));
    assert!(
        matches!(refusal(&r), IStakingErrors::BadEvidenceSignature(_)),
        "the old key is not in force after the rotation"
    );
    let r = report_votes(&mut l, addr(2), vote(&new, rotated, 0, pc, None), vote(&new, rotated, 0, pc, Some(id(1))));
    assert!(matches!(refusal(&r), IStakingErrors::BadEvidenceSignature(_)), "nor the new one before");
    let r = report_votes(&mut l, addr(2), vote(&old, rotated, 0, pc, None), vote(&old, rotated, 0, pc, Some(id(1))));
    assert!(r.success, "the old key signed for the height it was in force at");
}

fn liveness(l: &Ledger, i: u8) -> (u32, u64) {
    let r = view(l, IStaking::livenessCall { operator: addr(i) });
    (r.missed, r.tracked)
}

fn jailed(l: &Ledger, i: u8) -> bool {
    l.mem.operator(&addr(i)).unwrap().unwrap().jailed
}

#[test]
fn downtime_jails_a_validator_that_misses_more_than_its_share_and_not_one_that_misses_less() {
    let mut l = Ledger::new(&genesis());
    // Block 1 is sealed without consensus; blocks 2.. carry the certificates of heights 1...
    l.block(vec![]);
    let stranger = Address::with_last_byte(0x77);
    // Heights 1..=WINDOW: validator 0 signs all, 1 misses 6 (more than half), 2 misses 5.
    for h in 1..=WINDOW {
        let mut signers = vec![addr(0), stranger];
        if h > 6 {
            signers.push(addr(1));
        }
        if h > 5 {
            signers.push(addr(2));
        }
        l.block_with_commit(vec![], signers);
        if h < WINDOW {
            assert!(!jailed(&l, 1), "not judged before a full window (height {h})");
        }
    }
    assert!(jailed(&l, 1) && !jailed(&l, 2) && !jailed(&l, 0));
    assert_eq!((liveness(&l, 0), liveness(&l, 2)), ((0, WINDOW), (5, WINDOW)));
    assert_eq!(liveness(&l, 1), (0, 0), "its window starts over");
    let s = l.mem.slashes(&addr(1)).unwrap();
    assert_eq!((s.len(), s[0].reason.as_str(), s[0].reporter), (1, "downtime", Address::ZERO));
    // The bounded reads the web pages use agree with the whole list.
    assert_eq!(l.mem.slash_count(&addr(1)).unwrap(), 1);
    let page = l.mem.slashes_page(&addr(1), 0, 10).unwrap();
    assert_eq!(page.iter().map(|r| (r.height, r.amount)).collect::<Vec<_>>(), vec![(s[0].height, s[0].amount)]);
    assert!(l.mem.slashes_page(&addr(1), 1, 10).unwrap().is_empty());
    assert_eq!(l.mem.slash_count(&addr(2)).unwrap(), 0);
    // 100 ppm (the default) of its 1,000 OPEN.
    assert_eq!(s[0].amount, U256::from(ONE_OPEN / 10));
    let info = view(&l, IStaking::operatorInfoCall { operator: addr(1) });
    assert_eq!(info.jailedUntil, l.height + DOWNTIME_JAIL);
    assert!(!in_set(&l, 1) && in_set(&l, 2));

    // The window slides: validator 2's old misses leave it as it signs.
    for _ in 0..5 {
        l.block_with_commit(vec![], vec![addr(0), addr(2)]);
    }
    assert_eq!(liveness(&l, 2), (0, WINDOW));
    // Once jail is over the validator rejoins, and is judged after a new full window.
    while l.height + 1 < info.jailedUntil {
        l.block_with_commit(vec![], vec![addr(0), addr(2)]);
    }
    let unjail = l.send(&key(1), STAKING, Amount::ZERO, IStaking::unjailCall {}.abi_encode());
    assert!(unjail.success);
    for _ in 0..WINDOW - 1 {
        l.block_with_commit(vec![], vec![addr(0), addr(2)]);
    }
    assert!(!jailed(&l, 1), "back in the set one block after unjailing: not yet a full window");
    l.block_with_commit(vec![], vec![addr(0), addr(2)]);
    l.block_with_commit(vec![], vec![addr(0), addr(2)]);
    assert!(jailed(&l, 1));
}

#[test]
fn blocks_without_consensus_or_with_a_certificate_of_another_height_change_nothing() {
    let mut l = Ledger::new(&genesis());
    for _ in 0..3 * WINDOW {
        l.block(vec![]);
    }
    let staking_state = |l: &Ledger| {
        l.mem
            .0
            .iter()
            .filter(|(k, _)| k.starts_with(b"staking/live/"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<Vec<_>>()
    };
    assert!(staking_state(&l).is_empty());
    for i in 0..VALIDATORS {
        assert_eq!(liveness(&l, i), (0, 0));
        assert!(!jailed(&l, i));
    }
    // A certificate that is not of the block before is not accounted.
    for _ in 0..2 * WINDOW {
        let mut env = l.env(l.height + 1);
        env.last_commit = Some(LastCommit { height: l.height - 1, signers: vec![] });
        l.try_block_in(env, vec![]).unwrap();
    }
    assert!(staking_state(&l).is_empty());
    assert!((0..VALIDATORS).all(|i| !jailed(&l, i)));
}

#[test]
fn the_new_parameters_are_bounded() {
    for (name, bad) in [
        ("staking.downtime_window", 5u128),
        ("staking.downtime_max_missed_ppm", 1_000_001),
        ("staking.downtime_slash_ppm", 500_000),
        ("staking.double_sign_slash_ppm", 0),
        ("staking.double_sign_slash_ppm", 1_000_001),
        ("staking.evidence_max_age", 0),
        ("staking.downtime_jail_blocks", 0),
    ] {
        assert!(runtime::params::check(name, bad).is_err(), "{name} = {bad}");
    }
    let mut g = genesis();
    g.params.push(("staking.downtime_window".into(), 1));
    let e = runtime::EmptyState;
    assert!(g.apply(&mut runtime::Overlay::new(&e)).is_err(), "the genesis checks the bounds too");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    /// Reports (valid or not) against random validators with random
    /// delegations: the supply equation holds after every block (the ledger
    /// checks it), the slashed amount is what the operator's stake lost, and
    /// the reporter gains exactly its share, less the fee.
    #[test]
    fn supply_is_conserved_across_slashes_by_evidence(
        delegations in proptest::collection::vec((0u8..VALIDATORS, 1u64..2_000), 0..4),
        reports in proptest::collection::vec((0u8..VALIDATORS, 0u8..VALIDATORS, 1u64..8, any::<bool>()), 1..6),
    ) {
        let mut l = Ledger::new(&genesis());
        for (v, open) in delegations {
            let bond = IStaking::bondCall { operator: addr(v) }.abi_encode();
            prop_assert!(l.send(&key(DELEGATOR), STAKING, Amount::open(open), bond).success);
        }
        l.until(10);
        for (operator, signer, height, proposals) in reports {
            let stake = |l: &Ledger| {
                let o = l.mem.operator(&addr(operator)).unwrap().unwrap();
                o.selfBond + o.delegated
            };
            let (stake_before, reporter_before) = (stake(&l), l.mem.balance(&addr(REPORTER)).unwrap().0);
            let tombstoned = view(&l, IStaking::tombstonedCall { operator: addr(operator) });
            let k = ck(signer);
            let r = if proposals {
                report_proposals(&mut l, addr(operator), proposal(&k, height, 0, None, id(1)), proposal(&k, height, 0, None, id(2)))
            } else {
                report_votes(&mut l, addr(operator), vote(&k, height, 0, VoteKind::Prevote, None), vote(&k, height, 0, VoteKind::Prevote, Some(id(1))))
            };
            let fee = u128::from(r.gas_used) * r.effective_gas_price;
            let slashed: Vec<_> = r.logs.iter().filter_map(|g| IStaking::Slashed::decode_log_data(&g.data).ok()).collect();
            prop_assert_eq!(r.success, signer == operator && !tombstoned);
            if r.success {
                prop_assert_eq!(slashed.len(), 1);
                prop_assert_eq!(stake_before - stake(&l), slashed[0].amount);
                let share = slashed[0].amount.to::<u128>() / 10;
                prop_assert_eq!(l.mem.balance(&addr(REPORTER)).unwrap().0, reporter_before + share - fee);
            } else {
                prop_assert!(slashed.is_empty());
                prop_assert_eq!(stake(&l), stake_before);
                prop_assert_eq!(l.mem.balance(&addr(REPORTER)).unwrap().0, reporter_before - fee);
            }
        }
    }
}
