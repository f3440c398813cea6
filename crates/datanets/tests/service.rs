//! The Datanet service over a chain state built from a genesis: who may read
//! and train on a Datanet (and that a change on chain is seen at once), the
//! blob access policy before and after the start-up sync, the rows read back
//! checked against the chain, and the errors of missing data.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use alloy_sol_types::{SolCall, SolStruct};
use datanets::{DatanetBlobPolicy, DatanetService, FindingsReport, ReaderError, StateSource};
use primitives::abi::{ContributionAttestation, DatanetLimits, IDatanets};
use primitives::rows::{Row, rows_root};
use primitives::state::{StateError, StateRead};
use primitives::system::Module;
use primitives::{Address, Amount, B256, Bytes, U256};
use runtime::datanets::DatanetsRead;
use runtime::genesis::GenesisCall;

const CHAIN_ID: u64 = 31337;
const NOW: u64 = 1_700_000_000;
const PUBLIC: u64 = 1;
const PRIVATE: u64 = 2;

type Map = Arc<BTreeMap<Vec<u8>, Vec<u8>>>;

/// The state a node's chain would hand the service; tests swap it as blocks would.
struct Source(Mutex<Map>);

struct MapState(Map);

impl StateRead for MapState {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        Ok(self.0.get(key).cloned())
    }
}

impl StateSource for Source {
    fn state(&self) -> Result<Box<dyn StateRead>, String> {
        Ok(Box::new(MapState(self.0.lock().unwrap().clone())))
    }
    fn chain_id(&self) -> u64 {
        CHAIN_ID
    }
}

fn key(i: u32) -> keys::SecretKey {
    keys::derive_account(keys::DEV_MNEMONIC, i).unwrap()
}

struct People {
    owner: Address,
    curator: Address,
    member: Address,
    stranger: Address,
    attester: keys::SecretKey,
}

fn people() -> People {
    People {
        owner: key(0).address(),
        curator: key(1).address(),
        member: key(2).address(),
        stranger: key(3).address(),
        attester: key(4),
    }
}

fn create(p: &People, policy: u8) -> GenesisCall {
    let call = IDatanets::createDatanetCall {
        name: format!("policy {policy}"),
        summary: String::new(),
        description: String::new(),
        tags: vec![],
        dataType: 0,
        licence: "CC0-1.0".into(),
        policy,
        contributorBond: U256::ZERO,
        curators: vec![p.curator],
        attesters: vec![p.attester.address()],
        limits: DatanetLimits {
            maxSubmissionBytes: 0,
            contributorDailyBytes: 0,
            datanetDailyBytes: 0,
            contributorDailyFiles: 0,
        },
    };
    GenesisCall { from: p.owner, to: Module::Datanets.address(), value: Amount::ZERO, data: call.abi_encode().into() }
}

fn set_members(p: &People, add: Vec<Address>) -> GenesisCall {
    let call = IDatanets::setMembersCall { id: PRIVATE, add, remove: vec![] };
    GenesisCall { from: p.owner, to: Module::Datanets.address(), value: Amount::ZERO, data: call.abi_encode().into() }
}

/// The member's contribution of `rows` to the private Datanet, attested.
fn contribute(p: &People, rows: &[Row], content: B256, findings: B256) -> GenesisCall {
    let leaves: Vec<B256> = rows.iter().map(Row::leaf).collect();
    let a = ContributionAttestation {
        datanetId: PRIVATE,
        contributor: p.member,
        contentHash: content,
        rowsRoot: rows_root(&leaves),
        rowCount: rows.len() as u32,
        byteSize: 100,
        qualityBps: 9_000,
        scorerVersion: 1,
        exactDuplicates: 0,
        nearDuplicates: 0,
        findingsHash: findings,
        issuedAt: NOW,
    };
    let sig = p.attester.sign_hash(&a.eip712_signing_hash(&Module::Datanets.eip712_domain(CHAIN_ID)));
    let call = IDatanets::submitContributionCall { attestation: a, signature: Bytes::from(sig.as_bytes().to_vec()) };
    GenesisCall { from: p.member, to: Module::Datanets.address(), value: Amount::ZERO, data: call.abi_encode().into() }
}

