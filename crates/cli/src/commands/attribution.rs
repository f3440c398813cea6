//! `attribution show|verify|challenge RECEIPT` and `rewards show|claim CONTRIBUTION`.

use alloy_sol_types::{SolCall, SolEvent};
use anyhow::{anyhow, bail};
use primitives::abi::{IAttribution, IInference, IParams};
use primitives::system::Module;
use primitives::{Address, Amount, B256, ModelId};
use rpc::types::{BlockNumberOrTag, Filter};
use runtime::models::{ModelRecord, ModelRecordExt};
use serde_json::{Value, json};

use super::RpcArgs;
use super::httpc::{HttpArgs, error_message};
use super::keys::SignerArgs;
use crate::contract::{send_call, view};
use crate::output::Out;

const INFERENCE: Address = Module::Inference.address();
const ATTRIBUTION: Address = Module::Attribution.address();

#[derive(clap::Subcommand, Debug)]
pub enum AttributionCmd {
    /// A receipt's attribution record: spans (with character offsets) and the contributions credited.
    /// Records are readable by the payer (`--api-key`) and the serving operator, and by
    /// anyone when the payer published it (`infer --public-attribution`).
    Show {
        receipt: B256,
        #[command(flatten)]
        auth: RecordAuth,
        #[command(flatten)]
        http: HttpArgs,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// Recompute a record from public inputs (the response, the model's artefacts,
    /// the Datanet rows) and compare: span part byte for byte, gradient part within
    /// its stated tolerance; also the signature and the hash posted on-chain.
    Verify {
        receipt: B256,
        /// The record as a file (what `GET /v1/attribution/RECEIPT` returns), e.g.
        /// one an operator gave you; default: fetched from the node.
        #[arg(long)]
        record: Option<std::path::PathBuf>,
        /// The base model's folder or GGUF file, or hf:ORG/NAME from the Hugging Face
        /// cache (default: the committed models/base).
        #[arg(long)]
        base: Option<std::path::PathBuf>,
        #[command(flatten)]
        auth: RecordAuth,
        #[command(flatten)]
        http: HttpArgs,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// Challenge a posted record within its challenge window: recompute it first
    /// (as `verify` does), then bond a challenge naming the recomputed record's hash.
    /// The operator must reveal the record and prompt; the validators' verifiers
    /// recompute it and sign a verdict: a wrong record slashes the operator and
    /// rewards you, a right one forfeits your bond.
    Challenge {
        receipt: B256,
        /// The record as a file (what `GET /v1/attribution/RECEIPT` returns), e.g.
        /// one an operator gave you; default: fetched from the node.
        #[arg(long)]
        record: Option<std::path::PathBuf>,
        /// The bond, in OPEN (default: the governed `attribution.challenge_bond`).
        #[arg(long)]
        bond: Option<String>,
        /// Challenge even if the record verifies here (the bond is then likely lost).
        #[arg(long)]
        force: bool,
        /// The base model's folder or GGUF file, or hf:ORG/NAME from the Hugging Face
        /// cache (default: the committed models/base).
        #[arg(long)]
        base: Option<std::path::PathBuf>,
        #[command(flatten)]
        signer: SignerArgs,
        #[command(flatten)]
        auth: RecordAuth,
        #[command(flatten)]
        http: HttpArgs,
        #[command(flatten)]
        rpc: RpcArgs,
    },
}

/// How the CLI proves who reads a record: the payer's API key, or (challenge)
/// the signer's key by a signed request.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct RecordAuth {
    /// The payer's API key, to read a record that is not public.
    #[arg(long, env = "OPENLEDGER_API_KEY")]
    pub api_key: Option<String>,
}

impl RecordAuth {
    /// Headers authenticating a GET of `path` at the node `http` names: the API
    /// key if given, else a request signed by `key` if any (bound to that node).
    fn headers(
        &self,
        http: &HttpArgs,
        path: &str,
        key: Option<&keys::SecretKey>,
    ) -> anyhow::Result<Vec<(&'static str, String)>> {
        Ok(match (&self.api_key, key) {
            (Some(k), _) => vec![("Authorization", format!("Bearer {k}"))],
            (None, Some(k)) => vec![http.auth_header(k, "GET", path, b"")?],
            (None, None) => vec![],
        })
    }
}

#[derive(clap::Subcommand, Debug)]
pub enum RewardsCmd {
    /// What a contribution has earned: claimable now, and every inference that credited it (from logs).
    Show {
        contribution: u64,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// Claim a contribution's rewards (its contributor only).
    Claim {
        contribution: u64,
        #[command(flatten)]
        signer: SignerArgs,
        #[command(flatten)]
        rpc: RpcArgs,
    },
}

fn get_json(http: &HttpArgs, path: &str, headers: &[(&str, String)]) -> anyhow::Result<Value> {
    let (status, body) = http.request("GET", path, headers, b"")?;
    if status == 202 {
        // Computed beside the batch: queued or computing, not yet a record.
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let at = v["position"].as_u64().map(|n| format!(", position {n} in the queue")).unwrap_or_default();
        bail!(
            "GET {path}: the record is not ready yet ({}{at}); try again in a moment",
            v["status"].as_str().unwrap_or("pending")
        );
    }
    if status != 200 {
        bail!("GET {path}: {status}: {}", error_message(&body));
    }
    Ok(serde_json::from_slice(&body)?)
}

fn blob(http: &HttpArgs, h: &B256) -> Result<Vec<u8>, String> {
    let (status, body) = http.request("GET", &format!("/v1/blobs/{h}"), &[], b"").map_err(|e| e.to_string())?;
    if status != 200 {
        return Err(format!("blob {h}: HTTP {status}"));
    }
    if primitives::content_hash(&body) != *h {
        return Err(format!("blob {h}: bytes with another hash"));
    }
    Ok(body)
}

fn model_record(rpc: &RpcArgs, id: u64) -> anyhow::Result<ModelRecord> {
    // The view answers the stored record itself.
    super::model::model_info(rpc, id)
}

fn credits_of(v: &Value) -> Vec<(u64, u32)> {
    v.as_array().into_iter().flatten().filter_map(|p| Some((p[0].as_u64()?, p[1].as_u64()? as u32))).collect()
}

pub fn attribution(c: AttributionCmd, out: Out) -> anyhow::Result<()> {
    match c {
        AttributionCmd::Show { receipt, auth, http, rpc } => {
            let path = format!("/v1/attribution/{receipt}");
            let v = get_json(&http, &path, &auth.headers(&http, &path, None)?)?;
            let hold = view(&mut rpc.client(), INFERENCE, &IInference::holdCall { receiptHash: receipt }).ok();
            let challenge =
                view(&mut rpc.client(), ATTRIBUTION, &IAttribution::challengeOfCall { receiptHash: receipt }).ok();
            let mut v = v;
            if let Some(c) = &challenge {
                v["challenge"] = challenge_json(c);
            }
            let r = &v["record"];
            out.print(
                || {
                    let mut s = format!("receipt {receipt}\n  model {}\n  record {}", r["model"].as_str().unwrap_or(""), v["recordHash"].as_str().unwrap_or(""));
                    if let Some(h) = &hold {
                        s += &format!("\n  on-chain hold: {} base units, status {}, posted record {}", h.amount, h.status, h.recordHash);
                    }
                    let text = r["response"].as_str().unwrap_or("");
                    for sp in r["span"]["spans"].as_array().into_iter().flatten() {
                        let (a, b) = (sp["charStart"].as_u64().unwrap_or(0) as usize, sp["charEnd"].as_u64().unwrap_or(0) as usize);
                        let piece: String = text.chars().skip(a).take(b.saturating_sub(a)).collect();
                        s += &format!("\n  span {piece:?} ({} occurrences) in rows {}", sp["count"], sp["rows"]);
                    }
                    for (cid, ppm) in credits_of(&r["credits"]) {
                        s += &format!("\n  contribution {cid}: {:.2}%", ppm as f64 / 1e4);
                    }
                    if let Some(c) = &challenge {
                        s += &format!("\n  challenged by {}: {} (bond {} base units)", c.challenger, challenge_status(c.status), c.bond);
                    }
                    if credits_of(&r["credits"]).is_empty() {
                        s += "\n  no contribution credited: the data share goes to the Datanet versions pro rata to their rows";
                    }
                    s
                },
                v.clone(),
            );
            Ok(())
        }
        AttributionCmd::Challenge { receipt, record, bond, force, base, signer, auth, http, rpc } => {
            let a = ChallengeArgs { receipt, record, bond, force, base };
            let (v, c, bond) = challenge(a, &signer, &auth, &http, &rpc)?;
            let failed: Vec<String> = v["failedChecks"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|x| x.as_str().map(String::from))
                .collect();
            let mine_hash = v["recordHash"].as_str().unwrap_or("").to_string();
            out.print(
                || {
                    format!(
                        "challenged the record of {receipt} with a bond of {bond}\n  your record {mine_hash}\n  failed checks: {}\n  the operator must reveal by block {}; then the validators judge",
                        if failed.is_empty() { "none".to_string() } else { failed.join(", ") },
                        c.revealBy
                    )
                },
                v,
            );
            Ok(())
        }
        AttributionCmd::Verify { receipt, record, base, auth, http, rpc } => {
            let (checks, _) =
                verify_receipt(receipt, record.as_deref(), base, &http, &rpc, &|p| auth.headers(&http, p, None))?;
            let ok = checks.iter().all(|c| c.1);
            let v = json!({"receipt": receipt, "ok": ok, "checks": checks.iter().map(|(n, o, d)| json!({"check": n, "ok": o, "detail": d})).collect::<Vec<_>>()});
            out.print(
                || {
                    let mut s = format!(
                        "receipt {receipt}: {}",
                        if ok { "the record verifies" } else { "THE RECORD DOES NOT VERIFY" }
                    );
                    for (n, o, d) in &checks {
                        s += &format!("\n  {} {n} {d}", if *o { "ok  " } else { "FAIL" });
                    }
                    s
                },
                v,
            );
            if !ok {
                bail!("verification failed");
            }
            Ok(())
        }
    }
}

/// What `attribution challenge` is given besides who signs and where the node is.
pub(crate) struct ChallengeArgs {
    pub receipt: B256,
    pub record: Option<std::path::PathBuf>,
    pub bond: Option<String>,
    pub force: bool,
    pub base: Option<std::path::PathBuf>,
}

/// Recompute a record (as `verify` does), then bond a challenge naming the
/// recomputed record's hash: (the summary, the challenge as the chain holds it, the bond).
pub(crate) fn challenge(
    a: ChallengeArgs,
    signer: &SignerArgs,
    auth: &RecordAuth,
    http: &HttpArgs,
    rpc: &RpcArgs,
) -> anyhow::Result<(Value, primitives::abi::AttributionChallenge, Amount)> {
    let receipt = a.receipt;
    // The challenger reads the record and the rows as itself (a member may
    // recompute a record of a model trained on an allow-list Datanet).
    let key = signer.key().ok();
    let (checks, mine) =
        verify_receipt(receipt, a.record.as_deref(), a.base, http, rpc, &|p| auth.headers(http, p, key.as_ref()))?;
    let ok = checks.iter().all(|c| c.1);
    if ok && !a.force {
        bail!(
            "the record of {receipt} verifies here: a challenge would most likely forfeit the bond \
             (pass --force to challenge anyway)"
        );
    }
    let bond = match a.bond {
        Some(b) => b.parse::<Amount>().map_err(|e| anyhow!("--bond {b:?}: {e}"))?,
        None => {
            let p = view(&mut rpc.client(), ATTRIBUTION, &IAttribution::challengeBondCall {})?;
            Amount::from_u256(p).map_err(|_| anyhow!("bond {p} overflows"))?
        }
    };
    let mine_hash = attribution::record_hash(&mine);
    let call = IAttribution::challengeCall { receiptHash: receipt, challengerRecordHash: mine_hash };
    let sent = send_call(signer, rpc, ATTRIBUTION, bond, call.abi_encode(), "attribution challenge")?;
    let c = view(&mut rpc.client(), ATTRIBUTION, &IAttribution::challengeOfCall { receiptHash: receipt })?;
    let failed: Vec<String> = checks.iter().filter(|c| !c.1).map(|c| c.0.clone()).collect();
    let v = json!({"receipt": receipt, "tx": sent.hash, "recordHash": mine_hash, "failedChecks": failed, "challenge": challenge_json(&c)});
    Ok((v, c, bond))
}

/// Recompute a receipt's record from public inputs and compare it with the
/// one the serving node published: (checks, the recomputed record). `auth`
/// gives the headers that authenticate a GET of a path (the record and the rows).
/// One check of `attribution verify`: what was checked, whether it held, and the detail.
type Check = (String, bool, String);
/// The signed-request headers for a path.
type AuthHeaders<'a> = dyn Fn(&str) -> anyhow::Result<Vec<(&'static str, String)>> + 'a;

pub(crate) fn verify_receipt(
    receipt: B256,
    record: Option<&std::path::Path>,
    base: Option<std::path::PathBuf>,
    http: &HttpArgs,
    rpc: &RpcArgs,
    auth: &AuthHeaders<'_>,
) -> anyhow::Result<(Vec<Check>, Value)> {
    let v = match record {
        Some(file) => read_record_file(file)?,
        None => {
            let path = format!("/v1/attribution/{receipt}");
            get_json(http, &path, &auth(&path)?)?
        }
    };
    let rec = &v["record"];
    let hold = view(&mut rpc.client(), INFERENCE, &IInference::holdCall { receiptHash: receipt }).ok();
    let mut checks: Vec<Check> = attribution::signed_record_checks(&v, hold.as_ref().map(|h| h.recordHash))
        .into_iter()
        .map(|c| (c.check, c.ok, c.detail))
        .collect();
    // The record must be one of its version's type; its parameters must be
    // the governed ones in force at the height it states.
    let typed = match attribution::AttributionRecord::from_value(rec) {
        Ok(t) => t,
        Err(e) => {
            checks.push(("record decodes into its version's type".into(), false, e));
            return Ok((checks, Value::Null));
        }
    };
    if let Some(h) = hold.as_ref().filter(|h| h.status == runtime::inference::POSTED) {
        let pc = view(&mut rpc.client(), INFERENCE, &IInference::pendingCreditsCall { receiptHash: receipt })?;
        let posted = attribution::PostedCredits::new(h.amount, &pc.contributionIds, &pc.amounts);
        checks.push((
            "credits posted on chain are the record's".into(),
            posted.matches(&typed.credits),
            format!("the record credits {:?}", typed.credits),
        ));
    }
    let settled_at = hold.as_ref().map(|h| h.settledAt).unwrap_or(0);
    let p = typed.stated(settled_at);
    let param_at = |name: &str| -> anyhow::Result<u128> {
        let v = view(
            &mut rpc.client(),
            Module::Params.address(),
            &IParams::getAtCall { name: name.into(), height: p.params_height },
        )?;
        Ok(u128::try_from(v).unwrap_or(u128::MAX))
    };
    let governed = attribution::RecordParams {
        span_weight_ppm: param_at("attribution.span_weight_ppm")? as u32,
        min_span_tokens: param_at("attribution.min_span_tokens")? as usize,
        max_credits: param_at("inference.max_credits")? as usize,
        // Flags are checked by the verifiers against the chain; here the
        // recomputation uses the record's own exclusions.
        excluded: p.excluded.clone(),
        params_height: p.params_height,
        retrieval_share_bps: Some(param_at("attribution.retrieval_share_bps")? as u32),
    };
    let timeout = u128::try_from(view(
        &mut rpc.client(),
        Module::Params.address(),
        &IParams::getAtCall { name: "inference.attribution_timeout_blocks".into(), height: settled_at },
    )?)
    .unwrap_or(u128::MAX) as u64;
    if hold.is_some() {
        checks.extend(
            attribution::params_checks(&p, &governed, settled_at, timeout)
                .into_iter()
                .map(|c| (c.check, c.ok, c.detail)),
        );
    }
    // Recompute from public inputs.
    let id: u64 = rec["model"]
        .as_str()
        .and_then(|m| m.parse::<ModelId>().ok())
        .map(|m| m.0)
        .ok_or_else(|| anyhow!("record names no model"))?;
    let r = model_record(rpc, id)?;
    let base = super::base_model(base)?.ok_or_else(|| anyhow!("no base model here: give --base"))?;
    let files = ml::ModelFiles::open(&base)?;
    if files.hash != r.baseModelHash {
        bail!("{} is not this model's base ({} vs {})", base.display(), files.hash, r.baseModelHash);
    }
    // Dequantized once: the gradients read the same f32 values the node computes
    // from its stored blocks, without dequantizing at every pass.
    let model = ml::Model::from_files(&files)?.into_f32_weights()?;
    let tok = &files.tokenizer;
    let response = typed.response_tokens.clone();
    let text = typed.response.as_str();
    checks.push(("response tokens".into(), tok.decode(&response).ok().as_deref() == Some(text), String::new()));
    let mut version_rows = Vec::new();
    for (d, ver) in r.versions() {
        version_rows.extend(fetch_version_rows(http, auth, d, ver)?);
    }
    let dir = tempfile_dir()?;
    let index = if version_rows.is_empty() {
        None
    } else {
        let rows = node::spans::index_rows(tok, version_rows).map_err(|e| anyhow!(e))?;
        let versions = r.versions();
        let key = node::spans::index_key(tok, &versions);
        Some(
            attribution::SpanIndex::build(
                key,
                &rows,
                tok.vocab_size() as u32,
                0,
                &dir.join("verify.olsa"),
                &mut index_progress(),
            )
            .map_err(|e| anyhow!("{e}"))?,
        )
    };
    let gradient = attribution::GradientInputs::load(&r, &model.config, &|h| blob(http, h)).map_err(|e| anyhow!(e))?;
    let prompt_hash = typed.prompt_hash;
    let inputs = attribution::Inputs {
        model: &model,
        tok,
        model_id: id,
        r: &r,
        receipt_hash: receipt,
        prompt_hash,
        response: &response,
        text,
        index: index.as_ref(),
        gradient: gradient.as_ref(),
    };
    // With the methods of the record's version, so records made before still verify.
    let mine = attribution::compute_record_version(typed.version, &inputs, p.clone()).map_err(|e| anyhow!(e))?;
    let mine = match &typed.retrieval {
        Some(part) => {
            let inputs = retrieval_inputs(http, auth, tok, part)?;
            attribution::add_retrieval(&mine, tok, &inputs, &p).map_err(|e| anyhow!(e))?
        }
        None => mine,
    };
    checks.extend(attribution::compare(&mine, rec).into_iter().map(|c| (c.check, c.ok, c.detail)));
    Ok((checks, mine))
}

/// Most bytes of a record file (`--record`): a record is a few KiB.
const MAX_RECORD_FILE: u64 = 4 << 20;

/// A record as `GET /v1/attribution/{receipt}` returns it (`{"record",
/// "recordHash", "signature", "signer"}`), from a file the operator gave.
fn read_record_file(file: &std::path::Path) -> anyhow::Result<Value> {
    use std::io::Read;
    let f = std::fs::File::open(file).map_err(|e| anyhow!("--record {}: {e}", file.display()))?;
    let mut bytes = Vec::new();
    f.take(MAX_RECORD_FILE + 1).read_to_end(&mut bytes).map_err(|e| anyhow!("--record {}: {e}", file.display()))?;
    if bytes.len() as u64 > MAX_RECORD_FILE {
        bail!("--record {}: larger than {} bytes", file.display(), MAX_RECORD_FILE);
    }
    let v: Value = serde_json::from_slice(&bytes).map_err(|e| {
        anyhow!("--record {}: not JSON ({e}); give the record as the operator published it", file.display())
    })?;
    if !v["record"].is_object() {
        bail!(
            "--record {}: no \"record\" object (the file must be what GET /v1/attribution/RECEIPT returns)",
            file.display()
        );
    }
    Ok(v)
}

/// The rows of a Datanet version, as the node serves them (`GET /v1/datanets/{d}/versions/{v}/rows`).
fn fetch_version_rows(
    http: &HttpArgs,
    auth: &AuthHeaders<'_>,
    d: u64,
    ver: u64,
) -> anyhow::Result<Vec<datanets::VersionRow>> {
    let rows_path = format!("/v1/datanets/{d}/versions/{ver}/rows");
    let (st, body) = http.request("GET", &rows_path, &auth(&rows_path)?, b"")?;
    if st != 200 {
        bail!("rows of Datanet {d} version {ver}: HTTP {st}: {}", error_message(&body));
    }
    let mut out = Vec::new();
    for line in String::from_utf8_lossy(&body).lines().filter(|l| !l.is_empty()) {
        let j: Value = serde_json::from_str(line)?;
        let row = match (j["text"].as_str(), j["prompt"].as_str(), j["completion"].as_str()) {
            (Some(t), _, _) => primitives::rows::Row::Text { text: t.into() },
            (None, Some(p), Some(c)) => {
                primitives::rows::Row::PromptCompletion { prompt: p.into(), completion: c.into() }
            }
            _ => bail!("a row without text"),
        };
        out.push(datanets::VersionRow {
            id: primitives::rows::RowId {
                contribution: j["contribution"].as_u64().unwrap_or(0),
                index: j["index"].as_u64().unwrap_or(0) as u32,
            },
            contributor: j["contributor"].as_str().and_then(|s| s.parse().ok()).unwrap_or_default(),
            row,
        });
    }
    Ok(out)
}

/// The retrieval part's inputs: the rows the record names, read from the
/// Datanet versions it names (a row that is not in them is left out, so a
/// record naming one does not match).
fn retrieval_inputs(
    http: &HttpArgs,
    auth: &AuthHeaders<'_>,
    tok: &ml::TextTokenizer,
    part: &attribution::RetrievalPartRecord,
) -> anyhow::Result<attribution::RetrievalInputs> {
    let mut rows = std::collections::HashMap::new();
    for d in &part.datanets {
        for r in fetch_version_rows(http, auth, d.datanet, d.version)? {
            rows.entry((r.id.contribution, r.id.index)).or_insert(r.row);
        }
    }
    let mut out = Vec::with_capacity(part.rows.len());
    for (c, i) in &part.rows {
        if let Some(row) = rows.get(&(*c, *i)) {
            let tokens = tok.encode(&node::spans::row_text(row), false)?;
            out.push(attribution::RetrievedRow { contribution: *c, row: *i, tokens });
        }
    }
    let datanets = part.datanets.iter().map(|d| (d.datanet, d.version)).collect();
    Ok(attribution::RetrievalInputs { datanets, rows: out })
}

/// A progress bar on stderr while a span index builds (only on a terminal).
fn index_progress() -> impl FnMut(u64, u64) {
    use std::io::{IsTerminal, Write};
    let tty = std::io::stderr().is_terminal();
    let mut last = u64::MAX;
    move |done, total| {
        let pct = (done * 100).checked_div(total).unwrap_or(100);
        if !tty || pct == last {
            return;
        }
        last = pct;
        let filled = (pct as usize * 30 / 100).min(30);
        eprint!(
            "\r  indexing the training rows [{}{}] {pct:>3}% of {total} tokens",
            "#".repeat(filled),
            "-".repeat(30 - filled)
        );
        if done >= total {
            eprintln!();
        }
        let _ = std::io::stderr().flush();
    }
}

pub(crate) fn challenge_status(s: u8) -> &'static str {
    match s {
        1 => "awaiting the operator's reveal",
        2 => "revealed, awaiting the validators' verdict",
        3 => "upheld: the record was wrong, the operator was slashed",
        4 => "rejected: the record was right, the bond was forfeited",
        5 => "defaulted: the operator did not reveal, it was slashed",
        6 => "lapsed: no verdict in time, the bond went back",
        _ => "unknown",
    }
}

