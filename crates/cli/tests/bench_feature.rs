//! `openledger bench` with and without the `bench` feature: with it (the
//! default) the suites are there; without it every `bench` command fails with
//! a message that says the binary was built without benchmarks.

use std::process::Command;

fn openledger(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_openledger")).args(args).output().expect("run openledger");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[cfg(feature = "bench")]
#[test]
fn bench_lists_its_suites() {
    let (ok, text) = openledger(&["bench", "--help"]);
    assert!(ok, "{text}");
    for suite in ["chain", "state", "attribution-quality", "fuzz"] {
        assert!(text.contains(suite), "{suite} missing from:\n{text}");
    }
}

#[cfg(not(feature = "bench"))]
#[test]
fn bench_says_it_was_built_without_benchmarks() {
    for args in [&["bench", "chain", "--rounds", "2"][..], &["bench"][..], &["--json", "bench", "fuzz"][..]] {
        let (ok, text) = openledger(args);
        assert!(!ok, "{args:?} succeeded: {text}");
        assert!(text.contains("built without benchmarks"), "{args:?}: {text}");
    }
    let (ok, text) = openledger(&["bench", "chain"]);
    assert!(!ok && text.contains("`openledger bench chain`"), "{text}");
}

/// `bench web` at a tiny scale: it generates real contributions on a node it
/// starts, measures every page, and each page answers (a page that errors
/// fails the bench). The figures themselves are for release builds.
#[cfg(feature = "bench")]
#[test]
fn bench_web_generates_a_chain_and_measures_every_page() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("web.json");
    let args = ["bench", "web", "--blocks", "300", "--contributions", "6", "--datanets", "2", "--contributors", "2"];
    let (ok, text) = openledger(&[&args[..], &["--requests", "2", "--json-out", out.to_str().unwrap()]].concat());
    assert!(ok, "{text}");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(v["contributions"], 6, "{v}");
    assert!(v["blocks"].as_u64().unwrap() >= 300, "{v}");
    let pages = v["pages"].as_array().unwrap();
    assert!(pages.len() >= 15, "{v}");
    assert!(pages.iter().any(|p| p["path"].as_str().unwrap().starts_with("/datanets/")), "{v}");
    let (ok, text) = openledger(&["bench", "web", "--requests", "0"]);
    assert!(!ok && text.contains("at least 1"), "{text}");
}
