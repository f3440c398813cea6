//! The gradient part of a record: influence over a model's kept LoRA
//! checkpoints with projected gradients, against the sketches ModelFactory
//! stored for every training row (`factory::Sketches`). Two methods:
//!
//! - **`tracin-projected-lora`** (records up to version 3, [`gradient_scores`]):
//!   TracIn, Σ over checkpoints of η_c ⟨P g_row, P g_answer⟩, summed over a
//!   contribution's rows, positives only. Raw dot products grow with the
//!   gradients' norms, so generic, high-loss rows (and contributors with many
//!   rows) win whatever the answer says.
//! - **`relative-cosine-lora`** (version 4, [`relative_scores`]): relevance,
//!   not gradient size. At each kept checkpoint c, every projected gradient
//!   (each training row's sketch, and the answer's) is scaled to unit length
//!   and centred on μ_c, the mean of the rows' unit sketches (in row order,
//!   f64): the direction every row shares (format, style, the language
//!   itself) is taken out. A row's score is the learning-rate-weighted mean
//!   over checkpoints of the cosine of its centred gradient with the answer's,
//!   s_r = Σ_c η_c cos(ĝ_row,c − μ_c, ĝ_answer,c − μ_c) / Σ_c η_c; a
//!   contribution's score is its best row's, S_k = max_r s_r (one relevant row
//!   is enough; many loosely related rows add nothing). What indicates
//!   influence is how far a contribution stands out from the rest: with m the
//!   median of the S_k and σ = 1.4826 · median |S_k − m| (a robust standard
//!   deviation), a contribution is credited S_k − m when S_k − m > z σ and
//!   S_k > 0 (z = [`OUTLIER_Z_MILLI`] / 1000, stated in the record). When none
//!   stands out (a Datanet of one or two contributions, where a spread cannot
//!   be estimated, or an answer no row explains), the contributions with
//!   S_k > 0 and S_k ≥ m are credited S_k: the same neutral spread a record
//!   without credits would get from the fallback, but named in the record.
//!   Chosen on SmolLM2-135M against
//!   TracIn, uncentred cosine, sums and means per contribution and z from 0
//!   to 3 (docs/benchmarks.md, `bench attribution-quality`).

use std::collections::BTreeMap;

use factory::Sketches;
use ml::{Checkpoint, LoraAdapter, LoraConfig, Model};
use primitives::B256;
use rayon::prelude::*;
use runtime::models::ModelRecord;
use serde_json::Value;

/// The gradient part's reproducibility bound, per credit, in ppm.
pub const GRADIENT_TOLERANCE_PPM: u32 = 2_000;

/// Everything the gradient part needs for one model.
pub struct GradientInputs {
    pub sketches: Sketches,
    /// (learning rate, adapter) at each kept checkpoint, in the sketches' order.
    pub checkpoints: Vec<(f64, LoraAdapter)>,
}

impl GradientInputs {
    /// Load a model's kept checkpoints and sketches through `blob` (the blob store, or HTTP for a verifier).
    pub fn load(
        r: &ModelRecord,
        model: &ml::ModelConfig,
        blob: &dyn Fn(&B256) -> Result<Vec<u8>, String>,
    ) -> Result<Option<GradientInputs>, String> {
        if r.sketchHash == B256::ZERO || r.checkpointHashes.is_empty() {
            return Ok(None);
        }
        let m: Value = serde_json::from_slice(&r.metrics).map_err(|_| "metrics name no artefacts".to_string())?;
        let cfg_hash: B256 =
            m["artefacts"]["adapterConfig"].as_str().and_then(|s| s.parse().ok()).ok_or("no adapter config")?;
        let lora =
            LoraConfig::from_peft_json(&String::from_utf8_lossy(&blob(&cfg_hash)?)).map_err(|e| e.to_string())?;
        let sketches = Sketches::parse(&blob(&r.sketchHash)?).map_err(|e| e.to_string())?;
        if sketches.learning_rates.len() != r.checkpointHashes.len()
            || r.checkpointLearningRates.len() != r.checkpointHashes.len()
            || sketches.k != r.sketchK as usize
            || sketches.seed != r.sketchSeed
        {
            return Err("the sketches do not match the model record (checkpoints, k or seed)".into());
        }
        let mut checkpoints = Vec::new();
        for (h, lr_nano) in r.checkpointHashes.iter().zip(&r.checkpointLearningRates) {
            let ck = Checkpoint::from_bytes(&blob(h)?, &lora, model).map_err(|e| e.to_string())?;
            checkpoints.push((*lr_nano as f64 / 1e9, ck.adapter));
        }
        Ok(Some(GradientInputs { sketches, checkpoints }))
    }
}

