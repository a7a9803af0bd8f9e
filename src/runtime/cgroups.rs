//! Delegation of a container's cgroup directories to its root.
//!
//! Before the engine runs, the container's cgroup directory is made in
//! every mounted hierarchy (v1 controllers, named hierarchies, v2) and the
//! directory with its membership files (`cgroup.procs`, `tasks`,
//! `cgroup.subtree_control`, `cgroup.threads`) is given to the
//! container's root. Its root can then make and populate sub-cgroups, but
//! the limit files of its own cgroup stay root's: it cannot raise its
//! limits. The engine finds the directories already there and uses them.
//! Only cgroupfs-style paths (`/docker/<id>`) are delegated; a systemd
//! `slice:prefix:name` path is managed by systemd and is left alone.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::kernel::mountinfo::MountEntry;

/// Files of a cgroup directory that its delegate may write.
const DELEGATED_FILES: [&str; 4] = [
    "cgroup.procs",
    "tasks",
    "cgroup.subtree_control",
    "cgroup.threads",
];

/// Errors of delegating cgroups.
#[derive(Debug, thiserror::Error)]
pub enum CgroupsError {
    #[error("cgroupsPath {0:?} has a '..' component")]
    BadPath(String),
    #[error("cannot delegate cgroup {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The cgroup directories of `cgroups_path` in every cgroup hierarchy
/// among `mounts`; empty for a systemd-style path.
pub fn directories(
    mounts: &[MountEntry],
    cgroups_path: &str,
) -> Result<Vec<PathBuf>, CgroupsError> {
    if !cgroups_path.starts_with('/') {
        return Ok(Vec::new());
    }
    let rel = Path::new(cgroups_path.trim_start_matches('/'));
    if rel
        .components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(CgroupsError::BadPath(cgroups_path.into()));
    }
    let mut seen = std::collections::HashSet::new();
    Ok(mounts
        .iter()
        .filter(|m| m.fs_type == "cgroup" || m.fs_type == "cgroup2")
        // Several mounts of one hierarchy (the same super options) count once.
        .filter(|m| seen.insert((m.fs_type.clone(), m.super_options.clone())))
        .map(|m| m.mount_point.join(rel))
        .collect())
}

/// Make each directory and give it and its membership files to `uid:gid`.
pub fn delegate(dirs: &[PathBuf], uid: u32, gid: u32) -> Result<(), CgroupsError> {
    for d in dirs {
        let io = |source| CgroupsError::Io {
            path: d.clone(),
            source,
        };
        std::fs::create_dir_all(d).map_err(io)?;
        std::os::unix::fs::chown(d, Some(uid), Some(gid)).map_err(io)?;
        let mode = std::fs::metadata(d).map_err(io)?.permissions().mode();
        if mode & 0o700 != 0o700 {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(mode | 0o700))
                .map_err(io)?;
        }
        for f in DELEGATED_FILES {
            let p = d.join(f);
            match std::os::unix::fs::chown(&p, Some(uid), Some(gid)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(CgroupsError::Io { path: p, source }),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::mountinfo::parse;

    const MI: &str = "30 25 0:26 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate\n\
        31 25 0:27 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n\
        32 25 0:28 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
        33 25 0:28 / /mnt/memory-again rw - cgroup cgroup rw,memory\n\
        34 25 0:29 / / rw - ext4 /dev/vda rw\n";

    #[test]
    fn directories_per_hierarchy() {
        let m = parse(MI);
        let d = directories(&m, "/docker/abc").unwrap();
        assert_eq!(
            d,
            [
                PathBuf::from("/sys/fs/cgroup/unified/docker/abc"),
                PathBuf::from("/sys/fs/cgroup/systemd/docker/abc"),
                PathBuf::from("/sys/fs/cgroup/memory/docker/abc"),
            ]
        );
        assert!(directories(&m, "system.slice:docker:abc")
            .unwrap()
            .is_empty());
        assert!(directories(&m, "/docker/../../etc").is_err());
    }

    #[test]
    fn delegate_chowns_membership_files_only() {
        if !crate::testutil::root_or_skip("the delegation test") {
            return;
        }
        use std::os::unix::fs::MetadataExt;
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("docker/abc");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("cgroup.procs"), "").unwrap();
        std::fs::write(d.join("memory.limit_in_bytes"), "").unwrap();
        delegate(std::slice::from_ref(&d), 100_000, 100_001).unwrap();
        let own = |p: &Path| {
            let m = std::fs::metadata(p).unwrap();
            (m.uid(), m.gid())
        };
        assert_eq!(own(&d), (100_000, 100_001));
        assert_eq!(own(&d.join("cgroup.procs")), (100_000, 100_001));
        assert_eq!(own(&d.join("memory.limit_in_bytes")), (0, 0));
    }
}
