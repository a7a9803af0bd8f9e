//! Nested emulation: the cgroup whose figures a trapped process sees.
//!
//! A process that an inner runtime (Docker inside the system container)
//! moved into a sub-cgroup with a smaller limit must see that limit, not
//! the container's: the innermost cgroup wins. This module owns the choice
//! of [`ContainerSource`] per trapped call — the container's own, or one
//! for the caller's cgroup, built on first use and kept in a small cache
//! keyed by the caller's `/proc/<pid>/cgroup` (cgroup figures are already
//! effective: limits are the minimum over a cgroup and its ancestors).
//! Uptime and start time stay the container's (an inner container is part
//! of the system container's "machine").

use std::collections::HashMap;

use crate::emulate::clock::Clock;
use crate::emulate::ContainerSource;

/// At most this many inner cgroups are kept; the cache starts afresh when
/// full (inner containers come and go).
const MAX_NESTED: usize = 64;
/// How long a caller's cgroup, once read, is taken as known (a process
/// moved to another cgroup sees its new figures after at most this).
const CGROUP_TTL: std::time::Duration = std::time::Duration::from_secs(1);
/// Callers whose cgroup is remembered, at most.
const MAX_CALLERS: usize = 1024;

/// The container's source and the sources of inner cgroups seen so far.
#[derive(Debug, Default)]
pub struct Sources {
    outer: Option<ContainerSource>,
    /// `/proc/<init>/cgroup` of the container's init when `outer` was made.
    outer_key: Vec<u8>,
    nested: HashMap<Vec<u8>, ContainerSource>,
    buf: Vec<u8>,
    /// Host pid → (its `/proc/<pid>/cgroup`, when read): a reader that
    /// reads flat out pays for one read a second, not one per call.
    callers: HashMap<u32, (Vec<u8>, std::time::Instant)>,
}

impl Sources {
    /// Use `source`, made for host pid `pid`, as the container's own.
    pub fn set_outer(&mut self, source: ContainerSource, pid: u32) {
        self.outer_key.clear();
        if read_cgroup(pid, &mut self.outer_key).is_err() {
            self.outer_key.clear();
        }
        self.outer = Some(source);
        self.nested.clear();
        self.callers.clear();
    }

    /// Whether the container's own source is known.
    pub fn has_outer(&self) -> bool {
        self.outer.is_some()
    }

    /// The container's own source.
    pub fn outer(&self) -> Option<&ContainerSource> {
        self.outer.as_ref()
    }

    /// The source for trapped process `pid`: the container's, unless `pid`
    /// is in another cgroup (then that cgroup's, with the container's start
    /// time). Falls back to the container's when the caller's cgroup cannot
    /// be read or used.
    pub fn for_caller(&mut self, pid: u32) -> Option<&ContainerSource> {
        let outer = self.outer.as_ref()?;
        let now = std::time::Instant::now();
        match self.callers.get(&pid) {
            Some((key, at)) if now.duration_since(*at) < CGROUP_TTL => {
                self.buf.clone_from(key);
            }
            _ => {
                self.buf.clear();
                if read_cgroup(pid, &mut self.buf).is_err() {
                    self.buf.clear();
                }
                if self.callers.len() >= MAX_CALLERS {
                    self.callers.clear();
                }
                self.callers.insert(pid, (self.buf.clone(), now));
            }
        }
        if self.buf.is_empty() || self.buf == self.outer_key {
            return Some(outer);
        }
        if !self.nested.contains_key(&self.buf) {
            if self.nested.len() >= MAX_NESTED {
                self.nested.clear();
            }
            let made = crate::cgroup::Cgroup::for_pid(pid as i32)
                .map_err(crate::emulate::EmulateError::from)
                .and_then(|cg| {
                    ContainerSource::with_roots(
                        "/proc".into(),
                        "/sys".into(),
                        cg,
                        outer.init_start_ns(),
                        Clock::Boottime,
                    )
                });
            match made {
                Ok(s) => {
                    tracing::debug!(pid, cgroup = ?s.cgroup(), "source for an inner cgroup");
                    self.nested.insert(self.buf.clone(), s);
                }
                Err(e) => {
                    tracing::debug!(pid, error = %e, "inner cgroup unusable; the container's figures are used");
                    return Some(outer);
                }
            }
        }
        self.nested.get(&self.buf).or(Some(outer))
    }
}

fn read_cgroup(pid: u32, out: &mut Vec<u8>) -> std::io::Result<()> {
    use std::io::Read;
    let mut f = std::fs::File::open(format!("/proc/{pid}/cgroup"))?;
    f.read_to_end(out).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_in_the_containers_cgroup_gets_the_containers_source() {
        if !crate::testutil::root_or_skip("nested sources read host cgroups") {
            return;
        }
        let me = std::process::id();
        let outer = ContainerSource::for_init_pid(me as i32).unwrap();
        let mut s = Sources::default();
        assert!(s.for_caller(me).is_none(), "no outer yet");
        s.set_outer(outer, me);
        let a = s.for_caller(me).unwrap() as *const ContainerSource;
        assert_eq!(a, s.outer().unwrap() as *const ContainerSource);
        assert!(s.nested.is_empty());
        // A pid that does not exist: the container's figures.
        assert!(s.for_caller(u32::MAX - 1).is_some());
        assert!(s.nested.is_empty());
    }
}
