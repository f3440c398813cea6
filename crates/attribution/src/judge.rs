//! Checking and judging records: the comparison of a recomputed record with
//! a claimed one, the checks of a record's stated parameters against the
//! governed ones, and the verifier's judgement of a revealed record.

use std::collections::BTreeMap;

use ml::TextTokenizer;
use primitives::B256;
use primitives::abi::Credit;
use runtime::models::ModelRecord;
use serde_json::Value;

use crate::gradient::GRADIENT_TOLERANCE_PPM;
use crate::record::{AttributionRecord, RecordParams, canonical, record_hash};

/// One comparison of a verification.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Check {
    pub check: String,
    pub ok: bool,
    pub detail: String,
}

impl Check {
    pub fn new(check: &str, ok: bool, detail: String) -> Check {
        Check { check: check.into(), ok, detail }
    }
}

/// The checks of a record as its serving node publishes it (`GET
/// /v1/attribution/{receipt}`: `{"record", "recordHash", "signature",
/// "signer"}`), before any recomputation: the stated hash is the record's
/// hash, the signature over it recovers to the stated signer, and (`posted`:
/// the hold's `recordHash` when the receipt has a hold) the hash posted
/// on-chain is this one or none yet. `openledger attribution verify` and the
/// node's Playground run the same checks.
pub fn signed_record_checks(signed: &Value, posted: Option<B256>) -> Vec<Check> {
    let hash = record_hash(&signed["record"]);
    let mut checks =
        vec![Check::new("record hash", signed["recordHash"].as_str() == Some(&hash.to_string()), hash.to_string())];
    let sig = signed["signature"].as_str().unwrap_or("");
    let signer = hex::decode(sig.trim_start_matches("0x"))
        .ok()
        .and_then(|b| alloy_primitives::Signature::from_raw(&b).ok())
        .and_then(|s| s.recover_address_from_msg(hash.as_slice()).ok());
    let claimed: Option<primitives::Address> = signed["signer"].as_str().and_then(|s| s.parse().ok());
    checks.push(Check::new("signature", signer.is_some() && signer == claimed, format!("{signer:?}")));
    if let Some(p) = posted {
        checks.push(Check::new("posted on-chain", p == B256::ZERO || p == hash, p.to_string()));
    }
    checks
}

/// The checks of a record's stated parameters against the governed ones in
/// force at the height it states (`governed`): that height lies between
/// `timeout` blocks before its receipt settled and the settlement (an honest
/// node makes the record from its head before settling), the governed values
/// are the stated ones, and it leaves out only contributions that really are
/// flagged (one flagged after the record was made is not missing from it: its
/// credit is forfeited at finalization anyway).
pub fn params_checks(stated: &RecordParams, governed: &RecordParams, settled_at: u64, timeout: u64) -> Vec<Check> {
    let h = stated.params_height;
    let unflagged: Vec<u64> = stated.excluded.iter().copied().filter(|c| !governed.excluded.contains(c)).collect();
    vec![
        Check::new(
            "parameters' height",
            h <= settled_at && h >= settled_at.saturating_sub(timeout),
            format!("block {h}, receipt settled at {settled_at}"),
        ),
        Check::new(
            "parameters in force at that height",
            stated.governed() == governed.governed(),
            format!("stated {:?}, governed {:?}", stated.governed(), governed.governed()),
        ),
        // Only a record with a retrieval part states the retrieval share.
        Check::new(
            "retrieval share in force at that height",
            stated.retrieval_share_bps.is_none() || stated.retrieval_share_bps == governed.retrieval_share_bps,
            format!("stated {:?} bps, governed {:?} bps", stated.retrieval_share_bps, governed.retrieval_share_bps),
        ),
        Check::new("excluded contributions are flagged", unflagged.is_empty(), format!("{unflagged:?}")),
    ]
}