/// The findings report the ingest route would store for the member's `rows`.
fn report(p: &People, content: B256, rows_blob: B256, rows: &[Row]) -> FindingsReport {
    FindingsReport {
        datanet_id: PRIVATE,
        contributor: p.member,
        file_name: "rows.txt".into(),
        content_hash: content,
        rows_blob,
        rows_root: rows_root(&rows.iter().map(Row::leaf).collect::<Vec<_>>()),
        row_count: rows.len() as u32,
        byte_size: 100,
        quality_bps: 9_000,
        scorer_version: 1,
        config_digest: B256::ZERO,
        exact_duplicates: 0,
        near_duplicates: 0,
        rows: vec![],
    }
}

/// The chain state after a genesis running `calls`.
fn state(calls: Vec<GenesisCall>) -> Map {
    let g = runtime::Genesis {
        chain_id: CHAIN_ID,
        timestamp: NOW,
        alloc: vec![],
        params: vec![],
        operators: vec![],
        calls,
        base_model: None,
    };
    let empty = runtime::EmptyState;
    let mut st = runtime::Overlay::new(&empty);
    g.apply(&mut st).unwrap();
    Arc::new(st.into_writes().into_iter().filter_map(|(k, v)| Some((k, v?))).collect())
}

fn service(
    state: Map,
    blobs_dir: &std::path::Path,
    attester: Option<keys::SecretKey>,
) -> (Arc<Source>, Arc<blobs::BlobStore>, Arc<DatanetService>) {
    let source = Arc::new(Source(Mutex::new(state)));
    let blobs = Arc::new(blobs::BlobStore::open(&blobs::BlobConfig::local(blobs_dir)).unwrap());
    let svc = DatanetService::new(source.clone(), blobs.clone(), attester);
    (source, blobs, svc)
}

