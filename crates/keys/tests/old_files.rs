//! Key files written by earlier versions of this crate (before its JSON was
//! serde-derived) still load: a keystore account and the three node keys, all
//! with the test KDF (scrypt n = 2).

use std::path::Path;

use keys::{Address, B256, Keystore, NodeKeyId, NodeKeyKind, NodeKeys, SecretKey};

fn copy_dir(from: &str, to: &Path) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(from);
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn an_old_keystore_account_loads() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir("keystore", tmp.path());
    let ks = Keystore::open(tmp.path()).unwrap();
    let expected = SecretKey::from_hex("59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d").unwrap();
    assert_eq!(ks.list().unwrap(), vec![expected.address()]);
    assert_eq!(ks.load(&expected.address(), "old pw").unwrap(), expected);
    assert!(ks.load(&expected.address(), "new pw").is_err());
    // A new key lands beside it under a geth-style name.
    let b = ks.create("pw", &keys::KdfParams::insecure_for_tests()).unwrap();
    let names: Vec<String> =
        std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    let new = names.iter().find(|n| n.ends_with(&keys::Address::to_string(&b)[2..].to_lowercase())).unwrap();
    assert_eq!(new.len(), "UTC--2025-01-02T03-04-05.123456789Z--".len() + 40, "{new}");
}

#[test]
fn old_node_keys_load() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir("node-keys", tmp.path());
    let nk = NodeKeys::open(tmp.path()).unwrap();
    let consensus: B256 = "0x0bce15034cb90a301c3f2f02f97b006db9fdd794ef0a7dabfa5625a94e8d9cf5".parse().unwrap();
    let serving: Address = "0x8A9BE9C2cd1650dBA7A3D536d68FCa5eEE1f4f04".parse().unwrap();
    let attester: Address = "0x02c7709Cb6A891009E3B7bE858ddE0F5a2dcF3Bc".parse().unwrap();
    assert_eq!(
        nk.list().unwrap(),
        vec![
            (NodeKeyKind::Consensus, NodeKeyId::Ed25519(consensus)),
            (NodeKeyKind::Serving, NodeKeyId::Secp256k1(serving)),
            (NodeKeyKind::Attester, NodeKeyId::Secp256k1(attester)),
        ]
    );
    assert_eq!(nk.load_consensus("node pw").unwrap().public(), consensus);
    assert_eq!(nk.load_secp(NodeKeyKind::Serving, "node pw").unwrap().address(), serving);
    assert_eq!(nk.load_secp(NodeKeyKind::Attester, "node pw").unwrap().address(), attester);
    assert!(nk.load_consensus("wrong").unwrap_err().is_wrong_password());
}
