//! One container's own values of the emulated sysctls
//! ([`crate::emulate::sysctl::TABLE`]): what it wrote, checked as the kernel
//! would, kept in `<data>/containers/<id>/sysctl.json` so that a supervisor
//! restart keeps them.
//!
//! A write cannot be trapped (seccomp sees no fd types), so an open for
//! writing gets a fresh memfd and the store keeps a second fd of it; what
//! the container wrote there is taken ("harvested") before the next open
//! of any emulated sysctl of the container, so a reader always sees the
//! last complete write. A value the kernel would refuse (`EINVAL`) is not
//! taken (logged and counted): the writer's `write` itself succeeded.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::OwnedFd;
use std::path::PathBuf;

use crate::emulate::sysctl::{Kind, Sysctl, TABLE};
use crate::kernel::memfd;
use crate::kernel::uts::{self, UtsName};
use std::os::fd::AsFd;

/// Memfds handed out for writing and still watched, at most.
const MAX_PENDING: usize = 32;
/// Largest write looked at (the longest sysctl value is 127 bytes).
const MAX_WRITE: u64 = 4096;

struct Pending {
    sysctl: &'static Sysctl,
    file: std::fs::File,
    /// Content at the last harvest.
    seen: Vec<u8>,
    /// The writer's UTS namespace, for `kernel.hostname` and
    /// `kernel.domainname` (set there, not kept here).
    uts: Option<OwnedFd>,
    opened: std::time::Instant,
}

/// For this long after a write-open the store looks at the memfd on every
/// call the container makes (so `echo name > /proc/sys/kernel/hostname;
/// hostname` shows the new name); later only at sysctl opens.
const RECENT: std::time::Duration = std::time::Duration::from_secs(2);

/// The values of one container.
#[derive(Default)]
pub struct SysctlStore {
    values: BTreeMap<&'static str, String>,
    pending: Vec<Pending>,
    file: Option<PathBuf>,
    /// Written values not taken (what the kernel would refuse).
    pub refused: u64,
}

