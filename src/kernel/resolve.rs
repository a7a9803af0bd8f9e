//! Deciding which file a trapped `open` names, the way the trapped process
//! would see it.
//!
//! Two steps. [`lexical_candidate`] is a cheap string test on the absolute
//! path that tells whether the call *could* reach `/proc` or `/sys` (most
//! opens cannot, and are let through at once). For the candidates, a
//! [`Walker`] lets the kernel walk the path inside the process's own root
//! (a `chroot` on the worker thread's private fs state) from its cwd or
//! dirfd (opened through `/proc/<pid>/cwd|fd/N`), so mounts, symlinks, magic
//! links, `.`, `..` and `openat2`'s `RESOLVE_*` flags all behave as for the
//! process, and reports the filesystem and inode it lands on. procfs and
//! sysfs give a file the same inode number in every mount of them, so
//! `(filesystem magic, inode)` names e.g. "meminfo" whatever the spelling.
//! [`stat_path`] recognises a file already identified with one `stat`, and
//! [`identify`] is the walk without the chroot (`RESOLVE_IN_ROOT`; magic
//! links refused), the fallback where a thread cannot have its own root.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::{KernelError, Result};

/// `PROC_SUPER_MAGIC`.
pub const PROC_MAGIC: i64 = 0x9fa0;
/// `SYSFS_MAGIC`.
pub const SYSFS_MAGIC: i64 = 0x6265_6572;
/// `TMPFS_MAGIC`.
pub const TMPFS_MAGIC: i64 = 0x0102_1994;

/// `RESOLVE_NO_MAGICLINKS`.
pub const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
/// `RESOLVE_NO_SYMLINKS`.
pub const RESOLVE_NO_SYMLINKS: u64 = 0x04;
/// `RESOLVE_BENEATH`.
pub const RESOLVE_BENEATH: u64 = 0x08;
/// `RESOLVE_IN_ROOT`.
pub const RESOLVE_IN_ROOT: u64 = 0x10;

/// Where a path walk starts, in the trapped process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    /// The process's root directory (absolute paths).
    Root,
    /// The process's working directory (`AT_FDCWD`).
    Cwd,
    /// One of the process's fds.
    Fd(i32),
}

/// Identity of a file: filesystem magic and inode number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileId {
    pub fs_magic: i64,
    pub ino: u64,
}

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// Identity of an fd we hold.
pub fn file_id(fd: &OwnedFd) -> Result<FileId> {
    Ok(FileId {
        fs_magic: fs_magic(fd)?,
        ino: file_stat(fd)?.ino,
    })
}

/// Filesystem magic (`statfs.f_type`) of an fd we hold.
pub fn fs_magic(fd: &OwnedFd) -> Result<i64> {
    // SAFETY: a zeroed statfs is a valid out-parameter.
    let mut sfs: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: fd is valid, sfs is a valid out-parameter.
    if unsafe { libc::fstatfs(fd.as_raw_fd(), &mut sfs) } != 0 {
        return Err(KernelError::last("fstatfs"));
    }
    Ok(sfs.f_type)
}

/// What the refresh path checks about a pinned fd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStat {
    pub dev: u64,
    pub ino: u64,
    pub mode: u32,
    pub nlink: u64,
}

impl FileStat {
    /// A regular file?
    pub fn is_regular(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFREG
    }
}

/// `fstat` of an fd we hold.
pub fn file_stat(fd: &OwnedFd) -> Result<FileStat> {
    // SAFETY: a zeroed stat is a valid out-parameter.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fd is valid, st is a valid out-parameter.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
        return Err(KernelError::last("fstat"));
    }
    Ok(FileStat {
        dev: st.st_dev,
        ino: st.st_ino,
        mode: st.st_mode,
        nlink: st.st_nlink,
    })
}

/// Which mount a file we hold is on, and what kind of file it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MountStat {
    /// The mount's id, as in the first field of `/proc/<pid>/mountinfo`.
    pub mnt_id: u64,
    /// `st_mode` (type and permission bits).
    pub mode: u32,
}

