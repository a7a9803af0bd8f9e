//! `chmod`, `fchmod`, `fchmodat`, `fchmodat2`, `creat`, `mknod`, `mknodat`,
//! the `setxattr` family, and the set-id gate of `open`/`openat`/`openat2`:
//! what file would the call make set-user-ID, set-group-ID or
//! capability-bearing, found as the caller would find it, and may it
//! (see [`crate::supervisor::setid`] for the policy)?
//!
//! The filter traps a chmod, creat or mknod only when its mode has a set-id
//! bit, and an open only when it can create; the `setxattr` calls are all
//! trapped (the name is behind a pointer) and every name but
//! `security.capability` is let through after one read of it.
//!
//! Paths are walked by the [`Walker`](crate::kernel::resolve::Walker) in
//! the caller's root from its cwd or dirfd, with `proc/self` rewritten to
//! the caller's pid; fds are reached through `/proc/<pid>/fd/N`, which keeps
//! the mount the caller opened them through. A new file is judged by the
//! directory it would be created in; an existing one by itself; a
//! directory is never refused. When the target cannot be found, a call the
//! kernel fails anyway (a missing parent, a bad fd, a bad pointer) goes on
//! to the kernel for its own errno, and anything else is refused: a
//! dangling symlink that `O_CREAT` would follow, a `/proc/self` link
//! reached through another symlink (it names the supervisor during the
//! walk), an error the caller would not get.
//!
//! The decision is taken before the kernel runs the call, so a process
//! that swaps the file or rewrites the path in its memory in between can
//! still win a race (see `docs/limitations.md`).

use std::os::fd::OwnedFd;
use std::sync::atomic::Ordering::Relaxed;

use crate::kernel::arch::Sys;
use crate::kernel::procmem::{read_cstring, CString};
use crate::kernel::resolve::{
    open_base, Base, RESOLVE_BENEATH, RESOLVE_IN_ROOT, RESOLVE_NO_SYMLINKS,
};
use crate::supervisor::setid::{Object, Verdict, CAPABILITY_XATTR, SETID_BITS};

use super::open::OpenHow;
use super::{path_arg, walkable_path, Action, Ctx};

/// `XATTR_NAME_MAX`.
const XATTR_NAME_MAX: usize = 255;
/// `AT_SYMLINK_NOFOLLOW`, `AT_EMPTY_PATH`.
const AT_SYMLINK_NOFOLLOW: u64 = 0x100;
const AT_EMPTY_PATH: u64 = 0x1000;
/// `__O_TMPFILE` (`O_TMPFILE` without `O_DIRECTORY`).
const O_TMPFILE_BIT: u64 = (libc::O_TMPFILE & !libc::O_DIRECTORY) as u32 as u64;
/// `RESOLVE_CACHED`: only a hint for io_uring; the walk ignores it.
const RESOLVE_CACHED: u64 = 0x20;

/// Where the call's file is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// A path, walked from `base`.
    Path {
        base: Base,
        path: Vec<u8>,
        absolute: bool,
        nofollow: bool,
        resolve: u64,
    },
    /// An fd of the caller (`AT_EMPTY_PATH` with `AT_FDCWD`: its cwd).
    Fd(Base),
}

/// What the call does with its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Changes the existing file (chmod, setxattr).
    Change,
    /// Creates the file unless it exists (`O_CREAT`, `creat`, `mknod`);
    /// `follow` says whether a final symlink is followed, `excl` whether an
    /// existing file fails the call.
    Create { follow: bool, excl: bool },
    /// Creates an unnamed file in the directory (`O_TMPFILE`), which
    /// `linkat` can later give a name.
    Tmpfile,
}

/// One set-id attempt to judge.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Request {
    target: Target,
    kind: Kind,
}

/// Where the walk ended.
enum Place {
    /// The existing file.
    Existing(OwnedFd),
    /// The directory a new file would be made in.
    NewIn(OwnedFd),
    /// The kernel fails the call whatever we say: let it give its errno.
    Fails,
    /// Nothing to judge by: refuse.
    Doubt,
}

