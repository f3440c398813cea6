//! Datanets through the module's ABI, as transactions would drive it: attested
//! submissions, curation, versions whose roots match `primitives::rows`, tombstones,
//! limits and refusals.

use std::collections::BTreeMap;

use alloy_primitives::U256;
use alloy_sol_types::{SolInterface, SolStruct};
use primitives::abi::IDatanets::{self, IDatanetsCalls, IDatanetsErrors};
use primitives::abi::{ContributionAttestation, DatanetLimits};
use primitives::rows::{Row, VersionEntry, rows_root, version_root};
use primitives::system::{Module, TREASURY};
use primitives::{Address, Amount, B256, ONE_OPEN};
use runtime::bank::{BankRead, BankWrite};
use runtime::datanets::DatanetsRead;
use runtime::{BlockEnv, CallCtx, CallFail, Genesis, Overlay};

mod common;
use common::Mem;

struct World {
    mem: Mem,
    height: u64,
}

const NOW: u64 = 1_800_000_000;

impl World {
    fn new(accounts: &[Address]) -> World {
        let g = Genesis {
            chain_id: 31337,
            timestamp: 0,
            alloc: accounts.iter().map(|a| (*a, Amount::open(1_000))).collect(),
            params: vec![],
            operators: vec![],
            calls: vec![],
            base_model: None,
        };
        let mut mem = Mem(BTreeMap::new());
        let e = runtime::EmptyState;
        let mut st = Overlay::new(&e);
        g.apply(&mut st).unwrap();
        for (k, v) in st.into_writes() {
            if let Some(v) = v {
                mem.0.insert(k, v);
            }
        }
        World { mem, height: 1 }
    }

    /// One call in its own block, all or nothing; returns the output or the decoded error.
    fn call(
        &mut self,
        who: Address,
        value: Amount,
        c: IDatanetsCalls,
    ) -> Result<alloy_primitives::Bytes, IDatanetsErrors> {
        let env = BlockEnv {
            chain_id: 31337,
            number: self.height,
            timestamp: NOW + self.height,
            base_fee: 1,
            gas_limit: 30_000_000,
            coinbase: Address::ZERO,
            last_commit: None,
        };
        self.height += 1;
        let (r, writes) = {
            let mut st = Overlay::new(&self.mem);
            let mut ctx = CallCtx { env: &env, sender: who, value, logs: vec![], calls: vec![] };
            let r = st
                .transfer(&who, &runtime::datanets::ADDRESS, value)
                .and_then(|_| runtime::datanets::execute(&mut st, &mut ctx, c));
            (r, st.into_writes())
        };
        match r {
            Ok(out) => {
                for (k, v) in writes {
                    match v {
                        Some(v) => self.mem.0.insert(k, v),
                        None => self.mem.0.remove(&k),
                    };
                }
                Ok(out)
            }
            Err(CallFail::Revert(d)) => {
                Err(IDatanetsErrors::abi_decode(&d).unwrap_or_else(|_| panic!("not a datanets error: {d}")))
            }
            Err(CallFail::Fatal(e)) => panic!("{e}"),
        }
    }
}

fn rows(tag: &str, n: usize) -> Vec<Row> {
    (0..n).map(|i| Row::Text { text: format!("{tag} row {i}: some text that is long enough") }).collect()
}

fn attest(
    attester: &keys::SecretKey,
    datanet: u64,
    contributor: Address,
    rs: &[Row],
    issued: u64,
) -> (ContributionAttestation, Vec<u8>) {
    let leaves: Vec<B256> = rs.iter().map(Row::leaf).collect();
    let a = ContributionAttestation {
        datanetId: datanet,
        contributor,
        contentHash: primitives::content_hash(format!("{rs:?}").as_bytes()),
        rowsRoot: rows_root(&leaves),
        rowCount: rs.len() as u32,
        byteSize: 1_000,
        qualityBps: 8_000,
        scorerVersion: 1,
        exactDuplicates: 0,
        nearDuplicates: 0,
        findingsHash: B256::repeat_byte(7),
        issuedAt: issued,
    };
    let h = a.eip712_signing_hash(&Module::Datanets.eip712_domain(31337));
    let sig = attester.sign_hash(&h);
    (a, sig.as_bytes().to_vec())
}

