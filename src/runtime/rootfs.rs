//! The container's files as its root sees them: an ID-mapped rootfs and
//! ID-mapped bind mounts, made on the host before the engine runs, in
//! time independent of the image's size.
//!
//! - An overlay rootfs (Docker's overlay2, containerd's overlayfs
//!   snapshotter) is rebuilt: the directory that holds all its layers is
//!   ID-mapped once (not recursively), a new overlay is made from the same
//!   layers seen through that mapping, and the mapping is detached again
//!   (the overlay keeps its own clones). Files the container writes land
//!   in the engine's upper layer owned as in a normal container, so the
//!   engine's diff, cp and commit see the right owners. The engine keeps
//!   its own overlay of the same layers (it must see owners as on disk);
//!   syscont's has its own work directory and the engine's is mounted
//!   afresh at create so that it has nothing stale cached. The overlay is
//!   created by host root; host root is mapped to one id above the
//!   container's range in the layers' mapping so the overlay can create
//!   its work files (the container's root can never produce that id).
//! - Any other rootfs directory is bound ID-mapped.
//! - Where the file system cannot ID-map, the rootfs is a chowned copy
//!   (logged; the engine's diff then misses the container's changes).
//! - Each bind mount of the spec (volumes, `/etc/hosts`, ...) is replaced
//!   by an ID-mapped copy of its source; a source that cannot be mapped
//!   is left as it is, with a warning (its files then show as `nobody`).

use std::os::fd::OwnedFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::kernel::idmap::{self, IdMap};
use crate::kernel::{mountinfo, overlay, KernelError};
use crate::runtime::store::{mkdir_mode, Record, Store, StoreError};
use crate::runtime::system::Ids;

/// Errors of preparing the rootfs and mounts.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("rootfs {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("rootfs {path}: {source}")]
    Kernel {
        path: PathBuf,
        #[source]
        source: KernelError,
    },
    #[error("rootfs overlay at {path}: {what}")]
    Overlay { path: PathBuf, what: String },
}

/// A bind mount of the spec to map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    /// Index in `mounts`.
    pub index: usize,
    pub source: PathBuf,
    pub recursive: bool,
}

/// What the spec must use instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    pub root: PathBuf,
    /// (index in `mounts`, new source).
    pub binds: Vec<(usize, PathBuf)>,
    pub copied_rootfs: bool,
}

fn kerr(path: &Path) -> impl FnOnce(KernelError) -> RootfsError + '_ {
    move |source| RootfsError::Kernel {
        path: path.to_path_buf(),
        source,
    }
}

fn ioerr(path: &Path) -> impl FnOnce(std::io::Error) -> RootfsError + '_ {
    move |source| RootfsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn mkdir(path: &Path, mode: u32) -> Result<(), RootfsError> {
    mkdir_mode(path, mode).map_err(ioerr(path))
}

/// The mapping of the container: container ids 0..size to its host range.
fn maps(ids: Ids, host_root_above: bool) -> (Vec<IdMap>, Vec<IdMap>) {
    let mut u = vec![IdMap {
        inside: 0,
        outside: ids.uid,
        count: ids.size,
    }];
    let mut g = vec![IdMap {
        inside: 0,
        outside: ids.gid,
        count: ids.size,
    }];
    if host_root_above {
        u.push(IdMap {
            inside: ids.size,
            outside: 0,
            count: 1,
        });
        g.push(IdMap {
            inside: ids.size,
            outside: 0,
            count: 1,
        });
    }
    (u, g)
}

/// Errors that mean "this file system or kernel cannot ID-map here".
fn cannot_idmap(e: &KernelError) -> bool {
    matches!(
        e.errno(),
        Some(libc::EINVAL) | Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS) | Some(libc::EPERM)
    )
}