#[test]
fn who_may_read_and_train_follows_the_chain() {
    let p = people();
    let dir = tempfile::tempdir().unwrap();
    let (source, _, svc) = service(state(vec![create(&p, 0), create(&p, 1)]), dir.path(), None);
    let st = source.state().unwrap();
    let (public, private) = (st.datanet(PUBLIC).unwrap().unwrap(), st.datanet(PRIVATE).unwrap().unwrap());
    drop(st);
    for who in [Some(p.owner), Some(p.stranger), None] {
        assert_eq!(svc.reader_role(PUBLIC, &public, who).unwrap(), Some("public"));
        assert!(svc.may_read(PUBLIC, &public, who, "rows").unwrap());
    }
    let role = |who| svc.reader_role(PRIVATE, &private, who).unwrap();
    assert_eq!(role(Some(p.owner)), Some("owner"));
    assert_eq!(role(Some(p.curator)), Some("curator"));
    assert_eq!(role(Some(p.member)), None, "not a member yet");
    assert_eq!(role(Some(p.stranger)), None);
    assert_eq!(role(None), None, "anonymous callers read no private Datanet");
    assert!(!svc.may_read(PRIVATE, &private, Some(p.stranger), "rows").unwrap());
    assert!(svc.may_train(PUBLIC, p.stranger).unwrap());
    assert!(svc.may_train(PRIVATE, p.curator).unwrap());
    assert!(!svc.may_train(PRIVATE, p.member).unwrap());
    // A block makes them a member: the service reads the new state, it keeps no copy.
    *source.0.lock().unwrap() = state(vec![create(&p, 0), create(&p, 1), set_members(&p, vec![p.member])]);
    assert_eq!(role(Some(p.member)), Some("member"));
    assert!(svc.may_train(PRIVATE, p.member).unwrap());
    assert!(!svc.may_train(PRIVATE, p.stranger).unwrap());
    let e = svc.may_train(9, p.owner).unwrap_err();
    assert!(e.contains("Datanet 9 does not exist"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contribution_blobs_are_placed_at_sync_and_guarded_by_their_datanet() {
    let p = people();
    let dir = tempfile::tempdir().unwrap();
    let (_, blobs, svc) = service(state(vec![]), dir.path(), Some(p.attester.clone()));
    assert_eq!(svc.attester(), Some(p.attester.address()));
    // What the ingest route would have stored: the file, its rows, the findings report.
    let rows = vec![
        Row::Text { text: "first row".into() },
        Row::PromptCompletion { prompt: "2 + 2?".into(), completion: "4".into() },
    ];
    let content = blobs.put(b"first row\n2 + 2?\t4\n".to_vec().into()).await.unwrap();
    let rows_blob = blobs.put(datanets::encode_rows(&rows).into()).await.unwrap();
    let report = report(&p, content, rows_blob, &rows);
    let findings = blobs.put(serde_json::to_vec(&report).unwrap().into()).await.unwrap();
    let chain =
        vec![create(&p, 0), create(&p, 1), set_members(&p, vec![p.member]), contribute(&p, &rows, content, findings)];
    let (_, _, svc) = service(state(chain), dir.path(), None);
    assert_eq!(svc.attester(), None);
    let policy = DatanetBlobPolicy(svc.clone());
    // Before the sync nothing is placed, so nothing is served.
    assert!(!svc.synced());
    assert_eq!(svc.blob_datanet(&content), None);
    assert_eq!(policy.decide(&content, Some(p.member)).unwrap(), None);
    assert!(!blobs::BlobAccessPolicy::allowed(&policy, &content, Some(p.owner)).unwrap(), "deny by default");
    svc.sync_owners().await.unwrap();
    assert!(svc.synced());
    for blob in [content, rows_blob, findings] {
        assert_eq!(svc.blob_datanet(&blob), Some(PRIVATE));
        assert_eq!(policy.decide(&blob, Some(p.member)).unwrap(), Some(true));
        assert_eq!(policy.decide(&blob, Some(p.owner)).unwrap(), Some(true));
        assert_eq!(policy.decide(&blob, Some(p.stranger)).unwrap(), Some(false));
        assert_eq!(policy.decide(&blob, None).unwrap(), Some(false));
    }
    assert_eq!(policy.decide(&B256::repeat_byte(1), Some(p.owner)).unwrap(), None, "not a Datanet's blob");
    // The rows read back are the ones whose root the chain holds.
    let (rec, got) = svc.reader().contribution_rows(1).await.unwrap();
    assert_eq!((rec.attestation.contributor, got), (p.member, rows));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_mismatched_data_is_a_clear_error() {
    let p = people();
    let dir = tempfile::tempdir().unwrap();
    let rows = vec![Row::Text { text: "only row".into() }];
    // The chain names a findings report this node never stored.
    let absent = B256::repeat_byte(0xab);
    let chain = vec![create(&p, 0), create(&p, 1), set_members(&p, vec![p.member])];
    let mut with_contribution = chain.clone();
    with_contribution.push(contribute(&p, &rows, B256::repeat_byte(0xcd), absent));
    let (_, blobs, svc) = service(state(with_contribution.clone()), dir.path(), None);
    let reader = svc.reader();
    assert!(matches!(reader.contribution_rows(1).await, Err(ReaderError::MissingBlob(h)) if h == absent));
    assert!(matches!(reader.contribution_rows(7).await, Err(ReaderError::UnknownContribution(7))));
    let e = reader.version_rows(PRIVATE, 3).await.unwrap_err();
    assert!(matches!(e, ReaderError::UnknownVersion(PRIVATE, 3, 0)), "{e}");
    assert!(matches!(reader.version_rows(9, 1).await, Err(ReaderError::UnknownDatanet(9))));
    // The streaming form refuses alike, in the consumer's own error type, and
    // hands over no row.
    struct Msg(String);
    impl From<ReaderError> for Msg {
        fn from(e: ReaderError) -> Msg {
            Msg(e.to_string())
        }
    }
    let mut seen = 0;
    let streamed = reader.for_each_version_row(PRIVATE, 3, |_| {
        seen += 1;
        Ok::<(), Msg>(())
    });
    let Err(Msg(e)) = streamed.await else { panic!("version 3 of a Datanet without versions was streamed") };
    assert!(e.contains("has no version 3"), "{e}");
    assert_eq!(seen, 0);
    // The sync still places the blobs it can name without the report.
    svc.sync_owners().await.unwrap();
    assert_eq!(svc.blob_datanet(&absent), Some(PRIVATE));
    // A report whose rows do not match the chain's root is refused, not served.
    let other = vec![Row::Text { text: "another row".into() }];
    let rows_blob = blobs.put(datanets::encode_rows(&other).into()).await.unwrap();
    let report = report(&p, B256::repeat_byte(0xcd), rows_blob, &other);
    let findings = blobs.put(serde_json::to_vec(&report).unwrap().into()).await.unwrap();
    let mut tampered = chain;
    tampered.push(contribute(&p, &rows, B256::repeat_byte(0xcd), findings));
    let (_, _, svc) = service(state(tampered), dir.path(), None);
    match svc.reader().contribution_rows(1).await {
        Err(ReaderError::Corrupt(e)) => assert!(e.contains("root"), "{e}"),
        Err(e) => panic!("not a mismatch: {e}"),
        Ok(_) => panic!("rows that do not match the chain were served"),
    }
}

/// The curator's approval of contribution `id`: version `n` of the private Datanet.
fn approve(p: &People, id: u64) -> GenesisCall {
    let call = IDatanets::approveCall { contributionId: id };
    GenesisCall { from: p.curator, to: Module::Datanets.address(), value: Amount::ZERO, data: call.abi_encode().into() }
}

/// A chain whose version root does not match its contributions (a forged or
/// corrupt state: honest blocks cannot make one, since every approval builds
/// the root from the approved contributions' roots). Every contribution's
/// rows check out, so a streaming reader hands them over, and only the final
/// version-root check refuses the version: its consumer must drop what it
/// built (the span index builder removes its partial file).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_root_the_rows_do_not_make_is_refused_after_the_rows_stream() {
    let p = people();
    let dir = tempfile::tempdir().unwrap();
    let (_, blobs, _) = service(state(vec![]), dir.path(), None);
    let mut chains = Vec::new();
    for text in ["alpha row", "beta row"] {
        let rows = vec![Row::Text { text: text.into() }];
        let content = blobs.put(format!("{text}\n").into_bytes().into()).await.unwrap();
        let rows_blob = blobs.put(datanets::encode_rows(&rows).into()).await.unwrap();
        let findings =
            blobs.put(serde_json::to_vec(&report(&p, content, rows_blob, &rows)).unwrap().into()).await.unwrap();
        let calls = vec![
            create(&p, 0),
            create(&p, 1),
            set_members(&p, vec![p.member]),
            contribute(&p, &rows, content, findings),
            approve(&p, 1),
        ];
        chains.push((rows, state(calls)));
    }
    let (rows_a, honest) = chains.swap_remove(0);
    let (_, other) = chains.pop().unwrap();
    let (_, _, svc) = service(honest.clone(), dir.path(), None);
    assert_eq!(
        svc.reader().version_rows(PRIVATE, 1).await.unwrap().into_iter().map(|r| r.row).collect::<Vec<_>>(),
        rows_a
    );
    // The honest state with the other chain's version record: the root of other rows.
    let key = runtime::datanets::state_key::version(PRIVATE, 1);
    assert_ne!(honest.get(&key), other.get(&key), "the two versions have different roots");
    let mut forged = (*honest).clone();
    forged.insert(key.clone(), other[&key].clone());
    let (_, _, svc) = service(Arc::new(forged), dir.path(), None);
    let reader = svc.reader();
    let mut seen = Vec::new();
    let streamed = reader
        .for_each_version_row(PRIVATE, 1, |r| {
            seen.push(r.row);
            Ok::<(), ReaderError>(())
        })
        .await;
    assert_eq!(seen, rows_a, "each contribution's rows match its own root, so they stream");
    match streamed {
        Err(ReaderError::Corrupt(e)) => assert!(e.contains("do not hash to its on-chain root"), "{e}"),
        other => panic!("a forged version root was accepted: {:?}", other.map(|_| ())),
    }
    assert!(matches!(reader.version_rows(PRIVATE, 1).await, Err(ReaderError::Corrupt(_))));
}
