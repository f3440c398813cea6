//! The demo's dishonest serving operator: a second operator (a dev account
//! of [`FORGERS`]) bonds, answers one of the app's questions (the answer the
//! node gave, resold), settles the receipt and posts a record that credits the
//! whole data share to one contribution. A watcher (dev account [`WATCHER`])
//! recomputes the record with `openledger attribution challenge --record`'s
//! code and bonds a challenge; the operator reveals; the dev node's verifier
//! recomputes, signs "wrong", and the chain slashes the operator, rewards the
//! watcher and pays the receipt's data part by the fallback instead.

use std::time::{Duration, Instant};

use alloy_sol_types::SolCall;
use anyhow::{anyhow, bail};
use primitives::abi::{IAttribution, IInference, IParams, IStaking, InferenceReceipt};
use primitives::system::Module;
use primitives::{Address, Amount, B256, Bytes};
use serde_json::{Value, json};

use super::{Answer, DemoArgs, INFERENCE, Story, Ui, dev, dev_address};
use crate::commands::attribution::{ChallengeArgs, RecordAuth, challenge};
use crate::contract::{send_call, send_sol, view};

/// The dev accounts that may play the dishonest serving operator: the first
/// that is no operator yet (a forger is slashed and jailed, so a second demo
/// on the same node takes the next).
const FORGERS: [u32; 3] = [6, 8, 9];
/// The watcher who recomputes records and challenges a wrong one.
pub(super) const WATCHER: u32 = 7;
const ATTRIBUTION: Address = Module::Attribution.address();
const STAKING: Address = Module::Staking.address();

/// What the forgery left behind, for the table and the summary.
pub(super) struct Forgery {
    /// The dev account that played the dishonest operator.
    pub forger: u32,
    pub receipt: B256,
    pub operator: Address,
    /// The contribution the forged record credited with the whole data share.
    pub credited: u64,
    /// How the chain split the forger's receipt.
    pub paid: <IInference::settledReceiptCall as SolCall>::Return,
    pub status: u8,
    pub slashed: u128,
    pub reward: u128,
    pub bond: u128,
    pub bond_returned: u128,
    pub challenge_tx: B256,
}

pub(super) fn play(a: &DemoArgs, s: &mut Story, ui: &Ui) -> anyhow::Result<()> {
    let honest = s.answers.last().ok_or_else(|| anyhow!("no paid answer to resell"))?;
    let Some(forger) = free_forger(a)? else {
        ui.say(&format!(
            "  skipped: dev accounts {FORGERS:?} all played the dishonest operator on this node before \
             (each was slashed); run the demo on a fresh dev node to see it again"
        ));
        return Ok(());
    };
    let operator = dev_address(forger)?;
    register(a, forger, operator, ui)?;
    let hash = settle(a, honest, forger, operator, ui)?;
    let (record, prompt, credited) = post_forged(a, s, honest, hash, forger, operator, ui)?;
    let file = std::env::temp_dir().join(format!("openledger-demo-record-{hash}.json"));
    std::fs::write(&file, serde_json::to_vec_pretty(&record)?)?;
    // The watcher recomputes the record the operator gave out, and challenges it.
    let (v, c, bond) = challenge(
        ChallengeArgs { receipt: hash, record: Some(file.clone()), bond: None, force: false, base: a.base.clone() },
        &dev(WATCHER),
        &RecordAuth::default(),
        &a.http,
        &a.rpc,
    )?;
    let _ = std::fs::remove_file(&file);
    let failed: Vec<&str> = v["failedChecks"].as_array().into_iter().flatten().filter_map(|x| x.as_str()).collect();
    ui.say(&format!(
        "  dev account {WATCHER} (a watcher) recomputed it: {} failed; challenged with a bond of {bond} OPEN",
        failed.join(", ")
    ));
    // The operator must reveal (else it is slashed by default); it does.
    let call = IAttribution::revealCall { receiptHash: hash, record: Bytes::from(record_bytes(&record)?), prompt };
    send_sol(&dev(forger), &a.rpc, ATTRIBUTION, &call, "attribution.reveal")?;
    ui.say(&format!("  dev account {forger} revealed the record and the prompt by block {}", c.revealBy));
    let resolved = await_verdict(a, hash, ui)?;
    let slashed = resolved.slashed.to::<u128>();
    let bps = view(
        &mut a.rpc.client(),
        Module::Params.address(),
        &IParams::getCall { name: "staking.slash_reporter_bps".into() },
    )?;
    let reward = Amount(slashed).mul_div(bps.to::<u128>(), 10_000).map(|x| x.0).unwrap_or(0);
    let paid = view(&mut a.rpc.client(), INFERENCE, &IInference::settledReceiptCall { receiptHash: hash })?;
    ui.say(&format!(
        "  the validators' verifier recomputed it: {}.\n  slashed {} OPEN of the operator's stake \
         ({} OPEN to the watcher, the rest to the treasury); the bond of {} OPEN went back; the data part \
         ({} OPEN) goes to the version's rows instead",
        crate::commands::attribution::challenge_status(resolved.status),
        Amount(slashed),
        Amount(reward),
        Amount(resolved.bondReturned),
        Amount(paid.dataPart),
    ));
    s.forgery = Some(Forgery {
        forger,
        receipt: hash,
        operator,
        credited,
        paid,
        status: resolved.status,
        slashed,
        reward,
        bond: bond.0,
        bond_returned: resolved.bondReturned,
        challenge_tx: v["tx"].as_str().unwrap_or("").parse().unwrap_or_default(),
    });
    Ok(())
}

