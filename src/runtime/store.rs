//! Per-container host state under the data directory
//! (`/var/lib/syscont` by default): one directory per container, with the
//! record of the mounts syscont made for it, and the id-range pool file.
//!
//! ```text
//! <data>/containers/<id>/record.json   what was made, and how to tell the container is gone
//! <data>/containers/<id>/rootfs        the ID-mapped rootfs (overlay or bind) given to the engine
//! <data>/containers/<id>/mounts/<n>    ID-mapped copies of the spec's bind mounts
//! <data>/idranges.json                 the id ranges (see idrange)
//! ```
//!
//! Mounts are undone at the engine's `delete` (Docker calls it at every
//! stop) and made again at the next `create`; the directory and the id
//! range stay until the container is really gone: its bundle and every
//! path of `alive_paths` (for Docker, the rootfs layer) have disappeared.
//! [`Store::reap`] frees those; `create` and the supervisor call it.

use std::fs::File;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::kernel::{idmap, mountinfo};
use crate::runtime::idrange::{self, Pool};

/// Errors of the container store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid container id {0:?}")]
    BadId(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a valid record: {source}")]
    Record {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path} is still mounted under {dir}; not removing it")]
    StillMounted { dir: PathBuf, path: PathBuf },
    #[error(transparent)]
    Pool(#[from] idrange::IdRangeError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What syscont made for one container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub bundle: PathBuf,
    /// The rootfs the engine gave.
    pub engine_root: PathBuf,
    /// The container exists while its bundle or any of these exists.
    pub alive_paths: Vec<PathBuf>,
    /// Mount points made on the host, in the order they were made.
    pub mounts: Vec<PathBuf>,
    /// The rootfs is a chowned copy (the file system could not ID-map).
    #[serde(default)]
    pub copied_rootfs: bool,
    /// The container's init is systemd (its stop signal is SIGRTMIN+3).
    #[serde(default)]
    pub systemd: bool,
}

impl Record {
    /// Whether the container still exists.
    pub fn alive(&self) -> bool {
        self.bundle.exists() || self.alive_paths.iter().any(|p| p.exists())
    }
}

/// The data directory.
#[derive(Debug, Clone)]
pub struct Store {
    data_dir: PathBuf,
}

/// A lock on the store, held while a container's host state changes.
pub struct StoreLock {
    _lock: nix::fcntl::Flock<File>,
}

/// runc's rule for container ids.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 1024
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+-.".contains(&b))
}