/// z × 1000 of the version 4 method's outlier rule.
pub const OUTLIER_Z_MILLI: u32 = 3_000;

/// The answer's projected gradient at each kept checkpoint, with the sketches' projection.
fn answer_projections(model: &Model, g: &GradientInputs, response: &[u32]) -> Result<Vec<Vec<f32>>, String> {
    let mask: Vec<bool> = (0..response.len()).map(|i| i > 0).collect();
    // Checkpoints in parallel: each gradient is the same whatever the thread
    // count (ml's tests), so the record is too.
    g.checkpoints
        .par_iter()
        .map(|(_, a)| {
            let grad = ml::sequence_gradients(model, a, response, &mask).map_err(|e| e.to_string())?;
            Ok(g.sketches.projection.apply(&grad, g.sketches.seed, g.sketches.k))
        })
        .collect()
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
}

/// The version 4 method (module docs): per contribution, how far its best
/// row's gradient cosine with the answer stands out from the others'.
pub fn relative_scores(
    model: &Model,
    g: &GradientInputs,
    response: &[u32],
    z_milli: u32,
) -> Result<BTreeMap<u64, f64>, String> {
    if response.len() < 2 || g.checkpoints.is_empty() {
        return Ok(BTreeMap::new());
    }
    let proj = answer_projections(model, g, response)?;
    let lrs: Vec<f64> = g.checkpoints.iter().map(|c| c.0).collect();
    Ok(relative_from(&contribution_cosines(&g.sketches, &lrs, &proj), z_milli))
}

/// S_k: each contribution's best row's learning-rate-weighted (`lrs`) mean
/// cosine with the answer's projected gradients `proj` (one per checkpoint).
pub fn contribution_cosines(sketches: &Sketches, lrs: &[f64], proj: &[Vec<f32>]) -> BTreeMap<u64, f64> {
    let n_ck = proj.len().min(lrs.len());
    let centres: Vec<Vec<f64>> = (0..n_ck).map(|c| centre(sketches, c)).collect();
    let answer: Vec<Vec<f64>> = (0..n_ck).map(|c| centred(&proj[c], &centres[c])).collect();
    let lr_sum: f64 = lrs[..n_ck].iter().sum();
    let mut best: BTreeMap<u64, f64> = BTreeMap::new();
    for (row, _, vs) in &sketches.rows {
        let mut s = 0.0f64;
        for (c, v) in vs.iter().enumerate().take(n_ck) {
            let v = centred(v, &centres[c]);
            let n = dot64(&v, &v).sqrt() * dot64(&answer[c], &answer[c]).sqrt();
            if n > 0.0 {
                s += lrs[c] * dot64(&v, &answer[c]) / n;
            }
        }
        let s = if lr_sum > 0.0 { s / lr_sum } else { 0.0 };
        let e = best.entry(row.contribution).or_insert(f64::NEG_INFINITY);
        *e = e.max(s);
    }
    best
}

