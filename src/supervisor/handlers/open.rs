//! `open`, `openat`, `openat2`: hand out an emulated file, or let the
//! kernel open the real one.
//!
//! The decision follows the file, not the spelling. A cheap lexical test
//! lets through every open that cannot reach `/proc` or `/sys`; the others
//! are walked by the kernel from the caller's own root, cwd or dirfd (see
//! [`crate::kernel::resolve`]) and emulated when they land on an emulated
//! file. Whatever is odd — an unreadable or unterminated path, a bad
//! dirfd, an `open_how` the kernel would reject, a walk that fails — is let
//! through, so the kernel gives the caller its own answer (`EFAULT`,
//! `ENAMETOOLONG`, `EBADF`, `E2BIG`, `EINVAL` for an `open_how` it would
//! reject, …). Opens for writing, `O_PATH`, `O_DIRECTORY`, `O_EXCL` and
//! `O_TRUNC` opens also go to the kernel: procfs answers them itself.
//!
//! Before any of this, an open that would create a set-id file (`O_CREAT`
//! or `O_TMPFILE` with `S_ISUID` or `S_ISGID` in the mode) goes through the
//! set-id gate of [`super::setid`]; for every other open that is a test of
//! two arguments.
//!
//! Known limits (documented in `docs/limitations.md`): a symlink outside
//! `/proc` and `/sys` that points into them (`ln -s /proc /tmp/p`) is not
//! followed by the lexical test, so such an open reads the real file; and
//! the kernel walk runs with the supervisor's credentials, so it may find a
//! file that the caller itself could not reach (the caller then gets its own
//! container's figures, never anyone else's).

use crate::kernel::arch::Sys;
use crate::kernel::memfd;
use crate::kernel::proc::link_target;
use crate::kernel::procmem::read_exact;
use crate::kernel::resolve::{
    file_stat, fs_magic, join, lexical_candidate, mentions_self, stat_path, Base, FileId,
    RESOLVE_BENEATH, RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS,
};

use super::{path_arg, setid, sysctl, walkable_path, Action, Ctx};

/// `sizeof(struct open_how)` of the first version, and the largest the
/// kernel accepts (a page).
const OPEN_HOW_SIZE_VER0: u64 = 24;
const OPEN_HOW_SIZE_MAX: u64 = 4096;
/// The kernel's `VALID_OPEN_FLAGS` (openat2 rejects any other bit).
const VALID_OPEN_FLAGS: u64 = (libc::O_ACCMODE
    | libc::O_CREAT
    | libc::O_EXCL
    | libc::O_NOCTTY
    | libc::O_TRUNC
    | libc::O_APPEND
    | libc::O_NONBLOCK
    | libc::O_DSYNC
    | libc::O_ASYNC
    | libc::O_DIRECT
    | libc::O_LARGEFILE
    | libc::O_DIRECTORY
    | libc::O_NOFOLLOW
    | libc::O_NOATIME
    | libc::O_CLOEXEC
    | libc::O_SYNC
    | libc::O_PATH
    | libc::O_TMPFILE) as u32 as u64;
/// `RESOLVE_CACHED`: the walk may fail with EAGAIN; the kernel decides.
const RESOLVE_CACHED: u64 = 0x20;
/// Every `RESOLVE_*` flag the kernel knows.
const VALID_RESOLVE_FLAGS: u64 = 0x3f;

/// The first version of `struct open_how`, as `openat2` was given it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenHow {
    pub flags: u64,
    pub mode: u64,
    pub resolve: u64,
}

/// Read an `openat2`'s `open_how` (its first version's fields), once for
/// the whole handler; `None` where the kernel fails the call on the struct
/// itself: a size below the first version's or above a page (`EINVAL`,
/// `E2BIG`), an unreadable struct (`EFAULT`). A larger struct is accepted
/// by the kernel only with a zero tail, so the first fields are what it
/// would use.
fn read_open_how(ctx: &Ctx<'_>) -> Option<OpenHow> {
    let size = ctx.notif.args[3];
    if ctx.sys != Sys::Openat2 || !(OPEN_HOW_SIZE_VER0..=OPEN_HOW_SIZE_MAX).contains(&size) {
        return None;
    }
    let mut how = [0u8; 24];
    if !read_exact(ctx.notif.pid, ctx.notif.args[2], &mut how).ok()? {
        return None;
    }
    let word = |i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&how[i * 8..i * 8 + 8]);
        u64::from_ne_bytes(w)
    };
    Some(OpenHow {
        flags: word(0),
        mode: word(1),
        resolve: word(2),
    })
}

