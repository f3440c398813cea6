//! `openledger demo` on a serving `--instant` dev node: the whole story runs
//! to its end and its summary says a model went live, answers were paid,
//! contributors earned and the spammer's duplicate was rejected.

mod common;

use common::*;

#[test]
fn the_demo_plays_the_whole_story_on_a_dev_node() {
    let e = ServingEnv::start();
    let data_dir = e.node.data_dir.to_str().unwrap().to_string();
    let s = e.ok(&["demo", "--steps", "3", "--answers", "2", "--data-dir", &data_dir], true, true);
    assert_eq!(s["model"]["state"], "live", "{s}");
    assert!(s["model"]["id"].as_u64().unwrap() >= 2, "a fine-tuned model, not the base: {s}");
    assert_eq!(s["paidAnswers"], 2);
    for a in s["answers"].as_array().unwrap() {
        assert!(a["cost"].as_str().unwrap().parse::<u128>().unwrap() > 0, "{a}");
    }
    assert_eq!(s["spam"]["rejected"], true, "{s}");
    assert_eq!(s["spam"]["reason"], "duplicate", "{s}");
    assert!(s["spam"]["slashed"].as_str().unwrap().parse::<u128>().unwrap() > 0, "the bond was slashed: {s}");
    let earned: Vec<(String, i128)> = s["earnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["role"].as_str().unwrap().to_string(), r["earned"].as_str().unwrap().parse().unwrap()))
        .collect();
    let contributors: Vec<i128> = earned.iter().filter(|r| r.0.starts_with("contributor")).map(|r| r.1).collect();
    assert_eq!(contributors.len(), 3);
    assert!(contributors.iter().sum::<i128>() > 0, "contributors earned: {earned:?}");
    assert!(earned.iter().any(|r| r.0.starts_with("spammer") && r.1 < 0), "{earned:?}");
    assert!(!s["claims"].as_array().unwrap().is_empty());
    // A second operator posted a forged record; the watcher's challenge was
    // upheld by the dev validator's verifier: the operator slashed, the watcher
    // rewarded and its bond returned, the data part paid by the fallback.
    let f = &s["forgedRecordChallenge"];
    assert_eq!(f["status"], 3, "upheld: {f}");
    let base = |k: &str| f[k].as_str().unwrap().parse::<u128>().unwrap();
    assert!(base("slashed") > 0 && base("reporterReward") > 0, "{f}");
    assert_eq!(base("bondReturned"), base("bond"), "{f}");
    assert!(base("dataPartToFallback") > 0, "{f}");
    let row = |role: &str| earned.iter().find(|r| r.0.starts_with(role)).map(|r| r.1);
    assert!(row("dishonest operator").unwrap() < 0, "the slash outweighs its serving part: {earned:?}");
    assert_eq!(row("watcher"), Some(base("reporterReward") as i128), "{earned:?}");
    // The operator's page shows the slash, and that it can no longer serve.
    let op = f["operator"].as_str().unwrap().to_lowercase();
    let (status, page) = e.node.http_get(&format!("/validators/{op}"));
    let page = String::from_utf8_lossy(&page);
    assert_eq!(status, 200);
    for want in ["wrong attribution record", "Slashed in total", "✗ inactive"] {
        assert!(page.contains(want), "{want}: {page}");
    }
    let link = s["earnings"][0]["link"].as_str().unwrap();
    assert!(link.starts_with(&format!("http://{}/explorer/accounts/0x", e.node.http)), "{link}");
    // The pages the summary links to exist.
    let path = link.trim_start_matches(&format!("http://{}", e.node.http));
    assert_eq!(e.node.http_get(path).0, 200, "{path}");
}

#[test]
fn the_demo_says_how_to_start_a_node_when_none_answers() {
    let out = cli(&["demo", "--rpc", "127.0.0.1:9", "--http", "127.0.0.1:9"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("openledger up") && err.contains("step 1"), "{err}");
}