/// A record's response token ids.
pub fn response_tokens(record: &Value) -> Vec<u32> {
    record["responseTokens"].as_array().into_iter().flatten().filter_map(|t| t.as_u64()).map(|t| t as u32).collect()
}

fn pairs_of(v: &Value) -> BTreeMap<u64, i64> {
    v.as_array().into_iter().flatten().filter_map(|p| Some((p[0].as_u64()?, p[1].as_u64()? as i64))).collect()
}

/// Compare a recomputed record with a claimed one: the span part byte for
/// byte, the gradient part and the final credits within the claimed record's
/// stated tolerance (what `attribution verify` and the verifier service check).
pub fn compare(mine: &Value, theirs: &Value) -> Vec<Check> {
    let tol = theirs["gradient"]["tolerancePpm"].as_u64().unwrap_or(0).min(GRADIENT_TOLERANCE_PPM as u64) as i64;
    let within = |a: &Value, b: &Value| {
        let (ka, kb) = (pairs_of(a), pairs_of(b));
        ka.keys().chain(kb.keys()).all(|k| (ka.get(k).unwrap_or(&0) - kb.get(k).unwrap_or(&0)).abs() <= tol)
    };
    let span_same = canonical(&mine["span"]) == canonical(&theirs["span"]);
    let same = |k: &str| canonical(&mine[k]) == canonical(&theirs[k]);
    vec![
        Check::new("span part (byte for byte)", span_same, String::new()),
        Check::new(
            &format!("gradient part (within {tol} ppm)"),
            within(&mine["gradient"]["credits"], &theirs["gradient"]["credits"]),
            String::new(),
        ),
        Check::new("credits", within(&mine["credits"], &theirs["credits"]), String::new()),
        Check::new("retrieval part (byte for byte)", same("retrieval"), String::new()),
        Check::new(
            "methods and their parameters",
            ["method", "projection", "outlierZMilli", "sketchHash", "k", "seed", "checkpoints"]
                .iter()
                .all(|k| mine["gradient"][k] == theirs["gradient"][k])
                && ["rule", "spanSharePpm", "spanWeightPpm", "maxCredits"]
                    .iter()
                    .all(|k| mine["mix"][k] == theirs["mix"][k]),
            String::new(),
        ),
        Check::new(
            "model artefacts",
            same("baseModelHash") && same("adapterHash") && same("datanets") && same("responseTokens"),
            String::new(),
        ),
    ]
}

/// The credits of a record as the chain takes them.
pub fn record_credits(record: &Value) -> Vec<Credit> {
    record["credits"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| Some(Credit { contributionId: p[0].as_u64()?, weightPpm: p[1].as_u64()? as u32 }))
        .collect()
}

/// The `retrievalHash` a receipt must carry for a record: of the versions its
/// retrieval part names, zero without one.
pub fn retrieved_hash(r: &AttributionRecord) -> B256 {
    let versions: Vec<primitives::abi::DatanetVersionRef> = r
        .retrieval
        .iter()
        .flat_map(|p| &p.datanets)
        .map(|d| primitives::abi::DatanetVersionRef { datanetId: d.datanet, version: d.version })
        .collect();
    primitives::abi::retrieval_hash(&versions)
}

/// What the chain says about the receipt a revealed record is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettledReceipt {
    pub receipt_hash: B256,
    /// The model the receipt paid for.
    pub model_id: u64,
    /// The block the receipt settled in.
    pub settled_at: u64,
    /// The receipt's `retrievalHash`: zero, or the hash of the Datanet versions
    /// its answer retrieved from (`primitives::abi::retrieval_hash`).
    pub retrieval_hash: B256,
    /// The credits the operator posted on chain for it (`None`: none posted,
    /// or a judge of the record alone). The chain pays what was posted, not
    /// what the record says, so a record is wrong if the two differ.
    pub posted: Option<PostedCredits>,
}