/// Make the directory `path` (its parent must exist) if it is missing, and
/// give it `mode` either way: the modes of the data directory's layout are
/// syscont's to keep.
pub(crate) fn mkdir_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    match std::fs::DirBuilder::new().mode(mode).create(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

fn mkdir(path: &Path, mode: u32) -> Result<(), StoreError> {
    mkdir_mode(path, mode).map_err(io(path))
}

impl Store {
    pub fn new(data_dir: &Path) -> Self {
        Store {
            data_dir: data_dir.to_path_buf(),
        }
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    fn containers(&self) -> PathBuf {
        self.data_dir.join("containers")
    }

    /// The directory of container `id` (not created).
    pub fn dir(&self, id: &str) -> Result<PathBuf, StoreError> {
        if !valid_id(id) {
            return Err(StoreError::BadId(id.into()));
        }
        Ok(self.containers().join(id))
    }

    /// Create the data directory layout: every level traversable (0711)
    /// by a container's root, which must reach its rootfs, and listable by
    /// host root only.
    pub fn create_dir(&self, id: &str) -> Result<PathBuf, StoreError> {
        let dir = self.dir(id)?;
        if let Some(parent) = self.data_dir.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        mkdir(&self.data_dir, 0o711)?;
        mkdir(&self.containers(), 0o711)?;
        mkdir(&dir, 0o711)?;
        Ok(dir)
    }

    /// Take the store lock.
    pub fn lock(&self) -> Result<StoreLock, StoreError> {
        if let Some(parent) = self.data_dir.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        mkdir(&self.data_dir, 0o711)?;
        let p = self.data_dir.join("store.lock");
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .map_err(io(&p))?;
        let lock = nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| io(&p)(e.into()))?;
        Ok(StoreLock { _lock: lock })
    }

    /// The pool of id ranges kept in this store.
    pub fn pool(&self, size: u32, subuid: &Path, subgid: &Path) -> Result<Pool, StoreError> {
        Ok(Pool::from_subid_files(
            &self.data_dir,
            size,
            "syscont",
            subuid,
            subgid,
        )?)
    }

    fn record_path(&self, id: &str) -> Result<PathBuf, StoreError> {
        Ok(self.dir(id)?.join("record.json"))
    }

    /// Container `id`'s record, if it has one.
    pub fn load(&self, id: &str) -> Result<Option<Record>, StoreError> {
        let p = self.record_path(id)?;
        let text = match std::fs::read(&p) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&p)(e)),
        };
        serde_json::from_slice(&text)
            .map(Some)
            .map_err(|source| StoreError::Record { path: p, source })
    }

    /// Write a record (atomically: a crash leaves the old or the new one).
    pub fn save(&self, r: &Record) -> Result<(), StoreError> {
        let p = self.record_path(&r.id)?;
        let tmp = p.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(r).map_err(|source| StoreError::Record {
            path: p.clone(),
            source,
        })?;
        std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &p).map_err(io(&p))
    }

    /// Undo every mount recorded for `id` (the directory stays). A mount
    /// recorded outside the directory (the overlay shown again over the
    /// engine's own rootfs mount) is undone only while the top mount there
    /// is still ours: the engine's own mount underneath is the engine's.
    pub fn teardown(&self, id: &str) -> Result<(), StoreError> {
        let Some(mut r) = self.load(id)? else {
            return Ok(());
        };
        let dir = self.dir(id)?;
        let marker = dir.to_string_lossy().into_owned();
        for m in r.mounts.iter().rev() {
            if m.starts_with(&dir) {
                let _ = idmap::detach(m);
            } else if let Ok(table) = mountinfo::read_self() {
                let ours = mountinfo::mounted_at(&table, m)
                    .is_some_and(|e| e.super_options.contains(&marker));
                if ours {
                    let _ = idmap::detach(m);
                }
            }
        }
        // Anything else left mounted under the directory (a crash between
        // a mount and its record, or stacked mounts) goes too.
        for _ in 0..8 {
            let leftovers = mounted_under(&dir);
            if leftovers.is_empty() {
                break;
            }
            detach_all(&leftovers);
        }
        r.mounts.clear();
        self.save(&r)?;
        if let Some(p) = mounted_under(&dir).into_iter().next() {
            return Err(StoreError::StillMounted { dir, path: p });
        }
        Ok(())
    }

    /// Remove container `id`'s mounts, directory and id range.
    pub fn release(&self, id: &str, pool: Option<&Pool>) -> Result<(), StoreError> {
        let dir = self.dir(id)?;
        if dir.exists() {
            self.teardown(id)?;
            if let Some(p) = mounted_under(&dir).into_iter().next() {
                return Err(StoreError::StillMounted { dir, path: p });
            }
            remove_tree(&dir)?;
        }
        if let Some(pool) = pool {
            pool.release(id)?;
        }
        Ok(())
    }

    /// Ids of every container with a directory.
    pub fn ids(&self) -> Vec<String> {
        let Ok(rd) = std::fs::read_dir(self.containers()) else {
            return Vec::new();
        };
        rd.filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| valid_id(n))
            .collect()
    }

    /// Whether container `id` still exists: by its record, else by the
    /// bundle its id range was taken for.
    pub fn alive(&self, id: &str, alloc: Option<&idrange::Allocation>) -> bool {
        match self.load(id) {
            Ok(Some(r)) => r.alive(),
            // An unreadable record is kept: never free what we cannot judge.
            Err(_) => true,
            Ok(None) => alloc.is_some_and(|a| a.bundle.exists()),
        }
    }

    /// Free every container that is gone; returns the ids freed.
    pub fn reap(&self, pool: Option<&Pool>) -> Vec<String> {
        match self.lock() {
            Ok(lock) => self.reap_locked(&lock, pool),
            Err(_) => Vec::new(),
        }
    }

    /// [`Store::reap`] with the store lock already held.
    pub fn reap_locked(&self, _lock: &StoreLock, pool: Option<&Pool>) -> Vec<String> {
        let mut freed = Vec::new();
        for id in self.ids() {
            if self.alive(&id, None) {
                continue;
            }
            match self.release(&id, pool) {
                Ok(()) => {
                    tracing::info!(container = %id, "container gone: mounts, directory and id range freed");
                    freed.push(id);
                }
                Err(e) => {
                    tracing::warn!(container = %id, error = %e, "cannot free a gone container")
                }
            }
        }
        if let Some(pool) = pool {
            if let Ok(list) = pool.list() {
                for (id, a) in list {
                    if !self.containers().join(&id).exists()
                        && !a.bundle.exists()
                        && pool.release(&id).is_ok()
                    {
                        freed.push(id);
                    }
                }
            }
        }
        freed
    }
}