/// The arguments of any of the three calls, normalised.
#[derive(Debug, Clone, Copy)]
struct OpenArgs {
    dirfd: i32,
    path: u64,
    flags: u64,
    resolve: u64,
}

fn args(ctx: &Ctx<'_>, how: Option<OpenHow>) -> Option<OpenArgs> {
    let a = ctx.notif.args;
    match ctx.sys {
        Sys::Open => Some(OpenArgs {
            dirfd: libc::AT_FDCWD,
            path: a[0],
            flags: a[1] & 0xffff_ffff,
            resolve: 0,
        }),
        Sys::Openat => Some(OpenArgs {
            dirfd: a[0] as u32 as i32,
            path: a[1],
            flags: a[2] & 0xffff_ffff,
            resolve: 0,
        }),
        Sys::Openat2 => {
            // Anything but a plain, readable, first-version open_how is
            // the kernel's to judge (a larger one may carry non-zero bytes
            // it would reject with E2BIG).
            if a[3] != OPEN_HOW_SIZE_VER0 {
                return None;
            }
            let OpenHow {
                flags,
                mode,
                resolve,
            } = how?;
            // openat2 rejects what open(2) ignores: let the kernel say so.
            let creates = flags & (libc::O_CREAT | libc::O_TMPFILE) as u64 != 0;
            if flags & !VALID_OPEN_FLAGS != 0
                || (mode != 0 && !creates)
                || mode & !0o7777 != 0
                || resolve & !VALID_RESOLVE_FLAGS != 0
                || resolve & RESOLVE_CACHED != 0
            {
                return None;
            }
            Some(OpenArgs {
                dirfd: a[0] as u32 as i32,
                path: a[1],
                flags,
                resolve,
            })
        }
        _ => None,
    }
}

/// Where the caller's walk starts, and with which `RESOLVE_*` flags we walk.
fn walk_start(a: &OpenArgs, absolute: bool) -> (Base, u64) {
    let caller_base = if a.dirfd == libc::AT_FDCWD {
        Base::Cwd
    } else {
        Base::Fd(a.dirfd)
    };
    if a.resolve & (RESOLVE_IN_ROOT | RESOLVE_BENEATH) != 0 || !absolute {
        // Relative, or scoped by the caller to its dirfd: walk from there,
        // exactly as it asked.
        (caller_base, a.resolve)
    } else {
        // "/" is the caller's root (the walker walks inside it).
        (Base::Root, a.resolve)
    }
}

