//! `snapshot export` and `snapshot import`: the state after one block, written
//! from a stopped node's data directory, and a new data directory made from it,
//! so a node joins a long chain without re-executing it from genesis.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::json;

use crate::output::Out;

const GENESIS_FILE: &str = "genesis.json";

#[derive(clap::Subcommand, Debug)]
pub enum SnapshotCmd {
    /// Write the state after a block to a file. The node must be stopped (the
    /// store is opened directly, and a running node holds it exclusively).
    Export {
        /// Data directory of the (stopped) node.
        #[arg(long)]
        data_dir: PathBuf,
        /// The block whose state to export: the head, or an older one within the
        /// node's retained history. Default: the head.
        #[arg(long)]
        height: Option<u64>,
        /// The snapshot file to write (refused if it exists).
        #[arg(long)]
        out: PathBuf,
        /// The chain's genesis file. Default: <data-dir>/genesis.json.
        #[arg(long)]
        genesis: Option<PathBuf>,
    },
    /// Make a new data directory's chain from a snapshot; `openledger start`
    /// (after `init`) or `up` then opens it at the snapshot's block.
    Import {
        /// Data directory without a chain (it may hold the files `init` writes).
        #[arg(long)]
        data_dir: PathBuf,
        /// The snapshot file.
        #[arg(long)]
        file: PathBuf,
        /// The chain's genesis file (copied to <data-dir>/genesis.json when that
        /// is missing). Default: <data-dir>/genesis.json.
        #[arg(long)]
        genesis: Option<PathBuf>,
    },
}

pub fn run(c: SnapshotCmd, out: Out) -> anyhow::Result<()> {
    match c {
        SnapshotCmd::Export { data_dir, height, out: file, genesis } => export(&data_dir, height, &file, genesis, out),
        SnapshotCmd::Import { data_dir, file, genesis } => import(&data_dir, &file, genesis, out),
    }
}

fn genesis_path(data_dir: &Path, given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let p = given.unwrap_or_else(|| data_dir.join(GENESIS_FILE));
    if !p.exists() {
        bail!(
            "no genesis file at {}: pass --genesis with the chain's genesis.json (a node keeps it in its data directory)",
            p.display()
        );
    }
    Ok(p)
}

fn export(data_dir: &Path, height: Option<u64>, file: &Path, genesis: Option<PathBuf>, out: Out) -> anyhow::Result<()> {
    let genesis = node::load_genesis(&genesis_path(data_dir, genesis)?)?;
    if file.exists() {
        bail!("{} already exists; refusing to overwrite", file.display());
    }
    // Written beside the target and renamed at the end, so a failed export
    // never leaves a file under the name asked for.
    let tmp = file.with_extension("partial");
    let f = std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let mut w = std::io::BufWriter::new(f);
    let r = chain::export_snapshot(data_dir, &genesis, height, &mut w)
        .map_err(anyhow::Error::from)
        .and_then(|s| {
            w.flush()?;
            w.get_ref().sync_all()?;
            Ok(s)
        })
        .with_context(|| format!("exporting a snapshot from {} (is the node stopped?)", data_dir.display()));
    drop(w);
    let s = match r {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    std::fs::rename(&tmp, file).with_context(|| format!("renaming {} to {}", tmp.display(), file.display()))?;
    let hash = s.info.header.hash_slow();
    out.print(
        || {
            format!(
                "wrote {} : state after block {} ({} entries, {} bytes)\nblock hash {hash}\nstate root {}",
                file.display(),
                s.info.height,
                s.entries,
                s.bytes,
                s.info.header.state_root
            )
        },
        json!({
            "file": file.display().to_string(),
            "height": s.info.height,
            "blockHash": hash,
            "stateRoot": s.info.header.state_root,
            "chainId": s.info.chain_id,
            "entries": s.entries,
            "bytes": s.bytes,
        }),
    );
    Ok(())
}

fn import(data_dir: &Path, file: &Path, genesis: Option<PathBuf>, out: Out) -> anyhow::Result<()> {
    let given = genesis.is_some();
    let gpath = genesis_path(data_dir, genesis)?;
    let genesis = node::load_genesis(&gpath)?;
    let f = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let s = chain::import_snapshot(data_dir, &genesis, f)
        .with_context(|| format!("importing {} into {}", file.display(), data_dir.display()))?;
    let kept = data_dir.join(GENESIS_FILE);
    if given && !kept.exists() {
        std::fs::copy(&gpath, &kept).with_context(|| format!("copying {} to {}", gpath.display(), kept.display()))?;
    }
    let hash = s.info.header.hash_slow();
    out.print(
        || {
            format!(
                "imported the state after block {} into {} ({} entries, checked against state root {})\nblock hash {hash}: compare it with a node you trust\nstart it with: openledger start --data-dir {} (after `openledger init --data-dir {} --genesis {}` if it has no openledger.toml)",
                s.info.height,
                data_dir.display(),
                s.entries,
                s.info.header.state_root,
                data_dir.display(),
                data_dir.display(),
                kept.display()
            )
        },
        json!({
            "dataDir": data_dir.display().to_string(),
            "height": s.info.height,
            "blockHash": hash,
            "stateRoot": s.info.header.state_root,
            "chainId": s.info.chain_id,
            "entries": s.entries,
        }),
    );
    Ok(())
}