impl MountStat {
    /// A directory?
    pub fn is_dir(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFDIR
    }

    /// A regular file?
    pub fn is_regular(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFREG
    }
}

/// The mount (`statx` `STATX_MNT_ID`, Linux 5.8) and type of an fd we hold
/// (an `O_PATH` fd from a walk, or through `/proc/<pid>/fd/N`, names the
/// mount the process reached the file through).
pub fn mount_stat(fd: &OwnedFd) -> Result<MountStat> {
    // SAFETY: a zeroed statx is a valid out-parameter.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: fd is valid, the empty path with AT_EMPTY_PATH names it, and
    // stx is a valid out-parameter.
    let r = unsafe {
        libc::statx(
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_STATX_DONT_SYNC,
            libc::STATX_TYPE | libc::STATX_MODE | libc::STATX_MNT_ID,
            &mut stx,
        )
    };
    if r != 0 {
        return Err(KernelError::last("statx"));
    }
    if stx.stx_mask & libc::STATX_MNT_ID == 0 {
        return Err(KernelError::Invalid(
            "statx gave no mount id (Linux 5.8 or later needed)".into(),
        ));
    }
    Ok(MountStat {
        mnt_id: stx.stx_mnt_id,
        mode: u32::from(stx.stx_mode),
    })
}

/// `(device, inode)` of the file at `path` (walked by the supervisor, so
/// through `/proc/<pid>/root|cwd|fd/N` it lands in another process's tree).
pub fn stat_path(path: &[u8], nofollow: bool) -> Result<(u64, u64)> {
    let c = CString::new(path).map_err(|_| KernelError::Invalid("path contains NUL".into()))?;
    // SAFETY: a zeroed stat is a valid out-parameter.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let flags = if nofollow {
        libc::AT_SYMLINK_NOFOLLOW
    } else {
        0
    };
    // SAFETY: c is a valid C string and st a valid out-parameter.
    if unsafe { libc::fstatat(libc::AT_FDCWD, c.as_ptr(), &mut st, flags) } != 0 {
        return Err(KernelError::last("fstatat"));
    }
    Ok((st.st_dev, st.st_ino))
}

fn open_path(path: &str) -> Result<OwnedFd> {
    let c = CString::new(path).map_err(|_| KernelError::Invalid("path contains NUL".into()))?;
    // SAFETY: c is a valid C string.
    let raw = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
    if raw < 0 {
        return Err(KernelError::last("open O_PATH"));
    }
    // SAFETY: open returned a fresh fd.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Open the start of a walk for process `pid` with `O_PATH`.
pub fn open_base(pid: u32, base: Base) -> Result<OwnedFd> {
    match base {
        Base::Root => open_path(&format!("/proc/{pid}/root")),
        Base::Cwd => open_path(&format!("/proc/{pid}/cwd")),
        Base::Fd(n) => open_path(&format!("/proc/{pid}/fd/{n}")),
    }
}

/// Walk `path` from `base` with `openat2(O_PATH)` and the given `RESOLVE_*`
/// flags; `nofollow` keeps a final symlink unfollowed (`O_NOFOLLOW`).
pub fn walk(base: &OwnedFd, path: &[u8], nofollow: bool, resolve: u64) -> Result<OwnedFd> {
    let c = CString::new(path).map_err(|_| KernelError::Invalid("path contains NUL".into()))?;
    let mut flags = (libc::O_PATH | libc::O_CLOEXEC) as u64;
    if nofollow {
        flags |= libc::O_NOFOLLOW as u64;
    }
    let how = OpenHow {
        flags,
        mode: 0,
        resolve,
    };
    // SAFETY: all pointers are valid for the call; size matches the struct.
    let raw = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            base.as_raw_fd(),
            c.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if raw < 0 {
        return Err(KernelError::last("openat2"));
    }
    // SAFETY: openat2 returned a fresh fd.
    Ok(unsafe { OwnedFd::from_raw_fd(raw as i32) })
}

/// Walks paths inside another process's root, from one thread.
///
/// The thread gets its own root and cwd (`unshare(CLONE_FS)`); for each walk
/// it `chroot`s into the caller's root (`/proc/<pid>/root`), so that
/// absolute symlinks, `..` at the root and magic links (`/proc/self/root`,
/// `/proc/<pid>/fd/N`) behave exactly as for the caller, and then returns
/// to the host's root. Without `CLONE_FS` (it cannot fail on Linux, but if
/// it did) walks fall back to `RESOLVE_IN_ROOT`, which refuses magic links.
#[derive(Debug)]
pub struct Walker {
    host_root: Option<OwnedFd>,
}

struct RootGuard<'a>(&'a OwnedFd);