fn create(
    w: &mut World,
    owner: Address,
    curators: Vec<Address>,
    attesters: Vec<Address>,
    policy: u8,
    bond: u128,
) -> u64 {
    let out = w
        .call(
            owner,
            Amount::ZERO,
            IDatanetsCalls::createDatanet(IDatanets::createDatanetCall {
                name: "medical-qa".into(),
                summary: "Q&A".into(),
                description: "# Medical Q&A".into(),
                tags: vec!["medical".into()],
                dataType: 0,
                licence: "CC-BY-4.0".into(),
                policy,
                contributorBond: U256::from(bond),
                curators,
                attesters,
                limits: DatanetLimits {
                    maxSubmissionBytes: 0,
                    contributorDailyBytes: 0,
                    datanetDailyBytes: 0,
                    contributorDailyFiles: 3,
                },
            }),
        )
        .unwrap();
    u64::from_be_bytes(out[24..32].try_into().unwrap())
}

fn submit(
    w: &mut World,
    who: Address,
    bond: u128,
    a: ContributionAttestation,
    sig: Vec<u8>,
) -> Result<u64, IDatanetsErrors> {
    w.call(
        who,
        Amount(bond),
        IDatanetsCalls::submitContribution(IDatanets::submitContributionCall { attestation: a, signature: sig.into() }),
    )
    .map(|out| u64::from_be_bytes(out[24..32].try_into().unwrap()))
}

