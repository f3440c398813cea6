//! The validators' uptime, slashes and decentralisation over time (issue 19):
//! on a dev node, where blocks carry no commit certificate, uptime reads
//! "n/a (dev sealer)"; on a one-validator testnet, where every block carries
//! its parent's certificate, the validator signed all of them: 100.00 %.

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use primitives::Address;

use crate::common::*;
use crate::{assert_has, get, html};

#[test]
fn a_dev_node_shows_uptime_as_not_applicable_slashes_and_decentralisation_over_time() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProc::start(&dir.path().join("chain"), &["--instant"]);
    node.advance_to(5);
    let v = format!("{:#x}", dev(0).address());

    let list = html(&node, "/validators", 200);
    assert_has(
        &list,
        "validators",
        &["Uptime and slashes", "n/a (dev sealer)", "Slashed in total", "/validators/decentralisation"],
    );
    let op = html(&node, &format!("/validators/{v}"), 200);
    assert_has(&op, "operator", &["Uptime and slashes", "n/a (dev sealer)", "Slashes", "Slashed in total"]);
    // Never slashed: no slash table.
    assert!(!op.contains("Slashes of this operator"), "{op}");

    let d = html(&node, "/validators/decentralisation", 200);
    assert_has(
        &d,
        "decentralisation",
        &["Nakamoto coefficient over time", "<svg", "<polyline", "Gini of rewards", "(n − 1)/n", "Samples"],
    );
    // The one dev validator holds all the power at every sampled height.
    assert!(d.matches("100.00 %").count() >= 2, "{d}");

    for (path, want) in [
        ("/validators/decentralisation?x=1".to_string(), 400),
        (format!("/validators/{:#x}", Address::repeat_byte(0x55)), 404),
        ("/validators/0xzz".into(), 400),
    ] {
        assert_eq!(get(&node, &path).status, want, "GET {path}");
    }
}

/// A base port with the twenty ports after it free (bound, then released).
fn free_base() -> u16 {
    loop {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = l.local_addr().unwrap().port();
        drop(l);
        if base < 60000 && (0..20).all(|i| TcpListener::bind(("127.0.0.1", base + i)).is_ok()) {
            return base;
        }
    }
}

#[test]
fn a_testnet_validator_that_signs_every_certificate_has_full_uptime() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let base = free_base().to_string();
    cli_ok(&["testnet", "--validators", "1", "--dir", d, "--base-port", &base, "--insecure-fast-kdf"]);
    let home = dir.path().join("node0");
    let child = Command::new(bin())
        .args(["start", "--data-dir"])
        .arg(&home)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let node = NodeProc::attach(child, &home);
    let mut c = node.client();
    let deadline = Instant::now() + Duration::from_secs(120);
    while c.block_number().unwrap_or(0) < 4 {
        assert!(Instant::now() < deadline, "the testnet did not reach block 4");
        std::thread::sleep(Duration::from_millis(100));
    }
    let list = html(&node, "/validators", 200);
    assert!(!list.contains("n/a (dev sealer)"), "{list}");
    assert_has(&list, "validators", &["Uptime and slashes", "class=\"uptime\"", "signed"]);
    let start = list.find("class=\"uptime\"").unwrap();
    assert!(list[start..].split("</span>").next().unwrap().contains("100.00 %"), "{list}");
    let op = list[list.find("href=\"/validators/0x").unwrap() + 6..].split('"').next().unwrap().to_string();
    let page = html(&node, &op, 200);
    assert_has(&page, "operator", &["Uptime", "100.00 %", "certificates of blocks #"]);
    node.stop();
}