impl Drop for RootGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: fchdir/chroot on a directory fd we hold; these only change
        // this thread's private root and cwd (CLONE_FS was unshared).
        unsafe {
            if libc::fchdir(self.0.as_raw_fd()) == 0 {
                libc::chroot(c".".as_ptr());
            }
        }
    }
}

impl Walker {
    /// Make a walker for the calling thread (call it on that thread).
    pub fn for_this_thread() -> Self {
        // SAFETY: unshare(CLONE_FS) only gives this thread its own copy of
        // root and cwd; it takes no pointers.
        let unshared = unsafe { libc::unshare(libc::CLONE_FS) } == 0;
        let host_root = if unshared { open_path("/").ok() } else { None };
        if host_root.is_none() {
            tracing::warn!(
                "cannot give the worker thread its own root; magic links in paths are not followed"
            );
        }
        Walker { host_root }
    }

    /// The file `path` names for process `pid`, walked from `base` with
    /// the caller's `RESOLVE_*` flags (`resolve`), opened `O_PATH`.
    pub fn open(
        &self,
        pid: u32,
        base: Base,
        path: &[u8],
        nofollow: bool,
        resolve: u64,
    ) -> Result<OwnedFd> {
        let Some(host_root) = &self.host_root else {
            return walk_in_root(pid, base, path, nofollow, resolve);
        };
        let root = open_base(pid, Base::Root)?;
        // Open the caller's cwd or dirfd before leaving the host's root.
        let start = match base {
            Base::Root => None,
            other => Some(open_base(pid, other)?),
        };
        let f = {
            // SAFETY: fchdir/chroot on directory fds we hold, on this
            // thread's private fs state; the guard returns to the host root.
            let ok =
                unsafe { libc::fchdir(root.as_raw_fd()) == 0 && libc::chroot(c".".as_ptr()) == 0 };
            let _back = RootGuard(host_root);
            if !ok {
                return Err(KernelError::last("chroot into the caller's root"));
            }
            match &start {
                Some(s) => walk(s, path, nofollow, resolve)?,
                // cwd is now the caller's root: an absolute path starts there.
                None => walk(&root, path, nofollow, resolve)?,
            }
        };
        Ok(f)
    }
}

/// The walk without a chroot: from `/proc/<pid>/root|cwd|fd/N`, with
/// `RESOLVE_IN_ROOT` for absolute paths (so `..` stops at the caller's
/// root, but magic links are refused).
fn walk_in_root(
    pid: u32,
    base: Base,
    path: &[u8],
    nofollow: bool,
    resolve: u64,
) -> Result<OwnedFd> {
    let resolve = if base == Base::Root {
        resolve | RESOLVE_IN_ROOT
    } else {
        resolve
    };
    walk(&open_base(pid, base)?, path, nofollow, resolve)
}

/// Which file `path` names for process `pid`, walked from `base` without a
/// chroot (the [`Walker`]'s fallback).
pub fn identify(pid: u32, base: Base, path: &[u8], nofollow: bool, resolve: u64) -> Result<FileId> {
    file_id(&walk_in_root(pid, base, path, nofollow, resolve)?)
}

