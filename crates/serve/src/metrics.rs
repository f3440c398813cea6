//! Serving metrics in the Prometheus text format (`GET /metrics`).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A latency histogram with fixed buckets (seconds), plus quantiles over a
/// window of recent samples for the JSON views.
pub struct Histogram {
    bounds: &'static [f64],
    inner: Mutex<HistInner>,
}

struct HistInner {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
    recent: Vec<f64>,
    next: usize,
}

const RECENT: usize = 1024;

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            inner: Mutex::new(HistInner {
                counts: vec![0; bounds.len()],
                sum: 0.0,
                count: 0,
                recent: Vec::new(),
                next: 0,
            }),
        }
    }

    pub fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        let mut h = self.inner.lock().unwrap();
        for (i, b) in self.bounds.iter().enumerate() {
            if s <= *b {
                h.counts[i] += 1;
            }
        }
        h.sum += s;
        h.count += 1;
        if h.recent.len() < RECENT {
            h.recent.push(s);
        } else {
            let n = h.next;
            h.recent[n] = s;
        }
        h.next = (h.next + 1) % RECENT;
    }

    /// The q-quantile (0..1) of recent samples, in seconds.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let h = self.inner.lock().unwrap();
        if h.recent.is_empty() {
            return None;
        }
        let mut v = h.recent.clone();
        v.sort_by(|a, b| a.total_cmp(b));
        let i = ((v.len() - 1) as f64 * q).round() as usize;
        Some(v[i])
    }

    fn render(&self, name: &str, help: &str, out: &mut String) {
        let h = self.inner.lock().unwrap();
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} histogram\n"));
        for (i, b) in self.bounds.iter().enumerate() {
            out.push_str(&format!("{name}_bucket{{le=\"{b}\"}} {}\n", h.counts[i]));
        }
        out.push_str(&format!(
            "{name}_bucket{{le=\"+Inf\"}} {}\n{name}_sum {}\n{name}_count {}\n",
            h.count, h.sum, h.count
        ));
    }
}

const LATENCY: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Everything `/metrics` shows.
pub struct Metrics {
    pub queue_depth: AtomicU64,
    pub batch_size: AtomicU64,
    pub kv_free_blocks: AtomicU64,
    pub steps: AtomicU64,
    /// The most prompt tokens one step has fed (at most the engine's
    /// `prefill_budget`).
    pub step_prompt_tokens_max: AtomicU64,
    pub tokens_out: AtomicU64,
    pub completed: AtomicU64,
    pub cancelled: AtomicU64,
    pub rejected: AtomicU64,
    /// Of the rejected, refused by a rate limit (before their body was read).
    pub rate_limited: AtomicU64,
    /// Prompts tokenized for generation requests (the work a rate limit saves).
    pub prompts_tokenized: AtomicU64,
    pub cache_hits: AtomicU64,
    pub cache_misses: AtomicU64,
    pub cache_evictions: AtomicU64,
    /// Of the misses, loads served by the held tier (`held.rs`) instead of the source.
    pub held_tier_loads: AtomicU64,
    pub cache_bytes: AtomicU64,
    pub cache_adapters: AtomicU64,
    /// Receipts billed and waiting to settle on-chain (set by the node's meter).
    pub settlement_queued: AtomicU64,
    /// Of those, receipts a settlement round has already failed to settle.
    pub settlement_stuck: AtomicU64,
    pub settlement_settled: AtomicU64,
    /// Receipts the chain refused for good, dropped (each logged with its hash).
    pub settlement_dropped: AtomicU64,
    /// Attribution beside the batch: jobs waiting for a worker.
    pub attribution_queued: AtomicU64,
    /// Places held by paid answers still generating (they count against the capacity).
    pub attribution_reserved: AtomicU64,
    pub attribution_capacity: AtomicU64,
    pub attribution_computing: AtomicU64,
    pub attribution_computed: AtomicU64,
    /// Jobs whose computation failed (no record: the fallback pays).
    pub attribution_failed: AtomicU64,
    /// Paid requests refused up front because the queue was full.
    pub attribution_refused: AtomicU64,
    /// Time to compute one record (on its worker).
    pub attribution_seconds: Histogram,
    /// From an answer's last token to its final chunk (or whole answer).
    pub final_chunk_delay: Histogram,
    pub ttft: Histogram,
    pub itl: Histogram,
    pub step_time: Histogram,
    pub queue_wait: Histogram,
    pub adapter_load: Histogram,
    started: std::time::Instant,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            queue_depth: AtomicU64::new(0),
            batch_size: AtomicU64::new(0),
            kv_free_blocks: AtomicU64::new(0),
            steps: AtomicU64::new(0),
            step_prompt_tokens_max: AtomicU64::new(0),
            tokens_out: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
            prompts_tokenized: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
            cache_misses: AtomicU64::new(0),
            cache_evictions: AtomicU64::new(0),
            held_tier_loads: AtomicU64::new(0),
            cache_bytes: AtomicU64::new(0),
            cache_adapters: AtomicU64::new(0),
            settlement_queued: AtomicU64::new(0),
            settlement_stuck: AtomicU64::new(0),
            settlement_settled: AtomicU64::new(0),
            settlement_dropped: AtomicU64::new(0),
            attribution_queued: AtomicU64::new(0),
            attribution_reserved: AtomicU64::new(0),
            attribution_capacity: AtomicU64::new(0),
            attribution_computing: AtomicU64::new(0),
            attribution_computed: AtomicU64::new(0),
            attribution_failed: AtomicU64::new(0),
            attribution_refused: AtomicU64::new(0),
            attribution_seconds: Histogram::new(LATENCY),
            final_chunk_delay: Histogram::new(LATENCY),
            ttft: Histogram::new(LATENCY),
            itl: Histogram::new(LATENCY),
            step_time: Histogram::new(LATENCY),
            queue_wait: Histogram::new(LATENCY),
            adapter_load: Histogram::new(LATENCY),
            started: std::time::Instant::now(),
        }
    }
}

