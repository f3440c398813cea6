//! The adapter cache: adapters loaded just in time from their source (the
//! blob store) into host memory bounded in bytes, not in count; least recently
//! used first out, except adapters pinned by an operator or in use by a
//! running request; prefetch loads in the background, on one worker thread
//! the cache owns: [`AdapterCache::stop`] (or dropping the cache) joins it.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use ml::LoraAdapter;
use serde::Serialize;

use crate::metrics::Metrics;

/// Where adapters come from: a model id to its adapter.
pub trait AdapterSource: Send + Sync + 'static {
    fn load(&self, model: u64) -> Result<LoraAdapter, String>;

    /// The adapter held as `dtype`, as the cache keeps it. Sources that read
    /// PEFT files override this with `LoraAdapter::from_parts_as`, which
    /// quantizes an f32 file straight from its bytes (no f32 tensors built).
    fn load_as(&self, model: u64, dtype: ml::AdapterDtype) -> Result<LoraAdapter, String> {
        let a = self.load(model)?;
        match dtype {
            ml::AdapterDtype::F32 => Ok(a),
            d => a.with_weights_dtype(d).map_err(|e| e.to_string()),
        }
    }
}

struct Entry {
    adapter: Arc<LoraAdapter>,
    bytes: usize,
    last_used: u64,
    pinned: bool,
}

struct Inner {
    entries: HashMap<u64, Entry>,
    /// Models being loaded right now (others wait instead of loading twice).
    loading: HashMap<u64, ()>,
    bytes: usize,
    tick: u64,
}

/// A model's residency, as `/v1/adapters` shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Residency {
    pub model: String,
    pub bytes: usize,
    pub rank: usize,
    pub pinned: bool,
    pub in_use: bool,
    pub adapter_hash: String,
}

/// Prefetches waiting at most; more are refused ([`CacheError::PrefetchBusy`]).
pub const PREFETCH_QUEUE: usize = 64;

/// The byte-bounded adapter cache. It owns its prefetch worker: stopping or
/// dropping the cache joins it.
pub struct AdapterCache {
    shared: Arc<Shared>,
    prefetcher: Mutex<Option<JoinHandle<()>>>,
}

/// What the cache's handle and its prefetch worker share.
struct Shared {
    budget: usize,
    /// How loaded adapters are held.
    dtype: ml::AdapterDtype,
    source: Arc<dyn AdapterSource>,
    inner: Mutex<Inner>,
    loaded: Condvar,
    metrics: Arc<Metrics>,
    prefetch: Mutex<Prefetches>,
    /// Wakes the prefetch worker (a model queued, or stop).
    prefetch_wake: Condvar,
}

#[derive(Default)]
struct Prefetches {
    queue: VecDeque<u64>,
    stopped: bool,
}

/// Why an adapter could not be made resident.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CacheError {
    #[error("adapter of m{0} could not be loaded: {1}")]
    Load(u64, String),
    #[error("the adapter of m{model} needs {bytes} bytes; the cache holds {budget}")]
    TooLarge { model: u64, bytes: usize, budget: usize },
    #[error("the adapter cache is full of adapters in use or pinned; retry later")]
    Full,
    #[error("{PREFETCH_QUEUE} prefetches are already waiting; retry later")]
    PrefetchBusy,
    #[error("the adapter cache has stopped prefetching")]
    Stopped,
}

impl AdapterCache {
    /// A cache of `budget_bytes`, with its prefetch worker started; adapters
    /// held as loaded (f32).
    pub fn new(budget_bytes: usize, source: Arc<dyn AdapterSource>, metrics: Arc<Metrics>) -> Arc<AdapterCache> {
        Self::with_dtype(budget_bytes, source, metrics, ml::AdapterDtype::F32)
    }

    /// [`AdapterCache::new`] holding every loaded adapter's weights as `dtype`
    /// (bf16: half the bytes per adapter, in the budget and per decode step).
    pub fn with_dtype(
        budget_bytes: usize,
        source: Arc<dyn AdapterSource>,
        metrics: Arc<Metrics>,
        dtype: ml::AdapterDtype,
    ) -> Arc<AdapterCache> {
        let shared = Arc::new(Shared {
            budget: budget_bytes,
            dtype,
            source,
            inner: Mutex::new(Inner { entries: HashMap::new(), loading: HashMap::new(), bytes: 0, tick: 0 }),
            loaded: Condvar::new(),
            metrics,
            prefetch: Mutex::new(Prefetches::default()),
            prefetch_wake: Condvar::new(),
        });
        let worker = shared.clone();
        let prefetcher = std::thread::Builder::new()
            .name("adapter-prefetch".into())
            .spawn(move || worker.prefetch_loop())
            .map_err(|e| tracing::error!("no adapter prefetch thread (prefetches are refused): {e}"))
            .ok();
        if prefetcher.is_none() {
            shared.prefetch.lock().unwrap().stopped = true;
        }
        Arc::new(AdapterCache { shared, prefetcher: Mutex::new(prefetcher) })
    }

    pub fn budget(&self) -> usize {
        self.shared.budget
    }

    /// Bytes of the resident adapters (always ≤ the budget).
    pub fn resident_bytes(&self) -> usize {
        self.shared.inner.lock().unwrap().bytes
    }

    /// The adapter of `model`, loading it if needed. The returned `Arc` keeps it
    /// in use: an adapter is never evicted while a request holds it.
    pub fn get(&self, model: u64) -> Result<Arc<LoraAdapter>, CacheError> {
        self.shared.get(model)
    }

