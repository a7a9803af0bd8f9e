//! Counting a container's tasks by state: for `/proc/stat`'s
//! `procs_running`/`procs_blocked`, `/proc/loadavg` and `sysinfo(2)`.

use std::fmt::Write as _;
use std::path::Path;

use super::host::{read_into, stat_after_comm};

/// What the renderers need to know about a container's tasks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TaskCounts {
    /// Tasks (threads) in the container.
    pub total: u32,
    /// In state R.
    pub running: u32,
    /// In state D (uninterruptible; counted by the load average).
    pub blocked: u32,
    /// The highest pid of the container, in the container's pid namespace
    /// when the host tells it (`NSpid`), else the host's.
    pub last_pid: u32,
}

impl TaskCounts {
    /// Tasks the load average counts: running and uninterruptible.
    pub fn active(&self) -> u64 {
        u64::from(self.running) + u64::from(self.blocked)
    }
}

/// Classify the host tids `tids` (sorted) by reading `<proc>/<tid>/stat`.
/// Tasks that exited meanwhile are not counted.
pub fn count(proc_root: &Path, tids: &[u32], buf: &mut Vec<u8>) -> TaskCounts {
    let mut c = TaskCounts::default();
    let mut paths = TidPaths::new(proc_root);
    let mut highest = None;
    for &tid in tids {
        if read_into(paths.get(tid, "stat"), buf).is_err() {
            continue;
        }
        let Some(state) = stat_after_comm(buf).and_then(|r| r.first().copied()) else {
            continue;
        };
        c.total += 1;
        match state {
            b'R' => c.running += 1,
            b'D' => c.blocked += 1,
            _ => {}
        }
        highest = Some(tid);
    }
    if let Some(tid) = highest {
        c.last_pid = tid;
        if read_into(paths.get(tid, "status"), buf).is_ok() {
            if let Some(ns) = nspid_innermost(buf) {
                c.last_pid = ns;
            }
        }
    }
    c
}

/// `<proc>/<tid>/<file>` paths built in one reused buffer.
struct TidPaths<'a> {
    root: &'a Path,
    /// The root as UTF-8 (always, on a real host), for the fast path.
    text: Option<String>,
    base: usize,
    joined: std::path::PathBuf,
}

impl<'a> TidPaths<'a> {
    fn new(root: &'a Path) -> Self {
        let text = root.to_str().map(str::to_owned);
        let base = text.as_ref().map_or(0, String::len);
        TidPaths {
            root,
            text,
            base,
            joined: std::path::PathBuf::new(),
        }
    }

    fn get(&mut self, tid: u32, file: &str) -> &Path {
        match &mut self.text {
            Some(t) => {
                t.truncate(self.base);
                // Writing into a String cannot fail.
                let _ = write!(t, "/{tid}/{file}");
                Path::new(t.as_str())
            }
            None => {
                self.joined = self.root.join(tid.to_string()).join(file);
                &self.joined
            }
        }
    }
}

/// The innermost pid of a `/proc/<pid>/status` `NSpid:` line.
fn nspid_innermost(status: &[u8]) -> Option<u32> {
    let line = crate::cgroup::parse::lines(status).find(|l| l.starts_with(b"NSpid:"))?;
    let last = crate::cgroup::parse::fields(&line[6..]).last()?;
    crate::cgroup::parse::parse_u64(last).and_then(|v| u32::try_from(v).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::fixtures::write;

    #[test]
    fn counts_states() {
        let t = tempfile::TempDir::new().expect("tempdir");
        let r = t.path();
        write(r, "100/stat", "100 (init) S 0 1 1 0 -1 0");
        write(r, "101/stat", "101 (a b) R 1 1 1 0 -1 0");
        write(r, "102/stat", "102 (d) D 1 1 1 0 -1 0");
        write(r, "102/status", "Name:\td\nNSpid:\t102\t3\n");
        let c = count(r, &[100, 101, 102, 103], &mut Vec::new());
        assert_eq!(
            c,
            TaskCounts {
                total: 3,
                running: 1,
                blocked: 1,
                last_pid: 3
            }
        );
        assert_eq!(c.active(), 2);
    }
}
