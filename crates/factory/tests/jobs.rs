//! Jobs on the tiny fixture model: training lowers the held-out loss; a job
//! interrupted and resumed ends with the same adapter and sketch bytes as one
//! that ran straight through; bad jobs are refused with the reason.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use factory::{Dataset, JobSpec, Sketches, job};
use ml::{Model, ModelFiles};
use primitives::Address;
use primitives::rows::VersionRow;
use primitives::rows::{Row, RowId};

fn tiny() -> (Model, ml::TextTokenizer) {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ml/fixtures/tiny-llama");
    let f = ModelFiles::open(&p).unwrap();
    (Model::from_files(&f).unwrap(), f.tokenizer.clone())
}

/// A small Datanet: facts in a fixed pattern the adapter can learn.
fn rows() -> Vec<VersionRow> {
    let names = ["Ada", "Bob", "Cyd", "Dee", "Eve", "Fay", "Gus", "Hal", "Ivy", "Jon", "Kit", "Lou"];
    let colours = ["red", "blue", "green", "gold"];
    let mut v = Vec::new();
    for (i, n) in names.iter().enumerate() {
        for (j, c) in colours.iter().enumerate() {
            let row = if j % 2 == 0 {
                Row::Text { text: format!("{n} likes the colour {c}. {n} paints with {c}.") }
            } else {
                Row::PromptCompletion {
                    prompt: format!("What does {n} paint with?"),
                    completion: format!("{n} paints with {c}."),
                }
            };
            v.push(VersionRow {
                id: RowId { contribution: 1 + i as u64 % 3, index: (i * 4 + j) as u32 },
                contributor: Address::repeat_byte(1 + (i % 3) as u8),
                row,
            });
        }
    }
    v
}

fn spec() -> JobSpec {
    let mut s = JobSpec::new(vec![factory::DatanetVersion { datanet: 1, version: 1 }]);
    s.rank = 4;
    s.alpha = 8.0;
    s.targets = vec!["q_proj".into(), "v_proj".into(), "up_proj".into()];
    s.learning_rate = 1e-2;
    s.steps = Some(24);
    s.warmup_steps = 2;
    s.batch_size = 4;
    s.max_seq_len = 64;
    s.validation_percent = 20;
    s.seed = 5;
    s.keep_checkpoints = 3;
    s.sketch_k = 32;
    s.checkpoint_every = 5;
    s
}

fn dataset(m: &Model, t: &ml::TextTokenizer, s: &JobSpec) -> Dataset {
    let eos = t.eos_ids(&m.config.eos_token_ids).first().copied();
    Dataset::build(&rows(), t, eos, s.max_seq_len, s.seed, s.validation_percent).unwrap()
}

#[test]
fn training_lowers_validation_loss_and_resume_gives_the_same_bytes() {
    let (m, t) = tiny();
    let s = spec();
    let d = dataset(&m, &t, &s);
    assert!(!d.validation.is_empty() && d.train.len() > d.validation.len());
    let no = AtomicBool::new(false);
    let a = tempfile::tempdir().unwrap();
    let out = job::run(&s, &m, &t, &d, a.path(), &no, &mut |_| {}).unwrap().unwrap();
    let v = &out.metrics.validation;
    assert!(
        v.loss < out.metrics.base_validation_loss - 0.3,
        "validation loss {} is not well below the base model's {}",
        v.loss,
        out.metrics.base_validation_loss
    );
    assert!(v.perplexity.is_finite() && v.exact_match.is_some() && v.rouge_l.is_some());
    assert_eq!(out.checkpoints.iter().map(|c| c.step).collect::<Vec<_>>(), vec![8, 16, 24]);
    assert!(out.checkpoints.iter().all(|c| c.learning_rate > 0.0 || c.step == 24));

    // Interrupt a second run at step 11 (after the resume checkpoint of step 10), then resume.
    let b = tempfile::tempdir().unwrap();
    let stop = AtomicBool::new(false);
    let r = job::run(&s, &m, &t, &d, b.path(), &stop, &mut |p| {
        if p.phase == "training" && p.step == 11 {
            stop.store(true, Ordering::SeqCst);
        }
    })
    .unwrap();
    assert!(r.is_none(), "the run stopped");
    let again = AtomicBool::new(false);
    let out2 = job::run(&s, &m, &t, &d, b.path(), &again, &mut |_| {}).unwrap().unwrap();
    let bytes = |dir: &std::path::Path, f: &str| std::fs::read(dir.join(f)).unwrap();
    assert_eq!(
        bytes(a.path(), "adapter/adapter_model.safetensors"),
        bytes(b.path(), "adapter/adapter_model.safetensors"),
        "a resumed job ends with the same adapter bytes"
    );
    assert_eq!(out.adapter_hash, out2.adapter_hash);
    // Sketches: deterministic, one vector per checkpoint per training row.
    let (s1, s2) = (bytes(a.path(), "sketch.bin"), bytes(b.path(), "sketch.bin"));
    assert_eq!(s1, s2, "gradient sketches are deterministic");
    let sk = Sketches::parse(&s1).unwrap();
    assert_eq!(sk.rows.len(), d.train.len());
    assert_eq!(sk.k, 32);
    assert_eq!(sk.rows[0].2.len(), 3);
    assert!(sk.rows[0].2[0].iter().any(|x| *x != 0.0));
}

#[test]
fn refusals() {
    let (m, t) = tiny();
    let d = dataset(&m, &t, &spec());
    let no = AtomicBool::new(false);
    let dir = tempfile::tempdir().unwrap();
    let run = |s: JobSpec| job::run(&s, &m, &t, &d, dir.path(), &no, &mut |_| {}).unwrap_err().to_string();
    let mut s = spec();
    s.rank = 0;
    assert!(run(s).contains("rank must be at least 1"));
    let mut s = spec();
    s.rank = 65;
    assert!(run(s).contains("larger than"));
    let mut s = spec();
    s.max_seq_len = 10_000;
    assert!(run(s).contains("beyond the base model's context"));
    let mut s = spec();
    s.targets = vec!["wq".into()];
    assert!(run(s).contains("unknown LoRA target"));
    let mut s = spec();
    s.datanets.clear();
    assert!(run(s).contains("at least one Datanet version"));
    // No usable rows.
    let eos = Some(2);
    let e = Dataset::build(&[], &t, eos, 64, 0, 10).unwrap_err().to_string();
    assert!(e.contains("no training rows"));
}