/// The base a path starts from; `None` for a relative path and a bad dirfd
/// (`EBADF`).
fn base_of(dirfd: i32, absolute: bool, resolve: u64) -> Option<Base> {
    if absolute && resolve & (RESOLVE_IN_ROOT | RESOLVE_BENEATH) == 0 {
        Some(Base::Root)
    } else if dirfd == libc::AT_FDCWD {
        Some(Base::Cwd)
    } else if dirfd >= 0 {
        Some(Base::Fd(dirfd))
    } else {
        None
    }
}

/// A path target, or the fd itself for an empty path with `AT_EMPTY_PATH`.
fn target(
    ctx: &Ctx<'_>,
    dirfd: u64,
    addr: u64,
    nofollow: bool,
    empty_ok: bool,
    resolve: u64,
) -> Option<Target> {
    let dirfd = dirfd as u32 as i32;
    let path = path_arg(ctx, addr)?;
    if path.is_empty() {
        // Without AT_EMPTY_PATH: ENOENT.
        if !empty_ok {
            return None;
        }
        return match dirfd {
            libc::AT_FDCWD => Some(Target::Fd(Base::Cwd)),
            n if n >= 0 => Some(Target::Fd(Base::Fd(n))),
            _ => None,
        };
    }
    let absolute = path[0] == b'/';
    let base = base_of(dirfd, absolute, resolve)?;
    Some(Target::Path {
        base,
        path,
        absolute,
        nofollow,
        resolve,
    })
}

/// Is the xattr name at `addr` the file capabilities'? An unreadable name
/// is the kernel's to refuse (`EFAULT`, `ERANGE`).
fn names_capability(ctx: &Ctx<'_>, addr: u64) -> bool {
    matches!(
        read_cstring(ctx.notif.pid, addr, XATTR_NAME_MAX),
        Ok(CString::Ok(n)) if n == CAPABILITY_XATTR
    )
}

/// A regular file's mode for `mknod` (type 0 means regular).
fn mknod_makes_regular(mode: u64) -> bool {
    let t = mode as u32 & libc::S_IFMT;
    t == 0 || t == libc::S_IFREG
}

/// The set-id attempt a trapped chmod, creat, mknod or setxattr makes, if
/// any.
fn request(ctx: &Ctx<'_>) -> Option<Request> {
    let a = ctx.notif.args;
    let fdcwd = libc::AT_FDCWD as u32 as u64;
    let setid = |mode: u64| mode & SETID_BITS != 0;
    let change = |target| {
        Some(Request {
            target,
            kind: Kind::Change,
        })
    };
    let mknod = |dirfd, addr, mode: u64| {
        if !setid(mode) || !mknod_makes_regular(mode) {
            return None;
        }
        Some(Request {
            target: target(ctx, dirfd, addr, true, false, 0)?,
            kind: Kind::Create {
                follow: false,
                excl: true,
            },
        })
    };
    match ctx.sys {
        Sys::Chmod if setid(a[1]) => change(target(ctx, fdcwd, a[0], false, false, 0)?),
        Sys::Fchmodat if setid(a[2]) => change(target(ctx, a[0], a[1], false, false, 0)?),
        Sys::Fchmodat2 if setid(a[2]) => change(at_target(ctx, a[0], a[1], a[3])?),
        Sys::Fchmod if setid(a[1]) => fd_target(a[0]).and_then(change),
        Sys::Creat if setid(a[1]) => Some(Request {
            target: target(ctx, fdcwd, a[0], false, false, 0)?,
            kind: Kind::Create {
                follow: true,
                excl: false,
            },
        }),
        Sys::Mknod => mknod(fdcwd, a[0], a[1]),
        Sys::Mknodat => mknod(a[0], a[1], a[2]),
        Sys::Setxattr | Sys::Lsetxattr if names_capability(ctx, a[1]) => {
            let nofollow = ctx.sys == Sys::Lsetxattr;
            change(target(ctx, fdcwd, a[0], nofollow, false, 0)?)
        }
        Sys::Fsetxattr if names_capability(ctx, a[1]) => fd_target(a[0]).and_then(change),
        // setxattrat(dfd, path, at_flags, name, args, size)
        Sys::Setxattrat if names_capability(ctx, a[3]) => change(at_target(ctx, a[0], a[1], a[2])?),
        _ => None,
    }
}