/// The credits a hold holds pending (`IInference.pendingCredits`), with the
/// hold's amount they were cut from, as a digest that stays `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PostedCredits {
    /// The hold's amount (the data part of the receipt's cost).
    pub hold: u128,
    /// [`credits_digest`] of the pending (contribution, amount) pairs.
    pub digest: B256,
}

impl PostedCredits {
    /// From the chain's pending credits of a hold of `hold` base units.
    pub fn new(hold: u128, ids: &[u64], amounts: &[u128]) -> PostedCredits {
        let pairs: Vec<(u64, u128)> = ids.iter().copied().zip(amounts.iter().copied()).collect();
        PostedCredits { hold, digest: credits_digest(&pairs) }
    }

    /// Whether a record's credits (contribution, ppm) are what was posted: each
    /// cut from the hold as the chain cuts it (`hold × ppm / 10^6`, rounded down).
    pub fn matches(&self, credits: &[(u64, u32)]) -> bool {
        let cut = |ppm: u32| primitives::Amount(self.hold).mul_div(u128::from(ppm), 1_000_000).map(|a| a.0);
        let pairs: Result<Vec<(u64, u128)>, _> = credits.iter().map(|(c, w)| cut(*w).map(|a| (*c, a))).collect();
        pairs.is_ok_and(|p| credits_digest(&p) == self.digest)
    }
}

/// A digest of (contribution, amount) pairs, independent of their order.
pub fn credits_digest(pairs: &[(u64, u128)]) -> B256 {
    let mut sorted = pairs.to_vec();
    sorted.sort_unstable();
    let mut bytes = Vec::with_capacity(24 * sorted.len());
    for (c, a) in sorted {
        bytes.extend_from_slice(&c.to_be_bytes());
        bytes.extend_from_slice(&a.to_be_bytes());
    }
    primitives::content_hash(&bytes)
}

/// What the chain says about a record's stated parameters.
pub struct Governed {
    /// The governed parameters in force at the record's stated height (and
    /// the contributions flagged now).
    pub params: RecordParams,
    /// `inference.attribution_timeout_blocks` in force when the receipt
    /// settled (the window the operator had to make and post the record).
    pub timeout: u64,
    /// The model's record on chain.
    pub model: ModelRecord,
}

