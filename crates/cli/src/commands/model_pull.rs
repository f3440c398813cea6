//! `model pull ORG/NAME`: a model from the Hugging Face hub into its standard
//! cache (`$HF_HOME/hub`), for `--base-model hf:ORG/NAME` (see the `hub` crate).
//! The only command that downloads a model.

use std::io::{IsTerminal, Write};
use std::time::Instant;

use hub::{Hub, Progress, PullReport, Selection};
use serde_json::json;

use crate::output::Out;

#[derive(clap::Args, Debug)]
pub struct PullArgs {
    /// The model repository, ORG/NAME (e.g. HuggingFaceTB/SmolLM2-135M-Instruct).
    pub repo: String,
    /// A branch, tag or commit of the repository.
    #[arg(long, default_value = "main")]
    pub revision: String,
    /// Pull this one file (e.g. a .gguf of a repository of GGUF files) instead of
    /// the Hugging Face folder (config.json, tokenizer files, *.safetensors).
    #[arg(long)]
    pub file: Option<String>,
}

/// "12.3 MB".
fn size(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.2} GB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} kB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

/// A progress bar per file on stderr when it is a terminal; one line per
/// finished file otherwise.
fn progress_bar() -> impl FnMut(Progress) {
    let tty = std::io::stderr().is_terminal();
    let (mut file, mut started, mut start_bytes, mut last_pct) = (String::new(), Instant::now(), 0u64, u64::MAX);
    move |p| match p {
        Progress::Cached { file, size: n } => eprintln!("  {file}: in the cache ({})", size(n)),
        Progress::Bytes { file: f, done, total } => {
            if f != file {
                (file, started, start_bytes, last_pct) = (f.to_string(), Instant::now(), done, u64::MAX);
            }
            let pct = (done * 100).checked_div(total).unwrap_or(100);
            if tty && pct != last_pct {
                last_pct = pct;
                let rate = (done - start_bytes) as f64 / started.elapsed().as_secs_f64().max(1e-3);
                let filled = (pct as usize * 30 / 100).min(30);
                eprint!(
                    "\r  {f} [{}{}] {pct:>3}% {} / {}  {}/s   ",
                    "#".repeat(filled),
                    "-".repeat(30 - filled),
                    size(done),
                    size(total),
                    size(rate as u64)
                );
                let _ = std::io::stderr().flush();
            }
            if done >= total {
                if tty {
                    eprintln!();
                } else {
                    eprintln!("  {f}: {}", size(total));
                }
            }
        }
    }
}

pub fn run(a: PullArgs, out: Out) -> anyhow::Result<()> {
    let hub = Hub::from_env()?;
    let what = match a.file {
        Some(f) => Selection::File(f),
        None => Selection::ModelFolder,
    };
    if !out.json {
        eprintln!("pulling {} ({}) from {} into {}", a.repo, a.revision, hub.endpoint(), hub.cache().root().display());
    }
    let mut bar = progress_bar();
    let mut quiet = |_: Progress| {};
    let r: PullReport = hub.pull(&a.repo, &a.revision, &what, if out.json { &mut quiet } else { &mut bar })?;
    let fetched: u64 = r.files.iter().map(|f| f.downloaded).sum();
    let spec = match &what {
        Selection::ModelFolder => format!("hf:{}", r.repo),
        Selection::File(f) => format!("hf:{}/{f}", r.repo),
    };
    out.print(
        || {
            let what = if fetched == 0 {
                "already in the cache: nothing downloaded".to_string()
            } else {
                format!("{} downloaded", size(fetched))
            };
            format!(
                "{} at commit {}: {} files, {what}\n  {}\nUse it with --base-model {spec} (or base_model = \"{spec}\" in openledger.toml).",
                r.repo,
                r.commit,
                r.files.len(),
                r.path.display()
            )
        },
        json!({
            "repo": r.repo,
            "revision": r.revision,
            "commit": r.commit,
            "path": r.path,
            "spec": spec,
            "downloadedBytes": fetched,
            "files": r.files.iter().map(|f| json!({
                "name": f.name,
                "size": f.size,
                "etag": f.etag,
                "downloaded": f.downloaded,
                "resumedFrom": f.resumed_from,
            })).collect::<Vec<_>>(),
        }),
    );
    Ok(())
}