#[test]
fn curation_versions_tombstones_and_refusals() {
    let attester = keys::SecretKey::from_bytes(&[0xa7; 32]).unwrap();
    let forger = keys::SecretKey::from_bytes(&[0xf0; 32]).unwrap();
    let (owner, curator, alice, bob, outsider) = (
        Address::with_last_byte(1),
        Address::with_last_byte(2),
        Address::with_last_byte(3),
        Address::with_last_byte(4),
        Address::with_last_byte(5),
    );
    let mut w = World::new(&[owner, curator, alice, bob, outsider]);
    let bond = ONE_OPEN;
    let id = create(&mut w, owner, vec![curator], vec![attester.address()], 0, bond);
    let ra = rows("alice", 5);
    let rb = rows("bob", 3);
    let (a1, s1) = attest(&attester, id, alice, &ra, NOW);
    let c1 = submit(&mut w, alice, bond, a1.clone(), s1.clone()).unwrap();
    assert_eq!(w.mem.balance(&alice).unwrap(), Amount(1_000 * ONE_OPEN - bond));
    // The same attestation again, a forged one, one for someone else, a wrong bond, a stale one.
    assert!(matches!(submit(&mut w, alice, bond, a1.clone(), s1.clone()), Err(IDatanetsErrors::AttestationReused(_))));
    let (af, sf) = attest(&forger, id, bob, &rb, NOW);
    assert!(matches!(submit(&mut w, bob, bond, af, sf), Err(IDatanetsErrors::UntrustedAttester(_))));
    let (ab, sb) = attest(&attester, id, bob, &rb, NOW);
    assert!(matches!(submit(&mut w, alice, bond, ab.clone(), sb.clone()), Err(IDatanetsErrors::InvalidAttestation(_))));
    assert!(matches!(submit(&mut w, bob, bond - 1, ab.clone(), sb.clone()), Err(IDatanetsErrors::BondMismatch(_))));
    let (old, so) = attest(&attester, id, bob, &rb, NOW - 200_000);
    assert!(matches!(submit(&mut w, bob, bond, old, so), Err(IDatanetsErrors::AttestationExpired(_))));
    let mut tampered = ab.clone();
    tampered.qualityBps = 10_000;
    assert!(matches!(submit(&mut w, bob, bond, tampered, sb.clone()), Err(IDatanetsErrors::UntrustedAttester(_))));
    let c2 = submit(&mut w, bob, bond, ab, sb).unwrap();
    // Approval by a non-curator, then by the curator; double approval.
    assert!(matches!(
        w.call(outsider, Amount::ZERO, IDatanetsCalls::approve(IDatanets::approveCall { contributionId: c1 })),
        Err(IDatanetsErrors::NotCurator(_))
    ));
    w.call(curator, Amount::ZERO, IDatanetsCalls::approve(IDatanets::approveCall { contributionId: c1 })).unwrap();
    assert!(matches!(
        w.call(curator, Amount::ZERO, IDatanetsCalls::approve(IDatanets::approveCall { contributionId: c1 })),
        Err(IDatanetsErrors::NotPending(_))
    ));
    assert_eq!(w.mem.balance(&alice).unwrap(), Amount::open(1_000), "bond returned on approval");
    // Withdrawal after approval is refused; bob's is rejected as duplicate: half the bond to the treasury.
    assert!(matches!(
        w.call(alice, Amount::ZERO, IDatanetsCalls::withdraw(IDatanets::withdrawCall { contributionId: c1 })),
        Err(IDatanetsErrors::NotPending(_))
    ));
    let t0 = w.mem.balance(&TREASURY).unwrap();
    w.call(
        owner,
        Amount::ZERO,
        IDatanetsCalls::reject(IDatanets::rejectCall { contributionId: c2, reason: 2, note: "copy of c1".into() }),
    )
    .unwrap();
    assert_eq!(w.mem.balance(&TREASURY).unwrap().0 - t0.0, bond / 2);
    assert_eq!(w.mem.balance(&bob).unwrap().0, 1_000 * ONE_OPEN - bond / 2);
    // The version root equals the reference computation over approved contributions.
    let v1 = w.mem.version(id, 1).unwrap().unwrap();
    let leaves_a: Vec<B256> = ra.iter().map(Row::leaf).collect();
    let mut m = BTreeMap::new();
    m.insert(c1, VersionEntry { rows_root: rows_root(&leaves_a), row_count: 5 });
    assert_eq!(v1.root, version_root(&m));
    assert_eq!((v1.rowCount, v1.liveRows, v1.closed), (5, 5, false));
    // A second approved contribution from bob.
    let rb2 = rows("bob-2", 4);
    let (ab2, sb2) = attest(&attester, id, bob, &rb2, NOW + 10);
    let c3 = submit(&mut w, bob, bond, ab2, sb2).unwrap();
    w.call(curator, Amount::ZERO, IDatanetsCalls::approve(IDatanets::approveCall { contributionId: c3 })).unwrap();
    let leaves_b: Vec<B256> = rb2.iter().map(Row::leaf).collect();
    m.insert(c3, VersionEntry { rows_root: rows_root(&leaves_b), row_count: 4 });
    let v2 = w.mem.version(id, 2).unwrap().unwrap();
    assert_eq!(v2.root, version_root(&m));
    assert_eq!(v2.parent, 1);
    // Tombstone alice's row 2: a wrong proof is refused; the right one makes version 3 without it.
    let proof = primitives::merkle::prove(&leaves_a, 2).unwrap();
    let bad = IDatanets::tombstoneCall {
        contributionId: c1,
        rowIndex: 2,
        rowLeaf: leaves_a[1],
        proof: proof.siblings.clone(),
        reason: "consent withdrawn".into(),
    };
    assert!(matches!(
        w.call(owner, Amount::ZERO, IDatanetsCalls::tombstone(bad)),
        Err(IDatanetsErrors::InvalidRowProof(_))
    ));
    let good = IDatanets::tombstoneCall {
        contributionId: c1,
        rowIndex: 2,
        rowLeaf: leaves_a[2],
        proof: proof.siblings.clone(),
        reason: "consent withdrawn".into(),
    };
    assert!(matches!(
        w.call(curator, Amount::ZERO, IDatanetsCalls::tombstone(good.clone())),
        Err(IDatanetsErrors::NotOwner(_))
    ));
    w.call(owner, Amount::ZERO, IDatanetsCalls::tombstone(good.clone())).unwrap();
    assert!(matches!(
        w.call(owner, Amount::ZERO, IDatanetsCalls::tombstone(good)),
        Err(IDatanetsErrors::AlreadyTombstoned(_))
    ));
    let mut tomb_leaves = leaves_a.clone();
    tomb_leaves[2] = primitives::rows::TOMBSTONE_LEAF;
    m.insert(c1, VersionEntry { rows_root: rows_root(&tomb_leaves), row_count: 5 });
    let v3 = w.mem.version(id, 3).unwrap().unwrap();
    assert_eq!(v3.root, version_root(&m));
    assert_eq!((v3.rowCount, v3.liveRows, v3.closed), (9, 8, false));
    assert!(w.mem.version(id, 1).unwrap().unwrap().closed && w.mem.version(id, 2).unwrap().unwrap().closed);
    assert_eq!(w.mem.version(id, 1).unwrap().unwrap().root, v1.root, "old roots are kept for audit");
    assert!(w.mem.is_tombstoned(c1, 2).unwrap());
    let t = w.mem.tombstone(c1, 2).unwrap().unwrap();
    assert_eq!((t.version, t.reason.as_str()), (3, "consent withdrawn"));
    // Daily file limit (3 per contributor per day): alice already used 1 today.
    for i in 0..2 {
        let (a, s) = attest(&attester, id, alice, &rows(&format!("more{i}"), 1), NOW + 20 + i);
        submit(&mut w, alice, bond, a, s).unwrap();
    }
    let (a, s) = attest(&attester, id, alice, &rows("over", 1), NOW + 30);
    assert!(matches!(submit(&mut w, alice, bond, a, s), Err(IDatanetsErrors::LimitExceeded(_))));
    // Unsupported data type; an allow-list Datanet refuses outsiders.
    let e = w.call(
        owner,
        Amount::ZERO,
        IDatanetsCalls::createDatanet(IDatanets::createDatanetCall {
            name: "images".into(),
            summary: String::new(),
            description: String::new(),
            tags: vec![],
            dataType: 1,
            licence: "CC0-1.0".into(),
            policy: 0,
            contributorBond: U256::ZERO,
            curators: vec![],
            attesters: vec![],
            limits: DatanetLimits {
                maxSubmissionBytes: 0,
                contributorDailyBytes: 0,
                datanetDailyBytes: 0,
                contributorDailyFiles: 0,
            },
        }),
    );
    assert!(matches!(e, Err(IDatanetsErrors::UnsupportedDataType(_))));
    let closed = create(&mut w, owner, vec![], vec![attester.address()], 1, 0);
    let (a, s) = attest(&attester, closed, outsider, &rows("x", 1), NOW + 40);
    assert!(matches!(submit(&mut w, outsider, 0, a.clone(), s.clone()), Err(IDatanetsErrors::NotMember(_))));
    w.call(
        owner,
        Amount::ZERO,
        IDatanetsCalls::setMembers(IDatanets::setMembersCall { id: closed, add: vec![outsider], remove: vec![] }),
    )
    .unwrap();
    submit(&mut w, outsider, 0, a, s).unwrap();
    // Supply: the module holds exactly the pending bonds (alice's two extra submissions).
    assert_eq!(w.mem.balance(&runtime::datanets::ADDRESS).unwrap(), Amount(2 * bond));
}