fn challenge_json(c: &primitives::abi::AttributionChallenge) -> Value {
    json!({
        "challenger": c.challenger,
        "bond": c.bond.to_string(),
        "challengerRecordHash": c.challengerRecordHash,
        "operator": c.operator,
        "openedAt": c.openedAt,
        "revealBy": c.revealBy,
        "verdictBy": c.verdictBy,
        "status": c.status,
        "state": challenge_status(c.status),
        "signers": c.signers.len(),
    })
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let d = std::env::temp_dir().join(format!("openledger-verify-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

pub fn rewards(c: RewardsCmd, out: Out) -> anyhow::Result<()> {
    match c {
        RewardsCmd::Show { contribution, rpc } => {
            let mut c = rpc.client();
            let claimable = view(&mut c, INFERENCE, &IInference::claimableCall { contributionId: contribution })?;
            let acc = view(&mut c, INFERENCE, &IInference::accruedCall { contributionId: contribution })?;
            let mut topic = [0u8; 32];
            topic[24..].copy_from_slice(&contribution.to_be_bytes());
            let filter = Filter::new()
                .from_block(0)
                .to_block(BlockNumberOrTag::Latest)
                .address(INFERENCE)
                .event_signature(IInference::Credited::SIGNATURE_HASH)
                .topic2(B256::from(topic));
            let paid: Vec<Value> = c
                .logs(&filter)?
                .iter()
                .filter_map(|l| {
                    let e = IInference::Credited::decode_raw_log(l.topics().iter().copied(), &l.data().data).ok()?;
                    // The block as the log gives it (a hex quantity).
                    let block = l.block_number.map(|n| format!("{n:#x}"));
                    Some(json!({"receipt": e.receiptHash, "amount": e.amount.to_string(), "block": block}))
                })
                .collect();
            let v = json!({"contribution": contribution, "claimable": claimable.to_string(),
                           "unclaimedAccrued": acc.unclaimed.to_string(), "totalAccrued": acc.total.to_string(), "credits": paid});
            out.print(
                || {
                    let mut s = format!(
                        "contribution {contribution}: {} OPEN claimable ({} OPEN credited in all)",
                        Amount(claimable),
                        Amount(acc.total)
                    );
                    for p in &paid {
                        let a: u128 = p["amount"].as_str().unwrap_or("0").parse().unwrap_or(0);
                        s += &format!("\n  receipt {}: {} OPEN", p["receipt"].as_str().unwrap_or(""), Amount(a));
                    }
                    s
                },
                v,
            );
            Ok(())
        }
        RewardsCmd::Claim { contribution, signer, rpc } => {
            let s = claim(contribution, &signer, &rpc)?;
            out.print(|| format!("claimed the rewards of contribution {contribution}"), s.json(json!({})));
            Ok(())
        }
    }
}

/// `rewards claim`: pay a contribution's claimable rewards to its contributor.
pub fn claim(contribution: u64, signer: &SignerArgs, rpc: &RpcArgs) -> anyhow::Result<crate::contract::Sent> {
    send_call(
        signer,
        rpc,
        INFERENCE,
        Amount::ZERO,
        IInference::claimCall { contributionId: contribution }.abi_encode(),
        "inference.claim",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--record FILE` comes from whoever published the record: an oversized
    /// file, a file that is not JSON and JSON without a record are refused
    /// with the reason, before anything is sent to the node.
    #[test]
    fn record_files_are_bounded_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, bytes: &[u8]| {
            let p = dir.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            p
        };
        let big = write("big.json", &vec![b' '; MAX_RECORD_FILE as usize + 1]);
        let e = read_record_file(&big).unwrap_err().to_string();
        assert!(e.contains("larger than 4194304 bytes"), "{e}");
        let e = read_record_file(&write("bad.json", b"{\"record\": ")).unwrap_err().to_string();
        assert!(e.contains("not JSON"), "{e}");
        let e = read_record_file(&write("none.json", b"{\"recordHash\": \"0x00\"}")).unwrap_err().to_string();
        assert!(e.contains("no \"record\" object"), "{e}");
        let e = read_record_file(&dir.path().join("missing.json")).unwrap_err().to_string();
        assert!(e.contains("missing.json"), "{e}");
        // At the limit, a well-formed file is read.
        let mut ok = br#"{"record": {"version": 4}}"#.to_vec();
        ok.resize(MAX_RECORD_FILE as usize, b' ');
        assert_eq!(read_record_file(&write("ok.json", &ok)).unwrap()["record"]["version"], 4);
    }
}
