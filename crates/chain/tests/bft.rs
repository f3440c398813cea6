//! The chain driven as a consensus engine drives it ([`ConsensusHost`]): one
//! validator proposes, another checks the block by re-executing it, both
//! commit it with a certificate the test signs with the validators' dev keys.
//! Then every field a Byzantine proposer controls is attacked: each bad block
//! is refused with an `InvalidBlock` error that says why, never a panic, and
//! leaves the head where it was.

use std::sync::Arc;

use alloy_consensus::TxEip1559;
use alloy_primitives::TxKind;
use chain::{
    BlockTime, Chain, ChainConfig, ChainError, ConsensusHost, MAX_BLOCK_BYTES, MAX_FUTURE_SECS, PoolConfig, WireBlock,
    decode_block, encode_block, verify_certificate,
};
use keys::{ConsensusKey, SecretKey, derive_account, encode_2718, sign_eip1559};
use primitives::consensus::{CommitCertificate, CommitSignature};
use primitives::{Address, Amount, B256, Bytes, ONE_OPEN, U256};
use runtime::Genesis;
use runtime::bank::BankRead;
use runtime::staking::genesis::GenesisOperator;

const CHAIN_ID: u64 = 31337;
const GENESIS_TIME: u64 = 1_700_000_000;
const GWEI: u128 = 1_000_000_000;
/// Self-bonds in OPEN (the voting power): 6,000 in all, so validators 0 and 3
/// together hold exactly two thirds, which is not enough.
const BONDS: [u64; 4] = [1_000, 1_000, 1_000, 3_000];
const ALL: &[usize] = &[0, 1, 2, 3];
const MAX_TXS: usize = 8;

fn operator_key(i: usize) -> SecretKey {
    derive_account(keys::DEV_MNEMONIC, i as u32).unwrap()
}

fn operator(i: usize) -> Address {
    operator_key(i).address()
}

fn consensus_key(i: usize) -> ConsensusKey {
    ConsensusKey::dev(&format!("v{i}"))
}

/// Accounts that send transfers (not validators).
fn user(i: u32) -> SecretKey {
    derive_account(keys::DEV_MNEMONIC, 10 + i).unwrap()
}

fn genesis() -> Genesis {
    let funded = (0..BONDS.len()).map(operator).chain((0..2).map(|i| user(i).address()));
    Genesis {
        chain_id: CHAIN_ID,
        timestamp: GENESIS_TIME,
        alloc: funded.map(|a| (a, Amount::open(10_000))).collect(),
        params: vec![("staking.min_self_bond".into(), 100 * ONE_OPEN)],
        operators: BONDS
            .iter()
            .enumerate()
            .map(|(i, bond)| GenesisOperator {
                operator: operator(i),
                role: runtime::staking::ROLE_VALIDATOR,
                consensus_key: consensus_key(i).public(),
                serving_key: Address::ZERO,
                commission_bps: 500,
                bond: Amount::open(*bond),
            })
            .collect(),
        calls: vec![],
        base_model: None,
    }
}

fn open(dir: &std::path::Path) -> Arc<Chain> {
    Chain::open(ChainConfig {
        data_dir: dir.to_path_buf(),
        genesis: genesis(),
        block_time: BlockTime::External,
        history: 100,
        pool: PoolConfig::default(),
        max_txs_per_block: MAX_TXS,
    })
    .unwrap()
}

fn transfer(key: &SecretKey, nonce: u64, to: Address, value: u128) -> Vec<u8> {
    let t = TxEip1559 {
        chain_id: CHAIN_ID,
        nonce,
        gas_limit: 21_000,
        max_fee_per_gas: 10 * GWEI,
        max_priority_fee_per_gas: GWEI,
        to: TxKind::Call(to),
        value: U256::from(value),
        access_list: Default::default(),
        input: Bytes::new(),
    };
    encode_2718(&sign_eip1559(key, t))
}

/// A certificate for `hash` at `height` (round 0) signed by the validators `signers`.
fn certify(height: u64, hash: B256, signers: &[usize]) -> CommitCertificate {
    let mut c = CommitCertificate { height, round: 0, block_hash: hash, signatures: vec![] };
    let msg = c.sign_bytes(CHAIN_ID);
    c.signatures = signers
        .iter()
        .map(|&i| CommitSignature { validator: operator(i), signature: consensus_key(i).sign(&msg) })
        .collect();
    c
}

