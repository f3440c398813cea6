//! Attribution beside the batch: a paid answer's attribution record is
//! computed by dedicated worker threads from a bounded queue, so an answer
//! never waits for it. The answer takes a slot before anything is reserved or
//! generated ([`AttributionQueue::admit`], refused with 503 when the queue is
//! full), turns it into a job once its receipt is signed, and waits at most
//! [`QueueConfig::budget`] for the summary; past that it carries a pointer to
//! `GET /v1/attribution/{receipt}`, which answers 202 while the job waits or
//! runs.
//!
//! The computation itself stays the [`Attributor`]'s (the node's: it stores
//! the record and queues it for posting on-chain); this module knows only jobs.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use primitives::B256;
use serde_json::{Value, json};

use crate::metrics::Metrics;
use crate::openai::{Attributor, ModelEntry, RecordAccess};
use crate::retrieval::Retrieved;

/// How attribution runs beside the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueConfig {
    /// Worker threads computing records (attribution itself uses every core
    /// through rayon and candle, so one is the default).
    pub workers: usize,
    /// Answers whose record is not yet being computed (in generation, or
    /// queued) at most; beyond, paid requests are refused with 503.
    pub capacity: usize,
    /// How long an answer waits for its summary after its last token.
    pub budget: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig { workers: 1, capacity: 64, budget: Duration::from_millis(50) }
    }
}

/// Outcomes of failed or dropped jobs kept for `GET /v1/attribution/{receipt}`
/// (the oldest are forgotten first; the route then answers "unknown").
const KEPT_OUTCOMES: usize = 4096;

/// Where a receipt's attribution is, as the record route reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobStatus {
    /// Waiting for a worker; `position` 1 is next.
    Queued {
        position: usize,
    },
    Computing,
    /// The computation failed: no record will be posted.
    Failed(String),
    /// The job was dropped (the node stopped first): no record will be posted.
    Dropped(String),
}

/// What the answer learns within its budget.
pub(crate) type Outcome = Result<Value, String>;

/// One answer's attribution to compute.
pub(crate) struct Job {
    pub model: ModelEntry,
    pub receipt_hash: B256,
    pub prompt: Vec<u32>,
    pub response: Vec<u32>,
    pub text: String,
    pub access: RecordAccess,
    pub retrieved: Option<Retrieved>,
}

struct Queued {
    job: Job,
    done: tokio::sync::oneshot::Sender<Outcome>,
}

#[derive(Default)]
struct State {
    /// Slots held by answers still generating.
    reserved: usize,
    waiting: VecDeque<Queued>,
    /// Receipt → who may read it and where its job is (queued, computing, failed, dropped).
    jobs: HashMap<B256, (RecordAccess, JobStatus)>,
    /// Failed and dropped receipts, oldest first (bounded by [`KEPT_OUTCOMES`]).
    outcomes: VecDeque<B256>,
    computing: usize,
    stopping: bool,
}

/// The bounded attribution queue and its workers, around the node's [`Attributor`].
pub struct AttributionQueue {
    attributor: Arc<dyn Attributor>,
    config: QueueConfig,
    metrics: Arc<Metrics>,
    state: Mutex<State>,
    /// Workers wait here for jobs; [`Self::stop`] for the queue to drain.
    changed: Condvar,
    workers: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

/// Why a request cannot take a slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// As many answers as the queue holds await their records; retry after these seconds.
    Full {
        capacity: usize,
        retry_after: u64,
    },
    Stopping,
}

/// A place in the queue, held from admission until the answer's receipt is
/// signed; dropped unused (the request failed, the client left), it frees the place.
pub struct Slot {
    queue: Arc<AttributionQueue>,
    used: bool,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if !self.used {
            let mut st = self.queue.state.lock().unwrap();
            st.reserved -= 1;
            self.queue.gauge(&st);
        }
    }
}