/// The file of a `*at` call with `AT_SYMLINK_NOFOLLOW`/`AT_EMPTY_PATH`
/// flags (`fchmodat2`, `setxattrat`); `None` for flags the kernel refuses
/// (`EINVAL`).
fn at_target(ctx: &Ctx<'_>, dirfd: u64, path: u64, at_flags: u64) -> Option<Target> {
    let flags = at_flags & 0xffff_ffff;
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return None;
    }
    target(
        ctx,
        dirfd,
        path,
        flags & AT_SYMLINK_NOFOLLOW != 0,
        flags & AT_EMPTY_PATH != 0,
        0,
    )
}

/// An fd argument; `None` for a negative one (`EBADF`).
fn fd_target(fd: u64) -> Option<Target> {
    let fd = fd as u32 as i32;
    (fd >= 0).then_some(Target::Fd(Base::Fd(fd)))
}

/// The set-id attempt of an open, if it can create a set-id file: a cheap
/// test of the flags and mode first (most opens stop there).
fn open_request(ctx: &Ctx<'_>, how: Option<OpenHow>) -> Option<Request> {
    let a = ctx.notif.args;
    let fdcwd = libc::AT_FDCWD as u32 as u64;
    let creates = |flags: u64| flags & (libc::O_CREAT as u64 | O_TMPFILE_BIT) != 0;
    let (dirfd, addr, flags, resolve) = match ctx.sys {
        Sys::Open if creates(a[1]) && a[2] & SETID_BITS != 0 => (fdcwd, a[0], a[1], 0),
        Sys::Openat if creates(a[2]) && a[3] & SETID_BITS != 0 => (a[0], a[1], a[2], 0),
        Sys::Openat2 => {
            let OpenHow {
                flags,
                mode,
                resolve,
            } = how?;
            // openat2 refuses a mode with other bits, and a mode without a
            // creation (EINVAL): nothing is created then.
            if !creates(flags) || mode & SETID_BITS == 0 || mode & !0o7777 != 0 {
                return None;
            }
            (a[0], a[1], flags, resolve & !RESOLVE_CACHED)
        }
        _ => return None,
    };
    let flags = flags & 0xffff_ffff;
    // O_PATH ignores O_CREAT (open, openat) or is refused with it (openat2).
    if flags & libc::O_PATH as u64 != 0 {
        return None;
    }
    // O_CREAT with O_DIRECTORY is refused (EINVAL, Linux 6.4).
    let directory = flags & libc::O_DIRECTORY as u64 != 0;
    if directory && flags & O_TMPFILE_BIT == 0 {
        return None;
    }
    let nofollow = flags & libc::O_NOFOLLOW as u64 != 0;
    let kind = if flags & O_TMPFILE_BIT != 0 {
        Kind::Tmpfile
    } else {
        let excl = flags & libc::O_EXCL as u64 != 0;
        Kind::Create {
            follow: !nofollow && !excl,
            excl,
        }
    };
    Some(Request {
        target: target(ctx, dirfd, addr, nofollow, false, resolve)?,
        kind,
    })
}

/// Walk `path` for the caller (`RESOLVE_CACHED` dropped); the errno if it fails.
fn walk(
    ctx: &Ctx<'_>,
    base: Base,
    path: &[u8],
    nofollow: bool,
    resolve: u64,
) -> Result<OwnedFd, i32> {
    let path = if path.is_empty() { &b"."[..] } else { path };
    ctx.walker
        .open(ctx.notif.pid, base, path, nofollow, resolve)
        .map_err(|e| e.errno().unwrap_or(0))
}

