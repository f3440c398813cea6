//! The held tier: adapters as the cache holds them (int8), in files on local
//! disk, one per adapter hash. An adapter's first load from its source (the
//! PEFT file in the blob store: read, hash every f32 tensor, quantize) writes
//! its held form here; later cold loads of it (after an eviction, or after a
//! restart) read a quarter of the bytes and skip the hashing and quantizing.
//!
//! A cache of derived data, never the truth: a file is checked at every read
//! (its blake3 checksum, the adapter hash it claims against the one asked
//! for, its shapes against the base model) and anything wrong is removed and
//! loaded from the source again. Files are written to a private temporary
//! name and renamed, so a reader never sees half a file; they are not fsynced
//! (a file damaged by a crash fails its checksum). Only adapters held as int8
//! have a held form: the others load from their source as before.
//!
//! The node also writes the held form of every live model's adapter in the
//! background (`node::BlobAdapters::warm_tier`), so a first request reads it
//! too, and removes those of models no longer live ([`HeldTier::retain`]).
//! Bounded by the live models on the node's base: one file per adapter, a
//! quarter of its PEFT blob, under the node's data directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ml::{AdapterDtype, LoraAdapter, ModelConfig};
use primitives::B256;

use crate::metrics::Metrics;

/// A held tier in one directory, for one base model.
pub struct HeldTier {
    dir: PathBuf,
    model: ModelConfig,
    seq: AtomicU64,
    /// Counts loads the tier served (`held_tier_loads`).
    metrics: Option<Arc<Metrics>>,
}

/// Where a load was served from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    /// The held tier's file.
    Tier,
    /// The source (the held form then written, for int8).
    Source,
}

const TMP: &str = ".tmp.";

impl HeldTier {
    /// The tier in `dir` (created if missing), for adapters of `model`; files
    /// left by writes a crash interrupted are removed.
    pub fn open(dir: &Path, model: ModelConfig) -> std::io::Result<HeldTier> {
        std::fs::create_dir_all(dir)?;
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            if e.file_name().to_string_lossy().contains(TMP) {
                let _ = std::fs::remove_file(e.path());
            }
        }
        Ok(HeldTier { dir: dir.to_path_buf(), model, seq: AtomicU64::new(0), metrics: None })
    }

    /// Count the loads this tier serves in `metrics` (`held_tier_loads`).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> HeldTier {
        self.metrics = Some(metrics);
        self
    }

    /// The file of adapter `hash`'s held form.
    pub fn path(&self, hash: &B256) -> PathBuf {
        self.dir.join(format!("{}.i8", hex(hash)))
    }

    /// Whether the tier has a file for adapter `hash` (checked only when read).
    pub fn has(&self, hash: &B256) -> bool {
        self.path(hash).exists()
    }

    /// Remove the held forms of adapters not in `keep` (those of models no
    /// longer live): the tier holds only what can still be served. Returns
    /// how many files were removed.
    pub fn retain(&self, keep: &std::collections::HashSet<B256>) -> usize {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return 0 };
        let mut removed = 0;
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(hash) = name.strip_suffix(".i8").and_then(|h| h.parse::<B256>().ok()) else { continue };
            if !keep.contains(&hash) && std::fs::remove_file(e.path()).is_ok() {
                removed += 1;
            }
        }
        removed
    }

    /// Adapter `hash` from its held form, when the tier has a sound one. A
    /// file that fails its checks is removed (and logged).
    pub fn get(&self, hash: &B256) -> Option<LoraAdapter> {
        let path = self.path(hash);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!("held adapter {}: {e}; loading from its source", path.display());
                return None;
            }
        };
        match LoraAdapter::from_held_file(&bytes, &self.model, hash) {
            Ok(a) => Some(a),
            Err(e) => {
                tracing::warn!("{}: {e}; removed, loading from its source", path.display());
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Write `adapter`'s held form (int8 adapters; others are skipped). Best
    /// effort: a failure is logged, and the next cold load reads the source.
    pub fn put(&self, adapter: &LoraAdapter) {
        if let Err(e) = self.try_put(adapter) {
            tracing::warn!("held form of adapter {} not written: {e}", adapter.hash);
        }
    }

    fn try_put(&self, adapter: &LoraAdapter) -> Result<(), String> {
        if adapter.layers.iter().flat_map(|m| m.values()).any(|p| p.scales.is_none()) {
            return Ok(());
        }
        let bytes = adapter.to_held_file().map_err(|e| e.to_string())?;
        let path = self.path(&adapter.hash);
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let tmp = self.dir.join(format!("{}.i8{TMP}{}.{n}", hex(&adapter.hash), std::process::id()));
        std::fs::write(&tmp, &bytes).and_then(|_| std::fs::rename(&tmp, &path)).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            format!("{}: {e}", path.display())
        })
    }

    /// Adapter `hash` held as `dtype`: from the tier when it holds it (int8
    /// only), else `load()` from the source, whose held form is then written.
    pub fn load_as(
        &self,
        hash: &B256,
        dtype: AdapterDtype,
        load: impl FnOnce() -> Result<LoraAdapter, String>,
    ) -> Result<(LoraAdapter, Served), String> {
        if dtype != AdapterDtype::I8 {
            return load().map(|a| (a, Served::Source));
        }
        if let Some(a) = self.get(hash) {
            if let Some(m) = &self.metrics {
                m.held_tier_loads.fetch_add(1, Ordering::Relaxed);
            }
            return Ok((a, Served::Tier));
        }
        let a = load()?;
        if a.hash == *hash {
            self.put(&a);
        }
        Ok((a, Served::Source))
    }
}

fn hex(h: &B256) -> String {
    format!("{h:x}").trim_start_matches("0x").to_string()
}
