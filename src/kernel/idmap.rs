//! ID-mapped mounts: a user namespace that holds a container's id mapping,
//! and a mount of a directory tree that shows its files through that
//! mapping.
//!
//! A file owned by uid 0 on disk, seen through a mount ID-mapped with a
//! namespace that maps container 0 to host 100000, is owned by 100000 as
//! the host sees it and by 0 inside the container: ownership without a
//! chown of the image, in time independent of its size. util-linux 2.38
//! has no `X-mount.idmap`, so this uses `open_tree`, `mount_setattr` and
//! `move_mount` directly.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use super::{KernelError, Result};

const OPEN_TREE_CLONE: libc::c_uint = 1;
const AT_RECURSIVE: libc::c_uint = 0x8000;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// One line of a uid or gid map: `inside outside count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdMap {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

fn map_text(maps: &[IdMap]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.inside, m.outside, m.count))
        .collect()
}

fn cstr(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_encoded_bytes())
        .map_err(|_| KernelError::Invalid(format!("path contains NUL: {}", p.display())))
}

/// A user namespace with the given uid and gid maps, held by an fd (no
/// process stays in it). It is made by a short-lived `sleep` that unshares
/// its user namespace before exec; the maps are written from here, then
/// the namespace is opened and the helper is ended.
pub fn userns_with_maps(uids: &[IdMap], gids: &[IdMap]) -> Result<OwnedFd> {
    let sleeper = ["/bin/sleep", "/usr/bin/sleep"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .ok_or_else(|| KernelError::Invalid("no sleep binary to hold a user namespace".into()))?;
    let mut cmd = Command::new(sleeper);
    cmd.arg("30")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: unshare is a plain syscall, safe between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::unshare(libc::CLONE_NEWUSER) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| KernelError::Sys {
        op: "spawn a user namespace holder",
        source: e,
    })?;
    let pid = child.id();
    let result = (|| {
        let write = |file: &str, text: String| {
            std::fs::write(format!("/proc/{pid}/{file}"), text).map_err(|e| KernelError::Sys {
                op: "write an id map",
                source: e,
            })
        };
        write("uid_map", map_text(uids))?;
        write("gid_map", map_text(gids))?;
        let c = CString::new(format!("/proc/{pid}/ns/user"))
            .map_err(|_| KernelError::Invalid("pid".into()))?;
        // SAFETY: c is a valid C string.
        let raw = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        if raw < 0 {
            return Err(KernelError::last("open the user namespace"));
        }
        // SAFETY: open returned a fresh fd.
        Ok(unsafe { OwnedFd::from_raw_fd(raw) })
    })();
    let _ = child.kill();
    let _ = child.wait();
    result
}

/// A detached copy of the tree at `src` (with its submounts if
/// `recursive`), ID-mapped through the user namespace `userns`. Attach it
/// with [`attach`].
pub fn idmapped_tree(src: &Path, userns: &OwnedFd, recursive: bool) -> Result<OwnedFd> {
    let c = cstr(src)?;
    let rec = if recursive { AT_RECURSIVE } else { 0 };
    // SAFETY: c is a valid C string; flags are valid for open_tree.
    let raw = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            c.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | rec,
        )
    };
    if raw < 0 {
        return Err(KernelError::last("open_tree"));
    }
    // SAFETY: open_tree returned a fresh fd.
    let tree = unsafe { OwnedFd::from_raw_fd(raw as i32) };
    // Private: a clone of a shared mount (systemd makes `/` shared) joins
    // its peer group, so it would receive the engine's later mounts below
    // the same directory, and detaching it would propagate the unmount of
    // those copies back to the engine's own mounts.
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: libc::MS_PRIVATE,
        userns_fd: userns.as_raw_fd() as u64,
    };
    // SAFETY: the empty path with AT_EMPTY_PATH names the tree fd; attr is
    // a valid mount_attr of the size passed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH as libc::c_uint | rec,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r != 0 {
        return Err(KernelError::last("mount_setattr(MOUNT_ATTR_IDMAP)"));
    }
    Ok(tree)
}

/// A detached copy of the mount at `src` (not its submounts), unmapped:
/// the same file system shown at a second place once attached.
pub fn clone_tree(src: &Path) -> Result<OwnedFd> {
    let c = cstr(src)?;
    // SAFETY: c is a valid C string; flags are valid for open_tree.
    let raw = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            c.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint,
        )
    };
    if raw < 0 {
        return Err(KernelError::last("open_tree"));
    }
    // SAFETY: open_tree returned a fresh fd.
    Ok(unsafe { OwnedFd::from_raw_fd(raw as i32) })
}

/// Attach a detached tree (from [`idmapped_tree`]) on `target`.
pub fn attach(tree: &OwnedFd, target: &Path) -> Result<()> {
    let t = cstr(target)?;
    // SAFETY: both paths are valid C strings; the empty path names the fd.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if r != 0 {
        return Err(KernelError::last("move_mount"));
    }
    Ok(())
}