    /// Keep an adapter resident until unpinned (loading it first).
    pub fn pin(&self, model: u64) -> Result<(), CacheError> {
        let _a = self.get(model)?;
        if let Some(e) = self.shared.inner.lock().unwrap().entries.get_mut(&model) {
            e.pinned = true;
        }
        Ok(())
    }

    pub fn unpin(&self, model: u64) {
        if let Some(e) = self.shared.inner.lock().unwrap().entries.get_mut(&model) {
            e.pinned = false;
        }
    }

    /// Queue `model` to load in the background, so a later request finds it
    /// hot. Nothing is queued for a model resident or already queued; refused
    /// when [`PREFETCH_QUEUE`] prefetches wait, or after [`AdapterCache::stop`].
    pub fn prefetch(&self, model: u64) -> Result<(), CacheError> {
        let mut p = self.shared.prefetch.lock().unwrap();
        if p.stopped {
            return Err(CacheError::Stopped);
        }
        if p.queue.contains(&model) || self.is_resident(model) {
            return Ok(());
        }
        if p.queue.len() >= PREFETCH_QUEUE {
            return Err(CacheError::PrefetchBusy);
        }
        p.queue.push_back(model);
        self.shared.prefetch_wake.notify_one();
        Ok(())
    }

    /// Stop prefetching: the queued prefetches are dropped, the load in
    /// progress finishes, and the worker is joined. Later prefetches are
    /// refused ([`CacheError::Stopped`]); [`AdapterCache::get`] still loads on
    /// the caller's thread. Idempotent; also what dropping the cache does.
    pub fn stop(&self) {
        {
            let mut p = self.shared.prefetch.lock().unwrap();
            p.stopped = true;
            p.queue.clear();
            self.shared.prefetch_wake.notify_all();
        }
        let handle = self.prefetcher.lock().unwrap().take();
        if let Some(h) = handle
            && h.join().is_err()
        {
            tracing::error!("the adapter prefetch thread panicked");
        }
    }

    pub fn is_resident(&self, model: u64) -> bool {
        self.shared.inner.lock().unwrap().entries.contains_key(&model)
    }

    /// Every resident adapter, most recently used first.
    pub fn residency(&self) -> Vec<Residency> {
        let g = self.shared.inner.lock().unwrap();
        let mut v: Vec<(u64, &Entry)> = g.entries.iter().map(|(k, e)| (*k, e)).collect();
        v.sort_by_key(|(_, e)| std::cmp::Reverse(e.last_used));
        v.into_iter()
            .map(|(k, e)| Residency {
                model: format!("m{k}"),
                bytes: e.bytes,
                rank: e.adapter.config.r,
                pinned: e.pinned,
                in_use: Arc::strong_count(&e.adapter) > 1,
                adapter_hash: e.adapter.hash.to_string(),
            })
            .collect()
    }
}

impl Drop for AdapterCache {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Shared {
    /// The prefetch worker: load what is queued, one at a time, until stopped.
    fn prefetch_loop(&self) {
        loop {
            let model = {
                let mut p = self.prefetch.lock().unwrap();
                loop {
                    if p.stopped {
                        return;
                    }
                    if let Some(m) = p.queue.pop_front() {
                        break m;
                    }
                    p = self.prefetch_wake.wait(p).unwrap();
                }
            };
            if let Err(e) = self.get(model) {
                tracing::debug!("prefetch of m{model}: {e}");
            }
        }
    }

    fn get(&self, model: u64) -> Result<Arc<LoraAdapter>, CacheError> {
        let mut g = self.inner.lock().unwrap();
        loop {
            g.tick += 1;
            let tick = g.tick;
            if let Some(e) = g.entries.get_mut(&model) {
                e.last_used = tick;
                self.metrics.cache_hits.fetch_add(1, Ordering::Relaxed);
                return Ok(e.adapter.clone());
            }
            if g.loading.contains_key(&model) {
                g = self.loaded.wait(g).unwrap();
                continue;
            }
            break;
        }
        g.loading.insert(model, ());
        drop(g);
        self.metrics.cache_misses.fetch_add(1, Ordering::Relaxed);
        let t0 = Instant::now();
        let loaded = self.source.load_as(model, self.dtype);
        self.metrics.adapter_load.observe(t0.elapsed());
        let mut g = self.inner.lock().unwrap();
        g.loading.remove(&model);
        self.loaded.notify_all();
        let adapter = Arc::new(loaded.map_err(|e| CacheError::Load(model, e))?);
        let bytes = adapter.byte_size();
        if bytes > self.budget {
            return Err(CacheError::TooLarge { model, bytes, budget: self.budget });
        }
        // Evict least recently used, unpinned, unused adapters until it fits.
        while g.bytes + bytes > self.budget {
            let victim = g
                .entries
                .iter()
                .filter(|(_, e)| !e.pinned && Arc::strong_count(&e.adapter) == 1)
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| *k);
            match victim {
                Some(k) => {
                    let e = g.entries.remove(&k).expect("listed");
                    g.bytes -= e.bytes;
                    self.metrics.cache_evictions.fetch_add(1, Ordering::Relaxed);
                }
                None => return Err(CacheError::Full),
            }
        }
        g.tick += 1;
        let tick = g.tick;
        g.bytes += bytes;
        g.entries.insert(model, Entry { adapter: adapter.clone(), bytes, last_used: tick, pinned: false });
        self.metrics.cache_bytes.store(g.bytes as u64, Ordering::Relaxed);
        self.metrics.cache_adapters.store(g.entries.len() as u64, Ordering::Relaxed);
        Ok(adapter)
    }
}
