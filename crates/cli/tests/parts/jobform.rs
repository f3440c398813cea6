//! ModelFactory without code, on a serving dev node: the form at
//! `/models/new` lists the chain's base model (with its hash) and each
//! Datanet's latest version; a job posted as its script posts it (the
//! CLI's JSON body, signed) runs while its live fragment
//! (`/models/jobs/{id}?fragment=1`) grows its `#loss-points` table; once
//! it succeeded, the page's `#job-register`, `#job-propose` and then
//! `#job-gov-propose` buttons carry exactly the calls the CLI sends, which,
//! sent as they are, register the model, make it proposed and open a
//! governance proposal, whose page then carries the `castVote` calls. Bad input: 400
//! and 404 pages, and the API's refusal of a bad job.

use std::time::{Duration, Instant};

use alloy_sol_types::{SolCall, SolEvent};
use primitives::abi::{IGovernance, IModels};
use primitives::system::Module;
use primitives::{Address, Bytes, U256};
use rpc::http::HttpClient;
use serde_json::{Value, json};

use crate::common::*;

fn repo(p: &str) -> String {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(p).to_str().unwrap().to_string()
}

/// `GET path`: (status, body text).
pub(crate) fn fetch(node: &NodeProc, path: &str) -> (u16, String) {
    let r = HttpClient::new(&node.http).request("GET", path, &[], b"").unwrap();
    (r.status, r.text())
}

