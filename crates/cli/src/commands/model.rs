//! `model ...`: the on-chain model registry (`models` module): propose, show,
//! list, retire, price. `model bootstrap` is in [`super::model_bootstrap`],
//! `model pull` in [`super::model_pull`].

use alloy_sol_types::SolCall;
use anyhow::anyhow;
use primitives::abi::{IModels, ModelInfo};
use primitives::system::Module;
use primitives::{Address, Amount, ModelId};
use serde_json::{Value, json};

use super::RpcArgs;
use super::httpc::HttpArgs;
use super::keys::SignerArgs;
use crate::contract::{send_call, view};
use crate::output::Out;

const MODELS: Address = Module::Models.address();

#[derive(clap::Subcommand, Debug)]
pub enum ModelCmd {
    /// Train the base model from the bundled corpus: a byte-level BPE tokenizer and a small
    /// Llama, written as a Hugging Face folder with bf16 weights (about 10 minutes on 2 cores).
    Bootstrap(super::model_bootstrap::BootstrapArgs),
    /// Download a model from the Hugging Face hub into its standard cache ($HF_HOME/hub;
    /// $HF_ENDPOINT names another hub), resuming an interrupted download and checking
    /// every file's size and hash; then use it as `--base-model hf:ORG/NAME`.
    Pull(super::model_pull::PullArgs),
    /// Register a finished training job's model (draft) and propose it to governance.
    Propose {
        /// The ModelFactory job that made it.
        #[arg(long)]
        job: u64,
        #[arg(long)]
        name: Option<String>,
        /// Price per 1K input tokens, in OPEN (or wei with a `wei` suffix).
        #[arg(long, default_value = factory::registration::DEFAULT_PRICE_IN_PER_1K)]
        price_in: Amount,
        /// Price per 1K output tokens.
        #[arg(long, default_value = factory::registration::DEFAULT_PRICE_OUT_PER_1K)]
        price_out: Amount,
        /// Register only (stay a draft).
        #[arg(long)]
        no_propose: bool,
        #[command(flatten)]
        signer: SignerArgs,
        #[command(flatten)]
        rpc: RpcArgs,
        #[command(flatten)]
        http: HttpArgs,
    },
    /// A model's record (`m<id>` or the number).
    Show {
        model: String,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// Every registered model.
    List {
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// Retire a model (its owner, or governance).
    Retire {
        model: String,
        #[command(flatten)]
        signer: SignerArgs,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// Reprice a model (its owner).
    Price {
        model: String,
        #[arg(long = "in")]
        price_in: Amount,
        #[arg(long = "out")]
        price_out: Amount,
        #[command(flatten)]
        signer: SignerArgs,
        #[command(flatten)]
        rpc: RpcArgs,
    },
}

/// `m7` or `7`.
pub fn parse_model(s: &str) -> anyhow::Result<u64> {
    if let Ok(id) = s.parse::<ModelId>() {
        return Ok(id.0);
    }
    s.parse::<u64>().map_err(|_| anyhow!("{s:?} is not a model id (m<id>)"))
}

const STATES: [&str; 4] = ["draft", "proposed", "live", "retired"];

fn info_json(m: &ModelInfo) -> Value {
    json!({
        "id": format!("m{}", m.id),
        "owner": m.owner,
        "name": m.name,
        "state": STATES.get(m.state as usize).copied().unwrap_or("?"),
        "baseModelHash": m.baseModelHash,
        "adapterHash": m.adapterHash,
        "datanets": m.datanets.iter().map(|d| json!({"datanet": d.datanetId, "version": d.version})).collect::<Vec<_>>(),
        "licences": m.licences,
        "hyperparams": String::from_utf8_lossy(&m.hyperparams),
        "metrics": serde_json::from_slice::<Value>(&m.metrics).unwrap_or(Value::Null),
        "trainingLogHash": m.trainingLogHash,
        "checkpointHashes": m.checkpointHashes,
        "checkpointLearningRates": m.checkpointLearningRates,
        "sketchHash": m.sketchHash,
        "sketchSeed": m.sketchSeed,
        "sketchK": m.sketchK,
        "priceInPer1k": m.priceInPer1k.to_string(),
        "priceOutPer1k": m.priceOutPer1k.to_string(),
        "createdAt": m.createdAt,
    })
}

fn info_human(m: &ModelInfo) -> String {
    let mut s = format!(
        "m{} {:?} ({}), owner {}\n  base {}\n  adapter {}\n  price {} OPEN / 1K in, {} OPEN / 1K out",
        m.id,
        m.name,
        STATES.get(m.state as usize).copied().unwrap_or("?"),
        m.owner,
        m.baseModelHash,
        m.adapterHash,
        Amount(m.priceInPer1k),
        Amount(m.priceOutPer1k),
    );
    for (d, l) in m.datanets.iter().zip(&m.licences) {
        s += &format!("\n  trained on Datanet {} version {} ({l})", d.datanetId, d.version);
    }
    if let Ok(v) = serde_json::from_slice::<Value>(&m.metrics)
        && let Some(l) = v["metrics"]["validation"]["loss"].as_f64()
    {
        s += &format!("\n  validation loss {l:.4}");
    }
    s
}

/// The model record `id`.
pub fn model_info(rpc: &RpcArgs, id: u64) -> anyhow::Result<ModelInfo> {
    view(&mut rpc.client(), MODELS, &IModels::modelCall { id })
}

pub fn run(c: ModelCmd, out: Out) -> anyhow::Result<()> {
    match c {
        ModelCmd::Bootstrap(a) => super::model_bootstrap::run(a, out),
        ModelCmd::Pull(a) => super::model_pull::run(a, out),
        ModelCmd::Propose { job, name, price_in, price_out, no_propose, signer, rpc, http } => {
            let (id, sent) = register_job(job, name, price_in, price_out, no_propose, &signer, &rpc, &http)?;
            let state = if no_propose { "draft" } else { "proposed" };
            out.print(
                || {
                    format!(
                        "registered m{id} ({state}) from job {job}\n  governance makes it live: openledger gov propose \
                         --description \"Approve m{id}\" --call \"models.approve [{id}]\" --dev-account 0"
                    )
                },
                json!({"model": format!("m{id}"), "id": id, "state": state, "registerTx": sent.hash}),
            );
            Ok(())
        }
        ModelCmd::Show { model, rpc } => {
            let m = model_info(&rpc, parse_model(&model)?)?;
            out.print(|| info_human(&m), info_json(&m));
            Ok(())
        }
        ModelCmd::List { rpc } => {
            let n = view(&mut rpc.client(), MODELS, &IModels::modelCountCall {})?;
            let mut all = Vec::new();
            for id in 1..=n {
                all.push(model_info(&rpc, id)?);
            }
            out.print(
                || {
                    if all.is_empty() {
                        return "no models".into();
                    }
                    all.iter()
                        .map(|m| {
                            format!(
                                "m{:<4} {:<9} {:<24} {}",
                                m.id,
                                STATES.get(m.state as usize).copied().unwrap_or("?"),
                                m.name,
                                m.owner
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                },
                Value::Array(all.iter().map(info_json).collect()),
            );
            Ok(())
        }
        ModelCmd::Retire { model, signer, rpc } => {
            let id = parse_model(&model)?;
            let s = send_call(
                &signer,
                &rpc,
                MODELS,
                Amount::ZERO,
                IModels::retireCall { id }.abi_encode(),
                "models.retire",
            )?;
            out.print(|| format!("m{id} retired"), s.json(json!({"model": format!("m{id}")})));
            Ok(())
        }
        ModelCmd::Price { model, price_in, price_out, signer, rpc } => {
            let id = parse_model(&model)?;
            let call = IModels::setPriceCall { id, priceInPer1k: price_in.0, priceOutPer1k: price_out.0 };
            let s = send_call(&signer, &rpc, MODELS, Amount::ZERO, call.abi_encode(), "models.setPrice")?;
            out.print(|| format!("m{id} repriced"), s.json(json!({"model": format!("m{id}")})));
            Ok(())
        }
    }
}

/// `model propose`: register a succeeded job's model (a draft), then propose it
/// unless `no_propose`. The model's id and the registration's receipt.
#[allow(clippy::too_many_arguments)]
pub fn register_job(
    job: u64,
    name: Option<String>,
    price_in: Amount,
    price_out: Amount,
    no_propose: bool,
    signer: &SignerArgs,
    rpc: &RpcArgs,
    http: &HttpArgs,
) -> anyhow::Result<(u64, crate::contract::Sent)> {
    let j = super::train::job(http, job)?;
    let reg = factory::registration::registration(&j, job, name, price_in.0, price_out.0)?;
    let register = IModels::registerCall { registration: reg }.abi_encode();
    let sent = send_call(signer, rpc, MODELS, Amount::ZERO, register, "models.register")?;
    let id = sent
        .event::<IModels::ModelRegistered>(MODELS)
        .map(|e| e.id)
        .ok_or_else(|| anyhow!("no ModelRegistered log in the receipt"))?;
    if !no_propose {
        send_call(signer, rpc, MODELS, Amount::ZERO, IModels::proposeCall { id }.abi_encode(), "models.propose")?;
    }
    Ok((id, sent))
}
