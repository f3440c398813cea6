//! Dump the logits of a base model plus a PEFT LoRA adapter, computed by this
//! crate, for `scripts/interop/peft_check.py` to compare with Hugging Face PEFT.
//! Run by hand (PyTorch is not a dependency, nor part of CI):
//!
//! ```sh
//! # train an adapter with our Trainer (a few steps on seeded random tokens), save it
//! # in the PEFT layout, reload it, and dump the logits of a few sequences
//! cargo run -p ml --release --example dump_logits -- \
//!     --base crates/ml/fixtures/tiny-llama --adapter /tmp/our-adapter \
//!     --out /tmp/our-logits.json --train-steps 20
//! bench/.venv/bin/python scripts/interop/peft_check.py \
//!     --base crates/ml/fixtures/tiny-llama --adapter /tmp/our-adapter --logits /tmp/our-logits.json
//! ```
//!
//! Options:
//! - `--base DIR`: a Hugging Face folder (`ml::ModelFiles::open`);
//! - `--adapter DIR`: a PEFT adapter folder, read with `ml::LoraAdapter::load_peft`;
//!   with `--train-steps N` it is first written there by our trainer;
//! - `--out FILE`: `{"tokens": [[id, ...], ...], "logits": [[[vocab floats] per position], ...]}`;
//! - `--tokens 1,2,3` (repeatable): the sequences; default three seeded ones (1, 9 and 40 tokens);
//! - `--train-steps N`, `--lr X` (1e-2), `--seed S` (7): the training run (r = 8, alpha = 16, all
//!   seven linear layers, batch 4 × 32).
//!
//! Logits of every position come from the serving path, `Model::forward` over the
//! paged KV cache; the training path (`forward_train`) is checked against it.

use std::path::PathBuf;

use candle_core::{Device, Tensor};
use ml::{
    BaseGrad, KvCache, Logits, LoraAdapter, LoraConfig, Model, ModelFiles, SeqStep, Step, Target, TokenBatch,
    TrainConfig, Trainer,
};

struct Args {
    base: PathBuf,
    adapter: PathBuf,
    out: PathBuf,
    tokens: Vec<Vec<u32>>,
    train_steps: u64,
    lr: f64,
    seed: u64,
}

fn usage() -> ! {
    eprintln!(
        "usage: dump_logits --base DIR --adapter DIR --out FILE [--tokens 1,2,3 ...] [--train-steps N] [--lr X] [--seed S]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut base = None;
    let mut adapter = None;
    let mut out = None;
    let mut tokens = Vec::new();
    let mut train_steps = 0;
    let mut lr = 1e-2;
    let mut seed = 7;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--base" => base = Some(PathBuf::from(val())),
            "--adapter" => adapter = Some(PathBuf::from(val())),
            "--out" => out = Some(PathBuf::from(val())),
            "--tokens" => {
                let v = val();
                let seq: Result<Vec<u32>, _> =
                    v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::parse).collect();
                match seq {
                    Ok(s) if !s.is_empty() => tokens.push(s),
                    _ => {
                        eprintln!("dump_logits: --tokens {v:?} is not a list of token ids");
                        usage()
                    }
                }
            }
            "--train-steps" => train_steps = val().parse().unwrap_or_else(|_| usage()),
            "--lr" => lr = val().parse().unwrap_or_else(|_| usage()),
            "--seed" => seed = val().parse().unwrap_or_else(|_| usage()),
            "-h" | "--help" => usage(),
            other => {
                eprintln!("dump_logits: unknown argument {other}");
                usage()
            }
        }
    }
    let (Some(base), Some(adapter), Some(out)) = (base, adapter, out) else { usage() };
    Args { base, adapter, out, tokens, train_steps, lr, seed }
}

