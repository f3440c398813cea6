//! `demo`: the whole story on a running dev node, played with the dev accounts
//! through the same functions the other commands use: a Datanet filled by
//! contributors, a spammer's duplicate rejected (bond slashed), a fine-tune, a
//! governance vote making the model live, an app paying for answers, their
//! attribution records, a dishonest operator's forged record challenged and
//! its operator slashed (`demo_forgery.rs`), the contributors' claims, and who
//! earned what.

#[path = "demo_forgery.rs"]
mod forgery;

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use primitives::abi::IInference;
use primitives::system::Module;
use primitives::{Address, Amount, B256};
use serde_json::{Value, json};

use super::RpcArgs;
use super::gov::Support;
use super::httpc::HttpArgs;
use super::keys::SignerArgs;
use crate::contract::{Refused, Sent, view};
use crate::output::Out;

const INFERENCE: Address = Module::Inference.address();

/// The sample Datanet the story fills (committed under `data/home-gardening`),
/// built into the binary so that the demo runs from any directory.
const DATANET_JSON: &str = include_str!("../../../../data/home-gardening/datanet.json");
/// (dev account, file name, content) of each honest contributor.
const CONTRIBUTORS: [(u32, &str, &str); 3] = [
    (1, "contributor-1.md", include_str!("../../../../data/home-gardening/contributor-1.md")),
    (2, "contributor-2.jsonl", include_str!("../../../../data/home-gardening/contributor-2.jsonl")),
    (3, "contributor-4.csv", include_str!("../../../../data/home-gardening/contributor-4.csv")),
];
/// The spammer's file: a byte-identical copy of contributor 1's.
const SPAM: (u32, &str, &str) =
    (4, "duplicate-of-contributor-1.md", include_str!("../../../../data/home-gardening/duplicate-of-contributor-1.md"));
/// The Datanet's owner and curator, the governance proposer and voter; the dev API key pays from it too.
const OWNER: u32 = 0;
/// The model builder: trains, registers and owns the model.
const BUILDER: u32 = 5;
const PROMPTS: [&str; 4] = [
    "How often should I water tomatoes?",
    "What does mulch do for the soil?",
    "How do I make good compost?",
    "When should I cut back a hedge?",
];
const STEPS: u32 = 11;
/// Most blocks one `anvil_mine` seals on our node (`rpc`'s limit).
const MAX_MINE_BLOCKS: u64 = 256;

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Training steps of the fine-tune (a few keep the demo short).
    #[arg(long, default_value_t = 6)]
    pub steps: u64,
    /// Paid answers the app asks for.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=4))]
    pub answers: u64,
    /// The app's API key (default: $OPENLEDGER_API_KEY, else the dev key of the node's data dir).
    #[arg(long, env = "OPENLEDGER_API_KEY")]
    pub api_key: Option<String>,
    /// The data dir of the dev node (`up --data-dir DIR` writes its dev API key to `DIR/dev-api-key`).
    #[arg(long)]
    pub data_dir: Option<std::path::PathBuf>,
    /// The node's base model (folder, GGUF file or hf:ORG/NAME), which the watcher
    /// recomputes a record with (default: the committed models/base).
    #[arg(long)]
    pub base: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub rpc: RpcArgs,
    #[command(flatten)]
    pub http: HttpArgs,
}

/// Headings and progress: on standard output, or on standard error under `--json`
/// (whose standard output is the summary alone).
struct Ui {
    json: bool,
    step: u32,
}

impl Ui {
    fn say(&self, s: &str) {
        if self.json {
            eprintln!("{s}");
        } else {
            println!("{s}");
        }
    }
    /// A line rewritten in place while something is awaited.
    fn progress(&self, s: &str) {
        eprint!("\r  {s:<98}");
        let _ = std::io::stderr().flush();
    }
    fn progress_done(&self) {
        eprintln!();
    }
    /// Run step `title`: a numbered heading; an error names the step.
    fn step<T>(&mut self, title: &str, f: impl FnOnce(&Ui) -> anyhow::Result<T>) -> anyhow::Result<T> {
        self.step += 1;
        self.say(&format!("\n[{}/{STEPS}] {title}", self.step));
        f(self).with_context(|| format!("demo step {} ({title}) failed", self.step))
    }
}

