//! `train submit|watch|list|show|cancel`: ModelFactory jobs on the node's HTTP API.

use std::io::Write;
use std::time::Duration;

use anyhow::{anyhow, bail};
use serde_json::{Value, json};

use super::httpc::{HttpArgs, error_message};
use super::keys::SignerArgs;
use crate::output::Out;

// One value per command line, parsed once: boxing the big variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(clap::Subcommand, Debug)]
pub enum TrainCmd {
    /// Queue a LoRA fine-tuning job on Datanet versions.
    Submit {
        /// DATANET:VERSION, repeatable (e.g. --datanet 1:2).
        #[arg(long = "datanet", required = true)]
        datanets: Vec<String>,
        /// A JSON job spec to start from (fields as in GET /v1/jobs/{id}: rank, alpha, targets, learningRate, ...).
        #[arg(long)]
        spec: Option<std::path::PathBuf>,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        rank: Option<usize>,
        #[arg(long)]
        alpha: Option<f64>,
        #[arg(long)]
        dropout: Option<f64>,
        /// Comma-separated: q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj.
        #[arg(long)]
        targets: Option<String>,
        #[arg(long)]
        learning_rate: Option<f64>,
        #[arg(long)]
        warmup_steps: Option<u64>,
        #[arg(long)]
        epochs: Option<u64>,
        #[arg(long)]
        steps: Option<u64>,
        #[arg(long)]
        batch_size: Option<usize>,
        #[arg(long)]
        grad_accum: Option<usize>,
        #[arg(long)]
        max_seq_len: Option<usize>,
        #[arg(long)]
        seed: Option<u64>,
        /// The base model to fine-tune: the model id of the base model the node serves
        /// (m1) or its base model hash (default: the node's base model).
        #[arg(long)]
        base_model: Option<String>,
        /// Follow the job until it ends.
        #[arg(long)]
        watch: bool,
        #[command(flatten)]
        signer: SignerArgs,
        #[command(flatten)]
        http: HttpArgs,
    },
    /// Follow a job's progress until it ends.
    Watch {
        id: u64,
        #[command(flatten)]
        http: HttpArgs,
    },
    /// A job: spec, status, metrics, artefacts.
    Show {
        id: u64,
        #[command(flatten)]
        http: HttpArgs,
    },
    /// Every job on the node.
    List {
        #[command(flatten)]
        http: HttpArgs,
    },
    /// Cancel a queued or running job (its owner only).
    Cancel {
        id: u64,
        #[command(flatten)]
        signer: SignerArgs,
        #[command(flatten)]
        http: HttpArgs,
    },
}

fn parse_version(s: &str) -> anyhow::Result<Value> {
    let (d, v) = s.split_once(':').ok_or_else(|| anyhow!("--datanet {s:?}: write DATANET:VERSION, e.g. 1:2"))?;
    Ok(json!({"datanet": d.trim().parse::<u64>()?, "version": v.trim().parse::<u64>()?}))
}

fn api(http: &HttpArgs, method: &str, path: &str, signer: Option<&SignerArgs>, body: &[u8]) -> anyhow::Result<Value> {
    let mut headers = vec![("Content-Type", "application/json".to_string())];
    if let Some(s) = signer {
        let key = s.key()?;
        headers.push(http.auth_header(&key, method, path, body)?);
    }
    let (status, resp) = http.request(method, path, &headers, body)?;
    if !(200..300).contains(&status) {
        bail!("{method} {path}: {status}: {}", error_message(&resp));
    }
    Ok(serde_json::from_slice(&resp)?)
}

/// GET /v1/jobs/{id}.
pub fn job(http: &HttpArgs, id: u64) -> anyhow::Result<Value> {
    api(http, "GET", &format!("/v1/jobs/{id}"), None, b"")
}

fn bar(p: &Value) -> String {
    let step = p["step"].as_u64().unwrap_or(0);
    let total = p["totalSteps"].as_u64().unwrap_or(0).max(1);
    let width = 30;
    let filled = (step as usize * width / total as usize).min(width);
    let mut s = format!(
        "{:<10} [{}{}] {step}/{total}",
        p["phase"].as_str().unwrap_or(""),
        "#".repeat(filled),
        "-".repeat(width - filled)
    );
    if let Some(l) = p["loss"].as_f64() {
        s += &format!("  loss {l:.4}");
    }
    if let Some(t) = p["tokensPerSecond"].as_f64() {
        s += &format!("  {t:.0} tok/s");
    }
    if let Some(e) = p["etaSeconds"].as_f64() {
        s += &format!("  ETA {}s", e.round() as u64);
    }
    s
}

/// Queue a job (`spec` as in POST /v1/jobs): its id and the node's answer.
pub fn submit(spec: &Value, signer: &SignerArgs, http: &HttpArgs) -> anyhow::Result<(u64, Value)> {
    let body = serde_json::to_vec(spec)?;
    let j = api(http, "POST", "/v1/jobs", Some(signer), &body)?;
    let id = j["id"].as_u64().ok_or_else(|| anyhow!("no job id in {j}"))?;
    Ok((id, j))
}

