//! The engine's and the adapter cache's contracts on the tiny fixture model:
//! stopping answers every request and joins the scheduler, what cannot run is
//! refused at submission, a cancelled request gives its place back, and the
//! cache never keeps a failure, an oversized adapter or more than its budget.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ml::{LoraAdapter, LoraConfig, Model, ModelFiles, SamplingParams, Target};
use serve::*;
use tokio::sync::mpsc::error::TryRecvError;

/// The fixture model, never stopping at an end-of-sequence token (so a
/// generation runs exactly its budget).
fn tiny() -> (Arc<Model>, Arc<ml::TextTokenizer>) {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ml/fixtures/tiny-llama");
    let f = ModelFiles::open(&p).unwrap();
    let mut m = Model::from_files(&f).unwrap();
    m.config.eos_token_ids.clear();
    let mut t = f.tokenizer.clone();
    t.eos_token = None;
    (Arc::new(m), Arc::new(t))
}

fn engine(cfg: EngineConfig) -> (Engine, Arc<Metrics>) {
    let (m, t) = tiny();
    let metrics = Arc::new(Metrics::default());
    (Engine::start(m, t, cfg, metrics.clone()), metrics)
}

fn request(prompt: Vec<u32>, max_tokens: usize) -> Request {
    Request {
        prompt,
        adapter: None,
        params: SamplingParams { max_tokens, ..Default::default() },
        cancel: Arc::new(AtomicBool::new(false)),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

#[test]
fn stop_answers_every_request_and_joins_the_scheduler() {
    let (engine, _) = engine(EngineConfig { max_batch: 1, ..Default::default() });
    let mut rxs: Vec<_> = (0..4).map(|i| engine.submit(request(vec![5 + i, 6, 7], 200)).unwrap()).collect();
    engine.stop();
    // The scheduler has been joined: every answer is already there, none pending.
    let mut stopped = 0;
    for (i, rx) in rxs.iter_mut().enumerate() {
        let last = loop {
            match rx.try_recv() {
                Ok(Event::Text(..)) => continue,
                Ok(e) => break e,
                Err(e) => panic!("request {i} has no answer after stop: {e:?}"),
            }
        };
        match last {
            Event::Error(e) => {
                assert!(e.contains("stopped"), "{e}");
                stopped += 1;
            }
            Event::Done(o) => assert_eq!(o.completion_tokens, 200),
            Event::Text(..) => unreachable!(),
        }
        assert_eq!(rx.try_recv().unwrap_err(), TryRecvError::Disconnected, "nothing after the last event");
    }
    assert!(stopped >= 3, "one request at a time: at most the first can have finished");
    assert_eq!(engine.submit(request(vec![1, 2], 1)).unwrap_err(), SubmitError::Stopped);
    engine.stop(); // idempotent
}

#[test]
fn what_cannot_run_is_refused_at_submission() {
    // Four blocks of 16 positions: 64 tokens of cache in all.
    let (e, _) = engine(EngineConfig { block_size: 16, kv_blocks: 4, max_queue: 0, ..Default::default() });
    assert_eq!(e.capacity(), 64);
    assert!(matches!(e.submit(request(vec![], 4)), Err(SubmitError::Invalid(m)) if m.contains("no tokens")));
    let ctx = e.model.config.max_position_embeddings;
    assert!(
        matches!(e.submit(request(vec![3; ctx], 1)), Err(SubmitError::Invalid(m)) if m.contains("context")),
        "a prompt as long as the context leaves no room for a token"
    );
    assert_eq!(
        e.submit(request(vec![3; 40], 40)).unwrap_err(),
        SubmitError::TooLong { needed: 80, capacity: 64 },
        "prompt and budget must fit the cache together"
    );
    assert_eq!(e.submit(request(vec![3; 4], 4)).unwrap_err(), SubmitError::QueueFull(0));
    e.stop();
    // Another engine's adapter shape is refused before it reaches a batch.
    let (m, _) = tiny();
    let mut other = m.config.clone();
    other.hidden_size *= 2;
    let cfg = LoraConfig { r: 2, lora_alpha: 4.0, lora_dropout: 0.0, target_modules: vec![Target::Q] };
    let foreign = LoraAdapter::random(cfg, &other, 1, 0.1).unwrap();
    let (e, _) = engine(EngineConfig::default());
    let r = Request { adapter: Some(Arc::new(foreign)), ..request(vec![3, 4], 2) };
    assert!(matches!(e.submit(r), Err(SubmitError::Invalid(_))));
    e.stop();
}

#[test]
fn a_cancelled_request_gives_its_place_back() {
    // Room in the cache for one such request at a time.
    let (e, metrics) = engine(EngineConfig { block_size: 16, kv_blocks: 16, ..Default::default() });
    let rt = runtime();
    // The cancel races the generation it interrupts: a run whose 250 tokens were
    // all out before the scheduler saw the flag proves nothing, and is tried again.
    for attempt in 0..5 {
        let long = request(vec![9, 8, 7], 250);
        let cancel = long.cancel.clone();
        let mut first = e.submit(long).unwrap();
        let waiting = e.submit(request(vec![1, 2, 3], 100)).unwrap();
        // The first is generating; the second waits for its blocks.
        assert!(matches!(rt.block_on(first.recv()), Some(Event::Text(..))));
        cancel.store(true, Ordering::SeqCst);
        let out = rt
            .block_on(async { tokio::time::timeout(Duration::from_secs(60), engine::collect(waiting)).await })
            .expect("the waiting request ran once the cancelled one left")
            .unwrap();
        assert_eq!(out.completion_tokens, 100);
        if rt.block_on(engine::collect(first)).is_ok() {
            continue;
        }
        assert_eq!(metrics.cancelled.load(Ordering::Relaxed), 1, "attempt {attempt}");
        e.stop();
        return;
    }
    panic!("a cancelled request ran to its end five times");
}

/// An adapter source that counts loads and, when `fail_first`, fails the
/// first load of every model.
struct Flaky {
    model: Arc<Model>,
    fail_first: bool,
    loads: AtomicU64,
    failed: Mutex<std::collections::HashSet<u64>>,
}

impl AdapterSource for Flaky {
    fn load(&self, id: u64) -> Result<LoraAdapter, String> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        if self.fail_first && self.failed.lock().unwrap().insert(id) {
            return Err(format!("blob of m{id} unreachable"));
        }
        let cfg = LoraConfig { r: 4, lora_alpha: 8.0, lora_dropout: 0.0, target_modules: vec![Target::Q, Target::V] };
        LoraAdapter::random(cfg, &self.model.config, id, 0.1).map_err(|e| e.to_string())
    }
}

fn source(fail_first: bool) -> Arc<Flaky> {
    Arc::new(Flaky { model: tiny().0, fail_first, loads: AtomicU64::new(0), failed: Mutex::default() })
}

#[test]
fn the_cache_keeps_no_failure_and_never_exceeds_its_budget() {
    let src = source(true);
    let metrics = Arc::new(Metrics::default());
    let probe = AdapterCache::new(usize::MAX, src.clone(), metrics.clone());
    assert!(matches!(probe.get(1), Err(CacheError::Load(1, m)) if m.contains("unreachable")));
    let one = probe.get(1).expect("a failed load is not remembered").byte_size();
    assert_eq!(src.loads.load(Ordering::SeqCst), 2);
    // Room for exactly one adapter.
    let cache = AdapterCache::new(one, src.clone(), metrics.clone());
    let _ = cache.get(2); // the source's first failure for m2
    let held = cache.get(2).unwrap();
    let _ = cache.get(3);
    assert_eq!(cache.get(3).unwrap_err(), CacheError::Full, "an adapter in use is never evicted");
    assert!(cache.is_resident(2) && !cache.is_resident(3));
    drop(held);
    cache.get(3).unwrap();
    assert!(cache.is_resident(3) && !cache.is_resident(2), "unused, the older one makes room");
    assert_eq!(cache.resident_bytes(), one);
    // One byte short of an adapter: nothing fits, nothing is kept.
    let small = AdapterCache::new(one - 1, src.clone(), metrics);
    let _ = small.get(4);
    assert_eq!(small.get(4).unwrap_err(), CacheError::TooLarge { model: 4, bytes: one, budget: one - 1 });
    assert_eq!(small.resident_bytes(), 0);
    assert!(small.residency().is_empty());
}

/// A cache holding bf16 adapters counts them at half the bytes, so the same
/// budget keeps twice as many.
#[test]
fn a_bf16_cache_holds_twice_the_adapters_in_the_same_budget() {
    let src = source(false);
    let f32_one = AdapterCache::new(usize::MAX, src.clone(), Arc::new(Metrics::default())).get(1).unwrap().byte_size();
    let cache = AdapterCache::with_dtype(f32_one, src.clone(), Arc::new(Metrics::default()), ml::AdapterDtype::Bf16);
    let a = cache.get(1).unwrap();
    assert_eq!(a.byte_size() * 2, f32_one);
    cache.get(2).unwrap();
    assert!(cache.is_resident(1) && cache.is_resident(2), "two bf16 adapters in one f32 adapter's budget");
    assert_eq!(cache.resident_bytes(), f32_one);
}

#[test]
fn pinned_adapters_stay_and_residency_lists_the_most_recent_first() {
    let src = source(false);
    let cache = AdapterCache::new(usize::MAX, src.clone(), Arc::new(Metrics::default()));
    for id in [1, 2, 3, 1] {
        cache.get(id).unwrap();
    }
    let order: Vec<String> = cache.residency().into_iter().map(|r| r.model).collect();
    assert_eq!(order, ["m1", "m3", "m2"]);
    // Pinned survives eviction in a cache with room for two.
    let one = cache.get(1).unwrap().byte_size();
    let two = AdapterCache::new(2 * one, src.clone(), Arc::new(Metrics::default()));
    two.pin(1).unwrap();
    for id in 2..6 {
        two.get(id).unwrap();
    }
    assert!(two.is_resident(1) && two.residency().iter().any(|r| r.model == "m1" && r.pinned));
    two.unpin(1);
    two.get(6).unwrap();
    two.get(7).unwrap();
    assert!(!two.is_resident(1), "unpinned, it is evicted like any other");
    // A prefetch makes the adapter resident in the background.
    two.prefetch(8).unwrap();
    two.prefetch(8).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !two.is_resident(8) {
        assert!(Instant::now() < deadline, "the prefetched adapter never arrived");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// An adapter source whose loads wait for the test's go-ahead, announcing each start.
struct Gated {
    inner: Arc<Flaky>,
    started: Mutex<std::sync::mpsc::Sender<u64>>,
    go: Mutex<std::sync::mpsc::Receiver<()>>,
}

impl AdapterSource for Gated {
    fn load(&self, id: u64) -> Result<LoraAdapter, String> {
        let _ = self.started.lock().unwrap().send(id);
        self.go.lock().unwrap().recv().map_err(|_| "the test ended".to_string())?;
        self.inner.load(id)
    }
}

#[test]
fn prefetching_runs_on_one_owned_worker_that_stop_joins() {
    let inner = source(false);
    let (started_tx, started) = std::sync::mpsc::channel();
    let (go, go_rx) = std::sync::mpsc::channel();
    let gated = Arc::new(Gated { inner: inner.clone(), started: Mutex::new(started_tx), go: Mutex::new(go_rx) });
    let cache = AdapterCache::new(usize::MAX, gated.clone(), Arc::new(Metrics::default()));
    // The worker takes m1 and waits in its load; the queue behind it is bounded.
    cache.prefetch(1).unwrap();
    assert_eq!(started.recv_timeout(Duration::from_secs(30)).unwrap(), 1);
    for id in 0..serve::cache::PREFETCH_QUEUE as u64 {
        cache.prefetch(100 + id).unwrap();
    }
    cache.prefetch(100).unwrap(); // already queued: nothing more to do
    assert_eq!(cache.prefetch(2).unwrap_err(), CacheError::PrefetchBusy);
    // Stop drops what is queued, lets the load in progress finish and joins the worker.
    let stopper = {
        let cache = cache.clone();
        std::thread::spawn(move || cache.stop())
    };
    // Once it refuses prefetches, the stop has dropped the queue: let the load finish.
    while cache.prefetch(2) != Err(CacheError::Stopped) {
        std::thread::yield_now();
    }
    go.send(()).unwrap();
    stopper.join().unwrap();
    assert!(cache.is_resident(1), "the load in progress finished");
    assert_eq!(inner.loads.load(Ordering::SeqCst), 1, "nothing queued was loaded after the stop");
    assert!(started.try_recv().is_err());
    assert_eq!(cache.prefetch(3).unwrap_err(), CacheError::Stopped, "refused, not queued for no one");
    cache.stop(); // idempotent
    // A stopped cache still loads on the caller's thread.
    go.send(()).unwrap();
    cache.get(3).unwrap();
    // Dropping a cache joins its worker: the worker's share of the source goes with it.
    let src = source(false);
    let cache = AdapterCache::new(usize::MAX, src.clone(), Arc::new(Metrics::default()));
    cache.prefetch(4).unwrap();
    assert_eq!(Arc::strong_count(&src), 2);
    drop(cache);
    assert_eq!(Arc::strong_count(&src), 1, "the prefetch worker still runs after the cache was dropped");
}