/// A state that counts its reads.
struct Counting<'a>(&'a Mem, std::cell::Cell<u64>);

impl primitives::state::StateRead for Counting<'_> {
    fn get(&self, k: &[u8]) -> Result<Option<Vec<u8>>, primitives::state::StateError> {
        self.1.set(self.1.get() + 1);
        self.0.get(k)
    }
}

/// Keys a call reads (run over the world's state, nothing kept).
fn reads_of(w: &World, who: Address, c: IDatanetsCalls) -> u64 {
    let counting = Counting(&w.mem, std::cell::Cell::new(0));
    let env = BlockEnv {
        chain_id: 31337,
        number: w.height,
        timestamp: NOW + w.height,
        base_fee: 1,
        gas_limit: 30_000_000,
        coinbase: Address::ZERO,
        last_commit: None,
    };
    let mut st = Overlay::new(&counting);
    let mut ctx = CallCtx { env: &env, sender: who, value: Amount::ZERO, logs: vec![], calls: vec![] };
    runtime::datanets::execute(&mut st, &mut ctx, c).expect("the call succeeds");
    counting.1.get()
}

/// A Datanet with `n` approved contributions (n versions) from `n` contributors.
fn grown(n: usize) -> (World, u64, Address) {
    let attester = keys::SecretKey::from_bytes(&[0xa7; 32]).unwrap();
    let owner = Address::repeat_byte(0x0a);
    let contributors: Vec<Address> = (0..n).map(|i| Address::from_word(B256::from(U256::from(i + 1)))).collect();
    let mut all = contributors.clone();
    all.push(owner);
    let mut w = World::new(&all);
    let id = create(&mut w, owner, vec![], vec![attester.address()], 0, 0);
    for (i, who) in contributors.iter().enumerate() {
        let (a, sig) = attest(&attester, id, *who, &rows(&format!("c{i}"), 2), NOW + w.height);
        let cid = submit(&mut w, *who, 0, a, sig).unwrap();
        w.call(owner, Amount::ZERO, IDatanetsCalls::approve(IDatanets::approveCall { contributionId: cid })).unwrap();
    }
    (w, id, owner)
}