/// Detach whatever is mounted on `target` (lazily).
pub fn detach(target: &Path) -> Result<()> {
    let t = cstr(target)?;
    // SAFETY: t is a valid C string.
    if unsafe { libc::umount2(t.as_ptr(), libc::MNT_DETACH) } != 0 {
        return Err(KernelError::last("umount2"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn files_owned_by_root_show_through_the_mapping() {
        if !crate::testutil::root_or_skip("ID-mapped mount tests") {
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let (src, dst) = (d.path().join("src"), d.path().join("dst"));
        std::fs::create_dir_all(&src).unwrap();
        std::fs::create_dir_all(&dst).unwrap();
        std::fs::write(src.join("f"), b"x").unwrap();
        std::os::unix::fs::chown(src.join("f"), Some(0), Some(0)).unwrap();
        let map = [IdMap {
            inside: 0,
            outside: 100_000,
            count: 65536,
        }];
        let ns = userns_with_maps(&map, &map).unwrap();
        let tree = idmapped_tree(&src, &ns, true).unwrap();
        attach(&tree, &dst).unwrap();
        let md = std::fs::metadata(dst.join("f"));
        // A file the host creates through the mount lands on disk mapped back.
        let created = std::fs::write(dst.join("g"), b"y");
        detach(&dst).unwrap();
        let md = md.unwrap();
        assert_eq!((md.uid(), md.gid()), (100_000, 100_000));
        // The source itself is unchanged.
        assert_eq!(std::fs::metadata(src.join("f")).unwrap().uid(), 0);
        // Host root (uid 0) is not mapped in the namespace: it cannot create
        // files through the mount (EOVERFLOW), so nothing lands as root.
        assert!(created.is_err());
        assert!(!src.join("g").exists());
    }

    /// Cloned from a shared mount, the mapped tree is no peer of it: a mount
    /// made later below the source does not appear in it, and detaching it
    /// leaves the source's mounts alone.
    #[test]
    fn mapped_trees_of_shared_mounts_are_private() {
        if !crate::testutil::root_or_skip("ID-mapped mount tests") {
            return;
        }
        use nix::mount::{mount, MsFlags};
        let d = tempfile::tempdir().unwrap();
        let (shared, dst) = (d.path().join("shared"), d.path().join("dst"));
        std::fs::create_dir_all(shared.join("sub")).unwrap();
        std::fs::create_dir_all(&dst).unwrap();
        mount(
            Some(&shared),
            &shared,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .unwrap();
        mount(
            None::<&str>,
            &shared,
            None::<&str>,
            MsFlags::MS_SHARED,
            None::<&str>,
        )
        .unwrap();
        let map = [IdMap {
            inside: 0,
            outside: 100_000,
            count: 65536,
        }];
        let ns = userns_with_maps(&map, &map).unwrap();
        let attached = idmapped_tree(&shared, &ns, false).and_then(|t| attach(&t, &dst));
        // The engine mounts something below the shared source afterwards.
        let later = mount(
            Some("tmpfs"),
            &shared.join("sub"),
            Some("tmpfs"),
            MsFlags::empty(),
            None::<&str>,
        );
        let propagated = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .any(|l| l.split(' ').nth(4) == dst.join("sub").to_str());
        let detached = detach(&dst);
        let still = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .any(|l| l.split(' ').nth(4) == shared.join("sub").to_str());
        let _ = detach(&shared.join("sub"));
        let _ = detach(&shared);
        attached.unwrap();
        later.unwrap();
        detached.unwrap();
        assert!(
            !propagated,
            "the engine's mount propagated into the mapped tree"
        );
        assert!(
            still,
            "detaching the mapped tree unmounted the engine's mount"
        );
    }

    /// An overlay cannot be ID-mapped itself, but one built on an ID-mapped
    /// lower layer shows the mapped owners (how a Docker rootfs will be
    /// mapped without a chown).
    #[test]
    fn an_overlay_on_an_idmapped_lower_layer_shows_the_mapping() {
        if !crate::testutil::root_or_skip("ID-mapped mount tests") {
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let p = |n: &str| d.path().join(n);
        for n in ["lower", "mapped", "upper", "work", "merged"] {
            std::fs::create_dir_all(p(n)).unwrap();
        }
        std::fs::write(p("lower/f"), b"x").unwrap();
        let map = [IdMap {
            inside: 0,
            outside: 200_000,
            count: 65536,
        }];
        let ns = userns_with_maps(&map, &map).unwrap();
        attach(
            &idmapped_tree(&p("lower"), &ns, false).unwrap(),
            &p("mapped"),
        )
        .unwrap();
        let opts = format!(
            "lowerdir={},upperdir={},workdir={}",
            p("mapped").display(),
            p("upper").display(),
            p("work").display()
        );
        let mounted = nix::mount::mount(
            Some("overlay"),
            &p("merged"),
            Some("overlay"),
            nix::mount::MsFlags::empty(),
            Some(opts.as_str()),
        );
        let md = std::fs::metadata(p("merged/f"));
        if mounted.is_ok() {
            detach(&p("merged")).unwrap();
        }
        detach(&p("mapped")).unwrap();
        mounted.unwrap();
        assert_eq!(md.unwrap().uid(), 200_000);
    }
}
