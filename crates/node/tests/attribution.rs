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
        retrieval_share_bps: Some(3_000),
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

    // Records made with the methods of version 3 (TracIn, the fixed mix)
    // still verify: recomputed with their version's methods they match byte
    // for byte, and recomputed with today's they would not.
    let text = format!("As you asked: {}", FACTS[0][1]);
    let response = tok.encode(&text, false).unwrap();
    let inputs = attribution::Inputs {
        model: &model,
        tok: &tok,
        model_id: 2,
        r: &record,
        receipt_hash: B256::repeat_byte(7),
        prompt_hash: B256::ZERO,
        response: &response,
        text: &text,
        index: Some(&index),
        gradient: Some(&grads),
    };
    let v3 = attribution::compute_record_version(3, &inputs, params.clone()).unwrap();
    let typed = attribution::AttributionRecord::decode(attribution::canonical(&v3).as_bytes()).unwrap();
    assert_eq!((typed.version, typed.gradient.method.as_str()), (3, "tracin-projected-lora"));
    assert!(typed.gradient.projection.is_none() && typed.mix.span_share_ppm.is_none());
    let again = attribution::compute_record_version(typed.version, &inputs, params.clone()).unwrap();
    assert!(attribution::compare(&again, &v3).iter().all(|c| c.ok), "{:?}", attribution::compare(&again, &v3));
    let v4 = attribution::compute_record_version(4, &inputs, params.clone()).unwrap();
    assert_eq!(v4["gradient"]["projection"], "count-sketch");
    let failed: Vec<String> = attribution::compare(&v4, &v3).into_iter().filter(|c| !c.ok).map(|c| c.check).collect();
    assert!(failed.contains(&"methods and their parameters".to_string()), "{failed:?}");

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

    retrieval_records_pay_what_the_answer_quotes_and_forgeries_are_judged_wrong(&model, &tok, &record, &index, &grads);
}

/// Rows of another Datanet (7, version 3) a serving node retrieved for an answer.
const RETRIEVED: [(u64, u32, &str); 3] = [
    (20, 0, "The tide tables of Kelmscott Bay are carved into the granite steps below the chapel."),
    (21, 4, "Apprentice coopers in Dunmere bend their first barrel staves over a fire of apple wood."),
    (22, 1, "Nothing in this row is ever quoted by the answers of this test at all."),
];

