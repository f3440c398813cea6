//! A node's memory and CPU over a run: the resident set size of its whole
//! process group (the node leads its own group, so a peer that forks counts
//! whole), read from `/proc/<pid>/status` (`VmRSS`) every [`INTERVAL`] while
//! the run goes, the group's CPU time from `/proc/<pid>/stat`, and a cap past
//! which the bench kills the group rather than let a node take the shared
//! machine down.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Time between samples.
pub(crate) const INTERVAL: Duration = Duration::from_millis(250);
const MIB: f64 = 1024.0 * 1024.0;
/// Clock ticks per second of `/proc/<pid>/stat` times (USER_HZ, 100 on Linux).
const TICKS_PER_S: f64 = 100.0;

/// `VmRSS` of a `/proc/<pid>/status` text, in bytes (the kernel writes kB,
/// meaning KiB). `None` for a kernel thread or a zombie, which have none.
pub(crate) fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut words = line["VmRSS:".len()..].split_whitespace();
    let n: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") => Some(n * 1024),
        _ => None,
    }
}

/// The process group and the CPU time (user + system, clock ticks) of a
/// `/proc/<pid>/stat` text. The command name (field 2) sits in parentheses and
/// may hold spaces or parentheses itself, so fields are counted from the last
/// `)`: state, ppid, pgrp, ..., utime (the 12th after it), stime.
pub(crate) fn parse_stat(stat: &str) -> Option<(u32, u64)> {
    let rest: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    let pgrp = rest.get(2)?.parse().ok()?;
    let utime: u64 = rest.get(11)?.parse().ok()?;
    let stime: u64 = rest.get(12)?.parse().ok()?;
    Some((pgrp, utime + stime))
}

/// One reading of a process group.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Sample {
    /// Seconds since the sampler started.
    pub t_s: f64,
    /// Summed RSS, bytes.
    pub rss: u64,
    /// Summed CPU time of the live processes, clock ticks.
    pub cpu_ticks: u64,
}

/// The summed RSS (bytes) and CPU time (ticks) of every process in group
/// `pgid`; `None` when no process of the group is left (or there is no `/proc`).
fn read_group(pgid: u32) -> Option<(u64, u64)> {
    let mut total = None;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().filter(|s| s.bytes().all(|b| b.is_ascii_digit())) else {
            continue;
        };
        let Some((group, ticks)) =
            std::fs::read_to_string(format!("/proc/{pid}/stat")).ok().and_then(|s| parse_stat(&s))
        else {
            continue;
        };
        if group != pgid {
            continue;
        }
        if let Some(rss) = std::fs::read_to_string(format!("/proc/{pid}/status")).ok().and_then(|s| parse_vm_rss(&s)) {
            let t = total.get_or_insert((0, 0));
            t.0 += rss;
            t.1 += ticks;
        }
    }
    total
}

/// A node's memory and CPU over one run.
#[derive(Clone, Debug, Default)]
pub(crate) struct UsageFigures {
    /// Every [`INTERVAL`], and one when the run was over.
    pub samples: Vec<Sample>,
    /// When the group passed the cap and was killed: the RSS that passed it.
    pub killed_at: Option<u64>,
}

impl UsageFigures {
    pub fn peak(&self) -> Option<u64> {
        self.samples.iter().map(|s| s.rss).max()
    }

    /// The last sample: the RSS when the run (receipts checked) was over.
    pub fn end(&self) -> Option<u64> {
        self.samples.last().map(|s| s.rss)
    }

    /// CPU seconds the group spent between the first and the last sample.
    pub fn cpu_s(&self) -> Option<f64> {
        let (first, last) = (self.samples.first()?, self.samples.last()?);
        (self.samples.len() > 1).then(|| last.cpu_ticks.saturating_sub(first.cpu_ticks) as f64 / TICKS_PER_S)
    }

    pub fn peak_mib(&self) -> Option<f64> {
        self.peak().map(|b| b as f64 / MIB)
    }

    pub fn end_mib(&self) -> Option<f64> {
        self.end().map(|b| b as f64 / MIB)
    }

    /// `rss peak 123 MiB, end 120 MiB, cpu 1.20 s` (or why there is none).
    pub fn describe(&self) -> String {
        match (self.peak_mib(), self.end_mib()) {
            (Some(p), Some(e)) => match self.cpu_s() {
                Some(c) => format!("rss peak {p:.0} MiB, end {e:.0} MiB, cpu {c:.2} s"),
                None => format!("rss peak {p:.0} MiB, end {e:.0} MiB"),
            },
            _ => "rss n/a".into(),
        }
    }

    /// The samples as `[[seconds, RSS MiB, CPU s], ...]` for `--json-out`.
    pub fn to_json(&self) -> Value {
        let t0 = self.samples.first().map_or(0, |s| s.cpu_ticks);
        json!({
            "peakMib": self.peak_mib(),
            "endMib": self.end_mib(),
            "cpuS": self.cpu_s(),
            "killedAtMib": self.killed_at.map(|b| b as f64 / MIB),
            "intervalMs": INTERVAL.as_millis() as u64,
            "samples": self.samples.iter().map(|s| json!([
                (s.t_s * 1000.0).round() / 1000.0,
                (s.rss as f64 / MIB * 10.0).round() / 10.0,
                s.cpu_ticks.saturating_sub(t0) as f64 / TICKS_PER_S,
            ])).collect::<Vec<_>>(),
        })
    }
}