fn main() {
    if let Err(e) = run(parse_args()) {
        eprintln!("dump_logits: {e}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let files = ModelFiles::open(&args.base)?;
    let model = Model::from_files(&files)?;
    let vocab = model.config.vocab_size as u64;
    let mut rng = ml::rng::Rng::new(args.seed);

    if args.train_steps > 0 {
        let lora = LoraConfig { r: 8, lora_alpha: 16.0, lora_dropout: 0.0, target_modules: Target::ALL.to_vec() };
        let mut cfg = TrainConfig::new(lora, args.lr, args.train_steps);
        cfg.seed = args.seed;
        let mut tr = Trainer::new(&model, cfg)?;
        tr.base_grad = BaseGrad::Frozen;
        let (rows, len) = (4, 32);
        for _ in 0..args.train_steps {
            let tokens: Vec<u32> = (0..rows * len).map(|_| rng.below(vocab) as u32).collect();
            let b = TokenBatch { tokens, mask: vec![1.0; rows * len], rows, len };
            let r = tr.step(&[b])?;
            eprintln!("train step {:>3}: loss {:.5}, grad norm {:.4}, lr {:.2e}", r.step, r.loss, r.grad_norm, r.lr);
        }
        let a = tr.adapter()?;
        a.save_peft(&args.adapter, &args.base.display().to_string())?;
        let back = LoraAdapter::load_peft(&args.adapter, &model.config)?;
        if back.hash != a.hash {
            return Err("the adapter read back from disk differs from the one trained".into());
        }
        let b_norm: f32 = a
            .layers
            .iter()
            .flat_map(|m| m.values())
            .map(|p| p.b.sqr().and_then(|t| t.sum_all()).and_then(|t| t.to_scalar::<f32>()).unwrap_or(0.0))
            .sum::<f32>()
            .sqrt();
        eprintln!(
            "saved our adapter ({} params, |B| = {b_norm:.4}, hash {}) to {}",
            a.parameter_count(),
            a.hash,
            args.adapter.display()
        );
    }

    let adapter = LoraAdapter::load_peft(&args.adapter, &model.config)?;
    model.check_adapter(&adapter)?;
    let seqs: Vec<Vec<u32>> = if args.tokens.is_empty() {
        [1usize, 9, 40].iter().map(|&n| (0..n).map(|_| rng.below(vocab) as u32).collect()).collect()
    } else {
        args.tokens.clone()
    };
    let vars = adapter.to_vars()?;
    let mut all = Vec::with_capacity(seqs.len());
    let mut worst_paths = 0.0f32;
    for (i, toks) in seqs.iter().enumerate() {
        if let Some(&t) = toks.iter().find(|&&t| t as u64 >= vocab) {
            return Err(format!("token {t} is outside the vocabulary ({vocab})").into());
        }
        let mut cache = KvCache::for_tokens(&model.config, toks.len(), 4);
        let step = Step { seqs: vec![SeqStep { seq: i as u64, tokens: toks, adapter: Some(0), logits: Logits::All }] };
        let serve = model.forward(&step, &mut cache, &[&adapter])?.rows(0)?;
        let t = Tensor::from_slice(toks, (1, toks.len()), &Device::Cpu)?;
        let train = model.forward_train(&t, Some(&vars), BaseGrad::Frozen, None)?.squeeze(0)?.to_vec2::<f32>()?;
        let d = serve.iter().flatten().zip(train.iter().flatten()).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        worst_paths = worst_paths.max(d);
        all.push(serve);
    }
    eprintln!("serving vs training path: max abs diff {worst_paths:.3e} over {} sequences", seqs.len());
    let doc = serde_json::json!({
        "base": args.base.display().to_string(),
        "adapter": args.adapter.display().to_string(),
        "adapter_hash": adapter.hash.to_string(),
        "tokens": seqs,
        "logits": all,
    });
    std::fs::write(&args.out, serde_json::to_string(&doc)?)?;
    eprintln!("wrote the logits of {} sequences to {}", seqs.len(), args.out.display());
    Ok(())
}