/// Decide the head's next height as an engine would: `proposer` proposes,
/// every other chain checks, all commit with a certificate of every validator.
fn decide(proposer: &Chain, others: &[&Chain]) -> (B256, CommitCertificate) {
    let height = proposer.committed_height() + 1;
    let block = proposer.propose(height).unwrap();
    assert_eq!(block.number, height);
    for c in others {
        assert_eq!(c.check(height, &block.bytes).unwrap(), block.hash, "the validator re-executes the same block");
    }
    let cert = certify(height, block.hash, ALL);
    for c in std::iter::once(&proposer).chain(others) {
        c.commit(height, block.hash, &cert).unwrap();
        assert_eq!(c.head().hash, block.hash);
    }
    (block.hash, cert)
}

/// The block `bytes` with `change` made to it.
fn tampered(bytes: &[u8], change: impl FnOnce(&mut WireBlock)) -> Vec<u8> {
    let mut w = decode_block(bytes).unwrap();
    change(&mut w);
    encode_block(&w.header, &w.txs, w.last_commit.as_ref())
}

/// `chain` refuses `bytes` at `height` with a message holding `word`, and its head stays.
fn refused(chain: &Chain, height: u64, bytes: &[u8], word: &str) {
    let head = chain.head().hash;
    match chain.check(height, bytes) {
        Err(ChainError::InvalidBlock { block, what }) => {
            assert_eq!(block, height);
            assert!(what.contains(word), "wanted {word:?} in {what:?}");
        }
        other => panic!("wanted a refusal saying {word:?}, got {other:?}"),
    }
    assert_eq!(chain.head().hash, head, "a refused block leaves the head");
}

