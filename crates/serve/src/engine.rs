//! The engine: one base model, one scheduler thread, continuous batching.
//!
//! Every step the scheduler admits waiting requests (while sequences and KV
//! blocks allow: a request is admitted only when the cache can hold its prompt
//! and its whole token budget, so a running sequence never runs out of
//! blocks), runs one [`ml::Model::forward`] over every running sequence — new
//! prompts (in chunks) and decoding sequences side by side, each with its own
//! adapter — samples each sequence's next token, streams it, and retires the
//! sequences that finished, freeing their blocks. Requests join and leave the
//! batch at every step. A step feeds at most `prefill_budget` prompt tokens in
//! all, in the order the sequences run: a burst of prompts arriving together
//! is spread over steps, so the first of them and the decoding sequences do
//! not wait behind all of it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use ml::{
    Finish, KvCache, Logits, LoraAdapter, MlError, Model, Sampler, SamplingParams, SeqStep, Step, StepOutput,
    StopWatch, TextTokenizer,
};
use tokio::sync::mpsc;

use crate::metrics::Metrics;

/// Engine limits.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Sequences in one batch.
    pub max_batch: usize,
    /// Prompt tokens fed per sequence per step (longer prompts are prefilled in chunks).
    pub prefill_chunk: usize,
    /// Prompt tokens fed per step over all sequences (at least 1).
    pub prefill_budget: usize,
    /// KV cache positions per block, and blocks in all.
    pub block_size: usize,
    pub kv_blocks: usize,
    /// Requests waiting beyond this are refused (429).
    pub max_queue: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_batch: 32,
            prefill_chunk: 256,
            prefill_budget: DEFAULT_PREFILL_BUDGET,
            block_size: 16,
            kv_blocks: 4096,
            max_queue: 256,
        }
    }
}

/// [`EngineConfig::prefill_budget`]'s default: one prompt chunk. A burst of
/// eight 32-token prompts still goes in one step, as before the budget; a
/// burst of long prompts no longer makes one step of all their first chunks
/// (eight 2,000-token prompts: 256 tokens a step, not 2,048), which would
/// hold every decoding sequence for that long. Smaller budgets halve the
/// median time to first token of such bursts but not its tail (measured in
/// docs/benchmarks.md, "`bench serve`").
pub const DEFAULT_PREFILL_BUDGET: usize = 256;

/// One generation request.
pub struct Request {
    pub prompt: Vec<u32>,
    pub adapter: Option<Arc<LoraAdapter>>,
    pub params: SamplingParams,
    /// Set to stop the generation (e.g. the client disconnected).
    pub cancel: Arc<AtomicBool>,
}

/// What a request's receiver sees, in order: `Text` pieces, then one `Done` (or `Error`).
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A piece of text, and how many tokens have been generated so far.
    Text(String, usize),
    Done(Outcome),
    Error(String),
}

/// The end of a generation.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub finish: Finish,
    pub prompt_tokens: usize,
    /// Tokens generated (and delivered: a cancelled request counts only what was sent).
    pub completion_tokens: usize,
    pub tokens: Vec<u32>,
    pub text: String,
    /// Time from admission to the first token, and the whole generation.
    pub time_to_first_token: Duration,
    pub total: Duration,
}

/// Why a request was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    #[error("the server is busy ({0} requests waiting); retry later")]
    QueueFull(usize),
    #[error("{needed} tokens do not fit in the KV cache of {capacity} tokens")]
    TooLong { needed: usize, capacity: usize },
    #[error("{0}")]
    Invalid(String),
    #[error("the engine has stopped")]
    Stopped,
}

struct Pending {
    id: u64,
    req: Request,
    tx: mpsc::UnboundedSender<Event>,
    queued: Instant,
}

struct Running {
    id: u64,
    req: Request,
    tx: mpsc::UnboundedSender<Event>,
    sampler: Sampler,
    stops: StopWatch,
    /// Prompt tokens fed so far.
    fed: usize,
    out: Vec<u32>,
    next: Vec<u32>,
    started: Instant,
    first_token: Option<Duration>,
    last_token: Instant,
}

struct Shared {
    queue: Mutex<VecDeque<Pending>>,
    wake: Condvar,
    stop: AtomicBool,
}

