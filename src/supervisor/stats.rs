//! Counters of everything the supervisor does, for `syscont-supervisor
//! --stats`: per container, per syscall and outcome, with latency.
//!
//! Counters are atomics that only go up; the event loops update them with
//! relaxed stores and the stats socket reads a snapshot at any time.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::emulate::EmulatedFile;
use crate::kernel::arch::Sys;

/// How a trapped call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Answered by the supervisor (emulated file, sysinfo figures).
    Emulated,
    /// Let through to the kernel.
    Continued,
    /// Failed with an errno chosen by the supervisor.
    Errno,
    /// The caller was gone before the answer.
    Gone,
}

impl Outcome {
    const ALL: [Outcome; 4] = [
        Outcome::Emulated,
        Outcome::Continued,
        Outcome::Errno,
        Outcome::Gone,
    ];
}

const BUCKETS: usize = 24;

/// Counters of one syscall in one container.
#[derive(Debug, Default)]
pub struct SysCounters {
    by_outcome: [AtomicU64; 4],
    latency_ns_total: AtomicU64,
    latency_ns_max: AtomicU64,
    /// Bucket `i` counts calls that took less than 2^i µs (the last: more).
    histogram: [AtomicU64; BUCKETS],
}

impl SysCounters {
    /// Add another counter's figures to this one.
    fn absorb(&self, o: &SysCounters) {
        for (a, b) in self.by_outcome.iter().zip(o.by_outcome.iter()) {
            a.fetch_add(b.load(Relaxed), Relaxed);
        }
        self.latency_ns_total
            .fetch_add(o.latency_ns_total.load(Relaxed), Relaxed);
        self.latency_ns_max
            .fetch_max(o.latency_ns_max.load(Relaxed), Relaxed);
        for (a, b) in self.histogram.iter().zip(o.histogram.iter()) {
            a.fetch_add(b.load(Relaxed), Relaxed);
        }
    }

    fn record(&self, outcome: Outcome, took: Duration) {
        self.by_outcome[outcome as usize].fetch_add(1, Relaxed);
        let ns = took.as_nanos().min(u64::MAX as u128) as u64;
        self.latency_ns_total.fetch_add(ns, Relaxed);
        self.latency_ns_max.fetch_max(ns, Relaxed);
        let us = ns / 1000;
        let bucket = (u64::BITS - us.leading_zeros()) as usize;
        self.histogram[bucket.min(BUCKETS - 1)].fetch_add(1, Relaxed);
    }
}

/// Counters of one container.
#[derive(Debug)]
pub struct ContainerCounters {
    pub id: String,
    pub first_seen_unix: u64,
    pub fds_registered: AtomicU64,
    pub fds_active: AtomicU64,
    pub refreshes: AtomicU64,
    /// Set-id and file capability changes refused on ID-mapped mounts.
    pub setid_refused: AtomicU64,
    /// Changes to the protected mounts over /proc and /sys refused.
    pub mounts_refused: AtomicU64,
    /// Calls a killed supervisor had received and not answered, served
    /// from their in-flight records.
    pub recovered: AtomicU64,
    per_sys: [SysCounters; Sys::ALL.len()],
    per_file: [AtomicU64; EmulatedFile::ALL.len()],
}

impl ContainerCounters {
    pub fn new(id: &str) -> Self {
        ContainerCounters {
            id: id.to_string(),
            first_seen_unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            fds_registered: AtomicU64::new(0),
            fds_active: AtomicU64::new(0),
            refreshes: AtomicU64::new(0),
            setid_refused: AtomicU64::new(0),
            mounts_refused: AtomicU64::new(0),
            recovered: AtomicU64::new(0),
            per_sys: Default::default(),
            per_file: Default::default(),
        }
    }

    /// Count one trapped call.
    pub fn record(&self, sys: Sys, outcome: Outcome, took: Duration) {
        self.per_sys[sys.index()].record(outcome, took);
    }

    /// Count one emulated file served.
    pub fn served(&self, file: EmulatedFile) {
        if let Some(i) = EmulatedFile::ALL.iter().position(|f| *f == file) {
            self.per_file[i].fetch_add(1, Relaxed);
        }
    }
}

