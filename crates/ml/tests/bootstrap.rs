//! The base-model recipe (`ml::bootstrap`) on a tiny configuration: it trains,
//! the loss falls, the folder it writes loads and generates, and two runs of
//! the same configuration give the same model hash.

use std::path::PathBuf;

use ml::bootstrap::{BootstrapConfig, Progress, run};
use ml::{ChatMessage, Model, ModelFiles, SamplingParams, generate};

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/corpus/corpus.txt.gz")
}

fn tiny(out: PathBuf) -> BootstrapConfig {
    BootstrapConfig {
        corpus: corpus(),
        out,
        corpus_limit: Some(200_000),
        vocab_size: 300,
        hidden_size: 32,
        intermediate_size: 64,
        num_hidden_layers: 1,
        num_attention_heads: 2,
        num_key_value_heads: 1,
        max_position_embeddings: 64,
        steps: 20,
        seed: 7,
        batch_size: 8,
        seq_len: 32,
        learning_rate: 1e-2,
        warmup_steps: 4,
        eval_every: 10,
        eval_windows: 32,
        ..BootstrapConfig::default()
    }
}

#[test]
fn tiny_bootstrap_trains_loads_generates_and_is_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny(dir.path().join("a"));
    let mut steps = Vec::new();
    let mut stages = 0;
    let report = run(&cfg, &mut |p| match p {
        Progress::Step { step, loss, tokens_per_second, .. } => {
            assert!(tokens_per_second > 0.0);
            steps.push((step, loss));
        }
        Progress::Stage(_) => stages += 1,
        Progress::Eval { .. } => {}
    })
    .unwrap();
    assert_eq!(steps.len(), 20);
    assert!(stages >= 4);
    assert_eq!(steps.last().unwrap().0, 20);

    // The loss falls: validation from about ln(300) = 5.7, and the training batches too.
    let ln_v = (300f64).ln();
    assert!((report.initial_val_loss - ln_v).abs() < 0.3, "initial {}", report.initial_val_loss);
    assert!(report.final_val_loss < report.initial_val_loss - 0.5, "{report:?}");
    let first: f64 = steps[..3].iter().map(|s| s.1).sum::<f64>() / 3.0;
    let last: f64 = steps[17..].iter().map(|s| s.1).sum::<f64>() / 3.0;
    assert!(last < first - 0.5, "training loss {first} -> {last}");
    assert!(report.final_train_loss.is_finite() && report.final_val_loss_f32.is_finite());
    assert_eq!(report.history.len(), 2);
    assert_eq!(report.parameters, cfg.model_config().parameter_count());

    // The folder loads, hashes as reported, and generates.
    for f in
        ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "README.md", "bootstrap.json"]
    {
        assert!(cfg.out.join(f).is_file(), "{f} missing");
    }
    let files = ModelFiles::open(&cfg.out).unwrap();
    assert_eq!(files.hash.to_string(), report.model_hash);
    assert!(files.tensors.values().all(|t| t.dtype == "BF16"));
    assert_eq!(files.config, cfg.model_config());
    let tok = &files.tokenizer;
    assert_eq!(tok.token_id("<|endoftext|>"), Some(0));
    assert_eq!(tok.eos_token.as_deref(), Some("<|im_end|>"));
    assert_eq!(tok.pad_token.as_deref(), Some("<pad>"));
    let text = "The hacker's \u{201c}kludge\u{201d} \u{2014} and God said, Let there be light.\n\n";
    assert_eq!(tok.decode(&tok.encode(text, false).unwrap()).unwrap(), text, "byte-exact round trip");
    let chat = tok.apply_chat_template(&[ChatMessage { role: "user".into(), content: "hi".into() }], true).unwrap();
    assert_eq!(chat, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
    let model = Model::from_files(&files).unwrap();
    let prompt = tok.encode("And God said", false).unwrap();
    let g = generate(&model, tok, None, &prompt, &SamplingParams { max_tokens: 8, ..Default::default() }, |_| true)
        .unwrap();
    assert!(!g.tokens.is_empty());
    let readme = std::fs::read_to_string(cfg.out.join("README.md")).unwrap();
    assert!(readme.contains(&report.model_hash) && readme.contains(&report.corpus_sha256));
    let bj: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cfg.out.join("bootstrap.json")).unwrap()).unwrap();
    assert_eq!(bj["report"]["model_hash"], serde_json::json!(report.model_hash));
    assert_eq!(bj["config"]["steps"], serde_json::json!(20));

    // The same configuration again: the same tokenizer and weights, so the same hash.
    let cfg_b = BootstrapConfig { out: dir.path().join("b"), ..cfg.clone() };
    let again = run(&cfg_b, &mut |_| {}).unwrap();
    assert_eq!(again.model_hash, report.model_hash);
    assert_eq!(
        std::fs::read(cfg.out.join("model.safetensors")).unwrap(),
        std::fs::read(cfg_b.out.join("model.safetensors")).unwrap()
    );
    assert_eq!(
        std::fs::read(cfg.out.join("tokenizer.json")).unwrap(),
        std::fs::read(cfg_b.out.join("tokenizer.json")).unwrap()
    );
}

#[test]
fn bad_configurations_are_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = tiny(dir.path().join("x"));
    cfg.seq_len = 65;
    assert!(run(&cfg, &mut |_| {}).unwrap_err().to_string().contains("seq_len"));
    let mut cfg = tiny(dir.path().join("x"));
    cfg.corpus = dir.path().join("missing.txt.gz");
    assert!(run(&cfg, &mut |_| {}).unwrap_err().to_string().contains("missing.txt.gz"));
    assert!(!dir.path().join("x").exists());
}

/// The committed base model (`models/base`, made by `openledger model bootstrap`) loads, hashes
/// as its `bootstrap.json` records, has the recipe's shape, and generates.
#[test]
fn committed_base_model_loads_and_matches_its_record() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/base");
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("bootstrap.json")).unwrap()).unwrap();
    let files = ModelFiles::open(&dir).unwrap();
    assert_eq!(serde_json::json!(files.hash.to_string()), record["report"]["model_hash"]);
    assert_eq!(files.config, BootstrapConfig::default().model_config());
    assert!(files.tensors.values().all(|t| t.dtype == "BF16"));
    let val = record["report"]["final_val_loss"].as_f64().unwrap();
    assert!(val < 6.0, "validation loss {val}");
    let model = Model::from_files(&files).unwrap();
    let tok = &files.tokenizer;
    let prompt = tok.encode("And God said", false).unwrap();
    let g = generate(&model, tok, None, &prompt, &SamplingParams { max_tokens: 8, ..Default::default() }, |_| true)
        .unwrap();
    assert!(!g.tokens.is_empty() && !g.text.is_empty());
}