/// The layers of the overlay mounted at `root`, if it is one:
/// (lower top first, upper, work, options to keep).
fn overlay_layers(root: &Path) -> Result<Option<overlay::Overlay>, RootfsError> {
    let Some(m) = mountinfo::find_mount(root).map_err(kerr(root))? else {
        return Ok(None);
    };
    if m.fs_type != "overlay" {
        return Ok(None);
    }
    let bad = |what: String| RootfsError::Overlay {
        path: root.to_path_buf(),
        what,
    };
    // Relative layer paths (Docker's long-option form) are relative to the
    // overlay2 directory, two levels above `<id>/merged`.
    let base = root
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("/"));
    let abs = |s: &str| -> Result<PathBuf, RootfsError> {
        let p = Path::new(s);
        let p = if p.is_absolute() {
            p.to_path_buf()
        } else {
            base.join(p)
        };
        std::fs::canonicalize(&p).map_err(ioerr(&p))
    };
    let mut ov = overlay::Overlay::default();
    for (k, v) in mountinfo::super_options(&m.super_options) {
        match (k.as_str(), v) {
            // Layers given one by one (`lowerdir+`, as syscont itself mounts).
            ("lowerdir+", Some(v)) => ov.lower.push(abs(&v)?),
            ("datadir+", Some(_)) => {
                return Err(bad("data-only lower layers are not supported".into()));
            }
            ("lowerdir", Some(v)) => {
                let layers = mountinfo::split_layers(&v);
                if layers.iter().any(|l| l.is_empty()) {
                    return Err(bad("data-only lower layers are not supported".into()));
                }
                for l in layers {
                    ov.lower.push(abs(&l)?);
                }
            }
            ("upperdir", Some(v)) => ov.upper = Some(abs(&v)?),
            ("workdir", Some(v)) => ov.work = Some(abs(&v)?),
            ("redirect_dir" | "metacopy" | "xino", Some(v)) => ov.options.push((k, Some(v))),
            ("userxattr", None) => ov.options.push((k, None)),
            _ => {}
        }
    }
    if ov.lower.is_empty() {
        return Err(bad("no lowerdir in its options".into()));
    }
    // Two overlays share the engine's upper layer: the index would refuse.
    ov.options.push(("index".into(), Some("off".into())));
    Ok(Some(ov))
}

/// The deepest directory that holds every path.
fn common_ancestor(paths: &[&Path]) -> PathBuf {
    let mut acc = paths[0].to_path_buf();
    for p in &paths[1..] {
        while !p.starts_with(&acc) {
            if !acc.pop() {
                break;
            }
        }
    }
    acc
}

struct Builder<'a> {
    store: &'a Store,
    record: Record,
}

impl Builder<'_> {
    fn attach(&mut self, tree: &OwnedFd, target: &Path) -> Result<(), RootfsError> {
        // Record first: a crash right after the mount still finds it.
        self.record.mounts.push(target.to_path_buf());
        self.store.save(&self.record)?;
        idmap::attach(tree, target).map_err(kerr(target))
    }

    fn forget(&mut self, target: &Path) -> Result<(), RootfsError> {
        idmap::detach(target).map_err(kerr(target))?;
        self.record.mounts.retain(|m| m != target);
        self.store.save(&self.record)?;
        Ok(())
    }

    /// Rebuild an overlay rootfs on ID-mapped layers at `target`.
    fn overlay(
        &mut self,
        dir: &Path,
        ov: overlay::Overlay,
        ids: Ids,
        target: &Path,
    ) -> Result<(), RootfsError> {
        // Our own work directory beside the engine's: an overlay empties
        // its work directory when it is mounted, which would break the
        // engine's own overlay of the same upper layer.
        let mut ov = ov;
        if let Some(w) = &ov.work {
            let ours = w.with_file_name(OUR_WORKDIR);
            mkdir(&ours, 0o700)?;
            ov.work = Some(ours);
        }
        let mut all: Vec<&Path> = ov.lower.iter().map(PathBuf::as_path).collect();
        all.extend(ov.upper.as_deref());
        all.extend(ov.work.as_deref());
        let anc = common_ancestor(&all);
        let dev = std::fs::metadata(&anc).map_err(ioerr(&anc))?.dev();
        for p in &all {
            if std::fs::metadata(p).map_err(ioerr(p))?.dev() != dev {
                return Err(RootfsError::Overlay {
                    path: p.to_path_buf(),
                    what: format!("layer is not on the file system of {}", anc.display()),
                });
            }
        }
        let (u, g) = maps(ids, true);
        let ns = idmap::userns_with_maps(&u, &g).map_err(kerr(&anc))?;
        let tree = idmap::idmapped_tree(&anc, &ns, false).map_err(kerr(&anc))?;
        let layers = dir.join("layers");
        mkdir(&layers, 0o700)?;
        self.attach(&tree, &layers)?;
        let through = |p: &Path| layers.join(p.strip_prefix(&anc).unwrap_or(p));
        let mapped = overlay::Overlay {
            lower: ov.lower.iter().map(|p| through(p)).collect(),
            upper: ov.upper.as_deref().map(through),
            work: ov.work.as_deref().map(through),
            options: ov.options,
        };
        self.record.mounts.push(target.to_path_buf());
        self.store.save(&self.record)?;
        let made = overlay::mount(&mapped, target).map_err(kerr(target));
        if made.is_err() {
            self.record.mounts.pop();
        }
        // The overlay holds private clones of its layers.
        self.forget(&layers)?;
        made
    }
}

