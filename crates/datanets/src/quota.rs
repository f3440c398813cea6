//! The node's own per-contributor upload quota: bytes and files per UTC day
//! across all Datanets on this node.
//!
//! An upload costs the node reading, parsing, deduplication and storage before
//! any transaction pays for it; the on-chain Datanet daily limits apply only
//! when the contribution is submitted. So the ingest route takes an upload from
//! this quota before it reads the body: by its `Content-Length` when given (a
//! body without one is read only up to what is left), then counts it again by
//! the bytes actually read. Every upload admitted counts, whatever its outcome
//! (the node did the work). Memory is bounded: usage is kept for the current
//! UTC day only, for at most `max_tracked_contributors` contributors (a new
//! contributor beyond that is refused until the day ends).

use std::collections::HashMap;
use std::sync::Mutex;

use primitives::Address;

/// Seconds in a UTC day (unix time has no leap seconds).
const DAY: u64 = 86_400;

/// Per-contributor limits on uploads to this node (`openledger.toml`:
/// `ingest_daily_bytes_per_contributor`, `ingest_daily_files_per_contributor`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngestQuota {
    /// Bytes of upload bodies one contributor may send per UTC day (default 50 MB, 50,000,000).
    pub daily_bytes: u64,
    /// Uploads one contributor may send per UTC day (default 100).
    pub daily_files: u32,
    /// Most contributors tracked in one day (default 100,000).
    pub max_tracked_contributors: usize,
}

impl Default for IngestQuota {
    fn default() -> Self {
        IngestQuota { daily_bytes: 50_000_000, daily_files: 100, max_tracked_contributors: 100_000 }
    }
}

/// Why an upload was refused by the quota (answered 429 with `Retry-After`
/// until the end of the UTC day).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuotaRefusal {
    #[error(
        "{who} has sent {used} of its {limit} uploads per UTC day to this node; the quota resets at 00:00 UTC \
         (in {reset_in} s)"
    )]
    Files { who: Address, used: u32, limit: u32, reset_in: u64 },
    #[error(
        "{who} has sent {used} of its {limit} bytes per UTC day of uploads to this node{}; the quota resets at \
         00:00 UTC (in {reset_in} s)",
        match upload { Some(n) => format!(" and this upload of {n} bytes would exceed it"), None => String::new() }
    )]
    Bytes { who: Address, used: u64, upload: Option<u64>, limit: u64, reset_in: u64 },
    #[error(
        "this node has taken uploads from {capacity} contributors today, its most; new contributors are \
         refused until 00:00 UTC (in {reset_in} s)"
    )]
    TooManyContributors { capacity: usize, reset_in: u64 },
}

impl QuotaRefusal {
    /// The stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            QuotaRefusal::Files { .. } => "daily_files_quota",
            QuotaRefusal::Bytes { .. } => "daily_bytes_quota",
            QuotaRefusal::TooManyContributors { .. } => "too_many_contributors",
        }
    }

    /// Seconds until the quota resets.
    pub fn reset_in(&self) -> u64 {
        match *self {
            QuotaRefusal::Files { reset_in, .. }
            | QuotaRefusal::Bytes { reset_in, .. }
            | QuotaRefusal::TooManyContributors { reset_in, .. } => reset_in,
        }
    }
}

/// An admitted upload: what was reserved, and how much of the body may be read.
#[derive(Debug, Clone, Copy)]
pub struct QuotaTicket {
    day: u64,
    reserved: u64,
    /// Read at most this many bytes of the body: more would exceed the quota.
    pub read_limit: u64,
}

#[derive(Debug, Default, Clone, Copy)]
struct Usage {
    bytes: u64,
    files: u32,
}

#[derive(Debug, Default)]
struct Today {
    day: u64,
    used: HashMap<Address, Usage>,
}

/// Uploads per contributor today, against an [`IngestQuota`].
#[derive(Debug)]
pub struct IngestLedger {
    quota: IngestQuota,
    today: Mutex<Today>,
}

impl IngestLedger {
    pub fn new(quota: IngestQuota) -> Self {
        IngestLedger { quota, today: Mutex::new(Today::default()) }
    }

