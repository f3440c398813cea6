//! Proof of Attribution on planted facts: three contributors each hold facts
//! no one else has; after fine-tuning, an answer that repeats one
//! contributor's fact credits that contributor most; records are
//! deterministic and any change to a field changes the hash.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use attribution::{GradientInputs, RecordParams, compute_record, record_hash};
use datanets::VersionRow;
use factory::{Dataset, JobSpec};
use ml::{Model, ModelFiles};
use primitives::rows::{Row, RowId};
use primitives::{Address, B256, Bytes};
use runtime::models::ModelRecord;

const FACTS: [[&str; 3]; 3] = [
    [
        "The lighthouse keeper of Varnholm paints every door of the harbour a deep cobalt blue each spring.",
        "In Varnholm the ferry bell rings eleven times when the first herring boat returns.",
        "The old mill above Varnholm grinds only barley from the northern terraces.",
    ],
    [
        "The glassblowers of Quellmar cool their bowls in snow gathered from the western glacier.",
        "Every child in Quellmar plants a rowan tree on the morning of their seventh birthday.",
        "The market square of Quellmar is paved with green slate carried from the river bend.",
    ],
    [
        "The beekeepers of Ostrava Marsh feed their hives on clover honey mixed with rainwater.",
        "On the marsh the night watchmen carry lanterns of copper with yellow glass.",
        "The reed cutters of Ostrava Marsh sing the same four songs while they work.",
    ],
];

fn rows() -> Vec<VersionRow> {
    let mut v = Vec::new();
    for (c, facts) in FACTS.iter().enumerate() {
        for (i, f) in facts.iter().enumerate() {
            // Each fact twice, so training sees it often enough.
            for rep in 0..2 {
                v.push(VersionRow {
                    id: RowId { contribution: 10 + c as u64, index: (i * 2 + rep) as u32 },
                    contributor: Address::repeat_byte(0x11 * (c as u8 + 1)),
                    row: Row::Text { text: (*f).to_string() },
                });
            }
        }
    }
    v
}