/// A handle to the engine; cheap to clone. [`Engine::stop`] ends and joins the scheduler.
#[derive(Clone)]
pub struct Engine {
    shared: Arc<Shared>,
    scheduler: Arc<Mutex<Option<std::thread::JoinHandle<()>>>>,
    next_id: Arc<AtomicU64>,
    pub config: EngineConfig,
    pub model: Arc<Model>,
    pub tokenizer: Arc<TextTokenizer>,
    pub metrics: Arc<Metrics>,
    eos: Arc<Vec<u32>>,
}

impl Engine {
    /// Start the scheduler thread.
    pub fn start(
        model: Arc<Model>,
        tokenizer: Arc<TextTokenizer>,
        config: EngineConfig,
        metrics: Arc<Metrics>,
    ) -> Engine {
        let shared =
            Arc::new(Shared { queue: Mutex::new(VecDeque::new()), wake: Condvar::new(), stop: AtomicBool::new(false) });
        let eos = Arc::new(tokenizer.eos_ids(&model.config.eos_token_ids));
        let e = Engine {
            shared,
            scheduler: Arc::new(Mutex::new(None)),
            next_id: Arc::new(AtomicU64::new(1)),
            config,
            model,
            tokenizer,
            metrics,
            eos,
        };
        let worker = e.clone();
        let handle =
            std::thread::Builder::new().name("openlora".into()).spawn(move || worker.run()).expect("spawn the engine");
        *e.scheduler.lock().unwrap() = Some(handle);
        e
    }

    /// Tokens the cache holds in all.
    pub fn capacity(&self) -> usize {
        self.config.kv_blocks * self.config.block_size
    }