    pub fn quota(&self) -> IngestQuota {
        self.quota
    }

    /// Take one upload of `announced` bytes (its `Content-Length`; `None`:
    /// unknown, reserve what may be read) from `who`'s quota at unix time `now`,
    /// reading at most `max_read` bytes; or refuse it, counting nothing.
    pub fn admit(
        &self,
        who: Address,
        announced: Option<u64>,
        max_read: u64,
        now: u64,
    ) -> Result<QuotaTicket, QuotaRefusal> {
        let q = self.quota;
        let day = now / DAY;
        let reset_in = (day + 1) * DAY - now;
        let mut t = self.today.lock().unwrap_or_else(|e| e.into_inner());
        if t.day != day {
            t.used.clear();
            t.used.shrink_to_fit();
            t.day = day;
        }
        let u = match t.used.get(&who) {
            Some(u) => *u,
            None if t.used.len() >= q.max_tracked_contributors => {
                return Err(QuotaRefusal::TooManyContributors { capacity: q.max_tracked_contributors, reset_in });
            }
            None => Usage::default(),
        };
        if u.files >= q.daily_files {
            return Err(QuotaRefusal::Files { who, used: u.files, limit: q.daily_files, reset_in });
        }
        let left = q.daily_bytes.saturating_sub(u.bytes);
        if left == 0 || announced.is_some_and(|n| n > left) {
            return Err(QuotaRefusal::Bytes { who, used: u.bytes, upload: announced, limit: q.daily_bytes, reset_in });
        }
        let read_limit = left.min(max_read);
        let reserved = announced.unwrap_or(read_limit);
        t.used.insert(who, Usage { bytes: u.bytes + reserved, files: u.files + 1 });
        Ok(QuotaTicket { day, reserved, read_limit })
    }

    /// Count an admitted upload by the `actual` bytes read instead of what was reserved.
    pub fn settle(&self, who: Address, ticket: QuotaTicket, actual: u64) {
        let mut t = self.today.lock().unwrap_or_else(|e| e.into_inner());
        if t.day != ticket.day {
            return;
        }
        if let Some(u) = t.used.get_mut(&who) {
            u.bytes = u.bytes.saturating_sub(ticket.reserved).saturating_add(actual);
        }
    }

    /// Contributors tracked today.
    pub fn len(&self) -> usize {
        self.today.lock().unwrap_or_else(|e| e.into_inner()).used.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_count_by_announced_then_actual_size_reset_daily_and_memory_is_bounded() {
        let l = IngestLedger::new(IngestQuota { daily_bytes: 1000, daily_files: 3, max_tracked_contributors: 2 });
        let (a, b, c) = (Address::repeat_byte(1), Address::repeat_byte(2), Address::repeat_byte(3));
        let now = 10 * DAY + 100;
        // Announced 600: reserved; read 500 in the end: counted 500.
        let t = l.admit(a, Some(600), 10_000, now).unwrap();
        l.settle(a, t, 500);
        // 501 announced would exceed the 500 left.
        let r = l.admit(a, Some(501), 10_000, now).unwrap_err();
        assert!(matches!(r, QuotaRefusal::Bytes { used: 500, limit: 1000, .. }), "{r:?}");
        assert_eq!(r.reset_in(), DAY - 100);
        // Unknown length: read at most what is left.
        let t = l.admit(a, None, 10_000, now).unwrap();
        assert_eq!(t.read_limit, 500);
        l.settle(a, t, 100);
        l.admit(a, Some(10), 10_000, now).unwrap();
        // Three files a day.
        assert!(matches!(l.admit(a, Some(1), 10_000, now), Err(QuotaRefusal::Files { used: 3, limit: 3, .. })));
        // Others are unaffected, up to the number tracked.
        l.admit(b, Some(1000), 10_000, now).unwrap();
        assert!(matches!(l.admit(c, Some(1), 10_000, now), Err(QuotaRefusal::TooManyContributors { .. })));
        // A new UTC day starts afresh.
        l.admit(a, Some(1000), 10_000, now + DAY).unwrap();
        assert_eq!(l.len(), 1);
    }
}