/// Name of syscont's overlay work directory, made beside the engine's.
pub const OUR_WORKDIR: &str = "syscont-work";

/// Mount the engine's own overlay again, fresh, at `engine_root`.
///
/// The engine (dockerd) looked into its overlay before the create (mount
/// points, /etc/hosts); an overlay caches what it has looked up, and would
/// not see what the container later changes in those directories through
/// its own overlay of the same upper layer (docker diff, docker cp). A
/// fresh mount starts with nothing cached. A failure is logged: the
/// container runs either way.
fn refresh_engine_mount(id: &str, ov: &overlay::Overlay, engine_root: &Path) {
    if let Err(e) = idmap::detach(engine_root) {
        tracing::warn!(container = %id, rootfs = %engine_root.display(), error = %e, "cannot refresh the engine's rootfs mount");
        return;
    }
    if let Err(e) = overlay::mount(ov, engine_root) {
        tracing::error!(container = %id, rootfs = %engine_root.display(), error = %e,
            "the engine's rootfs mount could not be made again: the engine's cp and diff of this container will fail");
    }
}

/// Prepare container `id`'s rootfs and bind mounts in its store directory.
pub fn prepare(
    store: &Store,
    id: &str,
    bundle: &Path,
    engine_root: &Path,
    binds: &[Bind],
    ids: Ids,
) -> Result<Prepared, RootfsError> {
    let dir = store.create_dir(id)?;
    // Whatever an earlier create left mounted is undone first.
    store.teardown(id)?;
    let engine_root = std::fs::canonicalize(engine_root).map_err(ioerr(engine_root))?;
    let previous = store.load(id)?;
    let mut b = Builder {
        store,
        record: Record {
            id: id.into(),
            bundle: std::fs::canonicalize(bundle).unwrap_or_else(|_| bundle.to_path_buf()),
            engine_root: engine_root.clone(),
            // Kept for a copied rootfs (not rebuilt); set again otherwise.
            alive_paths: previous
                .as_ref()
                .map(|r| r.alive_paths.clone())
                .unwrap_or_default(),
            mounts: vec![],
            copied_rootfs: previous.as_ref().is_some_and(|r| r.copied_rootfs),
            systemd: false,
        },
    };
    store.save(&b.record)?;
    let target = dir.join("rootfs");
    if !b.record.copied_rootfs {
        mkdir(&target, 0o755)?;
    }
    let made = if b.record.copied_rootfs {
        Err(None)
    } else {
        match overlay_layers(&engine_root)? {
            Some(ov) => {
                b.record.alive_paths = ov.upper.iter().cloned().collect();
                if b.record.alive_paths.is_empty() {
                    b.record.alive_paths.push(engine_root.clone());
                }
                let engine_ov = ov.clone();
                b.overlay(&dir, ov, ids, &target)
                    .map(|()| refresh_engine_mount(id, &engine_ov, &engine_root))
                    .map_err(Some)
            }
            None => {
                b.record.alive_paths = vec![engine_root.clone()];
                let (u, g) = maps(ids, false);
                idmap::userns_with_maps(&u, &g)
                    .and_then(|ns| idmap::idmapped_tree(&engine_root, &ns, true))
                    .map_err(|e| {
                        Some(RootfsError::Kernel {
                            path: engine_root.clone(),
                            source: e,
                        })
                    })
                    .and_then(|tree| b.attach(&tree, &target).map_err(Some))
            }
        }
    };
    match made {
        Ok(()) => {}
        Err(Some(RootfsError::Kernel { source, path })) if cannot_idmap(&source) => {
            tracing::warn!(container = %id, rootfs = %engine_root.display(), error = %source, at = %path.display(),
                "the rootfs cannot be ID-mapped here: using a chowned copy (the engine's diff will not see the container's changes)");
            let _ = std::fs::remove_dir(&target);
            copy_shifted(&engine_root, &target, ids).map_err(ioerr(&target))?;
            b.record.copied_rootfs = true;
            // An engine overlay's upper layer outlives a stop (the merged
            // directory does not: dockerd removes it at every stop).
            if b.record.alive_paths.is_empty() {
                b.record.alive_paths = vec![engine_root.clone()];
            }
        }
        Err(Some(e)) => return Err(e),
        Err(None) => {
            tracing::info!(container = %id, "using the chowned rootfs copy made at the first create");
        }
    }
    store.save(&b.record)?;

    let (u, g) = maps(ids, false);
    let ns = idmap::userns_with_maps(&u, &g).map_err(kerr(&dir))?;
    let mdir = dir.join("mounts");
    if !binds.is_empty() {
        mkdir(&mdir, 0o711)?;
    }
    let mut out = Vec::new();
    for bind in binds {
        let t = mdir.join(bind.index.to_string());
        let is_dir = std::fs::metadata(&bind.source).map(|m| m.is_dir());
        let placed = match is_dir {
            Ok(true) => mkdir(&t, 0o755),
            Ok(false) => std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&t)
                .map(drop)
                .map_err(ioerr(&t)),
            Err(e) => Err(ioerr(&bind.source)(e)),
        };
        let mapped = placed.and_then(|()| {
            let tree = idmap::idmapped_tree(&bind.source, &ns, bind.recursive)
                .map_err(kerr(&bind.source))?;
            b.attach(&tree, &t)
        });
        match mapped {
            Ok(()) => out.push((bind.index, t)),
            Err(e) => {
                tracing::warn!(container = %id, source = %bind.source.display(), error = %e,
                    "bind mount not ID-mapped: its files show as nobody in the container");
                b.record.mounts.retain(|m| m != &t);
                store.save(&b.record)?;
            }
        }
    }
    Ok(Prepared {
        root: target,
        binds: out,
        copied_rootfs: b.record.copied_rootfs,
    })
}

