//! `openledger sim` as a user runs it: a tiny scenario file writes its reports;
//! bad scenario files and bad `--set` values are refused with a clear error and
//! no panic.

use crate::common::*;

const TINY: &str = r#"
name = "tiny"
days = 1
block_seconds = 900

[population]
validators = 3
delegators = 4
honest_contributors = 20
spammers = 3
copycats = 3
datanets = 2
lazy_curators = 1
model_builders = 1
apps = 3
honest_operators = 1
forging_operators = 1
traders = 2

[behaviour]
inferences_per_day = 120
contribute_bps_per_day = 9000
review_every_blocks = 4
settle_every_blocks = 4
"#;

#[test]
fn sim_writes_its_reports_and_refuses_bad_scenarios() {
    let dir = tempfile::tempdir().unwrap();
    let scn = dir.path().join("tiny.toml");
    std::fs::write(&scn, TINY).unwrap();
    let out = dir.path().join("out");
    let v: serde_json::Value = serde_json::from_str(&cli_ok(&[
        "--json",
        "sim",
        "--scenario",
        scn.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]))
    .unwrap();
    assert_ne!(v["summary"]["paid_inferences"], "0", "{v}");
    for f in ["summary.csv", "participants.csv", "daily.csv", "report.html"] {
        assert!(out.join(f).exists(), "{f}");
    }

    let refused = |args: &[&str], says: &str| {
        let o = cli(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    };
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "days = [\n").unwrap();
    refused(&["sim", "--scenario", bad.to_str().unwrap()], "bad.toml");
    refused(&["sim", "--scenario", "/nonexistent/scenario.toml"], "cannot read scenario");
    let s = scn.to_str().unwrap();
    refused(&["sim", "--scenario", s, "--set", "inference.nope=1"], "unknown governed parameter");
    refused(&["sim", "--scenario", s, "--set", "inference.split_data_bps=10001"], "out of range");
    refused(&["sim", "--scenario", s, "--set", "attribution.challenge_bond=lots"], "attribution.challenge_bond");
    refused(&["sim", "--scenario", s, "--set", "nonsense"], "NAME=VALUE");
}
