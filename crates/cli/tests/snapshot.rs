//! `openledger snapshot export` and `import` as an operator runs them: a dev
//! chain's state exported after it stops, imported into a new data directory,
//! and a node started there at the snapshot's block that carries on.

mod common;

use common::*;
use serde_json::Value;

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn export_import_and_start_at_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let (a_s, b_s) = (a.to_str().unwrap(), b.to_str().unwrap());
    let file = dir.path().join("state.snap");
    let file_s = file.to_str().unwrap();

    let node = NodeProc::start(&a, &["--instant"]);
    node.advance_to(4);
    let mut c = node.client();
    let head = c.block_number().unwrap();
    let watched = [dev(8).address(), dev(9).address()];
    let balances: Vec<_> = watched.iter().map(|x| c.balance(x).unwrap()).collect();
    let head_block = c.block(head.into(), false).unwrap().unwrap();
    // A running node holds its store: export says to stop it.
    let o = cli(&["snapshot", "export", "--data-dir", a_s, "--out", file_s]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("is the node stopped?") && stderr(&o).contains("in use"), "{}", stderr(&o));
    assert!(!file.exists());
    node.stop();

    let v: Value =
        serde_json::from_str(&cli_ok(&["--json", "snapshot", "export", "--data-dir", a_s, "--out", file_s])).unwrap();
    assert_eq!(v["height"].as_u64(), Some(head));
    assert_eq!(v["bytes"].as_u64(), Some(std::fs::metadata(&file).unwrap().len()));
    assert_eq!(v["blockHash"].as_str().unwrap(), head_block.header.hash.to_string());
    let o = cli(&["snapshot", "export", "--data-dir", a_s, "--out", file_s]);
    assert!(stderr(&o).contains("refusing to overwrite"), "{}", stderr(&o));

    // Import needs the chain's genesis; then it opens at the snapshot's block.
    let o = cli(&["snapshot", "import", "--data-dir", b_s, "--file", file_s]);
    assert!(stderr(&o).contains("--genesis"), "{}", stderr(&o));
    let genesis = a.join("genesis.json");
    let args =
        ["--json", "snapshot", "import", "--data-dir", b_s, "--file", file_s, "--genesis", genesis.to_str().unwrap()];
    let v: Value = serde_json::from_str(&cli_ok(&args)).unwrap();
    assert_eq!(v["height"].as_u64(), Some(head));
    assert_eq!(v["blockHash"].as_str().unwrap(), head_block.header.hash.to_string());
    let o = cli(&args[1..]);
    assert!(stderr(&o).contains("already holds a chain"), "{}", stderr(&o));

    let joined = NodeProc::start(&b, &["--instant"]);
    let mut c = joined.client();
    assert_eq!(c.block_number().unwrap(), head);
    let got: Vec<_> = watched.iter().map(|x| c.balance(x).unwrap()).collect();
    assert_eq!(got, balances);
    joined.advance_to(head + 2);
    assert_eq!(c.block_number().unwrap(), head + 2);
    joined.stop();

    let o = cli(&["debug", "replay", "--data-dir", b_s]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("imported from a snapshot"), "{}", stderr(&o));

    // A damaged file is refused and leaves no chain behind.
    let mut bytes = std::fs::read(&file).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0x40;
    let bad = dir.path().join("bad.snap");
    std::fs::write(&bad, &bytes).unwrap();
    let c_dir = dir.path().join("c");
    let o = cli(&[
        "snapshot",
        "import",
        "--data-dir",
        c_dir.to_str().unwrap(),
        "--file",
        bad.to_str().unwrap(),
        "--genesis",
        genesis.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(!c_dir.join("chain.redb").exists(), "{}", stderr(&o));
}