/// Calls whose work grew with the Datanet (flagging looped over every later
/// version, a submission rewrote the whole contribution lists, the
/// leaderboard read every contribution) read a number of keys that does not
/// depend on how many contributions and versions there are.
#[test]
fn curation_and_views_do_not_grow_with_the_datanet() {
    let (small, id_s, owner_s) = grown(8);
    let (large, id_l, owner_l) = grown(64);
    let flag =
        |id_c| IDatanetsCalls::flag(IDatanets::flagCall { contributionId: id_c, reason: 1, note: "copy".into() });
    let (a, b) = (reads_of(&small, owner_s, flag(1)), reads_of(&large, owner_l, flag(1)));
    // The same keys but for Fenwick nodes, whose number depends on the version's
    // bits (at most 32 per update), not on how many versions there are.
    assert!(b <= a + 32 && b < 120, "flagging the first contribution: {a} reads with 8 versions, {b} with 64");
    let board = |id| IDatanetsCalls::leaderboard(IDatanets::leaderboardCall { id, offset: 0, limit: 5 });
    assert_eq!(reads_of(&small, owner_s, board(id_s)), reads_of(&large, owner_l, board(id_l)));
    // The flag takes effect on every version that holds the rows, and only there.
    let mut w = large;
    let before = w.mem.version(id_l, 64).unwrap().unwrap().liveRows;
    w.call(owner_l, Amount::ZERO, flag(1)).unwrap();
    for v in [1, 2, 64] {
        let r = w.mem.version(id_l, v).unwrap().unwrap();
        assert!(r.closed, "version {v} holds the flagged rows");
    }
    assert_eq!(w.mem.version(id_l, 64).unwrap().unwrap().liveRows, before - 2);
    assert_eq!(w.mem.version(id_l, 1).unwrap().unwrap().liveRows, 0);
    // The leaderboard pages the contributors with their standings.
    let out = w
        .call(
            owner_l,
            Amount::ZERO,
            IDatanetsCalls::leaderboard(IDatanets::leaderboardCall { id: id_l, offset: 0, limit: 3 }),
        )
        .unwrap();
    let r = <IDatanets::leaderboardCall as alloy_sol_types::SolCall>::abi_decode_returns(&out).unwrap();
    assert_eq!(r.approvedRows, vec![0, 2, 2], "the flagged contributor's rows no longer count");
    assert_eq!(r.acceptanceBps, vec![0, 10_000, 10_000]);
}