/// The mount id of the file at `path` (not following a last symlink).
fn mount_id(path: &Path) -> Result<u64, StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(io(path))?;
    crate::kernel::resolve::mount_stat(&f.into())
        .map(|m| m.mnt_id)
        .map_err(|e| io(path)(std::io::Error::other(e.to_string())))
}

/// Remove `dir` and everything in it, but never across a mount: an entry
/// on another mount than `dir` (a mount the mount table did not show, a
/// bind mount of a volume) stops the removal with an error. `remove_dir_all`
/// would delete the volume's files.
fn remove_tree(dir: &Path) -> Result<(), StoreError> {
    let mnt = match mount_id(dir) {
        Ok(m) => m,
        Err(StoreError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(())
        }
        Err(e) => return Err(e),
    };
    fn walk(path: &Path, mnt: u64, top: &Path) -> Result<(), StoreError> {
        for e in std::fs::read_dir(path).map_err(io(path))? {
            let e = e.map_err(io(path))?;
            let p = e.path();
            if mount_id(&p)? != mnt {
                return Err(StoreError::StillMounted {
                    dir: top.to_path_buf(),
                    path: p,
                });
            }
            if e.file_type().map_err(io(&p))?.is_dir() {
                walk(&p, mnt, top)?;
                std::fs::remove_dir(&p).map_err(io(&p))?;
            } else {
                std::fs::remove_file(&p).map_err(io(&p))?;
            }
        }
        Ok(())
    }
    walk(dir, mnt, dir)?;
    std::fs::remove_dir(dir).map_err(io(dir))
}

fn detach_all(mounts: &[PathBuf]) {
    for m in mounts.iter().rev() {
        let _ = idmap::detach(m);
    }
}

/// Mount points at or under `dir`, deepest last.
pub fn mounted_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(mounts) = mountinfo::read_self() else {
        return Vec::new();
    };
    mounts
        .into_iter()
        .map(|m| m.mount_point)
        .filter(|p| p.starts_with(dir))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked() {
        let s = Store::new(Path::new("/nonexistent"));
        for bad in ["", ".", "..", "a/b", "a\0b", "a b"] {
            assert!(matches!(s.dir(bad), Err(StoreError::BadId(_))), "{bad:?}");
        }
        assert!(s.dir("66afc96e_x-1.2+3").is_ok());
    }

    #[test]
    fn removal_never_crosses_a_mount() {
        if !crate::testutil::root_or_skip("the removal test") {
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let (dir, vol) = (t.path().join("c"), t.path().join("vol"));
        std::fs::create_dir_all(dir.join("mounts/0")).unwrap();
        std::fs::create_dir_all(&vol).unwrap();
        std::fs::write(vol.join("precious"), b"x").unwrap();
        std::fs::write(dir.join("record.json"), b"{}").unwrap();
        // A bind mount on the same file system (same st_dev).
        nix::mount::mount(
            Some(&vol),
            &dir.join("mounts/0"),
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        )
        .unwrap();
        let r = remove_tree(&dir);
        let _ = idmap::detach(&dir.join("mounts/0"));
        assert!(matches!(r, Err(StoreError::StillMounted { .. })), "{r:?}");
        assert!(
            vol.join("precious").exists(),
            "removal crossed into the bind mount"
        );
        remove_tree(&dir).unwrap();
        assert!(!dir.exists());
        remove_tree(&dir).unwrap();
    }

    #[test]
    fn records_round_trip_and_liveness() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::new(&t.path().join("data"));
        let dir = s.create_dir("c1").unwrap();
        let bundle = t.path().join("bundle");
        std::fs::create_dir(&bundle).unwrap();
        let layer = t.path().join("layer");
        std::fs::create_dir(&layer).unwrap();
        let r = Record {
            id: "c1".into(),
            bundle: bundle.clone(),
            engine_root: t.path().join("root"),
            alive_paths: vec![layer.clone()],
            mounts: vec![],
            copied_rootfs: false,
            systemd: false,
        };
        s.save(&r).unwrap();
        assert_eq!(s.load("c1").unwrap().unwrap(), r);
        assert!(s.reap(None).is_empty());
        // Docker's stop: the bundle goes, the layer stays.
        std::fs::remove_dir(&bundle).unwrap();
        assert!(s.reap(None).is_empty());
        assert!(dir.exists());
        // docker rm: the layer goes too.
        std::fs::remove_dir(&layer).unwrap();
        assert_eq!(s.reap(None), ["c1"]);
        assert!(!dir.exists());
        // A corrupt record is an error, and the container is kept.
        let dir = s.create_dir("c2").unwrap();
        std::fs::write(dir.join("record.json"), "{").unwrap();
        assert!(s.load("c2").is_err());
        assert!(s.reap(None).is_empty());
        assert!(dir.exists());
    }
}