/// One honest contribution, approved.
struct Contribution {
    account: u32,
    id: u64,
    file: &'static str,
    rows: u64,
    tx: B256,
}

/// One paid answer and how its cost was split.
struct Answer {
    prompt: &'static str,
    /// The receipt as the answer carried it.
    receipt_json: Value,
    receipt: B256,
    cost: u128,
    owner_part: u128,
    serving_part: u128,
    stakers_part: u128,
    treasury_part: u128,
    operator: Address,
    record: B256,
    hold_status: u8,
}

/// What the story leaves behind, for the table and the summary.
#[derive(Default)]
struct Story {
    datanet: u64,
    version: u64,
    contributions: Vec<Contribution>,
    spam: Value,
    slashed: u128,
    spam_tx: Option<B256>,
    job: Value,
    model: u64,
    proposal: u64,
    execute_tx: Option<B256>,
    answers: Vec<Answer>,
    /// (account, contribution, amount, transaction)
    claims: Vec<(u32, u64, u128, B256)>,
    forgery: Option<forgery::Forgery>,
}

fn dev(i: u32) -> SignerArgs {
    SignerArgs::dev(i)
}

fn dev_address(i: u32) -> anyhow::Result<Address> {
    Ok(keys::derive_account(keys::DEV_MNEMONIC, i)?.address())
}

fn web(http: &HttpArgs) -> String {
    let h = http.http.trim_end_matches('/');
    if h.starts_with("http://") || h.starts_with("https://") { h.to_string() } else { format!("http://{h}") }
}

pub fn run(a: DemoArgs, out: Out) -> anyhow::Result<()> {
    let mut ui = Ui { json: out.json, step: 0 };
    let mut s = Story::default();
    let key = ui.step("Connect to the dev node", |ui| connect(&a, ui))?;
    ui.step("A Datanet from the sample data (data/home-gardening)", |ui| create_datanet(&a, &mut s, ui))?;
    ui.step("Contributors fill it; the curator approves", |ui| contribute(&a, &mut s, ui))?;
    ui.step("A spammer resubmits contributor 1's file", |ui| spam(&a, &mut s, ui))?;
    ui.step("Fine-tune a model on the approved version", |ui| fine_tune(&a, &mut s, ui))?;
    ui.step("Governance makes the model live", |ui| govern(&a, &mut s, ui))?;
    ui.step("An app pays for answers", |ui| ask(&a, &key, &mut s, ui))?;
    ui.step("Attribution records appear and are finalized", |ui| attribute(&a, &mut s, ui))?;
    ui.step("A dishonest operator forges a record; a watcher challenges it", |ui| forgery::play(&a, &mut s, ui))?;
    ui.step("Contributors claim their rewards", |ui| claim(&a, &mut s, ui))?;
    let earnings = ui.step("Who earned what", |ui| earnings(&a, &s, ui))?;
    let summary = summary(&a, &s, earnings);
    if out.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!("Open the web app at {}/explorer to see every block, transaction and account.", web(&a.http));
    }
    Ok(())
}

/// Both endpoints answer; the app's API key.
fn connect(a: &DemoArgs, ui: &Ui) -> anyhow::Result<String> {
    let how = "start a dev node in another terminal with `openledger up` (or pass --rpc and --http)";
    let head =
        a.rpc.client().block_number().map_err(|e| anyhow!("no node answers JSON-RPC at {} ({e}): {how}", a.rpc.rpc))?;
    let (status, _) = a
        .http
        .request("GET", "/v1/node/attester", &[], b"")
        .map_err(|e| anyhow!("no node answers HTTP at {} ({e:#}): {how}", a.http.http))?;
    if status != 200 {
        bail!(
            "the node at {} has no ingest attester ({status}): is it a dev node started by `openledger up`?",
            a.http.http
        );
    }
    let key = super::infer::api_key(a.api_key.as_deref(), a.data_dir.as_deref())?;
    ui.say(&format!(
        "  RPC {} (head {head}), HTTP {}, the app's API key {}…",
        a.rpc.rpc,
        a.http.http,
        &key[..key.len().min(8)]
    ));
    Ok(key)
}