pub fn handle(ctx: &mut Ctx<'_>) -> Action {
    // An open that would create a set-id file on an ID-mapped mount is
    // refused before anything else (a cheap test of flags and mode lets
    // every other open through at once).
    let how = read_open_how(ctx);
    if let Some(refused) = setid::open_gate(ctx, how) {
        return refused;
    }
    if !ctx.sources.has_outer() {
        return Action::Continue;
    }
    let Some(a) = args(ctx, how) else {
        return Action::Continue;
    };
    let flags = a.flags as i32;
    // Directory and O_PATH opens never read a file.
    if flags & (libc::O_DIRECTORY | libc::O_PATH) != 0 {
        return Action::Continue;
    }
    // O_EXCL (EEXIST), O_TRUNC (asks for write permission) and opens for
    // writing get the kernel's own answer (procfs decides who may open its
    // files for writing: EACCES for most), except the emulated sysctls.
    let reads_only =
        flags & (libc::O_EXCL | libc::O_TRUNC) == 0 && flags & libc::O_ACCMODE == libc::O_RDONLY;
    let pid = ctx.notif.pid;
    let Some(path) = path_arg(ctx, a.path).filter(|p| !p.is_empty()) else {
        return Action::Continue;
    };
    if !reads_only && memchr::memmem::find(&path, b"sys").is_none() && path[0] == b'/' {
        return Action::Continue;
    }
    let absolute = path[0] == b'/';
    let scoped = a.resolve & (RESOLVE_IN_ROOT | RESOLVE_BENEATH) != 0;
    // The path as an absolute one, lexically (before any walk).
    let lexical: Option<std::borrow::Cow<'_, [u8]>> = if absolute && !scoped {
        Some(std::borrow::Cow::Borrowed(&path[..]))
    } else {
        let what = if a.dirfd == libc::AT_FDCWD {
            "cwd".to_string()
        } else if a.dirfd >= 0 {
            format!("fd/{}", a.dirfd)
        } else {
            return Action::Continue;
        };
        // A scoped absolute path starts at the dirfd.
        let rel = if absolute {
            let skip = path.iter().take_while(|&&b| b == b'/').count();
            &path[skip..]
        } else {
            &path[..]
        };
        match link_target(pid, &what) {
            Ok(base) if base.first() == Some(&b'/') => Some(join(&base, rel).into()),
            _ => None,
        }
    };
    let (base, resolve) = walk_start(&a, absolute);
    let nofollow = flags & libc::O_NOFOLLOW != 0;
    if let Some(s) = lexical.as_deref().and_then(sysctl::named) {
        return sysctl::open(ctx, s, base, &path, absolute, nofollow, resolve, flags)
            .unwrap_or(Action::Continue);
    }
    if !reads_only || !lexical.as_deref().is_some_and(lexical_candidate) {
        return Action::Continue;
    }
    let file = match resolve_file(ctx, base, &path, absolute, nofollow, resolve) {
        Some(Resolved::Emulated(f)) => f,
        Some(Resolved::Masked) => {
            return match memfd::create("masked", b"") {
                Ok(fd) => Action::InjectFd {
                    fd,
                    cloexec: flags & libc::O_CLOEXEC != 0,
                    file: None,
                },
                Err(e) => Action::Errno(e.errno().unwrap_or(libc::ENOMEM)),
            };
        }
        None => return Action::Continue,
    };
    let Some(source) = ctx.sources.for_caller(pid) else {
        return Action::Continue;
    };
    ctx.buf.clear();
    if let Err(e) = source.render(file, ctx.buf) {
        tracing::warn!(file = file.name(), error = %e, "render failed; letting the kernel answer");
        return Action::Continue;
    }
    match memfd::create(file.name(), ctx.buf) {
        Ok(fd) => {
            if let Ok(st) = file_stat(&fd) {
                ctx.injected.insert(st.dev, st.ino, file);
            }
            Action::InjectFd {
                fd,
                cloexec: flags & libc::O_CLOEXEC != 0,
                file: Some(file),
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "memfd for emulated file failed");
            Action::Errno(e.errno().unwrap_or(libc::ENOMEM))
        }
    }
}

/// What an open lands on.
enum Resolved {
    Emulated(crate::emulate::EmulatedFile),
    /// One of the files the engines mask, reached through a procfs the
    /// container mounted itself: it reads as empty, as through `/proc`.
    Masked,
}

/// Walk the caller's path with the kernel and map it to an emulated file.
fn resolve_file(
    ctx: &mut Ctx<'_>,
    base: Base,
    path: &[u8],
    absolute: bool,
    nofollow: bool,
    resolve: u64,
) -> Option<Resolved> {
    let pid = ctx.notif.pid;
    // `self` and `thread-self` are symlinks: a caller that refuses
    // symlinks gets the kernel's ELOOP, not a rewritten path.
    if mentions_self(path) && resolve & (RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS) != 0 {
        return None;
    }
    let rewritten = walkable_path(pid, base, path, absolute, resolve).ok()?;
    let path = &rewritten[..];
    // Fast path: a file already identified in this container is recognised
    // by one stat through the caller's /proc/<pid> links. Paths with `..`
    // (which the supervisor's walk could take above the caller's root) and
    // caller-scoped walks always take the full walk.
    let has_dotdot = path.split(|&b| b == b'/').any(|c| c == b"..");
    if resolve == 0 && !has_dotdot {
        let mut via = match base {
            Base::Root => format!("/proc/{pid}/root").into_bytes(),
            Base::Cwd => format!("/proc/{pid}/cwd/").into_bytes(),
            Base::Fd(n) => format!("/proc/{pid}/fd/{n}/").into_bytes(),
        };
        via.extend_from_slice(path);
        if let Ok((dev, ino)) = stat_path(&via, nofollow) {
            if let Some(f) = ctx.verified.get(dev, ino) {
                return Some(Resolved::Emulated(f));
            }
        }
    }
    let f = ctx.walker.open(pid, base, path, nofollow, resolve).ok()?;
    let st = file_stat(&f).ok()?;
    let id = FileId {
        fs_magic: fs_magic(&f).ok()?,
        ino: st.ino,
    };
    if ctx.files.is_masked(id) {
        return Some(Resolved::Masked);
    }
    let file = ctx.files.lookup(id)?;
    ctx.verified.insert(st.dev, st.ino, file);
    Some(Resolved::Emulated(file))
}