impl AttributionQueue {
    /// Start the workers (at least one; a capacity of at least one).
    pub fn start(
        attributor: Arc<dyn Attributor>,
        config: QueueConfig,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Arc<AttributionQueue>> {
        let config = QueueConfig { workers: config.workers.max(1), capacity: config.capacity.max(1), ..config };
        metrics.attribution_capacity.store(config.capacity as u64, Ordering::Relaxed);
        let q = Arc::new(AttributionQueue {
            attributor,
            config,
            metrics,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            workers: Mutex::new(Vec::new()),
        });
        for i in 0..config.workers {
            let w = q.clone();
            let t = std::thread::Builder::new().name(format!("attribution-{i}")).spawn(move || w.work())?;
            q.workers.lock().unwrap().push(t);
        }
        Ok(q)
    }

    /// The attributor the jobs run on (and the records are read from).
    pub fn attributor(&self) -> &Arc<dyn Attributor> {
        &self.attributor
    }

    /// How long an answer waits for its summary.
    pub fn budget(&self) -> Duration {
        self.config.budget
    }

    /// Take a place for an answer that will be attributed, or refuse it.
    pub fn admit(self: &Arc<Self>) -> Result<Slot, Refusal> {
        let mut st = self.state.lock().unwrap();
        if st.stopping {
            return Err(Refusal::Stopping);
        }
        if st.reserved + st.waiting.len() >= self.config.capacity {
            self.metrics.attribution_refused.fetch_add(1, Ordering::Relaxed);
            // Roughly when a place frees: the queue ahead at the recent median pace.
            let each = self.metrics.attribution_seconds.quantile(0.5).unwrap_or(1.0);
            let ahead = (st.waiting.len() + st.computing) as f64 / self.config.workers as f64;
            let retry_after = (each * ahead.max(1.0)).ceil().clamp(1.0, 60.0) as u64;
            return Err(Refusal::Full { capacity: self.config.capacity, retry_after });
        }
        st.reserved += 1;
        self.gauge(&st);
        Ok(Slot { queue: self.clone(), used: false })
    }

    /// Queue the job of a slot; the receiver gets the summary or why there is none.
    pub(crate) fn enqueue(mut slot: Slot, job: Job) -> tokio::sync::oneshot::Receiver<Outcome> {
        slot.used = true;
        let q = slot.queue.clone();
        let (done, rx) = tokio::sync::oneshot::channel();
        let mut st = q.state.lock().unwrap();
        st.reserved -= 1;
        let h = job.receipt_hash;
        if st.stopping {
            let why = "the node was stopping when the answer was billed".to_string();
            tracing::warn!("attribution of receipt {h} dropped: {why} (the fallback will pay)");
            q.finish(&mut st, h, job.access, JobStatus::Dropped(why.clone()));
            let _ = done.send(Err(why));
        } else {
            let position = st.waiting.len() + 1;
            st.jobs.insert(h, (job.access, JobStatus::Queued { position }));
            st.waiting.push_back(Queued { job, done });
            q.changed.notify_all();
        }
        q.gauge(&st);
        rx
    }

    /// Where the attribution of `receipt` is, and who may read it; `None` when
    /// this queue has no job of it (done, never queued, or long forgotten).
    pub fn status(&self, receipt: &B256) -> Option<(RecordAccess, JobStatus)> {
        let st = self.state.lock().unwrap();
        let (access, status) = st.jobs.get(receipt)?.clone();
        let status = match status {
            JobStatus::Queued { .. } => JobStatus::Queued {
                position: st.waiting.iter().position(|q| q.job.receipt_hash == *receipt).map_or(1, |i| i + 1),
            },
            s => s,
        };
        Some((access, status))
    }

    fn gauge(&self, st: &State) {
        let m = &self.metrics;
        m.attribution_queued.store(st.waiting.len() as u64, Ordering::Relaxed);
        m.attribution_reserved.store(st.reserved as u64, Ordering::Relaxed);
        m.attribution_computing.store(st.computing as u64, Ordering::Relaxed);
    }

    /// Record a failed or dropped job (bounded), or forget a done one.
    fn finish(&self, st: &mut State, h: B256, access: RecordAccess, status: JobStatus) {
        st.jobs.insert(h, (access, status));
        st.outcomes.push_back(h);
        while st.outcomes.len() > KEPT_OUTCOMES {
            if let Some(old) = st.outcomes.pop_front() {
                st.jobs.remove(&old);
            }
        }
    }

    /// A worker: take the next job, compute it, report; exit once stopping and drained.
    fn work(&self) {
        loop {
            let next = {
                let mut st = self.state.lock().unwrap();
                loop {
                    if let Some(q) = st.waiting.pop_front() {
                        st.computing += 1;
                        st.jobs.insert(q.job.receipt_hash, (q.job.access, JobStatus::Computing));
                        self.gauge(&st);
                        break Some(q);
                    }
                    if st.stopping {
                        break None;
                    }
                    st = self.changed.wait(st).unwrap();
                }
            };
            let Some(Queued { job, done }) = next else { return };
            let started = Instant::now();
            let j = &job;
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.attributor.attribute(
                    &j.model,
                    j.receipt_hash,
                    &j.prompt,
                    &j.response,
                    &j.text,
                    j.access,
                    j.retrieved.as_ref(),
                )
            }))
            .unwrap_or_else(|_| Err("the attribution computation panicked".into()));
            self.metrics.attribution_seconds.observe(started.elapsed());
            let h = job.receipt_hash;
            let mut st = self.state.lock().unwrap();
            st.computing -= 1;
            match &outcome {
                Ok(_) => {
                    self.metrics.attribution_computed.fetch_add(1, Ordering::Relaxed);
                    st.jobs.remove(&h);
                }
                Err(e) => {
                    self.metrics.attribution_failed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!("attribution of receipt {h} failed (the fallback will pay): {e}");
                    self.finish(&mut st, h, job.access, JobStatus::Failed(e.clone()));
                }
            }
            self.gauge(&st);
            self.changed.notify_all();
            drop(st);
            let _ = done.send(outcome);
        }
    }

    /// Stop: refuse new answers, let the workers finish the queued jobs for up
    /// to `within`, then drop what is left (each logged: the fallback pays for
    /// it), and join the workers. A job still computing at the deadline is left
    /// to finish on its thread (not joined): this never waits much longer than
    /// `within`. Idempotent.
    pub fn stop(&self, within: Duration) {
        let deadline = Instant::now() + within;
        let mut st = self.state.lock().unwrap();
        st.stopping = true;
        self.changed.notify_all();
        while (!st.waiting.is_empty() || st.computing > 0) && Instant::now() < deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            st = self.changed.wait_timeout(st, left).unwrap().0;
        }
        let dropped: Vec<Queued> = st.waiting.drain(..).collect();
        for Queued { job, done } in dropped {
            let why = format!("the node stopped before computing it (waited {within:?})");
            tracing::warn!("attribution of receipt {} dropped: {why} (the fallback will pay)", job.receipt_hash);
            self.finish(&mut st, job.receipt_hash, job.access, JobStatus::Dropped(why.clone()));
            let _ = done.send(Err(why));
        }
        if st.computing > 0 {
            tracing::warn!("{} attribution job(s) still computing at shutdown, left to finish", st.computing);
        }
        self.gauge(&st);
        self.changed.notify_all();
        drop(st);
        // Idle workers see `stopping` with nothing queued and return at once.
        let mut workers = self.workers.lock().unwrap();
        let (idle, busy): (Vec<_>, Vec<_>) = workers.drain(..).partition(|t| {
            let wait_until = Instant::now() + Duration::from_millis(100);
            while !t.is_finished() && Instant::now() < wait_until {
                std::thread::sleep(Duration::from_millis(1));
            }
            t.is_finished()
        });
        for t in idle {
            let _ = t.join();
        }
        *workers = busy;
    }
}

/// What an answer carries when its summary is not ready within the budget.
pub fn pending_pointer(receipt: &B256) -> Value {
    json!({"status": "pending", "receipt": receipt.to_string(), "record": format!("/v1/attribution/{receipt}")})
}
