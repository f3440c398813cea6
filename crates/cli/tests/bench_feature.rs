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