fn create_datanet(a: &DemoArgs, s: &mut Story, ui: &Ui) -> anyhow::Result<()> {
    let spec: Value = serde_json::from_str(DATANET_JSON).context("the built-in datanet.json")?;
    let args = super::datanet::CreateArgs {
        from_json: None,
        name: None,
        summary: String::new(),
        description: String::new(),
        description_file: None,
        tags: String::new(),
        licence: None,
        policy: None,
        bond: "1".parse().map_err(|e| anyhow!("{e:?}"))?,
        curators: vec![],
        attesters: vec![],
        daily_files: 0,
        signer: dev(OWNER),
        rpc: a.rpc.clone(),
        http: a.http.clone(),
    };
    let (sent, ev, _) = super::datanet::create_datanet(args, &spec)?;
    s.datanet = ev.id;
    ui.say(&format!(
        "  dev account {OWNER} created Datanet {} ({}), each contribution bonded 1 OPEN\n  {}/explorer/datanets/{}  tx {}",
        ev.id,
        ev.name,
        web(&a.http),
        ev.id,
        sent.hash
    ));
    Ok(())
}

fn contribute(a: &DemoArgs, s: &mut Story, ui: &Ui) -> anyhow::Result<()> {
    for (account, file, content) in CONTRIBUTORS {
        let signer = dev(account);
        let r = super::datanet::ingest(file, content.as_bytes(), s.datanet, &signer, &a.http)?;
        let (_, id, _) = super::datanet::submit(&r, &signer, &a.rpc)?;
        let rows = r["report"]["rowCount"].as_u64().unwrap_or(0);
        let (sent, ev) = super::datanet::approve(id, &dev(OWNER), &a.rpc)?;
        s.version = ev.version;
        ui.say(&format!(
            "  dev account {account} contributed {file}: contribution {id}, {rows} rows, quality {} bps; approved: version {}",
            r["report"]["qualityBps"], ev.version
        ));
        s.contributions.push(Contribution { account, id, file, rows, tx: sent.hash });
    }
    Ok(())
}

fn spam(a: &DemoArgs, s: &mut Story, ui: &Ui) -> anyhow::Result<()> {
    let (account, file, content) = SPAM;
    let signer = dev(account);
    let r = match super::datanet::ingest(file, content.as_bytes(), s.datanet, &signer, &a.http) {
        Ok(r) => r,
        Err(e) => {
            ui.say(&format!("  the ingest service refused it at once: {e:#}"));
            s.spam =
                json!({"account": dev_address(account)?, "rejected": true, "refusedAtIngest": true, "slashed": "0"});
            return Ok(());
        }
    };
    let dups = r["report"]["exactDuplicates"].as_u64().unwrap_or(0);
    let (_, id, bond) = super::datanet::submit(&r, &signer, &a.rpc)?;
    ui.say(&format!(
        "  dev account {account} submitted {file} as contribution {id} with a bond of {}; ingest found {dups} exact duplicates",
        crate::output::open(bond)
    ));
    if dups == 0 {
        bail!("the ingest service found no duplicates in a copy of an approved file");
    }
    let note = format!("{dups} rows duplicate approved contributions");
    let (sent, ev) = super::datanet::reject(id, "duplicate", note, &dev(OWNER), &a.rpc)?;
    s.slashed = u128::try_from(ev.slashed).unwrap_or(u128::MAX);
    s.spam_tx = Some(sent.hash);
    ui.say(&format!(
        "  the curator rejected it as a duplicate: {} of the bond slashed  tx {}",
        crate::output::open(ev.slashed),
        sent.hash
    ));
    s.spam = json!({"account": dev_address(account)?, "contribution": id, "exactDuplicates": dups, "rejected": true,
                    "reason": "duplicate", "slashed": ev.slashed.to_string(), "tx": sent.hash});
    Ok(())
}