fn retrieval_records_pay_what_the_answer_quotes_and_forgeries_are_judged_wrong(
    model: &Model,
    tok: &ml::TextTokenizer,
    record: &ModelRecord,
    index: &attribution::SpanIndex,
    grads: &GradientInputs,
) {
    use attribution::{AttributionRecord, Governed, RetrievalInputs, RetrievedRow, SettledReceipt};
    let rows: Vec<RetrievedRow> = RETRIEVED
        .iter()
        .map(|(c, r, t)| RetrievedRow { contribution: *c, row: *r, tokens: tok.encode(t, false).unwrap() })
        .collect();
    let inputs = RetrievalInputs { datanets: vec![(7, 3)], rows };
    let params = RecordParams {
        span_weight_ppm: 500_000,
        min_span_tokens: 8,
        max_credits: 32,
        excluded: vec![],
        params_height: 40,
        retrieval_share_bps: Some(3_000),
    };
    let prompt = b"the prompt's token ids".to_vec();
    let receipt_hash = B256::repeat_byte(0x77);
    // What the serving node and every verifier compute: training part, then retrieval part.
    let recompute = |response: &[u32], text: &str, p: &RecordParams, inputs: &RetrievalInputs| {
        let r = compute_record(
            model,
            tok,
            2,
            record,
            receipt_hash,
            primitives::content_hash(&prompt),
            response,
            text,
            Some(index),
            Some(grads),
            p.clone(),
        )
        .unwrap();
        attribution::add_retrieval(&r, tok, inputs, p).unwrap()
    };
    // The answer quotes a training fact (contribution 10) and retrieved row 20.
    let text = format!("As you asked: {} And: {}", FACTS[0][1], RETRIEVED[0].2);
    let response = tok.encode(&text, false).unwrap();
    let rec = recompute(&response, &text, &params, &inputs);
    let part = &rec["retrieval"];
    assert_eq!(part["credits"], serde_json::json!([[20, 1_000_000]]), "{part}");
    assert_eq!(part["rows"], serde_json::json!([[20, 0], [21, 4], [22, 1]]));
    let final_credits = attribution::record_credits(&rec);
    assert_eq!(final_credits.iter().map(|c| c.weightPpm).sum::<u32>(), 1_000_000);
    // Contribution 20 is not training data: it gets exactly the governed 30 %.
    assert_eq!(final_credits.iter().find(|c| c.contributionId == 20).unwrap().weightPpm, 300_000, "{}", rec["credits"]);
    assert!(final_credits.iter().all(|c| c.contributionId != 21 && c.contributionId != 22));

    // The verifier's judgement (attribution::judge, what a challenge runs).
    let retrieval_hash =
        primitives::abi::retrieval_hash(&[primitives::abi::DatanetVersionRef { datanetId: 7, version: 3 }]);
    let settled = SettledReceipt { receipt_hash, model_id: 2, settled_at: 45, retrieval_hash, posted: None };
    let judge = |bytes: &[u8], settled: &SettledReceipt| {
        let governed = |_h: u64| Ok(Governed { params: params.clone(), timeout: 30, model: record.clone() });
        let recomputed = |_: &ModelRecord, theirs: &AttributionRecord, stated: RecordParams| {
            // The rows the record names, read from the versions it names (here: the table above).
            let named = theirs.retrieval.as_ref().map(|p| RetrievalInputs {
                datanets: p.datanets.iter().map(|d| (d.datanet, d.version)).collect(),
                rows: p
                    .rows
                    .iter()
                    .filter_map(|(c, i)| inputs.rows.iter().find(|r| r.contribution == *c && r.row == *i).cloned())
                    .collect(),
            });
            Ok(recompute(&theirs.response_tokens, &theirs.response, &stated, named.as_ref().unwrap_or(&inputs)))
        };
        attribution::judge(settled, bytes, &prompt, tok, governed, recomputed).unwrap()
    };
    let honest = attribution::canonical(&rec).into_bytes();
    let (ok, checks) = judge(&honest, &settled);
    assert!(ok, "{checks:?}");
    let typed = AttributionRecord::decode(&honest).unwrap();
    let wrong = |f: &dyn Fn(&mut AttributionRecord), settled: &SettledReceipt| {
        let mut forged = typed.clone();
        f(&mut forged);
        let (ok, checks) = judge(&forged.canonical_bytes(), settled);
        assert!(!ok, "a forged record was judged right");
        checks.into_iter().filter(|c| !c.ok).map(|c| c.check).collect::<Vec<_>>()
    };
    // Credit moved to a retrieved row the answer never quotes.
    let moved = wrong(
        &|r| {
            let p = r.retrieval.as_mut().unwrap();
            p.credits = vec![(22, 1_000_000)];
            p.support = vec![(22, p.support[0].1)];
            r.credits = r.credits.iter().map(|c| if c.0 == 20 { (22, c.1) } else { *c }).collect();
            r.credits.sort();
        },
        &settled,
    );
    assert!(moved.contains(&"retrieval part (byte for byte)".to_string()), "{moved:?}");
    // A row listed that the versions do not hold (the operator's own).
    let smuggled = wrong(&|r| r.retrieval.as_mut().unwrap().rows.push((99, 0)), &settled);
    assert_eq!(smuggled, vec!["retrieval part (byte for byte)"]);
    // A larger share for the retrieved rows than governance set.
    let share = wrong(&|r| r.retrieval.as_mut().unwrap().share_bps = 5_000, &settled);
    assert!(share.contains(&"retrieval share in force at that height".to_string()), "{share:?}");
    // Versions the receipt did not commit to, or a retrieval part on a receipt without retrieval.
    let other = wrong(&|r| r.retrieval.as_mut().unwrap().datanets[0].version = 2, &settled);
    assert!(other.contains(&"retrieved Datanet versions (the receipt's retrievalHash)".to_string()), "{other:?}");
    let none = SettledReceipt { retrieval_hash: B256::ZERO, ..settled };
    let (ok, _) = judge(&honest, &none);
    assert!(!ok, "a retrieval part on a receipt that retrieved nothing is wrong");
    // An answer quoting no retrieved row: the training credits stand.
    let text = format!("As you asked: {}", FACTS[0][1]);
    let response = tok.encode(&text, false).unwrap();
    let plain = recompute(&response, &text, &params, &inputs);
    assert_eq!(plain["retrieval"]["credits"], serde_json::json!([]));
    let p = RecordParams { retrieval_share_bps: None, ..params.clone() };
    let training = compute_record(
        model,
        tok,
        2,
        record,
        receipt_hash,
        primitives::content_hash(&prompt),
        &response,
        &text,
        Some(index),
        Some(grads),
        p,
    )
    .unwrap();
    assert_eq!(plain["credits"], training["credits"]);
}