/// Process-wide counters and the set of containers.
#[derive(Debug, Default)]
pub struct Stats {
    pub connections_accepted: AtomicU64,
    pub refused_peer: AtomicU64,
    pub refused_payload: AtomicU64,
    pub containers_gone: AtomicU64,
    pub sync_wake_up: AtomicU64,
    containers: Mutex<BTreeMap<String, Arc<ContainerCounters>>>,
    /// Calls of containers that are gone, so totals never go down (one
    /// aggregate: memory does not grow with the containers that came and
    /// went).
    retired: [SysCounters; Sys::ALL.len()],
}

/// Serialisable snapshot (`--stats --json`).
#[derive(Debug, Serialize, Deserialize)]
pub struct Snapshot {
    pub connections_accepted: u64,
    pub refused_peer: u64,
    pub refused_payload: u64,
    pub containers_gone: u64,
    pub sync_wake_up: bool,
    pub containers: Vec<ContainerSnapshot>,
    pub totals: BTreeMap<String, SysSnapshot>,
    pub memory: MemSnapshot,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct MemSnapshot {
    pub rss_kib: u64,
    pub fds_active: u64,
    pub rss_kib_per_active_fd: Option<f64>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ContainerSnapshot {
    pub id: String,
    pub first_seen_unix: u64,
    pub fds_registered: u64,
    pub fds_active: u64,
    pub refreshes: u64,
    /// Set-id and file capability changes refused on ID-mapped mounts.
    #[serde(default)]
    pub setid_refused: u64,
    /// Changes to the protected mounts over /proc and /sys refused.
    #[serde(default)]
    pub mounts_refused: u64,
    /// Calls a killed supervisor left unanswered, served after restart.
    #[serde(default)]
    pub recovered: u64,
    pub syscalls: BTreeMap<String, SysSnapshot>,
    pub files: BTreeMap<String, u64>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct SysSnapshot {
    pub emulated: u64,
    pub continued: u64,
    pub errno: u64,
    pub gone: u64,
    pub mean_us: f64,
    pub max_us: f64,
    /// `[upper bound in µs, count]` pairs.
    pub histogram: Vec<(u64, u64)>,
}

impl SysSnapshot {
    fn total(&self) -> u64 {
        self.emulated + self.continued + self.errno + self.gone
    }

    fn add(&mut self, c: &SysCounters) {
        let before = self.total();
        let v: Vec<u64> = Outcome::ALL
            .iter()
            .map(|o| c.by_outcome[*o as usize].load(Relaxed))
            .collect();
        self.emulated += v[0];
        self.continued += v[1];
        self.errno += v[2];
        self.gone += v[3];
        let n = self.total();
        let total_ns = c.latency_ns_total.load(Relaxed) as f64;
        if n > 0 {
            self.mean_us = (self.mean_us * before as f64 + total_ns / 1000.0) / n as f64;
        }
        self.max_us = self
            .max_us
            .max(c.latency_ns_max.load(Relaxed) as f64 / 1000.0);
        if self.histogram.is_empty() {
            self.histogram = (0..BUCKETS).map(|i| (1u64 << i, 0)).collect();
        }
        for (i, h) in c.histogram.iter().enumerate() {
            self.histogram[i].1 += h.load(Relaxed);
        }
    }
}

fn own_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

impl Stats {
    /// Counters of container `id`, created on first use.
    pub fn container(&self, id: &str) -> Arc<ContainerCounters> {
        let mut map = self.containers.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(id.to_string())
            .or_insert_with(|| Arc::new(ContainerCounters::new(id)))
            .clone()
    }

    /// Container `id` is gone: keep its calls in the totals only.
    pub fn retire(&self, id: &str) {
        let gone = self
            .containers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        if let Some(c) = gone {
            self.containers_gone.fetch_add(1, Relaxed);
            for sys in Sys::ALL {
                self.retired[sys.index()].absorb(&c.per_sys[sys.index()]);
            }
        }
    }

    /// A snapshot of every counter.
    pub fn snapshot(&self) -> Snapshot {
        let live: Vec<Arc<ContainerCounters>> = self
            .containers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        let mut totals: BTreeMap<String, SysSnapshot> = BTreeMap::new();
        for sys in Sys::ALL {
            let t = totals.entry(sys.name().to_string()).or_default();
            t.add(&self.retired[sys.index()]);
            for c in &live {
                t.add(&c.per_sys[sys.index()]);
            }
        }
        totals.retain(|_, s| s.total() > 0);
        let containers: Vec<ContainerSnapshot> = live
            .iter()
            .map(|c| {
                let mut syscalls = BTreeMap::new();
                for sys in Sys::ALL {
                    let mut s = SysSnapshot::default();
                    s.add(&c.per_sys[sys.index()]);
                    if s.total() > 0 {
                        syscalls.insert(sys.name().to_string(), s);
                    }
                }
                let files = EmulatedFile::ALL
                    .iter()
                    .enumerate()
                    .map(|(i, f)| (f.name().to_string(), c.per_file[i].load(Relaxed)))
                    .filter(|(_, n)| *n > 0)
                    .collect();
                ContainerSnapshot {
                    id: c.id.clone(),
                    first_seen_unix: c.first_seen_unix,
                    fds_registered: c.fds_registered.load(Relaxed),
                    fds_active: c.fds_active.load(Relaxed),
                    refreshes: c.refreshes.load(Relaxed),
                    setid_refused: c.setid_refused.load(Relaxed),
                    mounts_refused: c.mounts_refused.load(Relaxed),
                    recovered: c.recovered.load(Relaxed),
                    syscalls,
                    files,
                }
            })
            .collect();
        let fds_active: u64 = containers.iter().map(|c| c.fds_active).sum();
        let rss = own_rss_kib();
        Snapshot {
            connections_accepted: self.connections_accepted.load(Relaxed),
            refused_peer: self.refused_peer.load(Relaxed),
            refused_payload: self.refused_payload.load(Relaxed),
            containers_gone: self.containers_gone.load(Relaxed),
            sync_wake_up: self.sync_wake_up.load(Relaxed) > 0,
            containers,
            totals,
            memory: MemSnapshot {
                rss_kib: rss,
                fds_active,
                rss_kib_per_active_fd: (fds_active > 0).then(|| rss as f64 / fds_active as f64),
            },
        }
    }
}

impl Snapshot {
    /// Human-readable report.
    pub fn to_text(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "syscont-supervisor: {} containers, {} notification fds, RSS {} KiB, SYNC_WAKE_UP {}",
            self.containers.len(),
            self.memory.fds_active,
            self.memory.rss_kib,
            if self.sync_wake_up { "on" } else { "off" }
        );
        let _ = writeln!(
            o,
            "agent connections: {} accepted, {} refused (peer not root), {} refused (bad payload); containers gone: {}",
            self.connections_accepted, self.refused_peer, self.refused_payload, self.containers_gone
        );
        let table = |o: &mut String, rows: &BTreeMap<String, SysSnapshot>| {
            let _ = writeln!(
                o,
                "  {:<10} {:>10} {:>10} {:>8} {:>8} {:>10} {:>10}",
                "syscall", "emulated", "continued", "errno", "gone", "mean µs", "max µs"
            );
            for (name, s) in rows {
                let _ = writeln!(
                    o,
                    "  {:<10} {:>10} {:>10} {:>8} {:>8} {:>10.1} {:>10.1}",
                    name, s.emulated, s.continued, s.errno, s.gone, s.mean_us, s.max_us
                );
            }
        };
        let _ = writeln!(o, "all containers since start:");
        table(&mut o, &self.totals);
        for c in &self.containers {
            let _ = writeln!(
                o,
                "container {} ({} fds now, {} registered, {} rewinds refreshed, {} set-id changes refused, {} protected-mount changes refused, {} unanswered calls recovered)",
                c.id, c.fds_active, c.fds_registered, c.refreshes, c.setid_refused, c.mounts_refused, c.recovered
            );
            table(&mut o, &c.syscalls);
            if !c.files.is_empty() {
                let files: Vec<String> = c.files.iter().map(|(f, n)| format!("{f}={n}")).collect();
                let _ = writeln!(o, "  files served: {}", files.join(" "));
            }
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_totals_survive_retirement() {
        let s = Stats::default();
        let c = s.container("abc");
        c.record(Sys::Openat, Outcome::Continued, Duration::from_micros(3));
        c.record(Sys::Openat, Outcome::Emulated, Duration::from_micros(30));
        c.served(EmulatedFile::Meminfo);
        let snap = s.snapshot();
        assert_eq!(snap.containers.len(), 1);
        let o = &snap.containers[0].syscalls["openat"];
        assert_eq!((o.continued, o.emulated), (1, 1));
        assert!((o.mean_us - 16.5).abs() < 0.01);
        assert_eq!(o.max_us, 30.0);
        assert_eq!(snap.containers[0].files["meminfo"], 1);
        s.retire("abc");
        let snap = s.snapshot();
        assert!(snap.containers.is_empty());
        assert_eq!(snap.totals["openat"].continued, 1);
        assert!(snap.to_text().contains("openat"));
    }
}
