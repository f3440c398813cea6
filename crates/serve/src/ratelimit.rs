//! Request-rate limits of the OpenAI routes, applied before a request's body is
//! read: authenticated callers by account address, anonymous callers by their
//! network address (IPv4 address, or IPv6 /64 prefix).
//!
//! Each caller has a token bucket of `per_minute` requests refilled
//! continuously. Memory is bounded: a bucket that has refilled to full is the
//! same as no bucket, so idle callers are forgotten (swept at most once a second
//! when the table is full, and once a minute otherwise); when a table holds
//! `max_tracked` callers none of whom is idle, a new caller is refused (429)
//! rather than the table growing.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use primitives::Address;

/// Why [`RateLimiter::take`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateRefusal {
    /// This caller's bucket is empty; a request is available in `retry_after` seconds.
    Exhausted { retry_after: u64 },
    /// The table tracks `capacity` callers, all active; retry in `retry_after` seconds.
    TooManyCallers { capacity: usize, retry_after: u64 },
}

impl RateRefusal {
    /// Seconds for `Retry-After`.
    pub fn retry_after(&self) -> u64 {
        match *self {
            RateRefusal::Exhausted { retry_after } | RateRefusal::TooManyCallers { retry_after, .. } => retry_after,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

struct Table<K> {
    buckets: HashMap<K, Bucket>,
    last_sweep: Instant,
    /// When the sweep that found the table full expects a bucket to be idle.
    next_idle: Instant,
}

/// Token buckets keyed by caller, holding at most a bounded number of callers.
pub struct RateLimiter<K> {
    inner: Mutex<Table<K>>,
}

impl<K> Default for RateLimiter<K> {
    fn default() -> Self {
        let now = Instant::now();
        RateLimiter { inner: Mutex::new(Table { buckets: HashMap::new(), last_sweep: now, next_idle: now }) }
    }
}

/// How often the table is swept of idle buckets when it is not full.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// How often, at most, a full table is swept (a sweep visits every bucket).
const FULL_SWEEP_EVERY: Duration = Duration::from_secs(1);

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    /// Take one request for `who` from a bucket of `per_minute` requests (0:
    /// unlimited, nothing tracked), tracking at most `max_tracked` callers.
    pub fn take(&self, who: &K, per_minute: u32, max_tracked: usize) -> Result<(), RateRefusal> {
        if per_minute == 0 {
            return Ok(());
        }
        let cap = per_minute as f64;
        let rate = cap / 60.0;
        let now = Instant::now();
        let mut t = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let since_sweep = now.saturating_duration_since(t.last_sweep);
        let full = t.buckets.len() >= max_tracked && !t.buckets.contains_key(who);
        if since_sweep >= SWEEP_EVERY || (full && since_sweep >= FULL_SWEEP_EVERY) {
            t.sweep(now, cap, rate);
        }
        if t.buckets.len() >= max_tracked && !t.buckets.contains_key(who) {
            let wait = t.next_idle.max(t.last_sweep + FULL_SWEEP_EVERY).saturating_duration_since(now);
            return Err(RateRefusal::TooManyCallers {
                capacity: max_tracked,
                retry_after: wait.as_secs_f64().ceil().max(1.0) as u64,
            });
        }
        let b = t.buckets.entry(who.clone()).or_insert(Bucket { tokens: cap, at: now });
        b.tokens = (b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate).min(cap);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(RateRefusal::Exhausted { retry_after: ((1.0 - b.tokens) / rate).ceil().max(1.0) as u64 })
        }
    }

    /// Callers tracked now (idle ones included until the next sweep).
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).buckets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<K: Hash + Eq> Table<K> {
    /// Forget every bucket that has refilled to `cap` (the same as no bucket).
    fn sweep(&mut self, now: Instant, cap: f64, rate: f64) {
        let mut soonest = f64::INFINITY;
        self.buckets.retain(|_, b| {
            let tokens = b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate;
            let keep = tokens < cap;
            if keep {
                soonest = soonest.min((cap - tokens) / rate);
            }
            keep
        });
        self.last_sweep = now;
        self.next_idle = now + Duration::from_secs_f64(if soonest.is_finite() { soonest } else { 0.0 });
    }
}

/// The network a caller's address belongs to, for the anonymous limit: an IPv4
/// address as is (IPv4-mapped IPv6 included), an IPv6 address by its /64 prefix
/// (one host commonly holds a whole /64).
pub fn network_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

/// The two tables of the OpenAI routes: callers by account, anonymous callers by network.
#[derive(Default)]
pub struct RateLimits {
    pub accounts: RateLimiter<Address>,
    pub networks: RateLimiter<IpAddr>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_refill_idle_callers_are_forgotten_and_a_full_table_refuses() {
        let l = RateLimiter::<u32>::default();
        for _ in 0..3 {
            l.take(&1, 3, 2).unwrap();
        }
        assert!(matches!(l.take(&1, 3, 2), Err(RateRefusal::Exhausted { retry_after }) if retry_after >= 1));
        l.take(&2, 3, 2).unwrap();
        // Two active callers fill a table of two: a third is refused, not tracked.
        assert!(matches!(l.take(&3, 3, 2), Err(RateRefusal::TooManyCallers { capacity: 2, .. })));
        assert_eq!(l.len(), 2);
        // A caller whose bucket refilled is swept to make room.
        {
            let mut t = l.inner.lock().unwrap();
            let past = Instant::now() - Duration::from_secs(120);
            t.buckets.get_mut(&2).unwrap().at = past;
            t.last_sweep = past;
        }
        l.take(&3, 3, 2).unwrap();
        assert_eq!(l.len(), 2);
        // Unlimited tracks nothing.
        l.take(&9, 0, 2).unwrap();
        assert_eq!(l.len(), 2);
    }

    #[test]
    fn ipv6_callers_are_grouped_by_their_64_prefix() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(network_of(a), network_of(b));
        assert_ne!(network_of(a), network_of(c));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(network_of(mapped), "10.0.0.1".parse::<IpAddr>().unwrap());
    }
}
