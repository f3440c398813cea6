//! `gov call` with arguments of every shape the system contracts take (strings,
//! string and address arrays, structs written as tuples, arrays inside them)
//! against a real node: what the chain stores is what the text said, the call
//! is shown back decoded, and malformed text is refused before anything is sent.

mod common;

use common::*;
use primitives::system::TREASURY;
use serde_json::{Value, json};

struct Node {
    node: NodeProc,
    _dir: tempfile::TempDir,
}

impl Node {
    fn start() -> Node {
        let dir = tempfile::tempdir().unwrap();
        let node = NodeProc::start(&dir.path().join("chain"), &["--instant"]);
        Node { node, _dir: dir }
    }

    /// `openledger --json ARGS --rpc …`: must succeed; its JSON.
    fn ol(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--rpc", &self.node.rpc]);
        let out = cli_ok(&all);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {out}"))
    }

    /// `openledger ARGS --rpc …`: must fail cleanly (an error, not a panic); its stderr.
    fn ol_fail(&self, args: &[&str]) -> String {
        let mut all = args.to_vec();
        all.extend_from_slice(&["--rpc", &self.node.rpc]);
        let o = cli(&all);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(1), "openledger {args:?} should have failed with an error:\n{err}");
        assert!(!err.contains("panicked"), "{err}");
        err
    }
}

fn addr(i: u32) -> String {
    dev(i).address().to_checksum(None)
}

#[test]
fn string_and_address_arrays_and_a_struct_create_a_datanet() {
    let n = Node::start();
    let call = format!(
        r#"datanets.createDatanet shell-net "Unix shell" "Commands and answers" '[nlp, "unix, shell"]' 0 CC-BY-4.0 1 2OPEN [{}] [{},treasury] (1000000,2000000,5000000,3)"#,
        addr(1),
        addr(2)
    );
    let sent = n.ol(&["gov", "call", &call, "--dev-account", "0"]);
    assert_eq!(sent["status"], "0x1", "{sent}");
    assert_eq!(
        sent["call"],
        format!(
            r#"datanets.createDatanet("shell-net", "Unix shell", "Commands and answers", ["nlp", "unix, shell"], 0, "CC-BY-4.0", 1, 2000000000000000000, [{}], [{}, {}], (1000000, 2000000, 5000000, 3))"#,
            addr(1),
            addr(2),
            TREASURY.to_checksum(None)
        )
    );

    let list = n.ol(&["datanet", "list"]);
    let id = list.as_array().unwrap().iter().find(|d| d["name"] == "shell-net").expect("created")["id"].to_string();
    let d = n.ol(&["datanet", "show", &id]);
    assert_eq!(d["tags"], json!(["nlp", "unix, shell"]));
    assert_eq!(d["policy"], "allow-list");
    assert_eq!(d["contributorBond"], "2000000000000000000");
    let lower =
        |v: &Value| v.as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_lowercase()).collect::<Vec<_>>();
    assert_eq!(lower(&d["curators"]), vec![addr(1).to_lowercase()]);
    assert_eq!(lower(&d["attesters"]), vec![addr(2).to_lowercase(), TREASURY.to_string().to_lowercase()]);
    assert_eq!(
        d["limits"],
        json!({"maxSubmissionBytes": 1000000, "contributorDailyBytes": 2000000, "datanetDailyBytes": 5000000, "contributorDailyFiles": 3})
    );
}

/// A `ModelRegistration` as a tuple: bytes32 hashes, an array of
/// `DatanetVersionRef` tuples, bytes, and parallel arrays.
fn registration(name: &str) -> String {
    let h = |b: char| format!("0x{}", b.to_string().repeat(64));
    format!(
        r#"models.register '("{name}", {}, {}, [], 0x{}, 0x, {}, [{}, {}], [200000, 100000], {}, 7, 16, 1OPEN, 2000wei)'"#,
        h('1'),
        h('2'),
        hex::encode(b"lr=2e-4"),
        h('3'),
        h('4'),
        h('5'),
        h('6')
    )
}

#[test]
fn a_struct_with_nested_arrays_registers_a_model() {
    let n = Node::start();
    let sent = n.ol(&["gov", "call", &registration("tuple-model"), "--dev-account", "3"]);
    assert_eq!(sent["status"], "0x1", "{sent}");
    let shown = sent["call"].as_str().unwrap();
    assert!(shown.starts_with(r#"models.register(("tuple-model", 0x1111"#), "{shown}");
    assert!(shown.ends_with(", [200000, 100000], 0x6666666666666666666666666666666666666666666666666666666666666666, 7, 16, 1000000000000000000, 2000))"), "{shown}");

    let all = n.ol(&["model", "list"]);
    let m = all.as_array().unwrap().iter().find(|m| m["name"] == "tuple-model").expect("registered").clone();
    assert_eq!(m["state"], "draft");
    assert_eq!(m["owner"].as_str().unwrap().to_lowercase(), addr(3).to_lowercase());
    assert_eq!(m["baseModelHash"], format!("0x{}", "1".repeat(64)));
    assert_eq!(m["hyperparams"], "lr=2e-4");
    assert_eq!(m["checkpointHashes"], json!([format!("0x{}", "4".repeat(64)), format!("0x{}", "5".repeat(64))]));
    assert_eq!(m["checkpointLearningRates"], json!([200000, 100000]));
    assert_eq!((m["sketchSeed"].clone(), m["sketchK"].clone()), (json!(7), json!(16)));
    assert_eq!((m["priceInPer1k"].clone(), m["priceOutPer1k"].clone()), (json!("1000000000000000000"), json!("2000")));

    // The chain's refusal of a struct's field reads as the named error.
    let err = n.ol_fail(&["gov", "call", &registration(""), "--dev-account", "3"]);
    assert!(err.contains(r#"InvalidModel(reason: "the name must be 1 to 128 bytes")"#), "{err}");
}

#[test]
fn malformed_arguments_are_refused_before_sending() {
    let n = Node::start();
    let cases = [
        ("models.approve [1,2", "no closing ']'"),
        ("models.approve [1,,2]", "has an empty item"),
        ("models.approve [1,x]", "\"x\" is not an integer"),
        ("models.register (1,2)", "has 2 fields"),
        ("models.register 1", "write (item, item, ...)"),
        ("staking.setCommission 70000", "does not fit uint16"),
        ("datanets.tombstone 1 2 0x12 [] why", "\"0x12\" is not a bytes32"),
    ];
    for (call, want) in cases {
        let err = n.ol_fail(&["gov", "call", call, "--dev-account", "0"]);
        assert!(err.contains("argument") && err.contains(want), "{call}: {err}");
        let err = n.ol_fail(&["gov", "propose", "--description", "x", "--call", call, "--dev-account", "0"]);
        assert!(err.contains(want), "{call}: {err}");
    }
    assert_eq!(n.ol(&["gov", "list"]), json!([]), "nothing was proposed");
}