fn fine_tune(a: &DemoArgs, s: &mut Story, ui: &Ui) -> anyhow::Result<()> {
    let spec = json!({
        "datanets": [{"datanet": s.datanet, "version": s.version}],
        "name": "gardening-demo",
        "steps": a.steps,
        "batchSize": 2,
        "maxSeqLen": 96,
    });
    let (id, _) = super::train::submit(&spec, &dev(BUILDER), &a.http)?;
    ui.say(&format!(
        "  dev account {BUILDER} queued job {id}: {} steps on Datanet {} version {}",
        a.steps, s.datanet, s.version
    ));
    let done = super::train::watch(&a.http, id, true)?;
    if done["status"] != "succeeded" {
        bail!("job {id} {}: {}", done["status"].as_str().unwrap_or("ended"), done["error"].as_str().unwrap_or(""));
    }
    let m = &done["output"]["metrics"];
    ui.say(&format!(
        "  job {id} succeeded: train loss {:.4}, validation loss {:.4} (base {:.4})",
        m["finalTrainLoss"].as_f64().unwrap_or(f64::NAN),
        m["validation"]["loss"].as_f64().unwrap_or(f64::NAN),
        m["baseValidationLoss"].as_f64().unwrap_or(f64::NAN)
    ));
    s.job = done;
    Ok(())
}

/// Seal blocks until the head is `block` (the dev node's `anvil_mine`); a node
/// without it is waited for by the governance commands themselves.
fn mine_to(rpc: &RpcArgs, block: u64, ui: &Ui) -> anyhow::Result<()> {
    let mut c = rpc.client();
    let head = c.block_number()?;
    if head >= block {
        return Ok(());
    }
    let n = (block - head).min(MAX_MINE_BLOCKS);
    if c.call("anvil_mine", json!([format!("{n:#x}")])).is_ok() {
        ui.progress(&format!("sealed {n} block{}: head {}", if n == 1 { "" } else { "s" }, head + n));
        ui.progress_done();
    }
    Ok(())
}

fn govern(a: &DemoArgs, s: &mut Story, ui: &Ui) -> anyhow::Result<()> {
    let job = s.job["id"].as_u64().ok_or_else(|| anyhow!("no job id"))?;
    let (price_in, price_out): (Amount, Amount) =
        ("0.002".parse().unwrap_or_default(), "0.004".parse().unwrap_or_default());
    let (id, _) = super::model::register_job(job, None, price_in, price_out, false, &dev(BUILDER), &a.rpc, &a.http)?;
    s.model = id;
    ui.say(&format!("  dev account {BUILDER} registered m{id} from job {job} and proposed it"));
    let call = format!("models.approve [{id}]");
    let p = super::gov::propose(&format!("Make m{id} live"), &[], &[call], &[], &dev(OWNER), &a.rpc)?;
    s.proposal = p.id;
    ui.say(&format!("  dev account {OWNER} proposed governance proposal {}: models.approve [{id}]", p.id));
    mine_to(&a.rpc, p.vote_start.unwrap_or(0).saturating_sub(1), ui)?;
    let (_, weight) = super::gov::vote(p.id, Support::For, false, &dev(OWNER), &a.rpc)?;
    ui.say(&format!("  dev account {OWNER} voted for it with {}", crate::output::open(weight)));
    let end = super::gov::proposal(p.id, &a.rpc)?.voteEnd;
    mine_to(&a.rpc, end + 1, ui)?;
    let eta = super::gov::proposal(p.id, &a.rpc)?.eta;
    mine_to(&a.rpc, eta.saturating_sub(1), ui)?;
    let sent = super::gov::execute(p.id, false, &dev(OWNER), &a.rpc)?;
    s.execute_tx = Some(sent.hash);
    let m = super::model::model_info(&a.rpc, id)?;
    if m.state != 2 {
        bail!("proposal {} executed, but m{id} is in state {} rather than live", p.id, m.state);
    }
    ui.say(&format!("  proposal {} executed: m{id} is live  {}/explorer/models/{id}", p.id, web(&a.http)));
    Ok(())
}

