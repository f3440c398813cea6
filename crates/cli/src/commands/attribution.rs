//! `attribution show|verify RECEIPT` and `rewards show|claim CONTRIBUTION`.

use alloy_sol_types::SolCall;
use anyhow::{anyhow, bail};
use primitives::abi::IInference;
use primitives::system::Module;
use primitives::{Address, Amount, B256, ModelId};
use runtime::models::ModelRecord;
use serde_json::{Value, json};

use super::RpcArgs;
use super::httpc::{HttpArgs, error_message};
use super::keys::SignerArgs;
use super::stake::{send_call, view};
use crate::output::Out;

const INFERENCE: Address = Module::Inference.address();

#[derive(clap::Subcommand, Debug)]
pub enum AttributionCmd {
    /// A receipt's attribution record: spans (with character offsets) and the contributions credited.
    Show {
        receipt: B256,
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
        /// The base model's folder or GGUF file (default: the committed models/base).
        #[arg(long)]
        base: Option<std::path::PathBuf>,
        #[command(flatten)]
        http: HttpArgs,
        #[command(flatten)]
        rpc: RpcArgs,
    },
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

fn get_json(http: &HttpArgs, path: &str) -> anyhow::Result<Value> {
    let (status, body) = http.request("GET", path, &[], b"")?;
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
    let i = super::registry::model_info(rpc, id)?;
    Ok(ModelRecord {
        owner: i.owner,
        name: i.name,
        baseModelHash: i.baseModelHash,
        adapterHash: i.adapterHash,
        datanetIds: i.datanets.iter().map(|d| d.datanetId).collect(),
        datanetVersions: i.datanets.iter().map(|d| d.version).collect(),
        licences: i.licences,
        hyperparamsHash: i.hyperparamsHash,
        hyperparams: i.hyperparams,
        metricsHash: i.metricsHash,
        metrics: i.metrics,
        trainingLogHash: i.trainingLogHash,
        checkpointHashes: i.checkpointHashes,
        checkpointLearningRates: i.checkpointLearningRates,
        sketchHash: i.sketchHash,
        sketchSeed: i.sketchSeed,
        sketchK: i.sketchK,
        priceInPer1k: i.priceInPer1k,
        priceOutPer1k: i.priceOutPer1k,
        state: i.state,
        createdAt: i.createdAt,
    })
}

fn credits_of(v: &Value) -> Vec<(u64, u32)> {
    v.as_array().into_iter().flatten().filter_map(|p| Some((p[0].as_u64()?, p[1].as_u64()? as u32))).collect()
}

pub fn attribution(c: AttributionCmd, out: Out) -> anyhow::Result<()> {
    match c {
        AttributionCmd::Show { receipt, http, rpc } => {
            let v = get_json(&http, &format!("/v1/attribution/{receipt}"))?;
            let hold = view(&mut rpc.client(), INFERENCE, &IInference::holdCall { receiptHash: receipt }).ok();
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
                    if credits_of(&r["credits"]).is_empty() {
                        s += "\n  no contribution credited: the data share goes to the Datanet versions pro rata to their rows";
                    }
                    s
                },
                v.clone(),
            );
            Ok(())
        }
        AttributionCmd::Verify { receipt, base, http, rpc } => {
            let v = get_json(&http, &format!("/v1/attribution/{receipt}"))?;
            let rec = &v["record"];
            let mut checks: Vec<(String, bool, String)> = Vec::new();
            let hash = node::attribution::record_hash(rec);
            checks.push(("record hash".into(), v["recordHash"].as_str() == Some(&hash.to_string()), hash.to_string()));
            let sig = v["signature"].as_str().unwrap_or("");
            let signer = hex::decode(sig.trim_start_matches("0x"))
                .ok()
                .and_then(|b| alloy_primitives::Signature::from_raw(&b).ok())
                .and_then(|s| s.recover_address_from_msg(hash.as_slice()).ok());
            let claimed: Option<Address> = v["signer"].as_str().and_then(|s| s.parse().ok());
            checks.push(("signature".into(), signer.is_some() && signer == claimed, format!("{signer:?}")));
            if let Ok(h) = view(&mut rpc.client(), INFERENCE, &IInference::holdCall { receiptHash: receipt }) {
                let posted = h.recordHash == B256::ZERO || h.recordHash == hash;
                checks.push(("posted on-chain".into(), posted, h.recordHash.to_string()));
            }
            // Recompute from public inputs.
            let id: u64 = rec["model"]
                .as_str()
                .and_then(|m| m.parse::<ModelId>().ok())
                .map(|m| m.0)
                .ok_or_else(|| anyhow!("record names no model"))?;
            let r = model_record(&rpc, id)?;
            let base =
                base.or_else(node::default_base_model).ok_or_else(|| anyhow!("no base model here: give --base"))?;
            let files = ml::ModelFiles::open(&base)?;
            if files.hash != r.baseModelHash {
                bail!("{} is not this model's base ({} vs {})", base.display(), files.hash, r.baseModelHash);
            }
            let model = ml::Model::from_files(&files)?;
            let tok = &files.tokenizer;
            let response: Vec<u32> = rec["responseTokens"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t.as_u64())
                .map(|t| t as u32)
                .collect();
            let text = rec["response"].as_str().unwrap_or("");
            checks.push(("response tokens".into(), tok.decode(&response).ok().as_deref() == Some(text), String::new()));
            let mut version_rows = Vec::new();
            for (d, ver) in r.datanetIds.iter().zip(&r.datanetVersions) {
                let (st, body) = http.request("GET", &format!("/v1/datanets/{d}/versions/{ver}/rows"), &[], b"")?;
                if st != 200 {
                    bail!("rows of Datanet {d} version {ver}: HTTP {st}: {}", error_message(&body));
                }
                for line in String::from_utf8_lossy(&body).lines().filter(|l| !l.is_empty()) {
                    let j: Value = serde_json::from_str(line)?;
                    let row = match (j["text"].as_str(), j["prompt"].as_str(), j["completion"].as_str()) {
                        (Some(t), _, _) => primitives::rows::Row::Text { text: t.into() },
                        (None, Some(p), Some(c)) => {
                            primitives::rows::Row::PromptCompletion { prompt: p.into(), completion: c.into() }
                        }
                        _ => bail!("a row without text"),
                    };
                    version_rows.push(datanets::VersionRow {
                        id: primitives::rows::RowId {
                            contribution: j["contribution"].as_u64().unwrap_or(0),
                            index: j["index"].as_u64().unwrap_or(0) as u32,
                        },
                        contributor: j["contributor"].as_str().and_then(|s| s.parse().ok()).unwrap_or_default(),
                        row,
                    });
                }
            }
            let dir = tempfile_dir()?;
            let index = if version_rows.is_empty() {
                None
            } else {
                let rows = node::spans::index_rows(tok, version_rows).map_err(|e| anyhow!(e))?;
                let versions: Vec<(u64, u64)> =
                    r.datanetIds.iter().copied().zip(r.datanetVersions.iter().copied()).collect();
                let key = node::spans::index_key(tok, &versions);
                Some(
                    attribution::SpanIndex::build(
                        key,
                        &rows,
                        tok.vocab_size() as u32,
                        0,
                        &dir.join("verify.olsa"),
                        &mut |_, _| {},
                    )
                    .map_err(|e| anyhow!("{e}"))?,
                )
            };
            let gradient = node::attribution::GradientInputs::load(&r, &model.config, &|h| blob(&http, h))
                .map_err(|e| anyhow!(e))?;
            let p = node::attribution::RecordParams {
                span_weight_ppm: rec["mix"]["spanWeightPpm"].as_u64().unwrap_or(0) as u32,
                min_span_tokens: rec["span"]["minSpanTokens"].as_u64().unwrap_or(8) as usize,
                max_credits: rec["mix"]["maxCredits"].as_u64().unwrap_or(32) as usize,
            };
            let prompt_hash: B256 = rec["promptHash"].as_str().and_then(|s| s.parse().ok()).unwrap_or_default();
            let mine = node::attribution::compute_record(
                &model,
                tok,
                id,
                &r,
                receipt,
                prompt_hash,
                &response,
                text,
                index.as_ref(),
                gradient.as_ref(),
                p,
            )
            .map_err(|e| anyhow!(e))?;
            let span_same = node::attribution::canonical(&mine["span"]) == node::attribution::canonical(&rec["span"]);
            checks.push(("span part (byte for byte)".into(), span_same, String::new()));
            let tol = rec["gradient"]["tolerancePpm"].as_u64().unwrap_or(0) as i64;
            let within = |a: &[(u64, u32)], b: &[(u64, u32)]| {
                let ka: std::collections::BTreeMap<u64, i64> = a.iter().map(|(c, w)| (*c, *w as i64)).collect();
                let kb: std::collections::BTreeMap<u64, i64> = b.iter().map(|(c, w)| (*c, *w as i64)).collect();
                ka.keys().chain(kb.keys()).all(|k| (ka.get(k).unwrap_or(&0) - kb.get(k).unwrap_or(&0)).abs() <= tol)
            };
            let g_ok = within(&credits_of(&mine["gradient"]["credits"]), &credits_of(&rec["gradient"]["credits"]));
            checks.push((format!("gradient part (within {tol} ppm)"), g_ok, String::new()));
            let c_ok = within(&credits_of(&mine["credits"]), &credits_of(&rec["credits"]));
            checks.push(("credits".into(), c_ok, String::new()));
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
            let logs = c.call(
                "eth_getLogs",
                json!([{"fromBlock": "0x0", "toBlock": "latest", "address": INFERENCE,
                        "topics": [<IInference::Credited as alloy_sol_types::SolEvent>::SIGNATURE_HASH, null, B256::from(topic)]}]),
            )?;
            let paid: Vec<Value> = logs
                .as_array()
                .into_iter()
                .flatten()
                .map(|l| {
                    let data =
                        hex::decode(l["data"].as_str().unwrap_or("").trim_start_matches("0x")).unwrap_or_default();
                    let amount = if data.len() >= 32 {
                        u128::from_be_bytes(data[16..32].try_into().unwrap_or([0; 16]))
                    } else {
                        0
                    };
                    json!({"receipt": l["topics"][1], "amount": amount.to_string(), "block": l["blockNumber"]})
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
            let s = send_call(
                &signer,
                &rpc,
                INFERENCE,
                Amount::ZERO,
                IInference::claimCall { contributionId: contribution }.abi_encode(),
                "inference.claim",
            )?;
            out.print(|| format!("claimed the rewards of contribution {contribution}"), s.json(json!({})));
            Ok(())
        }
    }
}
