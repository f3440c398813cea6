//! `model bootstrap`: the recipe of the project's committed base model
//! (`models/base`): it trains a tokenizer and a small Llama from the bundled
//! public-domain corpus (see `ml::bootstrap`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use ml::bootstrap::{BootstrapConfig, Progress};
use serde_json::json;

use crate::output::Out;

#[derive(clap::Args, Debug)]
pub struct BootstrapArgs {
    /// The output folder.
    #[arg(long, default_value = "models/base")]
    pub out: PathBuf,
    /// The gzip-compressed corpus [default: data/corpus/corpus.txt.gz of the repository].
    #[arg(long)]
    pub corpus: Option<PathBuf>,
    /// Optimiser steps (of 16 sequences × 128 tokens).
    #[arg(long, default_value_t = ml::bootstrap::DEFAULT_STEPS)]
    pub steps: u64,
    /// Seed of the initial weights and of the training batches.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// `data/corpus/corpus.txt.gz` under the current directory, else under the repository this
/// binary was built from.
fn default_corpus() -> PathBuf {
    let rel = Path::new("data/corpus/corpus.txt.gz");
    if rel.is_file() {
        return rel.to_path_buf();
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/corpus/corpus.txt.gz")
}

fn hms(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m{:02}s", s / 3600, s / 60 % 60, s % 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// A one-line progress bar on stderr, redrawn with a carriage return.
struct Bar {
    started: Instant,
    last_draw: Option<Instant>,
    on_line: bool,
    last_val: Option<f64>,
}

impl Bar {
    fn end_line(&mut self) {
        if self.on_line {
            eprintln!();
            self.on_line = false;
        }
    }

    fn show(&mut self, p: Progress) {
        match p {
            Progress::Stage(s) => {
                self.end_line();
                eprintln!("[{}] {s}", hms(self.started.elapsed().as_secs_f64()));
            }
            Progress::Eval { step, val_loss } => {
                self.last_val = Some(val_loss);
                if step == 0 {
                    self.end_line();
                    eprintln!(
                        "[{}] validation loss before training: {val_loss:.3}",
                        hms(self.started.elapsed().as_secs_f64())
                    );
                }
            }
            Progress::Step { step, steps, loss, lr, tokens_per_second, eta_seconds, .. } => {
                let now = Instant::now();
                let due = self.last_draw.is_none_or(|t| now.duration_since(t).as_millis() >= 200);
                if !due && step != steps {
                    return;
                }
                self.last_draw = Some(now);
                const WIDTH: usize = 30;
                let filled = (step as usize * WIDTH).div_ceil(steps.max(1) as usize).min(WIDTH);
                let val = self.last_val.map(|v| format!(" val {v:.3}")).unwrap_or_default();
                eprint!(
                    "\r[{}{}] {step}/{steps} loss {loss:.3}{val} lr {lr:.1e} {tokens_per_second:.0} tok/s ETA {}   ",
                    "#".repeat(filled),
                    ".".repeat(WIDTH - filled),
                    hms(eta_seconds)
                );
                let _ = std::io::stderr().flush();
                self.on_line = true;
            }
        }
    }
}

/// `model bootstrap`.
pub fn run(a: BootstrapArgs, out: Out) -> anyhow::Result<()> {
    let d = BootstrapConfig::default();
    let cfg = BootstrapConfig {
        corpus: a.corpus.unwrap_or_else(default_corpus),
        out: a.out,
        steps: a.steps,
        seed: a.seed,
        ..d
    };
    let mut bar = Bar { started: Instant::now(), last_draw: None, on_line: false, last_val: None };
    let report = ml::bootstrap::run(&cfg, &mut |p| bar.show(p))?;
    bar.end_line();
    let human = || {
        let mut s = format!(
            "wrote {}\nparameters       {}\ntrain loss       {:.3}\nvalidation loss  {:.3} (initial {:.3})\ntokens/s         {:.0}\nwall time        {}\nmodel hash       {}",
            report.out.display(),
            report.parameters,
            report.final_train_loss,
            report.final_val_loss,
            report.initial_val_loss,
            report.tokens_per_second,
            hms(report.wall_seconds),
            report.model_hash
        );
        for smp in &report.samples {
            s.push_str(&format!("\nsample           {:?} → {:?}", smp.prompt, smp.completion));
        }
        s
    };
    out.print(human, json!({ "config": cfg, "report": report }));
    Ok(())
}