/// A walk that failed with `errno`: does the kernel fail the caller's call
/// too? A missing file is believed only when the same walk without any
/// symlink finds it missing too: through a symlink, the supervisor's walk
/// can fail where the caller's would not (`/dev/fd` → `/proc/self/fd`,
/// where `self` names the supervisor).
fn failed(
    ctx: &Ctx<'_>,
    base: Base,
    path: &[u8],
    nofollow: bool,
    resolve: u64,
    errno: i32,
) -> Place {
    match errno {
        libc::ENOENT => match walk(ctx, base, path, nofollow, resolve | RESOLVE_NO_SYMLINKS) {
            Err(libc::ENOENT) => Place::Fails,
            _ => Place::Doubt,
        },
        libc::ENOTDIR | libc::ELOOP | libc::ENAMETOOLONG | libc::EXDEV | libc::EISDIR => {
            Place::Fails
        }
        _ => Place::Doubt,
    }
}

/// The directory part and last component of a path to create; `None` when
/// the kernel cannot create it (`dir/`, `.`, `..`: `EISDIR`, `EEXIST`, …).
fn split_last(path: &[u8]) -> Option<(&[u8], &[u8])> {
    if path.last() == Some(&b'/') {
        return None;
    }
    let (dir, name) = match path.iter().rposition(|&b| b == b'/') {
        Some(0) => (&path[..1], &path[1..]),
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&b"."[..], path),
    };
    if name == b"." || name == b".." {
        return None;
    }
    Some((dir, name))
}

/// Find the request's file as the caller would.
fn place(ctx: &Ctx<'_>, req: &Request) -> Place {
    let (base, path, absolute, nofollow, resolve) = match &req.target {
        Target::Fd(base) => {
            return match open_base(ctx.notif.pid, *base) {
                Ok(fd) if req.kind == Kind::Tmpfile => Place::NewIn(fd),
                Ok(fd) => Place::Existing(fd),
                // No such fd: EBADF for the caller.
                Err(e) if e.errno() == Some(libc::ENOENT) => Place::Fails,
                Err(_) => Place::Doubt,
            };
        }
        Target::Path {
            base,
            path,
            absolute,
            nofollow,
            resolve,
        } => (*base, path, *absolute, *nofollow, *resolve),
    };
    let path = match walkable_path(ctx.notif.pid, base, path, absolute, resolve) {
        Ok(p) => p,
        Err(_) => return Place::Doubt,
    };
    let path = &path[..];
    match req.kind {
        Kind::Change => match walk(ctx, base, path, nofollow, resolve) {
            Ok(fd) => Place::Existing(fd),
            Err(e) => failed(ctx, base, path, nofollow, resolve, e),
        },
        Kind::Tmpfile => match walk(ctx, base, path, nofollow, resolve) {
            Ok(fd) => Place::NewIn(fd),
            Err(e) => failed(ctx, base, path, nofollow, resolve, e),
        },
        Kind::Create { follow, excl } => match walk(ctx, base, path, !follow, resolve) {
            Ok(_) if excl => Place::Fails,
            Ok(fd) => Place::Existing(fd),
            Err(libc::ENOENT) => {
                let Some((dir, _)) = split_last(path) else {
                    return Place::Fails;
                };
                match walk(ctx, base, dir, false, resolve) {
                    Err(e) => failed(ctx, base, dir, false, resolve, e),
                    // The last component exists but the followed walk found
                    // nothing: a symlink O_CREAT would follow somewhere the
                    // supervisor cannot see.
                    Ok(_) if follow && walk(ctx, base, path, true, resolve).is_ok() => Place::Doubt,
                    Ok(dir) => Place::NewIn(dir),
                }
            }
            Err(e) => failed(ctx, base, path, !follow, resolve, e),
        },
    }
}