    /// Queue a request; its events arrive on the returned receiver.
    pub fn submit(&self, req: Request) -> Result<mpsc::UnboundedReceiver<Event>, SubmitError> {
        req.params.validate().map_err(|e| SubmitError::Invalid(e.to_string()))?;
        if req.prompt.is_empty() {
            return Err(SubmitError::Invalid("the prompt has no tokens".into()));
        }
        let ctx = self.model.config.max_position_embeddings;
        if req.prompt.len() >= ctx {
            return Err(SubmitError::Invalid(format!(
                "the prompt has {} tokens; this model's context is {ctx}",
                req.prompt.len()
            )));
        }
        let needed = req.prompt.len() + req.params.max_tokens.min(ctx - req.prompt.len());
        if needed.div_ceil(self.config.block_size) > self.config.kv_blocks {
            return Err(SubmitError::TooLong { needed, capacity: self.capacity() });
        }
        if let Some(a) = &req.adapter {
            self.model.check_adapter(a).map_err(|e| SubmitError::Invalid(e.to_string()))?;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let mut q = self.shared.queue.lock().unwrap();
        // Checked under the queue's lock: the scheduler answers the queue under it
        // when it stops, so no request is queued after that and left unanswered.
        if self.shared.stop.load(Ordering::SeqCst) {
            return Err(SubmitError::Stopped);
        }
        if q.len() >= self.config.max_queue {
            return Err(SubmitError::QueueFull(q.len()));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        q.push_back(Pending { id, req, tx, queued: Instant::now() });
        self.metrics.queue_depth.store(q.len() as u64, Ordering::Relaxed);
        self.shared.wake.notify_one();
        Ok(rx)
    }

    /// Requests waiting to be admitted.
    pub fn queue_depth(&self) -> usize {
        self.shared.queue.lock().unwrap().len()
    }

    /// Stop: every waiting and running request is answered with an error, the
    /// scheduler thread is joined (after the step it is in), and later
    /// submissions are refused ([`SubmitError::Stopped`]). Idempotent.
    pub fn stop(&self) {
        {
            let _q = self.shared.queue.lock().unwrap();
            self.shared.stop.store(true, Ordering::SeqCst);
            self.shared.wake.notify_all();
        }
        let handle = self.scheduler.lock().unwrap().take();
        if let Some(h) = handle
            && h.thread().id() != std::thread::current().id()
            && h.join().is_err()
        {
            tracing::error!("the OpenLoRA scheduler panicked");
        }
    }

    fn run(self) {
        let m = &self.model;
        let cfg = &self.config;
        let mut cache = KvCache::new(&m.config, cfg.block_size, cfg.kv_blocks);
        let mut running: Vec<Running> = Vec::new();
        loop {
            if !self.admit(&mut cache, &mut running) {
                return;
            }
            // Drop cancelled or disconnected sequences before computing for them.
            running.retain(|r| {
                let gone = r.req.cancel.load(Ordering::SeqCst) || r.tx.is_closed();
                if gone {
                    cache.free_seq(r.id);
                    self.metrics.cancelled.fetch_add(1, Ordering::Relaxed);
                }
                !gone
            });
            if running.is_empty() {
                continue;
            }
            let Some((out, rows)) = self.step(&mut cache, &mut running) else { continue };
            // Sample, stream, retire.
            let mut done: Vec<usize> = Vec::new();
            for (i, r) in running.iter_mut().enumerate() {
                let Some(row) = rows[i] else { continue }; // not in this step
                if r.fed < r.req.prompt.len() {
                    continue; // still prefilling
                }
                if self.advance(r, out.last(row)) {
                    done.push(i);
                }
            }
            for i in done.into_iter().rev() {
                let r = running.swap_remove(i);
                cache.free_seq(r.id);
            }
            self.metrics.kv_free_blocks.store(cache.free_blocks() as u64, Ordering::Relaxed);
        }
    }

    /// Wait for work, then move queued requests into `running` while the
    /// batch has room and the cache has blocks for their whole budget. On a
    /// stop, fails every queued and running request and returns false.
    fn admit(&self, cache: &mut KvCache, running: &mut Vec<Running>) -> bool {
        let ctx = self.model.config.max_position_embeddings;
        let mut q = self.shared.queue.lock().unwrap();
        while running.is_empty() && q.is_empty() {
            if self.shared.stop.load(Ordering::SeqCst) {
                return false;
            }
            q = self.shared.wake.wait_timeout(q, Duration::from_millis(200)).unwrap().0;
        }
        if self.shared.stop.load(Ordering::SeqCst) {
            for p in q.drain(..) {
                let _ = p.tx.send(Event::Error("the engine stopped".into()));
            }
            for r in running.drain(..) {
                let _ = r.tx.send(Event::Error("the engine stopped".into()));
            }
            return false;
        }
        while running.len() < self.config.max_batch {
            let Some(p) = q.front() else { break };
            if p.req.cancel.load(Ordering::SeqCst) || p.tx.is_closed() {
                q.pop_front();
                continue;
            }
            let budget = p.req.params.max_tokens.min(ctx - p.req.prompt.len());
            if cache.reserve(p.id, p.req.prompt.len() + budget).is_err() {
                break; // wait for blocks to free up
            }
            let p = q.pop_front().expect("front");
            self.metrics.queue_wait.observe(p.queued.elapsed());
            let mut params = p.req.params.clone();
            params.max_tokens = budget;
            let stops = StopWatch::new(params.stop.clone());
            let sampler = Sampler::new(params.clone());
            let mut req = p.req;
            req.params = params;
            running.push(Running {
                id: p.id,
                tx: p.tx,
                sampler,
                stops,
                fed: 0,
                out: Vec::new(),
                next: Vec::new(),
                started: Instant::now(),
                first_token: None,
                last_token: Instant::now(),
                req,
            });
        }
        self.metrics.queue_depth.store(q.len() as u64, Ordering::Relaxed);
        true
    }

    /// One model step over the running sequences: the last sampled token of
    /// each decoding one, and the next prefill chunk of those still
    /// prefilling while the step's prompt-token budget lasts. With the step's
    /// output, each running sequence's row in it (`None`: not in this step).
    /// On a failure every running request fails and is dropped (`None`).
    fn step(&self, cache: &mut KvCache, running: &mut Vec<Running>) -> Option<(StepOutput, Vec<Option<usize>>)> {
        let mut adapter_arcs: Vec<Arc<LoraAdapter>> = Vec::new();
        let mut inputs: Vec<(u64, Vec<u32>, Option<usize>)> = Vec::with_capacity(running.len());
        let mut rows = Vec::with_capacity(running.len());
        let mut budget = self.config.prefill_budget.max(1);
        for r in running.iter_mut() {
            let toks = if r.fed < r.req.prompt.len() {
                let take = self.config.prefill_chunk.max(1).min(budget).min(r.req.prompt.len() - r.fed);
                if take == 0 {
                    rows.push(None);
                    continue;
                }
                budget -= take;
                let t = r.req.prompt[r.fed..r.fed + take].to_vec();
                r.fed += take;
                t
            } else {
                std::mem::take(&mut r.next)
            };
            rows.push(Some(inputs.len()));
            let a = r.req.adapter.as_ref().map(|a| match adapter_arcs.iter().position(|x| Arc::ptr_eq(x, a)) {
                Some(i) => i,
                None => {
                    adapter_arcs.push(a.clone());
                    adapter_arcs.len() - 1
                }
            });
            inputs.push((r.id, toks, a));
        }
        let prompt_tokens = self.config.prefill_budget.max(1) - budget;
        self.metrics.step_prompt_tokens_max.fetch_max(prompt_tokens as u64, Ordering::Relaxed);
        let adapters: Vec<&LoraAdapter> = adapter_arcs.iter().map(|a| a.as_ref()).collect();
        let step = Step {
            seqs: inputs
                .iter()
                .map(|(id, t, a)| SeqStep { seq: *id, tokens: t, adapter: *a, logits: Logits::Last })
                .collect(),
        };
        let t0 = Instant::now();
        let out = self.model.forward(&step, cache, &adapters);
        let step_time = t0.elapsed();
        drop(step);
        match out {
            Ok(o) => {
                self.metrics.steps.fetch_add(1, Ordering::Relaxed);
                self.metrics.step_time.observe(step_time);
                self.metrics.batch_size.store(inputs.len() as u64, Ordering::Relaxed);
                Some((o, rows))
            }
            Err(e) => {
                tracing::error!("engine step failed: {e}");
                for r in running.drain(..) {
                    cache.free_seq(r.id);
                    let _ = r.tx.send(Event::Error(format!("generation failed: {e}")));
                }
                None
            }
        }
    }

    /// Sample `r`'s next token from its logits `row`, stream the new text, and
    /// send the outcome when it is finished. True when `r` is done.
    fn advance(&self, r: &mut Running, row: Result<Vec<f32>, MlError>) -> bool {
        let row = match row {
            Ok(v) => v,
            Err(e) => {
                let _ = r.tx.send(Event::Error(e.to_string()));
                return true;
            }
        };
        let tok = r.sampler.sample(&row);
        let now = Instant::now();
        if r.first_token.is_none() {
            let ttft = r.started.elapsed();
            r.first_token = Some(ttft);
            self.metrics.ttft.observe(ttft);
        } else {
            self.metrics.itl.observe(now - r.last_token);
        }
        r.last_token = now;
        let mut finish = None;
        if !r.req.params.ignore_eos && self.eos.contains(&tok) {
            finish = Some(Finish::Stop);
        } else {
            r.out.push(tok);
            self.metrics.tokens_out.fetch_add(1, Ordering::Relaxed);
            let text = self.tokenizer.decode(&r.out).unwrap_or_default();
            let (piece, stopped) = r.stops.update(text);
            if !piece.is_empty() && r.tx.send(Event::Text(piece, r.out.len())).is_err() {
                // The client went away: what it received is what it pays for.
                finish = Some(Finish::Stop);
                r.req.cancel.store(true, Ordering::SeqCst);
            }
            if stopped {
                finish = Some(Finish::Stop);
            } else if r.out.len() >= r.req.params.max_tokens {
                finish = Some(Finish::Length);
            }
            r.next = vec![tok];
        }
        let Some(f) = finish else { return false };
        let rest = r.stops.finish();
        if !rest.is_empty() {
            let _ = r.tx.send(Event::Text(rest, r.out.len()));
        }
        let total = r.started.elapsed();
        let _ = r.tx.send(Event::Done(Outcome {
            finish: f,
            prompt_tokens: r.req.prompt.len(),
            completion_tokens: r.out.len(),
            tokens: r.out.clone(),
            text: r.stops.text().to_string(),
            time_to_first_token: r.first_token.unwrap_or(total),
            total,
        }));
        self.metrics.completed.fetch_add(1, Ordering::Relaxed);
        true
    }
}

/// Drain a request's events into its outcome (non-streaming callers).
pub async fn collect(mut rx: mpsc::UnboundedReceiver<Event>) -> Result<Outcome, String> {
    while let Some(e) = rx.recv().await {
        match e {
            Event::Text(..) => {}
            Event::Done(o) => return Ok(o),
            Event::Error(e) => return Err(e),
        }
    }
    Err("the engine dropped the request".into())
}