fn invalid_says<T: std::fmt::Debug>(r: Result<T, ChainError>, word: &str) {
    match r {
        Err(ChainError::InvalidBlock { what, .. }) => assert!(what.contains(word), "wanted {word:?} in {what:?}"),
        other => panic!("wanted a refusal saying {word:?}, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proposed_block_is_checked_and_committed_alike_by_another_validator() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (open(da.path()), open(db.path()));
    assert_eq!(a.head().hash, b.head().hash, "same genesis");
    let set = a.validator_set(1).unwrap();
    let mut members = set.operators.clone();
    members.sort();
    let mut bonded: Vec<Address> = (0..BONDS.len()).map(operator).collect();
    bonded.sort();
    assert_eq!(members, bonded, "the bonded validators decide height 1");

    // Height 1 carries no certificate; height 2 carries height 1's.
    let (h1, cert1) = decide(&a, &[&b]);
    let proposal = a.propose(2).unwrap();
    assert_eq!(decode_block(&proposal.bytes).unwrap().last_commit, Some(cert1.clone()));
    assert_eq!(b.check(2, &proposal.bytes).unwrap(), proposal.hash);
    let cert2 = certify(2, proposal.hash, ALL);
    a.commit(2, proposal.hash, &cert2).unwrap();
    b.commit(2, proposal.hash, &cert2).unwrap();
    assert_eq!(a.head().hash, b.head().hash);
    assert_eq!(a.certificate(1).unwrap(), Some(cert1.clone()), "the carried certificate is served");

    // Transactions in the proposer's pool go into its block; the other validator executes them too.
    let (u0, u1, to) = (user(0), user(1), Address::repeat_byte(0x42));
    for raw in [transfer(&u0, 0, to, ONE_OPEN), transfer(&u0, 1, to, ONE_OPEN), transfer(&u1, 0, to, 3 * ONE_OPEN)] {
        a.submit(&raw).await.unwrap();
    }
    assert_eq!(a.pool_len(), 3);
    let proposal = a.propose(3).unwrap();
    assert_eq!(decode_block(&proposal.bytes).unwrap().txs.len(), 3);
    assert_eq!(b.check(3, &proposal.bytes).unwrap(), proposal.hash);
    let cert3 = certify(3, proposal.hash, ALL);
    a.commit(3, proposal.hash, &cert3).unwrap();
    b.commit(3, proposal.hash, &cert3).unwrap();
    assert_eq!(a.head().hash, b.head().hash);
    assert_eq!(a.pool_len(), 0, "committed transactions leave the pool");
    let balance = |c: &Chain| c.snapshot().unwrap().balance(&to).unwrap();
    assert_eq!(balance(&a), Amount(5 * ONE_OPEN));
    assert_eq!(balance(&b), balance(&a));

    // What a syncing peer gets decodes to the committed block, and a third node accepts it.
    let dc = tempfile::tempdir().unwrap();
    let c = open(dc.path());
    for height in 1..=3 {
        let (bytes, cert) = a.decided(height).unwrap().unwrap();
        let w = decode_block(&bytes).unwrap();
        let stored = a.snapshot().unwrap().header(height).unwrap().unwrap();
        assert_eq!(w.header.hash_slow(), stored.hash_slow());
        assert_eq!(w.last_commit.is_some(), height > 1);
        assert_eq!(cert.height, height);
        assert_eq!(c.check(height, &bytes).unwrap(), stored.hash_slow());
        c.commit(height, stored.hash_slow(), &cert).unwrap();
    }
    assert_eq!(a.decided(1).unwrap().unwrap().1, cert1);
    assert_eq!(decode_block(&a.decided(2).unwrap().unwrap().0).unwrap().last_commit, Some(cert1));
    assert_eq!(c.head().hash, a.head().hash);
    assert!(a.decided(4).unwrap().is_none(), "nothing decided above the head");
    assert_eq!(a.snapshot().unwrap().header(1).unwrap().unwrap().hash_slow(), h1);
}

#[test]
fn bft_blocks_replay() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (open(da.path()), open(db.path()));
    for _ in 0..2 {
        decide(&a, &[&b]);
        decide(&b, &[&a]);
    }
    assert_eq!(a.committed_height(), 4);
    let scratch = tempfile::tempdir().unwrap();
    assert_eq!(chain::replay_dir(&a, scratch.path()).unwrap(), 4);
    let scratch = tempfile::tempdir().unwrap();
    assert_eq!(chain::replay_dir(&b, scratch.path()).unwrap(), 4);
}

#[test]
fn malformed_or_misplaced_blocks_are_refused() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (open(da.path()), open(db.path()));
    let good = a.propose(1).unwrap().bytes;
    let genesis_hash = b.head().hash;

    // Only the head's next height is built or checked.
    for h in [0, 2, u64::MAX] {
        invalid_says(a.propose(h), "only 1");
        refused(&b, h, &good, "only 1");
    }
    // The header must extend the head, in time.
    refused(&b, 1, &tampered(&good, |w| w.header.number = 2), "does not extend");
    refused(&b, 1, &tampered(&good, |w| w.header.parent_hash = B256::repeat_byte(9)), "does not extend");
    refused(&b, 1, &tampered(&good, |w| w.header.timestamp = GENESIS_TIME - 1), "before its parent");
    let far =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + MAX_FUTURE_SECS + 60;
    refused(&b, 1, &tampered(&good, |w| w.header.timestamp = far), "in the future");
    // Whatever the header claims about execution must be what execution gives.
    refused(&b, 1, &tampered(&good, |w| w.header.state_root = B256::repeat_byte(1)), "differs");
    refused(&b, 1, &tampered(&good, |w| w.header.receipts_root = B256::repeat_byte(1)), "differs");
    refused(&b, 1, &tampered(&good, |w| w.header.gas_used = 21_000), "differs");
    refused(&b, 1, &tampered(&good, |w| w.header.extra_data = Bytes::from_static(b"openledger")), "differs");
    // The transactions: each must decode and apply, the list is bounded, and it must be the header's.
    let to = Address::repeat_byte(7);
    let gapped = transfer(&user(0), 5, to, 1);
    refused(&b, 1, &tampered(&good, |w| w.txs = vec![Bytes::from(gapped)]), "nonce");
    refused(&b, 1, &tampered(&good, |w| w.txs = vec![Bytes::from_static(&[0x02, 0xc0, 0x01])]), "transaction");
    let many = vec![Bytes::from(transfer(&user(0), 0, to, 1)); MAX_TXS + 1];
    refused(&b, 1, &tampered(&good, |w| w.txs = many), "more than 8");
    let honest = transfer(&user(0), 0, to, 1);
    refused(&b, 1, &tampered(&good, |w| w.txs = vec![Bytes::from(honest)]), "differs");
    // The bytes: bounded, complete, nothing after the block.
    refused(&b, 1, &vec![0u8; MAX_BLOCK_BYTES + 1], "exceeds");
    let mut trailing = good.clone();
    trailing.push(0);
    refused(&b, 1, &trailing, "trailing");
    refused(&b, 1, &good[..good.len() - 1], "last commit");
    refused(&b, 1, &good[..good.len() / 2], "block header");
    refused(&b, 1, &[], "block header");
    assert_eq!(b.committed_height(), 0);

    // Committing needs a checked block; a committed height cannot change.
    let cert = |h: B256| certify(1, h, ALL);
    let stranger = B256::repeat_byte(0xee);
    invalid_says(b.commit(1, stranger, &cert(stranger)), "never checked");
    invalid_says(b.commit(2, stranger, &cert(stranger)), "only 1");
    assert_eq!(b.head().hash, genesis_hash);
    let hash = b.check(1, &good).unwrap();
    b.commit(1, hash, &cert(hash)).unwrap();
    invalid_says(b.commit(1, stranger, &cert(stranger)), "conflicts");
    b.commit(1, hash, &cert(hash)).unwrap();
    assert_eq!((b.committed_height(), b.head().hash), (1, hash), "a replayed decision is a no-op");
    refused(&b, 1, &good, "only 2");
}