fn dot64(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The unit vector of `v` minus `centre`.
fn centred(v: &[f32], centre: &[f64]) -> Vec<f64> {
    let n = dot(v, v).sqrt();
    if n == 0.0 {
        return vec![0.0; v.len()];
    }
    v.iter().zip(centre).map(|(x, m)| *x as f64 / n - m).collect()
}

/// The mean of the rows' unit sketch vectors at checkpoint `c`.
fn centre(s: &Sketches, c: usize) -> Vec<f64> {
    let mut m = vec![0.0f64; s.k];
    let mut n = 0usize;
    for (_, _, vs) in &s.rows {
        let Some(v) = vs.get(c) else { continue };
        let norm = dot(v, v).sqrt();
        if norm > 0.0 {
            for (a, x) in m.iter_mut().zip(v) {
                *a += *x as f64 / norm;
            }
            n += 1;
        }
    }
    if n > 0 {
        for a in &mut m {
            *a /= n as f64;
        }
    }
    m
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The outlier rule over contribution scores (module docs).
pub fn relative_from(scores: &BTreeMap<u64, f64>, z_milli: u32) -> BTreeMap<u64, f64> {
    let m = median(scores.values().copied().collect());
    let sigma = 1.4826 * median(scores.values().map(|s| (s - m).abs()).collect());
    let z = z_milli as f64 / 1000.0;
    let out: BTreeMap<u64, f64> =
        scores.iter().filter(|(_, s)| **s > 0.0 && **s - m > z * sigma).map(|(k, s)| (*k, s - m)).collect();
    if !out.is_empty() {
        return out;
    }
    // None stands out (few contributions, or an answer no row explains):
    // the contributions at or above the median with a positive score, by score.
    scores.iter().filter(|(_, s)| **s > 0.0 && **s >= m).map(|(k, s)| (*k, *s)).collect()
}

/// TracIn with projected gradients (records up to version 3); scores per contribution (positives only).
pub fn gradient_scores(model: &Model, g: &GradientInputs, response: &[u32]) -> Result<BTreeMap<u64, f64>, String> {
    let mut out = BTreeMap::new();
    if response.len() < 2 || g.checkpoints.is_empty() {
        return Ok(out);
    }
    let proj = answer_projections(model, g, response)?;
    for (row, _, vs) in &g.sketches.rows {
        let mut s = 0.0f64;
        for (c, v) in vs.iter().enumerate() {
            let lr = g.checkpoints.get(c).map(|x| x.0).unwrap_or(0.0);
            s += lr * dot(v, &proj[c]);
        }
        if s > 0.0 {
            *out.entry(row.contribution).or_default() += s;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use primitives::Address;
    use primitives::rows::RowId;

    /// One checkpoint, k = 4: the answer's gradient points along e0. Contributor
    /// 1 holds one row along e0 with a small norm (the fact the answer states);
    /// contributors 2..=9 hold rows mostly along e1 (their own facts), and
    /// contributor 10 holds many generic rows with large norms that share a
    /// little of every direction (high loss, the language itself).
    fn sketches() -> Sketches {
        let row = |c: u64, i: u32, v: [f32; 4]| (RowId { contribution: c, index: i }, Address::ZERO, vec![v.to_vec()]);
        let mut rows = vec![row(1, 0, [0.2, 0.01, 0.0, 0.0])];
        for c in 2..=9u64 {
            rows.push(row(c, 0, [0.02 * (c as f32 % 3.0), 0.3, 0.05 * c as f32, 0.0]));
        }
        for i in 0..6 {
            rows.push(row(10, i, [0.6, 3.0, 2.0 + 0.2 * i as f32, 4.0]));
        }
        Sketches { projection: ml::Projection::CountSketch, k: 4, seed: 1, learning_rates: vec![0.1], rows }
    }

    /// A model record naming one kept checkpoint whose sketch blob holds two:
    /// refused at load (before, the scoring loop indexed past the answer's
    /// projections and panicked).
    #[test]
    fn sketches_that_do_not_match_the_record_are_refused() {
        use primitives::{B256, Bytes};
        let cfg = ml::LoraConfig { r: 2, lora_alpha: 4.0, lora_dropout: 0.0, target_modules: vec![ml::Target::Q] };
        let cfg_bytes = cfg.to_peft_json("base").into_bytes();
        let mut w = factory::SketchWriter::new(ml::Projection::CountSketch, 4, 1, vec![0.1, 0.05]);
        w.push(RowId { contribution: 1, index: 0 }, Address::ZERO, &[vec![1.0; 4], vec![2.0; 4]]);
        let sketch = w.finish();
        let (cfg_hash, sketch_hash) = (primitives::content_hash(&cfg_bytes), primitives::content_hash(&sketch));
        let metrics = serde_json::json!({"artefacts": {"adapterConfig": cfg_hash.to_string()}}).to_string();
        let record = ModelRecord {
            id: 1,
            owner: Address::ZERO,
            name: "m".into(),
            baseModelHash: B256::ZERO,
            adapterHash: B256::ZERO,
            datanets: vec![],
            licences: vec![],
            hyperparamsHash: B256::ZERO,
            hyperparams: Bytes::new(),
            metricsHash: B256::ZERO,
            metrics: Bytes::from(metrics.into_bytes()),
            trainingLogHash: B256::ZERO,
            checkpointHashes: vec![B256::repeat_byte(5)],
            checkpointLearningRates: vec![100_000_000],
            sketchHash: sketch_hash,
            sketchSeed: 1,
            sketchK: 4,
            priceInPer1k: 1,
            priceOutPer1k: 1,
            state: 2,
            createdAt: 1,
        };
        let blob = |h: &B256| match h {
            h if *h == cfg_hash => Ok(cfg_bytes.clone()),
            h if *h == sketch_hash => Ok(sketch.clone()),
            _ => Err(format!("no blob {h}")),
        };
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ml/fixtures/tiny-llama/config.json");
        let model = ml::ModelConfig::from_hf_json(&std::fs::read_to_string(dir).unwrap()).unwrap();
        let err = GradientInputs::load(&record, &model, &blob).err().expect("refused");
        assert!(err.contains("do not match"), "{err}");
    }

    #[test]
    fn relevance_not_gradient_size_decides() {
        let s = sketches();
        let answer = vec![vec![1.0f32, 0.0, 0.0, 0.0]];
        // TracIn's raw dot products: the generic contributor's big gradients win.
        let raw: BTreeMap<u64, f64> = s.rows.iter().fold(BTreeMap::new(), |mut m, (r, _, v)| {
            *m.entry(r.contribution).or_insert(0.0) += 0.1 * dot(&v[0], &answer[0]);
            m
        });
        let top_raw = raw.iter().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
        assert_eq!(*top_raw, 10);
        // The relative cosine: only the fact's contributor stands out.
        let cos = contribution_cosines(&s, &[0.1], &answer);
        assert!(cos.values().all(|c| (-1.0..=1.0).contains(c)));
        let rel = relative_from(&cos, OUTLIER_Z_MILLI);
        assert_eq!(rel.keys().copied().collect::<Vec<_>>(), vec![1], "{cos:?}");
        // When nothing stands out, the upper half with positive scores, by score.
        let flat: BTreeMap<u64, f64> = (1..=8).map(|c| (c, 0.1 + 0.001 * c as f64)).collect();
        assert_eq!(relative_from(&flat, OUTLIER_Z_MILLI).keys().copied().collect::<Vec<_>>(), vec![5, 6, 7, 8]);
        let same: BTreeMap<u64, f64> = (1..=8).map(|c| (c, 0.3)).collect();
        assert_eq!(relative_from(&same, OUTLIER_Z_MILLI).len(), 8);
        // One or two contributions: no spread to estimate; the better one.
        let one = BTreeMap::from([(4u64, 0.2)]);
        assert_eq!(relative_from(&one, OUTLIER_Z_MILLI), one);
        let two = BTreeMap::from([(4u64, 0.2), (5, 0.1)]);
        assert_eq!(relative_from(&two, OUTLIER_Z_MILLI).keys().copied().collect::<Vec<_>>(), vec![4]);
        // Negative or zero similarity is never credited, however it stands out.
        let neg: BTreeMap<u64, f64> = (1..=8).map(|c| (c, if c == 3 { -0.0 } else { -0.5 })).collect();
        assert!(relative_from(&neg, OUTLIER_Z_MILLI).is_empty());
        // Centring takes out the direction every row shares: an answer along
        // the rows' mean direction favours no one in particular.
        let mean = centre(&s, 0).iter().map(|x| *x as f32).collect::<Vec<_>>();
        let along = relative_from(&contribution_cosines(&s, &[0.1], &[mean]), OUTLIER_Z_MILLI);
        assert!(!along.contains_key(&10), "{along:?}");
    }
}
