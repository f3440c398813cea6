//! What `models.register` takes for a succeeded job, read from the job as
//! `GET /v1/jobs/{id}` shows it: the one encoding both the CLI (`openledger
//! model propose`) and the web app (the job page's register button) send,
//! so that a model registered either way carries the same hashes and bytes.

use primitives::B256;
use primitives::Bytes;
use primitives::abi::{DatanetVersionRef, ModelRegistration};
use serde_json::{Value, json};

use crate::FactoryError;
use crate::spec::canonical_json;

/// The prices a model is registered at unless its owner says otherwise: OPEN
/// per 1K input and per 1K output tokens (`openledger model propose`'s defaults).
pub const DEFAULT_PRICE_IN_PER_1K: &str = "0.001";
pub const DEFAULT_PRICE_OUT_PER_1K: &str = "0.002";

/// The registration of job `job` (`j`: its JSON as the API shows it), named
/// `name` (default: the job's name, else `job-N`), at the given prices (base
/// units of OPEN per 1K input and output tokens). Refused unless it succeeded.
pub fn registration(
    j: &Value,
    job: u64,
    name: Option<String>,
    price_in_per_1k: u128,
    price_out_per_1k: u128,
) -> Result<ModelRegistration, FactoryError> {
    if j["status"] != "succeeded" {
        return Err(FactoryError::Data(format!(
            "job {job} has not succeeded ({}): nothing to register",
            j["status"].as_str().unwrap_or("?")
        )));
    }
    let o = &j["output"];
    let a = &j["artefacts"];
    let h = |v: &Value| -> Result<B256, FactoryError> {
        v.as_str()
            .ok_or_else(|| FactoryError::Data(format!("job {job}: missing hash")))?
            .parse()
            .map_err(|_| FactoryError::Data(format!("job {job}: bad hash {v}")))
    };
    let metrics = canonical_json(&json!({"metrics": o["metrics"], "artefacts": a})).into_bytes();
    let hyper = canonical_json(&j["spec"]).into_bytes();
    let name = name
        .or_else(|| j["spec"]["name"].as_str().filter(|s| !s.is_empty()).map(str::to_string))
        .unwrap_or_else(|| format!("job-{job}"));
    let list = |v: &Value| v.as_array().cloned().unwrap_or_default();
    Ok(ModelRegistration {
        name,
        baseModelHash: h(&o["baseModelHash"])?,
        adapterHash: h(&o["adapterHash"])?,
        datanets: list(&j["spec"]["datanets"])
            .iter()
            .map(|d| DatanetVersionRef {
                datanetId: d["datanet"].as_u64().unwrap_or(0),
                version: d["version"].as_u64().unwrap_or(0),
            })
            .collect(),
        hyperparams: Bytes::from(hyper),
        metrics: Bytes::from(metrics),
        trainingLogHash: h(&a["trainingLog"])?,
        checkpointHashes: list(&a["checkpoints"]).iter().map(h).collect::<Result<_, _>>()?,
        checkpointLearningRates: list(&o["checkpoints"])
            .iter()
            .map(|c| lr_nano(c["learningRate"].as_f64().unwrap_or(0.0)))
            .collect(),
        sketchHash: h(&a["sketch"])?,
        sketchSeed: o["sketchSeed"].as_u64().unwrap_or(0),
        sketchK: o["sketchK"].as_u64().unwrap_or(0) as u32,
        priceInPer1k: price_in_per_1k,
        priceOutPer1k: price_out_per_1k,
    })
}

/// A learning rate in billionths, as the registry stores a checkpoint's.
fn lr_nano(lr: f64) -> u64 {
    (lr * 1e9).round().max(0.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_succeeded_job_registers() {
        let e = registration(&json!({"status": "running"}), 4, None, 1, 2).unwrap_err();
        assert!(e.to_string().contains("job 4 has not succeeded (running)"), "{e}");
        let e = registration(&json!({"status": "succeeded"}), 4, None, 1, 2).unwrap_err();
        assert!(e.to_string().contains("missing hash"), "{e}");
        assert_eq!(lr_nano(2e-3), 2_000_000);
    }
}