/// The first of [`FORGERS`] that is no operator yet.
fn free_forger(a: &DemoArgs) -> anyhow::Result<Option<u32>> {
    for i in FORGERS {
        let operator = dev_address(i)?;
        match view(&mut a.rpc.client(), STAKING, &IStaking::operatorInfoCall { operator }) {
            Ok(_) => continue,
            Err(e) if format!("{e}").contains("NotOperator") => return Ok(Some(i)),
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// Bond the forger as a serving operator (its own account signs receipts).
fn register(a: &DemoArgs, forger: u32, operator: Address, ui: &Ui) -> anyhow::Result<()> {
    let min = view(
        &mut a.rpc.client(),
        Module::Params.address(),
        &IParams::getCall { name: "staking.min_self_bond".into() },
    )?;
    let bond = Amount(min.to::<u128>());
    let call = IStaking::registerOperatorCall {
        role: runtime::staking::ROLE_SERVING,
        consensusKey: B256::ZERO,
        servingKey: operator,
        commissionBps: 0,
    };
    send_call(&dev(forger), &a.rpc, STAKING, bond, call.abi_encode(), "staking.registerOperator")?;
    ui.say(&format!("  dev account {forger} registered as a second serving operator with a self bond of {bond} OPEN"));
    Ok(())
}

/// The forger's receipt for the answer `honest` (same request, response, model
/// and prices; its own operator address and nonce), allowed by the app (dev
/// account 0, who pays) and settled: its hash.
fn settle(a: &DemoArgs, honest: &Answer, forger: u32, operator: Address, ui: &Ui) -> anyhow::Result<B256> {
    let mut c = a.rpc.client();
    let payer = dev_address(super::OWNER)?;
    let r = &honest.receipt_json;
    let field = |k: &str| r[k].as_str().ok_or_else(|| anyhow!("the answer's receipt has no {k}: {r}"));
    let num = |k: &str| r[k].as_u64().ok_or_else(|| anyhow!("the answer's receipt has no {k}: {r}"));
    let allowance = view(&mut c, INFERENCE, &IInference::allowanceCall { payer, operator })?;
    let head = c.block_number()?;
    let receipt = InferenceReceipt {
        requestHash: field("requestHash")?.parse()?,
        responseHash: field("responseHash")?.parse()?,
        modelId: field("model")?.trim_start_matches('m').parse()?,
        adapterHash: field("adapterHash")?.parse()?,
        inputTokens: num("inputTokens")?,
        outputTokens: num("outputTokens")?,
        priceInPer1k: field("priceInPer1k")?.parse()?,
        priceOutPer1k: field("priceOutPer1k")?.parse()?,
        payer,
        operator,
        nonce: allowance.lastNonce + 1,
        issuedAt: head,
        retrievalHash: field("retrievalHash")?.parse()?,
    };
    // The app allows the second operator to charge this answer's price.
    let cost = primitives::abi::receipt_cost(&receipt).ok_or_else(|| anyhow!("the receipt's cost overflows"))?;
    let free = view(&mut c, INFERENCE, &IInference::escrowOfCall { payer })?;
    if free < cost {
        send_call(
            &dev(super::OWNER),
            &a.rpc,
            INFERENCE,
            Amount(cost - free),
            IInference::depositCall {}.abi_encode(),
            "inference.deposit",
        )?;
    }
    if allowance.remaining < cost {
        let call = IInference::allowCall { operator, amount: cost - allowance.remaining };
        send_sol(&dev(super::OWNER), &a.rpc, INFERENCE, &call, "inference.allow")?;
    }
    let key = dev(forger).key()?;
    let chain_id = c.chain_id()?;
    let sig = key.sign_hash(&primitives::abi::receipt_signing_hash(&receipt, chain_id));
    let call = IInference::settleCall {
        receipts: vec![receipt.clone()],
        signatures: vec![Bytes::from(sig.as_bytes().to_vec())],
    };
    send_sol(&dev(forger), &a.rpc, INFERENCE, &call, "inference.settle")?;
    let hash = primitives::abi::receipt_hash(&receipt);
    ui.say(&format!(
        "  dev account {forger} resold the answer to \"{}\" to the app and settled its receipt {hash} ({} OPEN)",
        honest.prompt,
        Amount(cost)
    ));
    Ok(hash)
}

/// The node's record of the honest answer, made the forger's: its receipt, the
/// parameters' height of its settlement, and every credit moved to the
/// contribution the honest record credits least. Posted on chain; returned as
/// the operator publishes it (signed by its serving key), with the prompt.
fn post_forged(
    a: &DemoArgs,
    s: &Story,
    honest: &Answer,
    hash: B256,
    forger: u32,
    operator: Address,
    ui: &Ui,
) -> anyhow::Result<(Value, Bytes, u64)> {
    let key = super::super::infer::api_key(a.api_key.as_deref(), a.data_dir.as_deref())?;
    let path = format!("/v1/attribution/{}", honest.receipt);
    let (status, body) = a.http.request("GET", &path, &[("Authorization", format!("Bearer {key}"))], b"")?;
    if status != 200 {
        bail!("GET {path}: {status} {}", String::from_utf8_lossy(&body));
    }
    let got: Value = serde_json::from_slice(&body)?;
    let mut rec = attribution::AttributionRecord::from_value(&got["record"]).map_err(|e| anyhow!(e))?;
    let honest_credits = rec.credits.clone();
    let honest_ppm = |id: u64| honest_credits.iter().find(|c| c.0 == id).map(|c| c.1).unwrap_or(0);
    let credited = s
        .contributions
        .iter()
        .map(|k| k.id)
        .min_by_key(|id| (honest_ppm(*id), *id))
        .ok_or_else(|| anyhow!("no approved contribution to credit"))?;
    let hold = view(&mut a.rpc.client(), INFERENCE, &IInference::holdCall { receiptHash: hash })?;
    // The question's token ids as the prompt (what the operator reveals).
    let base = super::super::base_model(a.base.clone())?.ok_or_else(|| anyhow!("no base model here: give --base"))?;
    let tokens = ml::ModelFiles::open(&base)?.tokenizer.encode(honest.prompt, false).map_err(|e| anyhow!("{e}"))?;
    let prompt: Vec<u8> = tokens.iter().flat_map(|t| t.to_le_bytes()).collect();
    rec.receipt_hash = hash;
    rec.prompt_hash = primitives::content_hash(&prompt);
    rec.mix.params_height = Some(hold.settledAt);
    rec.credits = vec![(credited, 1_000_000)];
    let record_hash = rec.hash();
    let credits = vec![primitives::abi::Credit { contributionId: credited, weightPpm: 1_000_000 }];
    match &rec.retrieval {
        None => {
            let call = IInference::postAttributionCall { receiptHash: hash, recordHash: record_hash, credits };
            send_sol(&dev(forger), &a.rpc, INFERENCE, &call, "inference.postAttribution")?
        }
        Some(p) => {
            let retrieved = p
                .datanets
                .iter()
                .map(|d| primitives::abi::DatanetVersionRef { datanetId: d.datanet, version: d.version })
                .collect();
            let call = IInference::postAttributionRetrievedCall {
                receiptHash: hash,
                recordHash: record_hash,
                credits,
                retrieved,
            };
            send_sol(&dev(forger), &a.rpc, INFERENCE, &call, "inference.postAttributionRetrieved")?
        }
    };
    ui.say(&format!(
        "  it posted a forged record {record_hash}: the whole data share to contribution {credited} \
         (the node's own record gives it {:.2} %)",
        f64::from(honest_ppm(credited)) / 1e4
    ));
    let sig = dev(forger).key()?.sign_message(record_hash.as_slice());
    let published = json!({
        "record": rec.to_value(),
        "recordHash": record_hash,
        "signature": format!("0x{}", hex::encode(sig.as_bytes())),
        "signer": operator,
    });
    Ok((published, Bytes::from(prompt), credited))
}

fn record_bytes(published: &Value) -> anyhow::Result<Vec<u8>> {
    Ok(attribution::canonical(&published["record"]).into_bytes())
}

/// Wait until the challenge of `hash` is resolved (the node's verifier signs a
/// verdict within seconds), sealing a block now and then.
fn await_verdict(a: &DemoArgs, hash: B256, ui: &Ui) -> anyhow::Result<IAttribution::ChallengeResolved> {
    let started = Instant::now();
    let mut c = a.rpc.client();
    loop {
        let ch = view(&mut c, ATTRIBUTION, &IAttribution::challengeOfCall { receiptHash: hash })?;
        if ch.status >= 3 {
            ui.progress_done();
            let resolved = crate::contract::events::<IAttribution::ChallengeResolved>(&mut c, ATTRIBUTION, hash)?;
            return resolved.into_iter().last().ok_or_else(|| anyhow!("the challenge resolved without its event"));
        }
        if started.elapsed() > Duration::from_secs(180) {
            ui.progress_done();
            bail!("no verdict on the challenge of {hash} after 180 s: is the node's verifier running?");
        }
        ui.progress(&format!(
            "waiting for the validators' verdict ({}, {} s)",
            crate::commands::attribution::challenge_status(ch.status),
            started.elapsed().as_secs()
        ));
        std::thread::sleep(Duration::from_millis(500));
    }
}