/// Normalise an absolute path lexically (drop `.` and empty components,
/// let `..` remove the previous one) into its components.
pub fn lexical_components(abs: &[u8]) -> Vec<&[u8]> {
    let mut out: Vec<&[u8]> = Vec::new();
    for c in abs.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

/// Could an open of the absolute path `abs` (already joined with its base
/// directory) reach an emulated file? The test is lexical and errs on the
/// side of "yes"; the kernel walk decides.
///
/// - `/sys/...` and `/dev/fd|stdin|stdout|stderr` (links into `/proc`): yes.
/// - `/proc/X`: yes (the emulated files live at the top of procfs).
/// - deeper `/proc` paths: only through the links that can lead out of a
///   process directory (`cwd`, `root`, `fd/N`, `map_files/…`), or when the
///   path has a `..` that a link could redirect. So the frequent reads of
///   `/proc/<pid>/stat`, `/proc/self/status` (ps, top, runc) skip the walk.
/// - anywhere else: when the last component is the name of an emulated
///   file or of a file the engines mask (a procfs or sysfs mounted
///   elsewhere inside the container, or an inner container's, which its
///   runtime mounts at a path of its own).
pub fn lexical_candidate(abs: &[u8]) -> bool {
    // A `..` after a link (`/proc/thread-self/../../..`) may land anywhere
    // the lexical form does not show: any such path through /proc, /sys or
    // /dev is walked.
    let mut raw = abs.split(|&b| b == b'/');
    if raw.clone().any(|c| c == b"..") && raw.any(|c| matches!(c, b"proc" | b"sys" | b"dev")) {
        return true;
    }
    let comps = lexical_components(abs);
    match comps.first() {
        Some(&b"sys") => true,
        Some(&b"dev") => matches!(
            comps.get(1),
            Some(&b"fd") | Some(&b"stdin") | Some(&b"stdout") | Some(&b"stderr")
        ),
        Some(&b"proc") => {
            if comps.len() <= 2 {
                return true;
            }
            let has_dotdot = abs.split(|&b| b == b'/').any(|c| c == b"..");
            has_dotdot
                || comps[2..]
                    .iter()
                    .any(|c| matches!(*c, b"cwd" | b"root" | b"fd" | b"map_files"))
        }
        _ => comps.last().is_some_and(|c| EMULATED_NAMES.contains(c)),
    }
}

/// The last components of the emulated files' paths, and of the procfs
/// files the engines mask (`supervisor::files::MASKED_PROC_FILES`).
const EMULATED_NAMES: [&[u8]; 16] = [
    b"kcore",
    b"keys",
    b"timer_list",
    b"timer_stats",
    b"sched_debug",
    b"latency_stats",
    b"uptime",
    b"meminfo",
    b"cpuinfo",
    b"stat",
    b"loadavg",
    b"swaps",
    b"diskstats",
    b"online",
    b"possible",
    b"present",
];

/// Join a base directory (absolute) and a relative path.
pub fn join(base: &[u8], rel: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(base.len() + 1 + rel.len());
    v.extend_from_slice(base);
    v.push(b'/');
    v.extend_from_slice(rel);
    v
}

/// Rewrite `proc/self` and `proc/thread-self` components (which name the
/// *walker's* pid, so they must name the trapped process's instead) with
/// the process's ids in its own pid namespace. `first_is_proc_root` says
/// the walk starts at a procfs root (a relative `self/...`). Returns `None`
/// when nothing needs rewriting.
pub fn rewrite_self(path: &[u8], first_is_proc_root: bool, tgid: u32, tid: u32) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(path.len() + 24);
    let mut prev_is_proc = first_is_proc_root;
    let mut changed = false;
    for (i, c) in path.split(|&b| b == b'/').enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        match c {
            b"self" if prev_is_proc => {
                out.extend_from_slice(tgid.to_string().as_bytes());
                changed = true;
                prev_is_proc = false;
            }
            b"thread-self" if prev_is_proc => {
                out.extend_from_slice(format!("{tgid}/task/{tid}").as_bytes());
                changed = true;
                prev_is_proc = false;
            }
            b"" | b"." => out.extend_from_slice(c),
            _ => {
                prev_is_proc = c == b"proc";
                out.extend_from_slice(c);
            }
        }
    }
    changed.then_some(out)
}