fn ask(a: &DemoArgs, key: &str, s: &mut Story, ui: &Ui) -> anyhow::Result<()> {
    let model = format!("m{}", s.model);
    for &prompt in PROMPTS.iter().take(a.answers as usize) {
        let body = json!({"model": model, "messages": [{"role": "user", "content": prompt}],
                          "max_tokens": 24, "temperature": 0.0, "stream": false});
        let v = super::infer::answer(&a.http, "/v1/chat/completions", key, &body, false)?;
        let text = v["choices"][0]["message"]["content"].as_str().unwrap_or("").replace('\n', " ");
        let receipt: B256 = v["receipt"]["hash"]
            .as_str()
            .unwrap_or("")
            .parse()
            .map_err(|_| anyhow!("an answer without a receipt: {v}"))?;
        let cost: u128 = v["receipt"]["cost"].as_str().unwrap_or("0").parse().unwrap_or(0);
        ui.say(&format!("  Q: {prompt}\n  A: {}\n     paid {} OPEN, receipt {receipt}", text.trim(), Amount(cost)));
        s.answers.push(Answer {
            prompt,
            receipt_json: v["receipt"].clone(),
            receipt,
            cost,
            owner_part: 0,
            serving_part: 0,
            stakers_part: 0,
            treasury_part: 0,
            operator: Address::ZERO,
            record: B256::ZERO,
            hold_status: 0,
        });
    }
    Ok(())
}