/// Copy the tree at `src` to `dst` with every owner shifted into `ids`
/// (ids outside the range become the range's `nobody`, 65534).
pub fn copy_shifted(src: &Path, dst: &Path, ids: Ids) -> std::io::Result<()> {
    let shift = |id: u32, base: u32| {
        base + if id < ids.size {
            id
        } else {
            65534.min(ids.size - 1)
        }
    };
    let md = std::fs::symlink_metadata(src)?;
    let ft = md.file_type();
    if ft.is_dir() {
        std::fs::create_dir(dst)?;
        for e in std::fs::read_dir(src)? {
            let e = e?;
            copy_shifted(&e.path(), &dst.join(e.file_name()), ids)?;
        }
    } else if ft.is_symlink() {
        std::os::unix::fs::symlink(std::fs::read_link(src)?, dst)?;
    } else if ft.is_file() {
        std::fs::copy(src, dst)?;
    } else {
        // Devices, fifos and sockets: the same node.
        nix::sys::stat::mknod(
            dst,
            nix::sys::stat::SFlag::from_bits_truncate(md.mode() & libc::S_IFMT),
            nix::sys::stat::Mode::from_bits_truncate(md.mode() & 0o7777),
            md.rdev(),
        )?;
    }
    std::os::unix::fs::lchown(
        dst,
        Some(shift(md.uid(), ids.uid)),
        Some(shift(md.gid(), ids.gid)),
    )?;
    if !ft.is_symlink() {
        // chown cleared set-id bits; put the mode back.
        std::fs::set_permissions(dst, std::fs::Permissions::from_mode(md.mode() & 0o7777))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ancestors() {
        let a = common_ancestor(&[
            Path::new("/var/lib/docker/overlay2/x/diff"),
            Path::new("/var/lib/docker/overlay2/y/diff"),
            Path::new("/var/lib/docker/overlay2/y/work"),
        ]);
        assert_eq!(a, Path::new("/var/lib/docker/overlay2"));
        assert_eq!(common_ancestor(&[Path::new("/a/b")]), Path::new("/a/b"));
    }

    /// A rootfs that cannot be ID-mapped (inside an overlay) is copied once;
    /// the next create of the same container reuses the copy and keeps the
    /// paths that tell the container still exists.
    #[test]
    fn a_copied_rootfs_is_reused_and_keeps_its_liveness() {
        if !crate::testutil::root_or_skip("the copied rootfs test") {
            return;
        }
        let t = tempfile::tempdir_in("/var/tmp").unwrap();
        let p = |n: &str| t.path().join(n);
        for d in ["lower/rootfs/bin", "upper", "work", "merged", "bundle"] {
            std::fs::create_dir_all(p(d)).unwrap();
        }
        std::fs::write(p("lower/rootfs/bin/x"), b"x").unwrap();
        let opts = format!(
            "lowerdir={},upperdir={},workdir={}",
            p("lower").display(),
            p("upper").display(),
            p("work").display()
        );
        nix::mount::mount(
            Some("overlay"),
            &p("merged"),
            Some("overlay"),
            nix::mount::MsFlags::empty(),
            Some(opts.as_str()),
        )
        .unwrap();
        let store = Store::new(&p("data"));
        let ids = Ids {
            uid: 500_000,
            gid: 500_000,
            size: 65536,
        };
        let root = p("merged/rootfs");
        let first = prepare(&store, "c", &p("bundle"), &root, &[], ids);
        let rec1 = store.load("c").unwrap().unwrap();
        let second = prepare(&store, "c", &p("bundle"), &root, &[], ids);
        let rec2 = store.load("c").unwrap().unwrap();
        let _ = idmap::detach(&p("merged"));
        let first = first.unwrap();
        assert!(first.copied_rootfs);
        assert!(second.unwrap().copied_rootfs);
        assert!(first.root.join("bin/x").exists());
        assert!(!rec1.alive_paths.is_empty());
        assert_eq!(rec1.alive_paths, rec2.alive_paths);
        store.release("c", None).unwrap();
    }

    #[test]
    fn copy_shifts_owners_and_keeps_modes() {
        if !crate::testutil::root_or_skip("the copy test") {
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        std::fs::create_dir_all(src.join("d")).unwrap();
        std::fs::write(src.join("d/suid"), b"x").unwrap();
        std::os::unix::fs::chown(src.join("d/suid"), Some(0), Some(0)).unwrap();
        std::fs::set_permissions(src.join("d/suid"), std::fs::Permissions::from_mode(0o4755))
            .unwrap();
        std::fs::write(src.join("user"), b"x").unwrap();
        std::os::unix::fs::chown(src.join("user"), Some(1000), Some(1000)).unwrap();
        std::os::unix::fs::symlink("d/suid", src.join("l")).unwrap();
        let ids = Ids {
            uid: 400_000,
            gid: 500_000,
            size: 65536,
        };
        copy_shifted(&src, &t.path().join("dst"), ids).unwrap();
        let m = |p: &str| std::fs::symlink_metadata(t.path().join("dst").join(p)).unwrap();
        assert_eq!((m("d/suid").uid(), m("d/suid").gid()), (400_000, 500_000));
        assert_eq!(m("d/suid").mode() & 0o7777, 0o4755);
        assert_eq!(m("user").uid(), 401_000);
        assert!(m("l").file_type().is_symlink());
        assert_eq!(m("l").uid(), 400_000);
    }
}