pub(crate) fn page(node: &NodeProc, path: &str) -> String {
    let (status, body) = fetch(node, path);
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

/// The transaction a wallet button carries: the `<button>` whose tag holds `marker`.
pub(crate) fn button_tx(page: &str, marker: &str) -> (Address, Vec<u8>, U256) {
    let at = page.find(marker).unwrap_or_else(|| panic!("no {marker:?} in {page}"));
    let start = page[..at].rfind("<button").expect("a button");
    let tag = &page[start..at + page[at..].find('>').unwrap()];
    let attr = |name: &str| {
        let from = tag.find(&format!("{name}=\"")).unwrap_or_else(|| panic!("{tag} lacks {name}")) + name.len() + 2;
        tag[from..from + tag[from..].find('"').unwrap()].to_string()
    };
    let data: Bytes = attr("data-data").parse().unwrap();
    let value = U256::from_str_radix(&attr("data-value"), 10).unwrap();
    (attr("data-to").parse().unwrap(), data.to_vec(), value)
}

/// Send what a button carries from dev account `who`, as the wallet would; the receipt's logs.
fn send(node: &NodeProc, who: u32, tx: &(Address, Vec<u8>, U256)) -> Vec<rpc::types::Log> {
    let mut c = node.client();
    let k = dev(who);
    let n = c.nonce(&k.address(), true).unwrap();
    let value = u128::try_from(tx.2).unwrap();
    let h = c.send_raw(&signed(&k, n, tx.0, value, tx.1.clone(), 3_000_000)).unwrap();
    let r = c.wait_receipt(&h, Duration::from_secs(60)).unwrap();
    assert!(r.status(), "the button's transaction failed: {r:?}");
    r.inner.inner.logs().to_vec()
}

/// `POST /v1/jobs` as the form's script posts it: (status, JSON answer).
fn post_job(node: &NodeProc, who: u32, spec: &Value) -> (u16, Value) {
    let body = serde_json::to_vec(spec).unwrap();
    let auth = node.sign(&dev(who), "POST", "/v1/jobs", &body);
    let headers = [("Content-Type", "application/json".to_string()), (keys::request::AUTH_HEADER, auth)];
    let (status, resp) = http_send(&node.http, "POST", "/v1/jobs", &headers, &body);
    (status, serde_json::from_slice(&resp).unwrap())
}

/// `eth_call` of a governance view at the head.
fn deposit(node: &NodeProc) -> U256 {
    let data = format!("0x{}", hex::encode(IGovernance::proposalDepositCall {}.abi_encode()));
    let to = Module::Governance.address();
    let out = node.client().call("eth_call", json!([{"to": to, "data": data}, "latest"])).unwrap();
    let bytes: Bytes = out.as_str().unwrap().parse().unwrap();
    IGovernance::proposalDepositCall::abi_decode_returns(&bytes).unwrap()
}

#[test]
fn a_fine_tune_from_the_form_to_the_vote() {
    let e = ServingEnv::start();
    let d = e.ok(
        &["datanet", "create", "--from-json", &repo("data/unix-shell/datanet.json"), "--dev-account", "0"],
        true,
        true,
    );
    let dn = d["id"].as_u64().unwrap();
    for who in ["1", "2"] {
        let file = repo(&format!("data/unix-shell/contributor-{who}.jsonl"));
        let c = e.ok(&["contribute", &file, "--datanet", &dn.to_string(), "--dev-account", who], true, true);
        let cid = c["contribution"].as_u64().unwrap().to_string();
        e.ok(&["curate", "approve", &cid, "--dev-account", "0"], true, false);
    }

    // The form: the chain's base model with its hash, the Datanet's latest version, the CLI's defaults.
    let base = e.ok(&["model", "show", "m1"], true, false);
    let form = page(&e.node, "/models/new");
    for want in [
        "<label for=\"job-datanets\">",
        "<select id=\"job-datanets\" multiple",
        &format!("<option value=\"d{dn}@v2\">"),
        "<label for=\"job-base\">",
        "<option value=\"m1\">",
        base["baseModelHash"].as_str().unwrap(),
        "<label for=\"job-steps\">",
        "id=\"job-lr\" type=\"text\" inputmode=\"decimal\" value=\"0.002\"",
        "id=\"job-rank\" type=\"number\" min=\"1\" step=\"1\" inputmode=\"numeric\" value=\"8\"",
        "id=\"job-target-q_proj\" value=\"q_proj\" checked",
        "<button id=\"job-start\" type=\"submit\">",
        "<p id=\"job-result\" role=\"status\"",
        "<script src=\"/assets/wallet.js\" defer></script><script src=\"/assets/jobs.js\" defer>",
    ] {
        assert!(form.contains(want), "the form lacks {want:?}: {form}");
    }
    assert!(page(&e.node, "/models/jobs").contains("href=\"/models/new\""), "the jobs list links the form");
    let (status, js) = fetch(&e.node, "/assets/jobs.js");
    assert!(status == 200 && js.contains("signedFetch(\"POST\", \"/v1/jobs\""), "{js}");

    // The API refuses a bad job with a message the form shows as it is.
    let (status, refusal) = post_job(&e.node, 1, &json!({"datanets": [{"datanet": 999, "version": 1}]}));
    assert!((400..500).contains(&status), "{refusal}");
    assert!(refusal["error"]["message"].as_str().unwrap().contains("999"), "{refusal}");

    // A job as the form's script sends it (plus a small batch, to be quick): the fragment grows.
    let spec = json!({
        "datanets": [{"datanet": dn, "version": 2}], "name": "from-the-form", "steps": 20, "learningRate": 0.002,
        "rank": 8, "alpha": 16, "targets": ["q_proj", "v_proj"], "batchSize": 2, "maxSeqLen": 96,
    });
    let (status, job) = post_job(&e.node, 1, &spec);
    assert_eq!(status, 201, "{job}");
    let id = job["id"].as_u64().unwrap();
    let fragment = format!("/models/jobs/{id}?fragment=1");
    let (mut seen, deadline) = (Vec::<usize>::new(), Instant::now() + Duration::from_secs(600));
    loop {
        let f = page(&e.node, &fragment);
        assert!(f.starts_with("<section id=\"job-live\""), "a fragment, not a page: {f}");
        let rows = f[f.find("<table id=\"loss-points\">").expect("the points table")..].matches("<tr>").count() - 1;
        if f.contains("data-live=\"true\"") {
            if seen.last() != Some(&rows) {
                seen.push(rows);
            }
        } else {
            assert!(f.contains("✓ succeeded"), "{f}");
            assert!(rows >= 20 && seen.iter().all(|n| *n <= rows), "{seen:?} then {rows}");
            break;
        }
        assert!(Instant::now() < deadline, "the job did not end: {f}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(seen.windows(2).all(|w| w[0] < w[1]) && seen.iter().filter(|n| **n > 0).count() >= 2, "{seen:?}");

    // Succeeded: the page's first button is the `models.register` `model propose --job` sends
    // (the job as the API shows it, the CLI's default prices); sent by the owner, a draft.
    let job_page = page(&e.node, &format!("/models/jobs/{id}"));
    assert!(job_page.contains("<p id=\"propose-result\" role=\"status\""), "{job_page}");
    let tx = button_tx(&job_page, "id=\"job-register\"");
    assert_eq!((tx.0, tx.2), (Module::Models.address(), U256::ZERO));
    let shown = e.ok(&["train", "show", &id.to_string()], false, true);
    let price = |s: &str| s.parse::<primitives::Amount>().unwrap().0;
    let cli = factory::registration::registration(&shown, id, None, price("0.001"), price("0.002")).unwrap();
    assert_eq!(tx.1, IModels::registerCall { registration: cli }.abi_encode());
    let logs = send(&e.node, 1, &tx);
    let registered = logs.iter().find(|l| l.topics().first() == Some(&IModels::ModelRegistered::SIGNATURE_HASH));
    let m = U256::from_be_bytes(registered.expect("a ModelRegistered log").topics()[1].0).to::<u64>();

    // A draft: the next button is `models.propose(id)`, what `model propose` sends after registering.
    let job_page = page(&e.node, &format!("/models/jobs/{id}"));
    assert!(job_page.contains(&format!("href=\"/explorer/models/m{m}\"")), "{job_page}");
    let tx = button_tx(&job_page, "id=\"job-propose\"");
    assert_eq!((tx.0, tx.2), (Module::Models.address(), U256::ZERO));
    assert_eq!(tx.1, IModels::proposeCall { id: m }.abi_encode());
    send(&e.node, 1, &tx);
    assert_eq!(e.ok(&["model", "show", &format!("m{m}")], true, false)["state"], "proposed");

    // Proposed: the governance proposal `gov propose --call "models.approve [m]"` makes, with its deposit.
    let job_page = page(&e.node, &format!("/models/jobs/{id}"));
    let tx = button_tx(&job_page, "id=\"job-gov-propose\"");
    assert_eq!((tx.0, tx.2), (Module::Governance.address(), deposit(&e.node)));
    let call = IGovernance::proposeCall::abi_decode(&tx.1).unwrap();
    assert_eq!(call.targets, vec![Module::Models.address()]);
    assert_eq!(call.calldatas, vec![Bytes::from(IModels::approveCall { ids: vec![m] }.abi_encode())]);
    assert_eq!(call.description, format!("Make m{m} live"));
    let logs = send(&e.node, 0, &tx);
    let created = logs
        .iter()
        .find(|l| {
            l.topics().first() == Some(&<IGovernance::ProposalCreated as alloy_sol_types::SolEvent>::SIGNATURE_HASH)
        })
        .expect("a ProposalCreated log");
    let pid = U256::from_be_bytes(created.topics()[1].0).to::<u64>();
    assert!(
        job_page.contains(&format!("data-event-topic=\"{}\" data-event-index=\"1\"", created.topics()[0])),
        "the wallet script finds the id: {job_page}"
    );

    // The proposal's page, once voting opens: one button per choice, each the `castVote` `gov vote` sends.
    let p = e.ok(&["gov", "show", &pid.to_string()], true, false);
    assert!(!page(&e.node, &format!("/governance/{pid}")).contains("vote-for"), "no vote before voting opens");
    e.node.advance_to(p["voteStart"].as_u64().unwrap());
    let gov_page = page(&e.node, &format!("/governance/{pid}"));
    for (class, support) in [("vote-for", 1u8), ("vote-against", 0), ("vote-abstain", 2), ("vote-veto", 3)] {
        let tx = button_tx(&gov_page, &format!("class=\"{class}\""));
        assert_eq!((tx.0, tx.2), (Module::Governance.address(), U256::ZERO));
        assert_eq!(tx.1, IGovernance::castVoteCall { id: pid, support }.abi_encode(), "{class}");
    }
    send(&e.node, 0, &button_tx(&gov_page, "class=\"vote-for\""));
    let shown = e.ok(&["gov", "show", &pid.to_string()], true, false);
    assert_ne!(shown["forVotes"], "0", "the vote counted: {shown}");

    // Bad input: 400 and 404 pages.
    for (path, status) in [
        ("/models/new?x=1", 400),
        ("/models/jobs/1?fragment=2", 400),
        ("/models/jobs/1?fragment=1&fragment=1", 400),
        ("/models/jobs/abc?fragment=1", 400),
        ("/models/jobs/99999?fragment=1", 404),
        ("/governance/abc", 400),
    ] {
        let (got, body) = fetch(&e.node, path);
        assert_eq!(got, status, "GET {path}: {body}");
        assert!(body.contains("role=\"alert\""), "GET {path}: {body}");
    }
}