/// Samples a process group's RSS on its own thread until stopped.
pub(crate) struct UsageSampler {
    stop: mpsc::Sender<()>,
    killed_at: Arc<AtomicU64>,
    thread: JoinHandle<Vec<Sample>>,
}

impl UsageSampler {
    /// Start sampling group `pgid`; past `cap_bytes` the whole group gets SIGKILL.
    pub fn start(pgid: u32, cap_bytes: u64) -> Self {
        let (stop, rx) = mpsc::channel::<()>();
        let killed_at = Arc::new(AtomicU64::new(0));
        let killed = killed_at.clone();
        let thread = std::thread::spawn(move || {
            let t0 = Instant::now();
            let mut samples = Vec::new();
            loop {
                if let Some((rss, cpu_ticks)) = read_group(pgid) {
                    samples.push(Sample { t_s: t0.elapsed().as_secs_f64(), rss, cpu_ticks });
                    if rss > cap_bytes && killed.load(Ordering::Relaxed) == 0 {
                        killed.store(rss, Ordering::Relaxed);
                        kill_group(pgid);
                    }
                }
                match rx.recv_timeout(INTERVAL) {
                    Err(RecvTimeoutError::Timeout) => continue,
                    // Stopped: one last sample, the RSS at the end of the run.
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                        if let Some((rss, cpu_ticks)) = read_group(pgid) {
                            samples.push(Sample { t_s: t0.elapsed().as_secs_f64(), rss, cpu_ticks });
                        }
                        return samples;
                    }
                }
            }
        });
        UsageSampler { stop, killed_at, thread }
    }

    /// Stop (after a last sample) and return the figures.
    pub fn finish(self) -> UsageFigures {
        let _ = self.stop.send(());
        let samples = self.thread.join().unwrap_or_default();
        let k = self.killed_at.load(Ordering::Relaxed);
        UsageFigures { samples, killed_at: (k > 0).then_some(k) }
    }
}

/// SIGKILL to a whole process group.
pub(super) fn kill_group(pgid: u32) {
    let _ = std::process::Command::new("kill")
        .args(["-s", "KILL", "--", &format!("-{pgid}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_rss_from_a_status_text() {
        let status = "Name:\tanvil\nState:\tS (sleeping)\nVmPeak:\t 9000 kB\nVmRSS:\t  123456 kB\nThreads:\t7\n";
        assert_eq!(parse_vm_rss(status), Some(123_456 * 1024));
        // A kernel thread has no VmRSS line; a mangled one is not a number.
        assert_eq!(parse_vm_rss("Name:\tkthreadd\nState:\tS\n"), None);
        assert_eq!(parse_vm_rss("VmRSS:\tlots kB\n"), None);
        assert_eq!(parse_vm_rss("VmRSS:\t12 MB\n"), None);
    }

    #[test]
    fn process_group_and_cpu_from_a_stat_text() {
        let stat = "4242 (anvil) S 1 4242 4242 0 -1 4194560 1000 0 3 0 250 40 0 0 20 0 7 0 12345 999 77";
        assert_eq!(parse_stat(stat), Some((4242, 290)));
        // A command name with spaces and a parenthesis.
        assert_eq!(parse_stat("77 (node (x) y) R 76 70 70 0 -1 0 0 0 0 0 5 6 0 0"), Some((70, 11)));
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("1 (init) S 0 1 1 0"), None);
        assert_eq!(parse_stat("1 (init) S 0 x 1 0 -1 0 0 0 0 0 5 6"), None);
    }

    #[test]
    fn figures_peak_end_and_json() {
        let s = |t_s, mib: u64, cpu_ticks| Sample { t_s, rss: mib << 20, cpu_ticks };
        let f = UsageFigures { samples: vec![s(0.0, 10, 500), s(0.25, 30, 520), s(0.5, 20, 550)], killed_at: None };
        assert_eq!(f.peak(), Some(30 << 20));
        assert_eq!(f.end(), Some(20 << 20));
        assert_eq!(f.cpu_s(), Some(0.5));
        assert_eq!(f.describe(), "rss peak 30 MiB, end 20 MiB, cpu 0.50 s");
        let j = f.to_json();
        assert_eq!(j["peakMib"], 30.0);
        assert_eq!(j["samples"][1], json!([0.25, 30.0, 0.2]));
        assert_eq!(UsageFigures::default().describe(), "rss n/a");
        assert_eq!(UsageFigures::default().cpu_s(), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn samples_a_real_process_group_and_kills_it_past_the_cap() {
        use std::os::unix::process::CommandExt;
        let mut child = std::process::Command::new("sleep").arg("30").process_group(0).spawn().unwrap();
        let pgid = child.id();
        let s = UsageSampler::start(pgid, u64::MAX);
        std::thread::sleep(INTERVAL * 2);
        let f = s.finish();
        assert!(f.samples.len() >= 2, "{:?}", f.samples);
        assert!(f.peak().unwrap() > 0 && f.killed_at.is_none());
        // A cap of one byte: the first sample kills the group.
        let s = UsageSampler::start(pgid, 1);
        let status = child.wait().unwrap();
        let f = s.finish();
        assert!(!status.success());
        assert!(f.killed_at.is_some(), "{f:?}");
    }
}