#[test]
fn a_carried_certificate_must_prove_the_head() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (open(da.path()), open(db.path()));
    let (h1, _) = decide(&a, &[&b]);
    let good = a.propose(2).unwrap();
    let with = |c: CommitCertificate| tampered(&good.bytes, |w| w.last_commit = Some(c));

    refused(&b, 2, &with(certify(0, h1, ALL)), "not the head");
    refused(&b, 2, &with(certify(2, h1, ALL)), "not the head");
    refused(&b, 2, &with(certify(u64::MAX, h1, ALL)), "not the head");
    refused(&b, 2, &with(certify(1, B256::repeat_byte(5), ALL)), "not the head");
    refused(&b, 2, &with(certify(1, h1, &[0, 3])), "not more than two thirds");
    refused(&b, 2, &with(certify(1, h1, &[0, 1, 2])), "not more than two thirds");
    refused(&b, 2, &with(certify(1, h1, &[])), "not more than two thirds");
    let mut forged = certify(1, h1, ALL);
    forged.signatures[1].signature[0] ^= 1;
    refused(&b, 2, &with(forged), "does not verify");
    let mut other_round = certify(1, h1, ALL);
    other_round.round = 1;
    refused(&b, 2, &with(other_round), "does not verify");
    let mut twice = certify(1, h1, &[0, 1, 2]);
    twice.signatures.push(twice.signatures[2].clone());
    refused(&b, 2, &with(twice), "twice");
    let mut outsider = certify(1, h1, ALL);
    let msg = outsider.sign_bytes(CHAIN_ID);
    outsider
        .signatures
        .push(CommitSignature { validator: user(0).address(), signature: ConsensusKey::dev("x").sign(&msg) });
    refused(&b, 2, &with(outsider), "not in the validator set");
    // A valid certificate, but not the one the header binds.
    refused(&b, 2, &with(certify(1, h1, &[0, 1, 3])), "differs");
    // None at all, above a decided parent: its signers would escape downtime.
    refused(&b, 2, &tampered(&good.bytes, |w| w.last_commit = None), "carries no certificate");
    // A certificate in bytes that do not decode.
    let garbled = {
        let mut w = decode_block(&good.bytes).unwrap();
        let mut raw = Vec::new();
        alloy_rlp::Encodable::encode(&w.header, &mut raw);
        alloy_rlp::Encodable::encode(&std::mem::take(&mut w.txs), &mut raw);
        alloy_rlp::Encodable::encode(&Bytes::from_static(b"olcc\x01 short"), &mut raw);
        raw
    };
    refused(&b, 2, &garbled, "last commit");

    assert_eq!(b.committed_height(), 1);
    assert_eq!(b.check(2, &good.bytes).unwrap(), good.hash, "the genuine block still checks");
}

#[test]
fn certificates_are_verified_against_the_set_of_their_height() {
    let dir = tempfile::tempdir().unwrap();
    let chain = open(dir.path());
    let set = chain.validator_set(1).unwrap();
    let hash = B256::repeat_byte(3);
    let verify = |c: &CommitCertificate| verify_certificate(c, &set, CHAIN_ID);
    assert_eq!(verify(&certify(1, hash, ALL)), Ok(6_000));
    assert_eq!(verify(&certify(1, hash, &[0, 1, 3])), Ok(5_000));
    let err = |c: &CommitCertificate| verify(c).unwrap_err();
    assert!(err(&certify(1, hash, &[0, 3])).contains("4000 of 6000"), "exactly two thirds is not enough");
    assert!(err(&certify(1, hash, &[])).contains("0 of 6000"));
    assert!(verify_certificate(&certify(1, hash, ALL), &set, CHAIN_ID + 1).unwrap_err().contains("does not verify"));
    let mut c = certify(1, hash, ALL);
    c.signatures[3].signature = c.signatures[0].signature;
    assert!(err(&c).contains("does not verify"));
    let mut c = certify(1, hash, ALL);
    c.signatures.push(c.signatures[0].clone());
    assert!(err(&c).contains("signed twice"));
    let mut c = certify(1, hash, ALL);
    c.signatures[0].validator = Address::repeat_byte(1);
    assert!(err(&c).contains("not in the validator set"));
    // With no validators, nothing is ever certified.
    let empty = runtime::staking::ValidatorSetRecord { operators: vec![], consensusKeys: vec![], powers: vec![] };
    assert!(verify_certificate(&certify(0, hash, &[]), &empty, CHAIN_ID).is_err());
}