impl Metrics {
    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);
        // (name, type, help, value) of every counter and gauge.
        let plain: [(&str, &str, &str, &AtomicU64); 28] = [
            ("openlora_queue_depth", "gauge", "Requests waiting for admission.", &self.queue_depth),
            ("openlora_batch_size", "gauge", "Sequences in the last step.", &self.batch_size),
            ("openlora_kv_free_blocks", "gauge", "Free KV cache blocks.", &self.kv_free_blocks),
            ("openlora_steps_total", "counter", "Forward steps.", &self.steps),
            (
                "openlora_step_prompt_tokens_max",
                "gauge",
                "The most prompt tokens one step has fed (at most the engine's prefill budget).",
                &self.step_prompt_tokens_max,
            ),
            ("openlora_generated_tokens_total", "counter", "Tokens generated.", &self.tokens_out),
            ("openlora_requests_completed_total", "counter", "Requests finished.", &self.completed),
            ("openlora_requests_cancelled_total", "counter", "Requests cancelled (client gone).", &self.cancelled),
            ("openlora_requests_rejected_total", "counter", "Requests refused (queue full, limits).", &self.rejected),
            (
                "openlora_requests_rate_limited_total",
                "counter",
                "Requests refused by a rate limit before their body was read.",
                &self.rate_limited,
            ),
            (
                "openlora_prompts_tokenized_total",
                "counter",
                "Prompts tokenized for generation requests.",
                &self.prompts_tokenized,
            ),
            ("openlora_adapter_cache_hits_total", "counter", "Adapter cache hits.", &self.cache_hits),
            ("openlora_adapter_cache_misses_total", "counter", "Adapter cache misses (loads).", &self.cache_misses),
            ("openlora_adapter_cache_evictions_total", "counter", "Adapters evicted.", &self.cache_evictions),
            (
                "openlora_adapter_held_tier_loads_total",
                "counter",
                "Adapter loads read from their held form on disk instead of the source.",
                &self.held_tier_loads,
            ),
            ("openlora_adapter_cache_bytes", "gauge", "Bytes of resident adapters.", &self.cache_bytes),
            ("openlora_adapter_cache_adapters", "gauge", "Resident adapters.", &self.cache_adapters),
            (
                "openledger_settlement_queued_receipts",
                "gauge",
                "Receipts billed, not yet settled on-chain.",
                &self.settlement_queued,
            ),
            (
                "openledger_settlement_stuck_receipts",
                "gauge",
                "Queued receipts a settlement round already failed to settle.",
                &self.settlement_stuck,
            ),
            ("openledger_settlement_settled_total", "counter", "Receipts settled on-chain.", &self.settlement_settled),
            (
                "openledger_settlement_dropped_total",
                "counter",
                "Receipts the chain refused for good, dropped and logged.",
                &self.settlement_dropped,
            ),
            (
                "openledger_attribution_queue_depth",
                "gauge",
                "Attribution jobs waiting for a worker.",
                &self.attribution_queued,
            ),
            (
                "openledger_attribution_queue_reserved",
                "gauge",
                "Places held by paid answers still generating (they count against the capacity).",
                &self.attribution_reserved,
            ),
            (
                "openledger_attribution_queue_capacity",
                "gauge",
                "Answers the attribution queue holds at most (generating or queued).",
                &self.attribution_capacity,
            ),
            (
                "openledger_attribution_computing",
                "gauge",
                "Attribution jobs being computed.",
                &self.attribution_computing,
            ),
            (
                "openledger_attribution_computed_total",
                "counter",
                "Attribution records computed.",
                &self.attribution_computed,
            ),
            (
                "openledger_attribution_failed_total",
                "counter",
                "Attribution jobs that failed (no record: the fallback pays).",
                &self.attribution_failed,
            ),
            (
                "openledger_attribution_refused_total",
                "counter",
                "Paid requests refused up front (503) because the attribution queue was full.",
                &self.attribution_refused,
            ),
        ];
        for (name, kind, help, v) in plain {
            s.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}\n", ld(v)));
        }
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        s.push_str(&format!(
            "# HELP openlora_tokens_per_second Generated tokens per second since start.\n# TYPE openlora_tokens_per_second gauge\nopenlora_tokens_per_second {}\n",
            ld(&self.tokens_out) as f64 / secs
        ));
        self.ttft.render("openlora_time_to_first_token_seconds", "Time from admission to the first token.", &mut s);
        self.itl.render("openlora_inter_token_latency_seconds", "Time between tokens of a sequence.", &mut s);
        self.step_time.render("openlora_step_seconds", "Time of one forward step.", &mut s);
        self.queue_wait.render("openlora_queue_wait_seconds", "Time a request waited for admission.", &mut s);
        self.adapter_load.render("openlora_adapter_load_seconds", "Time to load an adapter into the cache.", &mut s);
        self.attribution_seconds.render(
            "openledger_attribution_seconds",
            "Time to compute one attribution record.",
            &mut s,
        );
        self.final_chunk_delay.render(
            "openlora_final_chunk_delay_seconds",
            "Time from an answer's last token to its final chunk (billing, and the wait for its attribution summary).",
            &mut s,
        );
        s
    }
}