/// Judge a request and count a refusal.
fn judge(ctx: &mut Ctx<'_>, req: &Request) -> Verdict {
    let verdict = match place(ctx, req) {
        Place::Existing(fd) => ctx
            .setid
            .verdict(ctx.walker, ctx.notif.pid, &fd, Object::Existing),
        Place::NewIn(dir) => ctx
            .setid
            .verdict(ctx.walker, ctx.notif.pid, &dir, Object::NewIn),
        Place::Fails => Verdict::Allow,
        Place::Doubt => Verdict::Refuse,
    };
    // Everything above read /proc/<pid>: it must still be the caller's.
    if !ctx.nfd.id_valid(ctx.notif.id) {
        return Verdict::Refuse;
    }
    if verdict == Verdict::Refuse {
        ctx.counters.setid_refused.fetch_add(1, Relaxed);
        if let Some(skipped) = ctx.log.allow() {
            let path = match &req.target {
                Target::Path { path, .. } => String::from_utf8_lossy(path).into_owned(),
                Target::Fd(Base::Fd(n)) => format!("fd {n}"),
                Target::Fd(_) => "cwd".into(),
            };
            tracing::info!(
                container = ctx.container,
                pid = ctx.notif.pid,
                syscall = ctx.sys.name(),
                path,
                skipped,
                "set-id or file capability refused on an ID-mapped mount"
            );
        }
    }
    verdict
}

/// chmod, fchmod, fchmodat, fchmodat2, creat, mknod, mknodat, setxattr,
/// lsetxattr, fsetxattr, setxattrat.
pub fn handle(ctx: &mut Ctx<'_>) -> Action {
    let Some(req) = request(ctx) else {
        return Action::Continue;
    };
    match judge(ctx, &req) {
        Verdict::Allow => Action::Continue,
        Verdict::Refuse => Action::Errno(libc::EPERM),
    }
}

/// The set-id gate of `open`, `openat` and `openat2` (given the `openat2`'s
/// `open_how`, read once by the open handler), before anything else of
/// theirs: `Some(EPERM)` refuses the call, `None` lets the open go on.
pub fn open_gate(ctx: &mut Ctx<'_>, how: Option<OpenHow>) -> Option<Action> {
    let req = open_request(ctx, how)?;
    match judge(ctx, &req) {
        Verdict::Allow => None,
        Verdict::Refuse => Some(Action::Errno(libc::EPERM)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_component() {
        assert_eq!(split_last(b"/x"), Some((&b"/"[..], &b"x"[..])));
        assert_eq!(split_last(b"//x"), Some((&b"/"[..], &b"x"[..])));
        assert_eq!(split_last(b"a/b/c"), Some((&b"a/b"[..], &b"c"[..])));
        assert_eq!(split_last(b"c"), Some((&b"."[..], &b"c"[..])));
        assert_eq!(split_last(b"dir/"), None);
        assert_eq!(split_last(b"a/.."), None);
        assert_eq!(split_last(b"."), None);
    }

    #[test]
    fn mknod_types() {
        assert!(mknod_makes_regular(0o4755));
        assert!(mknod_makes_regular(libc::S_IFREG as u64 | 0o4755));
        assert!(!mknod_makes_regular(libc::S_IFIFO as u64 | 0o4755));
        assert!(!mknod_makes_regular(libc::S_IFCHR as u64 | 0o6755));
    }

    #[test]
    fn bases() {
        assert_eq!(base_of(libc::AT_FDCWD, true, 0), Some(Base::Root));
        assert_eq!(base_of(-7, true, 0), Some(Base::Root));
        assert_eq!(base_of(libc::AT_FDCWD, false, 0), Some(Base::Cwd));
        assert_eq!(base_of(3, false, 0), Some(Base::Fd(3)));
        assert_eq!(base_of(3, true, RESOLVE_IN_ROOT), Some(Base::Fd(3)));
        assert_eq!(base_of(-7, false, 0), None);
        assert_eq!(O_TMPFILE_BIT, 0o20000000);
    }
}