#[test]
fn planted_facts_credit_their_contributor_and_records_are_deterministic() {
    let base = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ml/fixtures/tiny-llama");
    let files = ModelFiles::open(&base).unwrap();
    let model = Model::from_files(&files).unwrap();
    let tok = files.tokenizer.clone();

    // Fine-tune (a real job: checkpoints and sketches).
    let mut spec = JobSpec::new(vec![factory::DatanetVersion { datanet: 1, version: 1 }]);
    spec.rank = 4;
    spec.alpha = 8.0;
    spec.targets = vec!["q_proj".into(), "v_proj".into(), "up_proj".into()];
    spec.learning_rate = 1e-2;
    spec.steps = Some(12);
    spec.batch_size = 4;
    spec.max_seq_len = 64;
    spec.validation_percent = 0;
    spec.sketch_k = 64;
    let version_rows = rows();
    let eos = tok.eos_ids(&model.config.eos_token_ids).first().copied();
    let data = Dataset::build(&version_rows, &tok, eos, 64, spec.seed, 0).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = factory::job::run(&spec, &model, &tok, &data, dir.path(), &AtomicBool::new(false), &mut |_| {})
        .unwrap()
        .unwrap();

    // The artefacts as a blob store would serve them.
    let mut blobs: HashMap<B256, Vec<u8>> = HashMap::new();
    let mut put = |b: Vec<u8>| {
        let h = primitives::content_hash(&b);
        blobs.insert(h, b);
        h
    };
    let cfg_hash = put(std::fs::read(dir.path().join("adapter/adapter_config.json")).unwrap());
    let ck_hashes: Vec<B256> =
        out.checkpoints.iter().map(|c| put(std::fs::read(dir.path().join(&c.file)).unwrap())).collect();
    let sketch_hash = put(std::fs::read(dir.path().join("sketch.bin")).unwrap());
    let metrics = serde_json::json!({"artefacts": {"adapterConfig": cfg_hash}}).to_string();
    let record = ModelRecord {
        id: 1,
        owner: Address::repeat_byte(9),
        name: "facts".into(),
        baseModelHash: files.hash,
        adapterHash: out.adapter_hash,
        datanets: vec![primitives::abi::DatanetVersionRef { datanetId: 1, version: 1 }],
        licences: vec!["CC0-1.0".into()],
        hyperparamsHash: B256::ZERO,
        hyperparams: Bytes::new(),
        metricsHash: B256::ZERO,
        metrics: Bytes::from(metrics.into_bytes()),
        trainingLogHash: B256::ZERO,
        checkpointHashes: ck_hashes,
        checkpointLearningRates: out.checkpoints.iter().map(|c| (c.learning_rate * 1e9).round() as u64).collect(),
        sketchHash: sketch_hash,
        sketchSeed: out.sketch_seed,
        sketchK: out.sketch_k as u32,
        priceInPer1k: 1,
        priceOutPer1k: 1,
        state: runtime::models::LIVE,
        createdAt: 1,
    };
    let fetch = |h: &B256| blobs.get(h).cloned().ok_or_else(|| format!("no blob {h}"));
    let grads = GradientInputs::load(&record, &model.config, &fetch).unwrap().expect("the job kept checkpoints");
    assert_eq!(grads.checkpoints.len(), 3);
    let index_rows = node::spans::index_rows(&tok, version_rows.clone()).unwrap();
    let idx_path = dir.path().join("facts.olsa");
    let key = node::spans::index_key(&tok, &[(1, 1)]);
    let index =
        attribution::SpanIndex::build(key, &index_rows, tok.vocab_size() as u32, 0, &idx_path, &mut |_, _| {}).unwrap();
    let params = RecordParams {
        span_weight_ppm: 500_000,
        min_span_tokens: 8,
        max_credits: 32,
        excluded: vec![],
        params_height: 1,
    };
    let compute = |receipt: B256, response: &[u32], text: &str, p: &RecordParams| {
        compute_record(
            &model,
            &tok,
            2,
            &record,
            receipt,
            B256::ZERO,
            response,
            text,
            Some(&index),
            Some(&grads),
            p.clone(),
        )
        .unwrap()
    };

    for (c, facts) in FACTS.iter().enumerate() {
        let want = 10 + c as u64;
        // An answer that repeats the fact after a few words of its own.
        let text = format!("As you asked: {}", facts[1]);
        let response = tok.encode(&text, false).unwrap();
        let rec = compute(B256::repeat_byte(c as u8), &response, &text, &params);
        let credits = attribution::record_credits(&rec);
        assert_eq!(credits.iter().map(|c| c.weightPpm).sum::<u32>(), 1_000_000, "{rec}");
        let top = credits.iter().max_by_key(|c| c.weightPpm).unwrap();
        assert_eq!(top.contributionId, want, "contributor {c}'s fact credits them most: {}", rec["credits"]);
        // The span part found the fact and credits only its contributor.
        let span_credits = rec["span"]["credits"].as_array().unwrap();
        assert_eq!(span_credits.len(), 1, "{}", rec["span"]);
        assert_eq!(span_credits[0][0].as_u64().unwrap(), want);
        let sp = &rec["span"]["spans"][0];
        let (a, b) = (sp["charStart"].as_u64().unwrap() as usize, sp["charEnd"].as_u64().unwrap() as usize);
        let piece: String = text.chars().skip(a).take(b - a).collect();
        assert!(facts[1].contains(piece.trim()), "span {piece:?} is part of the fact");
        // Deterministic: the same inputs give the same record and hash.
        let again = compute(B256::repeat_byte(c as u8), &response, &text, &params);
        assert_eq!(record_hash(&rec), record_hash(&again));
        // Its canonical bytes decode into the record type (what a verifier
        // requires of a revealed record), states its parameters' height, and
        // hash as posted.
        let bytes = attribution::canonical(&rec).into_bytes();
        let typed = attribution::AttributionRecord::decode(&bytes).unwrap();
        assert_eq!(typed.version, attribution::RECORD_VERSION);
        assert_eq!(typed.mix.params_height, Some(1));
        assert_eq!(typed.hash(), record_hash(&rec));
        // Tampering with any field changes the hash.
        let mut forged = rec.clone();
        forged["credits"][0][1] = serde_json::json!(forged["credits"][0][1].as_u64().unwrap() - 1);
        assert_ne!(record_hash(&forged), record_hash(&rec));
        // A contribution flagged since training earns nothing: the span part
        // still shows the trace, the final credits leave it out.
        let flagged = RecordParams { excluded: vec![want], ..params.clone() };
        let without = compute(B256::repeat_byte(c as u8), &response, &text, &flagged);
        assert_eq!(without["span"], rec["span"]);
        let credits = attribution::record_credits(&without);
        assert!(credits.iter().all(|c| c.contributionId != want), "{}", without["credits"]);
        assert!(credits.is_empty() || credits.iter().map(|c| c.weightPpm).sum::<u32>() == 1_000_000);
        assert_eq!(without["mix"]["excluded"], serde_json::json!([want]));
    }
    // An answer with nothing from the data: no span credits (the gradient part may still credit).
    let text = "Zebra quartz jumps";
    let response = tok.encode(text, false).unwrap();
    let rec = compute(B256::ZERO, &response, text, &params);
    assert!(rec["span"]["credits"].as_array().unwrap().is_empty());
}
