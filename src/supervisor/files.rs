//! Which real files are emulated: the identity `(filesystem, inode)` of
//! each [`EmulatedFile`] on this host, taken once at start-up.
//!
//! procfs and sysfs give a file the same inode number in every mount, so a
//! container's own `/proc/meminfo` (or one it mounted itself) has the same
//! identity as the host's.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;

use crate::emulate::EmulatedFile;
use crate::kernel::resolve::{file_id, FileId};

/// Files of procfs that the engines mask in every container (Docker,
/// containerd and Podman bind `/dev/null` over them): a procfs the
/// container mounts itself shows them unmasked, so an open of one there
/// gets an empty file, as through the container's own `/proc`.
pub const MASKED_PROC_FILES: [&str; 6] = [
    "/proc/kcore",
    "/proc/keys",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/latency_stats",
];

/// Identity → emulated file, and the identities of the masked files.
#[derive(Debug, Default)]
pub struct FileTable {
    by_id: HashMap<FileId, EmulatedFile>,
    masked: std::collections::HashSet<FileId>,
}

impl FileTable {
    /// Look up every emulated file on this host; files the host lacks are
    /// left out (and logged).
    pub fn from_host() -> Self {
        let mut by_id = HashMap::new();
        for f in EmulatedFile::ALL {
            let opened: std::io::Result<OwnedFd> =
                std::fs::File::open(f.host_path()).map(OwnedFd::from);
            match opened
                .map_err(|e| e.to_string())
                .and_then(|fd| file_id(&fd).map_err(|e| e.to_string()))
            {
                Ok(id) => {
                    by_id.insert(id, f);
                }
                Err(e) => {
                    tracing::warn!(file = f.host_path(), error = %e, "not emulated: host file unavailable")
                }
            }
        }
        let masked = MASKED_PROC_FILES
            .iter()
            .filter_map(|p| {
                let fd: OwnedFd = std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_PATH)
                    .open(p)
                    .ok()?
                    .into();
                file_id(&fd).ok()
            })
            .collect();
        FileTable { by_id, masked }
    }

    /// Is this one of [`MASKED_PROC_FILES`]?
    pub fn is_masked(&self, id: FileId) -> bool {
        self.masked.contains(&id)
    }

    /// The emulated file with this identity, if any.
    pub fn lookup(&self, id: FileId) -> Option<EmulatedFile> {
        self.by_id.get(&id).copied()
    }

    /// Number of emulated files known.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// True when no file is emulated.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_files_are_known() {
        let t = FileTable::from_host();
        assert!(t.len() >= 8, "only {} emulated files found", t.len());
        let fd: OwnedFd = std::fs::File::open("/proc/meminfo").unwrap().into();
        assert_eq!(t.lookup(file_id(&fd).unwrap()), Some(EmulatedFile::Meminfo));
        let fd: OwnedFd = std::fs::File::open("/proc/version").unwrap().into();
        assert_eq!(t.lookup(file_id(&fd).unwrap()), None);
        assert!(!t.is_masked(file_id(&fd).unwrap()));
        let keys: OwnedFd = std::fs::File::open("/proc/keys").unwrap().into();
        assert!(t.is_masked(file_id(&keys).unwrap()));
    }
}
