//! What machine the figures come from.

use serde_json::{Value, json};

/// The machine a benchmark ran on.
#[derive(Clone, Debug)]
pub struct Machine {
    /// Logical CPUs available to this process.
    pub cores: usize,
    /// Total memory in bytes (`MemTotal` of /proc/meminfo), if known.
    pub mem_bytes: Option<u64>,
    /// CPU model name (/proc/cpuinfo), if known.
    pub cpu: Option<String>,
    /// `os-arch`.
    pub os: String,
    /// Whether this is an optimised build (debug figures mean little).
    pub release: bool,
}

impl Machine {
    pub fn detect() -> Machine {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mem_bytes = std::fs::read_to_string("/proc/meminfo").ok().and_then(|s| parse_meminfo_total(&s));
        let cpu = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        });
        Machine {
            cores,
            mem_bytes,
            cpu,
            os: format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH),
            release: !cfg!(debug_assertions),
        }
    }

    /// One line for a report.
    pub fn describe(&self) -> String {
        let mem = self
            .mem_bytes
            .map_or("memory unknown".to_string(), |b| format!("{:.1} GiB RAM", b as f64 / (1u64 << 30) as f64));
        format!(
            "{} cores, {mem}, {}, {}{}",
            self.cores,
            self.cpu.as_deref().unwrap_or("cpu unknown"),
            self.os,
            if self.release { "" } else { " — DEBUG BUILD: figures are meaningless, use --release" }
        )
    }

    pub fn to_json(&self) -> Value {
        json!({
            "cores": self.cores,
            "memBytes": self.mem_bytes,
            "cpu": self.cpu,
            "os": self.os,
            "release": self.release,
        })
    }
}

/// `MemTotal:  16318412 kB` → bytes.
fn parse_meminfo_total(s: &str) -> Option<u64> {
    let line = s.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut parts = line["MemTotal:".len()..].split_whitespace();
    let n: u64 = parts.next()?.parse().ok()?;
    match parts.next() {
        Some("kB") | None => Some(n * 1024),
        _ => None,
    }
}

/// Today's date, "YYYY-MM-DD" (UTC).
pub(crate) fn today() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()[..10].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo() {
        let s = "MemTotal:       16318412 kB\nMemFree:  1 kB\n";
        assert_eq!(parse_meminfo_total(s), Some(16318412 * 1024));
        assert_eq!(parse_meminfo_total("nothing"), None);
    }

    #[test]
    fn detect_does_not_fail() {
        let m = Machine::detect();
        assert!(m.cores >= 1);
        assert!(m.describe().contains("cores"));
        assert_eq!(today().len(), 10);
    }
}