/// A verifier's judgement of a revealed record: decode it into the record
/// type of its version, check its stated parameters against the governed
/// parameters in force at the height it states (`governed_at(height)`, read
/// from the chain's parameter history), recompute it from the public inputs
/// and the revealed prompt (`recompute(model, claimed, stated)`), and compare.
///
/// `Ok((correct, checks))`: a record that does not decode, lacks a
/// parameter, or states parameters that were not in force is wrong (and then
/// neither callback runs, or only `governed_at`). `Err` only when it cannot
/// judge here (a callback failed: the model's artefacts are missing, say), so
/// the verifier signs nothing.
pub fn judge(
    receipt: &SettledReceipt,
    record: &[u8],
    prompt: &[u8],
    tok: &TextTokenizer,
    governed_at: impl FnOnce(u64) -> Result<Governed, String>,
    recompute: impl FnOnce(&ModelRecord, &AttributionRecord, RecordParams) -> Result<Value, String>,
) -> Result<(bool, Vec<Check>), String> {
    let theirs = match AttributionRecord::decode(record) {
        Ok(r) => r,
        Err(e) => return Ok((false, vec![Check::new("record decodes into its version's type", false, e)])),
    };
    let stated = theirs.stated(receipt.settled_at);
    let governed = governed_at(stated.params_height)?;
    let mut checks = params_checks(&stated, &governed.params, receipt.settled_at, governed.timeout);
    checks.extend([
        Check::new("receipt", theirs.receipt_hash == receipt.receipt_hash, String::new()),
        Check::new("prompt hash", theirs.prompt_hash == primitives::content_hash(prompt), String::new()),
        Check::new("model", theirs.model_id() == receipt.model_id, String::new()),
        Check::new(
            "retrieved Datanet versions (the receipt's retrievalHash)",
            retrieved_hash(&theirs) == receipt.retrieval_hash,
            String::new(),
        ),
        Check::new(
            "response tokens",
            tok.decode(&theirs.response_tokens).ok().as_deref() == Some(theirs.response.as_str()),
            String::new(),
        ),
    ]);
    if let Some(p) = receipt.posted {
        checks.push(Check::new(
            "credits posted on chain are the record's",
            p.matches(&theirs.credits),
            format!("the record credits {:?}", theirs.credits),
        ));
    }
    if !checks.iter().all(|c| c.ok) {
        return Ok((false, checks));
    }
    let mine = recompute(&governed.model, &theirs, stated)?;
    checks.extend(compare(&mine, &theirs.to_value()));
    Ok((checks.iter().all(|c| c.ok), checks))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::tests::record;
    use serde_json::json;

    #[test]
    fn comparison_catches_each_tampered_part() {
        let rec = json!({
            "baseModelHash": "0x01", "adapterHash": "0x02", "datanets": [{"datanet": 1, "version": 1}],
            "responseTokens": [5, 6, 7],
            "span": {"method": "maximal-spans-suffix-array", "spans": [{"charStart": 0, "charEnd": 4}], "credits": [[1, 1_000_000]]},
            "gradient": {"tolerancePpm": 2_000, "credits": [[1, 600_000], [2, 400_000]]},
            "credits": [[1, 800_000], [2, 200_000]],
        });
        assert!(compare(&rec, &rec).iter().all(|c| c.ok));
        // Within the tolerance the gradient part and the credits may differ.
        let mut close = rec.clone();
        close["gradient"]["credits"] = json!([[1, 601_000], [2, 399_000]]);
        close["credits"] = json!([[1, 799_000], [2, 201_000]]);
        assert!(compare(&close, &rec).iter().all(|c| c.ok));
        let failed = |m: &Value| compare(m, &rec).into_iter().filter(|c| !c.ok).map(|c| c.check).collect::<Vec<_>>();
        let mut t = rec.clone();
        t["span"]["spans"][0]["charEnd"] = json!(5);
        assert_eq!(failed(&t), vec!["span part (byte for byte)"]);
        let mut t = rec.clone();
        t["credits"] = json!([[1, 700_000], [2, 300_000]]);
        assert_eq!(failed(&t), vec!["credits"]);
        let mut t = rec.clone();
        t["gradient"]["credits"] = json!([[2, 1_000_000]]);
        assert_eq!(failed(&t), vec!["gradient part (within 2000 ppm)"]);
        let mut t = rec.clone();
        t["adapterHash"] = json!("0x03");
        assert_eq!(failed(&t), vec!["model artefacts"]);
        // A claimed record cannot widen its own tolerance past the method's bound.
        let mut loose = rec.clone();
        loose["gradient"]["tolerancePpm"] = json!(500_000);
        let mut far = rec.clone();
        far["credits"] = json!([[1, 600_000], [2, 400_000]]);
        assert!(compare(&far, &loose).iter().any(|c| !c.ok));
    }

    #[test]
    fn stated_parameters_must_be_the_governed_ones_at_their_height() {
        let stated = record().stated(45);
        let governed = RecordParams { excluded: vec![], ..stated.clone() };
        let failed = |g: &RecordParams, settled: u64, timeout: u64| {
            params_checks(&stated, g, settled, timeout)
                .into_iter()
                .filter(|c| !c.ok)
                .map(|c| c.check)
                .collect::<Vec<_>>()
        };
        assert!(failed(&governed, 45, 30).is_empty());
        // Governance changed the weight at that height's side: wrong, not "cannot judge".
        let other = RecordParams { span_weight_ppm: 250_000, ..governed.clone() };
        assert_eq!(failed(&other, 45, 30), vec!["parameters in force at that height"]);
        // A height after settlement, or one older than the attribution timeout, is refused.
        assert_eq!(failed(&governed, 39, 30), vec!["parameters' height"]);
        assert_eq!(failed(&governed, 71, 30), vec!["parameters' height"]);
        // Exclusions must be flagged contributions.
        let excl = RecordParams { excluded: vec![9], ..stated.clone() };
        assert_eq!(
            params_checks(&excl, &governed, 45, 30).into_iter().filter(|c| !c.ok).map(|c| c.check).collect::<Vec<_>>(),
            vec!["excluded contributions are flagged"]
        );
    }

    fn tokenizer() -> TextTokenizer {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ml/fixtures/tiny-llama");
        TextTokenizer::from_hf_dir(&dir).unwrap()
    }

    /// A record whose response is what its tokens decode to, for receipt 0x01…, model m2, settled at 45.
    fn revealed(tok: &TextTokenizer) -> (AttributionRecord, SettledReceipt) {
        let tokens = tok.encode("the cat sat", false).unwrap();
        let r = AttributionRecord {
            response: tok.decode(&tokens).unwrap(),
            response_tokens: tokens,
            prompt_hash: primitives::content_hash(b"prompt"),
            ..record()
        };
        let receipt = SettledReceipt {
            receipt_hash: r.receipt_hash,
            model_id: 2,
            settled_at: 45,
            retrieval_hash: B256::ZERO,
            posted: None,
        };
        (r, receipt)
    }

    fn governed(r: &AttributionRecord) -> Governed {
        Governed { params: RecordParams { excluded: vec![], ..r.stated(45) }, timeout: 30, model: model_record() }
    }

    fn model_record() -> ModelRecord {
        use primitives::{Address, Bytes};
        ModelRecord {
            id: 1,
            owner: Address::repeat_byte(9),
            name: "m2".into(),
            baseModelHash: B256::repeat_byte(2),
            adapterHash: B256::repeat_byte(3),
            datanets: vec![primitives::abi::DatanetVersionRef { datanetId: 1, version: 2 }],
            licences: vec!["CC0-1.0".into()],
            hyperparamsHash: B256::ZERO,
            hyperparams: Bytes::new(),
            metricsHash: B256::ZERO,
            metrics: Bytes::new(),
            trainingLogHash: B256::ZERO,
            checkpointHashes: vec![],
            checkpointLearningRates: vec![],
            sketchHash: B256::ZERO,
            sketchSeed: 0,
            sketchK: 0,
            priceInPer1k: 1,
            priceOutPer1k: 1,
            state: 2,
            createdAt: 1,
        }
    }

    fn failed(checks: &[Check]) -> Vec<String> {
        checks.iter().filter(|c| !c.ok).map(|c| c.check.clone()).collect()
    }

    #[test]
    fn a_record_missing_a_parameter_is_judged_wrong_without_recomputing() {
        let tok = tokenizer();
        let (r, receipt) = revealed(&tok);
        for field in ["spanWeightPpm", "maxCredits", "paramsHeight"] {
            let mut v = r.to_value();
            v["mix"].as_object_mut().unwrap().remove(field);
            let bytes = canonical(&v).into_bytes();
            let (correct, checks) = judge(
                &receipt,
                &bytes,
                b"prompt",
                &tok,
                |_| Err("governed_at must not be asked about a record that does not decode".into()),
                |_, _, _| Err("a record that does not decode must not be recomputed".into()),
            )
            .unwrap();
            assert!(!correct, "{field}");
            assert_eq!(failed(&checks), vec!["record decodes into its version's type"], "{field}");
        }
        let mut v = r.to_value();
        v["span"].as_object_mut().unwrap().remove("minSpanTokens");
        let (correct, _) = judge(
            &receipt,
            canonical(&v).as_bytes(),
            b"prompt",
            &tok,
            |_| Err("not asked".into()),
            |_, _, _| Err("not recomputed".into()),
        )
        .unwrap();
        assert!(!correct);
    }

    #[test]
    fn a_right_record_over_other_credits_posted_on_chain_is_wrong() {
        let tok = tokenizer();
        let (r, receipt) = revealed(&tok);
        assert!(!r.credits.is_empty());
        let bytes = r.canonical_bytes();
        let hold = 1_000_000_000_000_000_007u128;
        let cut = |ppm: u32| hold * u128::from(ppm) / 1_000_000;
        let run = |posted: PostedCredits| {
            let receipt = SettledReceipt { posted: Some(posted), ..receipt };
            judge(&receipt, &bytes, b"prompt", &tok, |_| Ok(governed(&r)), |_, claimed, _| Ok(claimed.to_value()))
                .unwrap()
        };
        // What the record says, posted in any order: right.
        let ids: Vec<u64> = r.credits.iter().rev().map(|c| c.0).collect();
        let amounts: Vec<u128> = r.credits.iter().rev().map(|c| cut(c.1)).collect();
        let (correct, checks) = run(PostedCredits::new(hold, &ids, &amounts));
        assert!(correct, "{:?}", failed(&checks));
        // The same record, but the chain was told to pay another contribution: wrong.
        let (correct, checks) = run(PostedCredits::new(hold, &[99], &[hold]));
        assert!(!correct);
        assert_eq!(failed(&checks), vec!["credits posted on chain are the record's"]);
        // One base unit moved: wrong.
        let mut off = amounts.clone();
        off[0] -= 1;
        assert!(!run(PostedCredits::new(hold, &ids, &off)).0);
    }

    #[test]
    fn judgement_checks_the_claim_then_compares_with_the_recomputation() {
        let tok = tokenizer();
        let (r, receipt) = revealed(&tok);
        let bytes = r.canonical_bytes();
        // The governed parameters are read at the height the record states.
        let mut asked = None;
        let (correct, checks) = judge(
            &receipt,
            &bytes,
            b"prompt",
            &tok,
            |h| {
                asked = Some(h);
                Ok(governed(&r))
            },
            |_, claimed, stated| {
                assert_eq!(stated, r.stated(45));
                Ok(claimed.to_value())
            },
        )
        .unwrap();
        assert_eq!(asked, Some(40));
        assert!(correct, "{:?}", failed(&checks));
        // Parameters that were not in force: wrong, without recomputing.
        let other =
            Governed { params: RecordParams { span_weight_ppm: 250_000, ..governed(&r).params }, ..governed(&r) };
        let (correct, checks) =
            judge(&receipt, &bytes, b"prompt", &tok, |_| Ok(other), |_, _, _| Err("not recomputed".into())).unwrap();
        assert!(!correct);
        assert_eq!(failed(&checks), vec!["parameters in force at that height"]);
        // Another prompt, another receipt: wrong.
        let (correct, checks) = judge(
            &SettledReceipt { receipt_hash: B256::repeat_byte(9), ..receipt },
            &bytes,
            b"another prompt",
            &tok,
            |_| Ok(governed(&r)),
            |_, _, _| Err("not recomputed".into()),
        )
        .unwrap();
        assert!(!correct);
        assert_eq!(failed(&checks), vec!["receipt", "prompt hash"]);
        // A recomputation that disagrees: wrong; one that cannot run: no judgement.
        let (correct, checks) = judge(
            &receipt,
            &bytes,
            b"prompt",
            &tok,
            |_| Ok(governed(&r)),
            |_, claimed, _| {
                let mut v = claimed.to_value();
                v["credits"] = json!([[8, 1_000_000]]);
                Ok(v)
            },
        )
        .unwrap();
        assert!(!correct);
        assert_eq!(failed(&checks), vec!["credits"]);
        let cannot =
            judge(&receipt, &bytes, b"prompt", &tok, |_| Ok(governed(&r)), |_, _, _| Err("no checkpoints here".into()));
        assert_eq!(cannot.unwrap_err(), "no checkpoints here");
    }
}