/// Wait for every receipt to settle and its record to be posted (or its data part
/// to fall back), then finalize the posted ones once their challenge window closes.
fn attribute(a: &DemoArgs, s: &mut Story, ui: &Ui) -> anyhow::Result<()> {
    let mut c = a.rpc.client();
    let started = Instant::now();
    loop {
        let mut settled = 0;
        let mut posted = 0;
        for ans in &mut s.answers {
            // A receipt the operator has not settled yet is unknown to the chain.
            match view(&mut c, INFERENCE, &IInference::holdCall { receiptHash: ans.receipt }) {
                Ok(h) => (ans.hold_status, ans.record) = (h.status, h.recordHash),
                Err(e) if format!("{e}").contains("UnknownReceipt") => ans.hold_status = 0,
                Err(e) => return Err(e),
            }
            settled += usize::from(ans.hold_status >= 1);
            posted += usize::from(ans.hold_status >= 2);
        }
        let n = s.answers.len();
        ui.progress(&format!(
            "{settled}/{n} receipts settled, {posted}/{n} attribution records posted ({} s)",
            started.elapsed().as_secs()
        ));
        if posted == n {
            ui.progress_done();
            break;
        }
        if started.elapsed() > Duration::from_secs(180) {
            ui.progress_done();
            bail!(
                "after 180 s only {settled} of {n} receipts settled and {posted} records were posted: is the node serving?"
            );
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    for ans in &mut s.answers {
        let r = view(&mut c, INFERENCE, &IInference::settledReceiptCall { receiptHash: ans.receipt })?;
        (ans.owner_part, ans.serving_part, ans.stakers_part, ans.treasury_part, ans.operator) =
            (r.ownerPart, r.servingPart, r.stakersPart, r.treasuryPart, r.operator);
        let what = if ans.hold_status == 4 {
            "no record: the data part went to the version's rows (fallback)"
        } else {
            "record posted"
        };
        ui.say(&format!(
            "  receipt {}: {what}, record {}, {} OPEN for the data",
            ans.receipt,
            ans.record,
            Amount(r.dataPart)
        ));
    }
    for ans in s.answers.iter().filter(|x| x.hold_status == 2) {
        finalize(&a.rpc, ans.receipt, ui)?;
    }
    Ok(())
}

/// Finalize a posted record, sealing blocks while its challenge window is open.
fn finalize(rpc: &RpcArgs, receipt: B256, ui: &Ui) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let call = IInference::finalizeAttributionCall { receiptHash: receipt };
        match crate::contract::send_sol(&dev(OWNER), rpc, INFERENCE, &call, "inference.finalizeAttribution") {
            Ok(sent) => {
                ui.progress_done();
                let credited =
                    sent.event::<IInference::AttributionFinalized>(INFERENCE).map(|e| e.credited).unwrap_or(0);
                ui.say(&format!("  finalized {receipt}: {} OPEN credited to contributions", Amount(credited)));
                return Ok(());
            }
            Err(e) if e.downcast_ref::<Refused>().is_some_and(|r| r.0.contains("ChallengeWindowOpen")) => {
                if started.elapsed() > Duration::from_secs(180) {
                    return Err(e.context("the challenge window did not close in 180 s"));
                }
                let head = rpc.client().block_number()?;
                ui.progress(&format!("challenge window of {receipt} open at head {head}; waiting"));
                if rpc.client().call("anvil_mine", json!(["0x1"])).is_err() {
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
            Err(e) => return Err(e),
        }
    }
}

fn claim(a: &DemoArgs, s: &mut Story, ui: &Ui) -> anyhow::Result<()> {
    let mut c = a.rpc.client();
    for k in &s.contributions {
        let claimable = view(&mut c, INFERENCE, &IInference::claimableCall { contributionId: k.id })?;
        if claimable == 0 {
            ui.say(&format!("  contribution {} ({}) has nothing to claim", k.id, k.file));
            continue;
        }
        let sent: Sent = super::attribution::claim(k.id, &dev(k.account), &a.rpc)?;
        let amount = sent.event::<IInference::Claimed>(INFERENCE).map(|e| e.amount).unwrap_or(claimable);
        ui.say(&format!(
            "  dev account {} claimed {} OPEN for contribution {}  tx {}",
            k.account,
            Amount(amount),
            k.id,
            sent.hash
        ));
        s.claims.push((k.account, k.id, amount, sent.hash));
    }
    if s.claims.is_empty() {
        bail!("no contribution earned anything from {} paid answers", s.answers.len());
    }
    Ok(())
}

/// One row of the table: an account, its role, what it earned (negative: paid) and from what.
struct Earning {
    account: Address,
    role: String,
    earned: i128,
    from: String,
}

fn earnings(a: &DemoArgs, s: &Story, ui: &Ui) -> anyhow::Result<Vec<Earning>> {
    let n = s.answers.len();
    let sum = |f: fn(&Answer) -> u128| s.answers.iter().map(f).sum::<u128>() as i128;
    let mut rows = Vec::new();
    for k in &s.contributions {
        let got: u128 = s.claims.iter().filter(|c| c.1 == k.id).map(|c| c.2).sum();
        rows.push(Earning {
            account: dev_address(k.account)?,
            role: format!("contributor (dev {})", k.account),
            earned: got as i128,
            from: format!("data rewards of contribution {} ({}, {} rows)", k.id, k.file, k.rows),
        });
    }
    rows.push(Earning {
        account: dev_address(SPAM.0)?,
        role: format!("spammer (dev {})", SPAM.0),
        earned: -(s.slashed as i128),
        from: "bond slashed: a duplicate of contribution 1, rejected".into(),
    });
    // The forger's receipt paid like any other: the owner's, the stakers' and the treasury's parts too.
    let forged = |f: fn(&forgery::Forgery) -> u128| s.forgery.as_ref().map(f).unwrap_or(0) as i128;
    let resold = if s.forgery.is_some() { " (one resold by the dishonest operator)" } else { "" };
    rows.push(Earning {
        account: dev_address(BUILDER)?,
        role: format!("model builder (dev {BUILDER})"),
        earned: sum(|x| x.owner_part) + forged(|f| f.paid.ownerPart),
        from: format!("model owner's share of {} answers of m{}{resold}", n + s.forgery.is_some() as usize, s.model),
    });
    if let Some(op) = s.answers.first().map(|x| x.operator) {
        rows.push(Earning {
            account: op,
            role: "serving operator (the node)".into(),
            earned: sum(|x| x.serving_part),
            from: format!("serving {n} answers"),
        });
    }
    if let Some(f) = &s.forgery {
        rows.push(Earning {
            account: f.operator,
            role: format!("dishonest operator (dev {})", f.forger),
            earned: f.paid.servingPart as i128 - f.slashed as i128,
            from: format!("serving one resold answer, less the slash for its forged record (receipt {})", f.receipt),
        });
        rows.push(Earning {
            account: dev_address(forgery::WATCHER)?,
            role: format!("watcher (dev {})", forgery::WATCHER),
            earned: f.reward as i128 - (f.bond - f.bond_returned) as i128,
            from: "the reporter's share of the slash; its challenge bond came back".into(),
        });
    }
    rows.push(Earning {
        account: dev_address(OWNER)?,
        role: format!("app and curator (dev {OWNER})"),
        earned: -sum(|x| x.cost) - forged(|f| f.paid.cost),
        from: format!(
            "paid for {} answers{resold} with the dev API key (it also owns the Datanet, curates and votes)",
            n + s.forgery.is_some() as usize
        ),
    });
    let base = web(&a.http);
    ui.say(&format!("  {:<42}  {:>18}  {:<30}  {}", "account", "OPEN earned", "role", "from"));
    for r in &rows {
        let sign = if r.earned < 0 { "-" } else { "" };
        ui.say(&format!(
            "  {:<42}  {:>18}  {:<30}  {}\n    {base}/explorer/accounts/{:?}",
            format!("{:?}", r.account),
            format!("{sign}{}", Amount(r.earned.unsigned_abs())),
            r.role,
            r.from,
            r.account
        ));
    }
    ui.say(&format!(
        "  and {} OPEN to stakers, {} OPEN to the treasury",
        Amount((sum(|x| x.stakers_part) + forged(|f| f.paid.stakersPart)) as u128),
        Amount((sum(|x| x.treasury_part) + forged(|f| f.paid.treasuryPart)) as u128)
    ));
    Ok(rows)
}

fn summary(a: &DemoArgs, s: &Story, earnings: Vec<Earning>) -> Value {
    let base = web(&a.http);
    let m = &s.job["output"]["metrics"];
    json!({
        "rpc": a.rpc.rpc,
        "http": a.http.http,
        "datanet": {"id": s.datanet, "version": s.version, "link": format!("{base}/explorer/datanets/{}", s.datanet)},
        "contributions": s.contributions.iter().map(|k| json!({
            "account": format!("{:?}", dev_address(k.account).unwrap_or_default()), "contribution": k.id, "file": k.file,
            "rows": k.rows, "approveTx": k.tx, "link": format!("{base}/explorer/tx/{:?}", k.tx)})).collect::<Vec<_>>(),
        "spam": s.spam,
        "job": {"id": s.job["id"], "status": s.job["status"], "steps": m["steps"], "finalTrainLoss": m["finalTrainLoss"],
                "adapterHash": s.job["output"]["adapterHash"]},
        "model": {"id": s.model, "name": format!("m{}", s.model), "state": "live", "proposal": s.proposal,
                  "executeTx": s.execute_tx, "link": format!("{base}/explorer/models/{}", s.model)},
        "answers": s.answers.iter().map(|x| json!({"receipt": x.receipt, "cost": x.cost.to_string(), "recordHash": x.record,
            "attribution": if x.hold_status == 4 { "fallback" } else { "record" }})).collect::<Vec<_>>(),
        "paidAnswers": s.answers.len(),
        "claims": s.claims.iter().map(|c| json!({"account": format!("{:?}", dev_address(c.0).unwrap_or_default()),
            "contribution": c.1, "amount": c.2.to_string(), "tx": c.3, "link": format!("{base}/explorer/tx/{:?}", c.3)})).collect::<Vec<_>>(),
        "earnings": earnings.iter().map(|r| json!({"account": format!("{:?}", r.account), "role": r.role,
            "earned": r.earned.to_string(), "from": r.from, "link": format!("{base}/explorer/accounts/{:?}", r.account)})).collect::<Vec<_>>(),
        "forgedRecordChallenge": s.forgery.as_ref().map(|f| json!({
            "receipt": f.receipt, "operator": format!("{:?}", f.operator), "credited": f.credited,
            "challenger": format!("{:?}", dev_address(forgery::WATCHER).unwrap_or_default()),
            "challengeTx": f.challenge_tx, "status": f.status,
            "verdict": crate::commands::attribution::challenge_status(f.status),
            "slashed": f.slashed.to_string(), "reporterReward": f.reward.to_string(), "bond": f.bond.to_string(),
            "bondReturned": f.bond_returned.to_string(), "dataPartToFallback": f.paid.dataPart.to_string(),
            "link": format!("{base}/explorer/tx/{:?}", f.challenge_tx)})),
    })
}