/// Does the path mention `self` or `thread-self` at all (cheap pre-test)?
pub fn mentions_self(path: &[u8]) -> bool {
    memchr::memmem::find(path, b"self").is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates() {
        for p in [
            &b"/proc/meminfo"[..],
            b"//proc//meminfo",
            b"/proc/./uptime",
            b"/etc/../proc/uptime",
            b"/sys/devices/system/cpu/online",
            b"/dev/fd/3",
            b"/dev/stdin",
            b"/./proc",
            b"/proc/self/cwd/meminfo",
            b"/proc/1/root/proc/uptime",
            b"/proc/self/fd/3",
            b"/proc/self/task/5/fd/3",
            b"/proc/self/../meminfo",
            b"/proc/self/net/../../meminfo",
            // A `..` after a link may land anywhere: walked.
            b"/proc/thread-self/../../../meminfo",
            b"/proc/../etc/x",
            // A procfs or sysfs mounted elsewhere (an inner container's).
            b"/mnt/p/meminfo",
            b"/var/lib/docker/x/merged/proc/uptime",
            b"/host-sys/devices/system/cpu/online",
        ] {
            assert!(lexical_candidate(p), "{}", String::from_utf8_lossy(p));
        }
        for p in [
            &b"/etc/hostname"[..],
            b"/etc/../usr/x",
            b"/usr/lib/proc/x",
            b"/",
            b"/dev/null",
            b"/etc/meminfo.conf",
            b"/proc/1/stat",
        ] {
            assert!(!lexical_candidate(p), "{}", String::from_utf8_lossy(p));
        }
    }

    #[test]
    fn self_rewrite() {
        assert_eq!(
            rewrite_self(b"/proc/self/status", false, 7, 9).unwrap(),
            b"/proc/7/status"
        );
        assert_eq!(
            rewrite_self(b"//proc/./self/fd/3", false, 7, 9).unwrap(),
            b"//proc/./7/fd/3"
        );
        assert_eq!(
            rewrite_self(b"/proc/thread-self/stat", false, 7, 9).unwrap(),
            b"/proc/7/task/9/stat"
        );
        assert_eq!(rewrite_self(b"self/stat", true, 7, 9).unwrap(), b"7/stat");
        assert_eq!(rewrite_self(b"self/stat", false, 7, 9), None);
        assert_eq!(rewrite_self(b"/home/self/x", false, 7, 9), None);
    }

    #[test]
    fn mount_ids_are_those_of_mountinfo() {
        // The mount id statx gives is the first field of mountinfo.
        let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let proc_id: u64 = table
            .lines()
            .rev()
            .find(|l| l.split(' ').nth(4) == Some("/proc"))
            .and_then(|l| l.split(' ').next()?.parse().ok())
            .unwrap();
        let st = mount_stat(&open_path("/proc/self").unwrap()).unwrap();
        assert_eq!(st.mnt_id, proc_id);
        assert!(st.is_dir() && !st.is_regular());
        let st = mount_stat(&open_path("/proc/meminfo").unwrap()).unwrap();
        assert_eq!(st.mnt_id, proc_id);
        assert!(st.is_regular());
    }

    #[test]
    fn identify_own_meminfo_by_every_spelling() {
        let me = std::process::id();
        let want = file_id(&open_path("/proc/meminfo").unwrap()).unwrap();
        assert_eq!(want.fs_magic, PROC_MAGIC);
        for p in [
            &b"/proc/meminfo"[..],
            b"//proc/./meminfo",
            b"/proc/../proc/meminfo",
        ] {
            let got = identify(me, Base::Root, p, false, RESOLVE_IN_ROOT).unwrap();
            assert_eq!(got, want);
        }
        let e = identify(me, Base::Root, b"/proc/nonexistent", false, RESOLVE_IN_ROOT).unwrap_err();
        assert_eq!(e.errno(), Some(libc::ENOENT));
    }
}