impl std::fmt::Debug for SysctlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SysctlStore")
            .field("values", &self.values)
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl SysctlStore {
    /// The store of container `id`, with the values saved in its directory
    /// under `data_dir` (none saved, or no data dir: empty).
    pub fn load(data_dir: Option<&std::path::Path>, id: &str) -> Self {
        // The store checks that the id names a directory of its own.
        let file = data_dir
            .and_then(|d| crate::runtime::store::Store::new(d).dir(id).ok())
            .map(|d| d.join("sysctl.json"));
        let mut values = BTreeMap::new();
        if let Some(saved) = file
            .as_ref()
            .and_then(|f| std::fs::read(f).ok())
            .and_then(|b| serde_json::from_slice::<BTreeMap<String, String>>(&b).ok())
        {
            for (k, v) in saved {
                // Only known keys, and only values that still pass.
                if let Some(s) = TABLE.iter().find(|s| s.key == k) {
                    if let Ok(v) = s.normalise(v.as_bytes()) {
                        values.insert(s.key, v);
                    }
                }
            }
        }
        SysctlStore {
            values,
            pending: Vec::new(),
            file,
            refused: 0,
        }
    }

    /// The container's own value of `s`, if it set one.
    pub fn value(&self, s: &Sysctl) -> Option<&str> {
        self.values.get(s.key).map(String::as_str)
    }

    /// A memfd for the container to write `s` into (the caller injects it);
    /// `uts`: the writer's UTS namespace, for a [`Kind::Uts`] sysctl.
    pub fn writer(
        &mut self,
        s: &'static Sysctl,
        uts: Option<OwnedFd>,
    ) -> Result<OwnedFd, crate::kernel::KernelError> {
        let fd = memfd::create(s.key, b"")?;
        let keep = fd
            .try_clone()
            .map_err(|e| crate::kernel::KernelError::Sys {
                op: "dup memfd",
                source: e,
            })?;
        if self.pending.len() >= MAX_PENDING {
            self.pending.remove(0);
        }
        self.pending.push(Pending {
            sysctl: s,
            file: std::fs::File::from(keep),
            seen: Vec::new(),
            uts,
            opened: std::time::Instant::now(),
        });
        Ok(fd)
    }

    /// [`SysctlStore::harvest`] while a write-open is recent (called on
    /// every trapped call; nothing to do most of the time).
    pub fn harvest_recent(&mut self, container: &str) {
        if self.pending.iter().any(|p| p.opened.elapsed() < RECENT) {
            self.harvest(container);
        }
    }

    /// Take what the container wrote into its memfds since the last look.
    pub fn harvest(&mut self, container: &str) {
        let mut changed = false;
        for p in &mut self.pending {
            let mut now = Vec::new();
            if p.file.seek(SeekFrom::Start(0)).is_err()
                || (&p.file).take(MAX_WRITE).read_to_end(&mut now).is_err()
                || now == p.seen
            {
                continue;
            }
            p.seen = now;
            if p.seen.is_empty() {
                continue;
            }
            match p.sysctl.normalise(&p.seen) {
                Ok(v) if matches!(p.sysctl.kind, Kind::Uts { .. }) => {
                    let which = if p.sysctl.key == "kernel.domainname" {
                        UtsName::Domain
                    } else {
                        UtsName::Host
                    };
                    let r = match &p.uts {
                        Some(ns) => uts::set_name(ns.as_fd(), which, v.as_bytes()),
                        None => continue,
                    };
                    match r {
                        Ok(()) => {
                            tracing::info!(container, key = p.sysctl.key, value = %v, "container UTS name set")
                        }
                        Err(e) => {
                            self.refused += 1;
                            tracing::info!(container, key = p.sysctl.key, error = %e, "container UTS name not set");
                        }
                    }
                }
                Ok(v) => {
                    tracing::info!(
                        container,
                        key = p.sysctl.key,
                        value = v.trim_end(),
                        "container sysctl set"
                    );
                    self.values.insert(p.sysctl.key, v);
                    changed = true;
                }
                Err(e) => {
                    self.refused += 1;
                    tracing::info!(container, error = %e, "container sysctl write not taken (the kernel would say EINVAL)");
                }
            }
        }
        if changed {
            self.save(container);
        }
    }

    fn save(&self, container: &str) {
        let Some(file) = &self.file else { return };
        let Some(dir) = file.parent() else { return };
        if !dir.is_dir() {
            return;
        }
        let map: BTreeMap<&str, &str> = self.values.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = serde_json::to_vec(&map)
            .map_err(std::io::Error::other)
            .and_then(|b| crate::kernel::fs::replace_file(file, &b));
        if let Err(e) = r {
            tracing::warn!(container, file = %file.display(), error = %e, "cannot save the container's sysctls");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn key(k: &str) -> &'static Sysctl {
        TABLE.iter().find(|s| s.key == k).unwrap()
    }

    #[test]
    fn written_values_are_checked_taken_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("containers/c1")).unwrap();
        let mut st = SysctlStore::load(Some(dir.path()), "c1");
        let panic = key("kernel.panic");
        assert_eq!(st.value(panic), None);
        let fd = st.writer(panic, None).unwrap();
        let mut f = std::fs::File::from(fd);
        f.write_all(b"10\n").unwrap();
        st.harvest("c1");
        assert_eq!(st.value(panic), Some("10\n"));
        // An invalid write is not taken.
        let om = key("vm.overcommit_memory");
        let mut g = std::fs::File::from(st.writer(om, None).unwrap());
        g.write_all(b"7\n").unwrap();
        st.harvest("c1");
        assert_eq!(st.value(om), None);
        assert_eq!(st.refused, 1);
        // Kept across a new store (a supervisor restart).
        let again = SysctlStore::load(Some(dir.path()), "c1");
        assert_eq!(again.value(panic), Some("10\n"));
        // Another container has its own.
        std::fs::create_dir_all(dir.path().join("containers/c2")).unwrap();
        assert_eq!(SysctlStore::load(Some(dir.path()), "c2").value(panic), None);
    }
}