/// Follow a job until it ends; the final record.
pub fn watch(http: &HttpArgs, id: u64, show_bar: bool) -> anyhow::Result<Value> {
    let mut last = String::new();
    loop {
        let j = job(http, id)?;
        let status = j["status"].as_str().unwrap_or("").to_string();
        if show_bar && !j["progress"].is_null() {
            let b = bar(&j["progress"]);
            if b != last {
                eprint!("\r{b:<100}");
                let _ = std::io::stderr().flush();
                last = b;
            }
        }
        if matches!(status.as_str(), "succeeded" | "failed" | "cancelled") {
            if show_bar && !last.is_empty() {
                eprintln!();
            }
            return Ok(j);
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn summary(j: &Value) -> String {
    let mut s = format!(
        "job {} ({}): {}",
        j["id"],
        j["spec"]["name"].as_str().filter(|n| !n.is_empty()).unwrap_or("unnamed"),
        j["status"].as_str().unwrap_or("?")
    );
    if let Some(e) = j["error"].as_str() {
        s += &format!("\n  error: {e}");
    }
    let m = &j["output"]["metrics"];
    if !m.is_null() {
        s += &format!(
            "\n  steps {}, train loss {:.4}, {:.0} tokens/s\n  validation loss {:.4} (base model {:.4}), perplexity {:.2}",
            m["steps"],
            m["finalTrainLoss"].as_f64().unwrap_or(f64::NAN),
            m["tokensPerSecond"].as_f64().unwrap_or(0.0),
            m["validation"]["loss"].as_f64().unwrap_or(f64::NAN),
            m["baseValidationLoss"].as_f64().unwrap_or(f64::NAN),
            m["validation"]["perplexity"].as_f64().unwrap_or(f64::NAN),
        );
        if let (Some(em), Some(r)) = (m["validation"]["exactMatch"].as_f64(), m["validation"]["rougeL"].as_f64()) {
            s += &format!(", exact match {em:.3}, ROUGE-L {r:.3}");
        }
        s += &format!("\n  adapter {}", j["output"]["adapterHash"].as_str().unwrap_or(""));
        s += &format!("\n  next: openledger model propose --job {} --price-in 0.001 --price-out 0.002", j["id"]);
    }
    s
}

pub fn run(c: TrainCmd, out: Out) -> anyhow::Result<()> {
    match c {
        TrainCmd::Submit {
            datanets,
            spec,
            name,
            rank,
            alpha,
            dropout,
            targets,
            learning_rate,
            warmup_steps,
            epochs,
            steps,
            batch_size,
            grad_accum,
            max_seq_len,
            seed,
            base_model,
            watch: follow,
            signer,
            http,
        } => {
            let mut s: Value = match spec {
                Some(p) => serde_json::from_str(&std::fs::read_to_string(&p)?)?,
                None => json!({}),
            };
            s["datanets"] = Value::Array(datanets.iter().map(|d| parse_version(d)).collect::<anyhow::Result<_>>()?);
            let mut set = |k: &str, v: Option<Value>| {
                if let Some(v) = v {
                    s[k] = v;
                }
            };
            set("name", name.map(Value::from));
            set("rank", rank.map(Value::from));
            set("alpha", alpha.map(Value::from));
            set("dropout", dropout.map(Value::from));
            set(
                "targets",
                targets.map(|t| Value::from(t.split(',').map(|x| x.trim().to_string()).collect::<Vec<_>>())),
            );
            set("learningRate", learning_rate.map(Value::from));
            set("warmupSteps", warmup_steps.map(Value::from));
            set("epochs", epochs.map(Value::from));
            set("steps", steps.map(Value::from));
            set("batchSize", batch_size.map(Value::from));
            set("gradAccum", grad_accum.map(Value::from));
            set("maxSeqLen", max_seq_len.map(Value::from));
            set("seed", seed.map(Value::from));
            set("baseModel", base_model.map(Value::from));
            let (id, j) = submit(&s, &signer, &http)?;
            if follow {
                if !out.json {
                    eprintln!("job {id} queued");
                }
                let done = watch(&http, id, !out.json)?;
                out.print(|| summary(&done), done.clone());
                if done["status"] != "succeeded" {
                    bail!("job {id} {}", done["status"].as_str().unwrap_or("ended"));
                }
            } else {
                out.print(|| format!("job {id} queued; follow it with: openledger train watch {id}"), j);
            }
            Ok(())
        }
        TrainCmd::Watch { id, http } => {
            let done = watch(&http, id, !out.json)?;
            out.print(|| summary(&done), done.clone());
            Ok(())
        }
        TrainCmd::Show { id, http } => {
            let j = job(&http, id)?;
            out.print(|| summary(&j), j.clone());
            Ok(())
        }
        TrainCmd::List { http } => {
            let j = api(&http, "GET", "/v1/jobs", None, b"")?;
            out.print(
                || {
                    let data = j["data"].as_array().cloned().unwrap_or_default();
                    if data.is_empty() {
                        return "no jobs".into();
                    }
                    data.iter().map(summary).collect::<Vec<_>>().join("\n")
                },
                j.clone(),
            );
            Ok(())
        }
        TrainCmd::Cancel { id, signer, http } => {
            let j = api(&http, "POST", &format!("/v1/jobs/{id}/cancel"), Some(&signer), b"")?;
            out.print(|| format!("job {id}: cancel requested ({})", j["status"].as_str().unwrap_or("")), j.clone());
            Ok(())
        }
    }
}
