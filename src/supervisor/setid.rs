//! The set-id policy: on an ID-mapped mount of a container (a volume, a
//! host path given with `-v`, `/etc/hosts` …), the container's root may not
//! give a file set-user-ID, set-group-ID or file capabilities.
//!
//! Through such a mount a file the container's root creates lands on disk
//! owned by host uid 0, so a set-id or capability-bearing file there is, on
//! the host, a privileged binary that any host user could run. The
//! container's own root file system is left alone (`apt install sudo` must
//! work there), and so is everything else.
//!
//! This module owns the judgement of a file the caller reached, held as an
//! `O_PATH` fd: its mount id (`statx`), that mount's line in the caller's
//! `/proc/<pid>/mountinfo` (then in the container init's, for a caller
//! that chrooted away from it), and whether that mount is ID-mapped and not
//! part of the container's root file system.
//!
//! The root file system is known by identity, not by mount point: the
//! device and root of the mount that `syscont-runc` made for the container
//! (`<data-dir>/containers/<id>/rootfs`, as the host's mount table shows
//! it), which nothing in the container can change. A caller that `chroot`s
//! or `pivot_root`s into a volume (which then shows as `/`) gains nothing,
//! while copies of the root mount (the mount namespaces of services, binds
//! of it) still count as the root file system. A container that
//! `syscont-runc` did not make falls back to the mount that was its init's
//! root when it registered.
//!
//! An overlay that the container mounted itself is judged by its upper
//! layer (`upperdir`, walked in the caller's root): a `chmod u+s` through
//! it lands in the upper directory, and one on a volume is as dangerous as
//! the volume. What cannot be judged (a mount missing from both tables, an
//! overlay whose upper directory cannot be found) is refused.
//!
//! Syscall arguments are decoded in [`crate::supervisor::handlers::setid`].

use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::kernel::mountinfo::unescape_bytes as unescape;
use crate::kernel::resolve::{
    fs_magic, mount_stat, open_base, Base, MountStat, Walker, TMPFS_MAGIC,
};
use crate::kernel::KernelError;
use crate::runtime::store::{Store, StoreError};

/// The set-user-ID and set-group-ID bits.
pub const SETID_BITS: u64 = 0o6000;
/// The xattr that holds file capabilities.
pub const CAPABILITY_XATTR: &[u8] = b"security.capability";
/// Overlays on overlays followed before giving up (and refusing).
const MAX_LAYERS: usize = 4;

/// Errors of learning a container's root file system.
#[derive(Debug, thiserror::Error)]
pub enum SetidError {
    #[error("read /proc/{pid}/mountinfo: {source}")]
    Mountinfo {
        pid: u32,
        #[source]
        source: std::io::Error,
    },
    #[error("the root of process {pid}: {source}")]
    Root {
        pid: u32,
        #[source]
        source: KernelError,
    },
    #[error("mount {mnt_id} of process {pid}'s root is not in its mountinfo")]
    RootNotListed { pid: u32, mnt_id: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0} was not made by syscont-runc")]
    NotOurs(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// The fields of one mountinfo line that the policy looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub id: u64,
    /// `major:minor` of the mounted filesystem.
    pub dev: Vec<u8>,
    /// The directory of that filesystem the mount shows (unescaped).
    pub root: Vec<u8>,
    /// Where it is mounted, as the reader of the table sees it (unescaped).
    pub mount_point: Vec<u8>,
    /// `idmapped` is among the per-mount options.
    pub idmapped: bool,
    pub fs_type: Vec<u8>,
    /// An overlay's `upperdir` (unescaped), if it has one.
    pub upperdir: Option<Vec<u8>>,
}

/// The value of `key=` among comma-separated super options (escaped
/// commas are octal in mountinfo, so a plain split is exact).
fn super_option(opts: &[u8], key: &[u8]) -> Option<Vec<u8>> {
    opts.split(|&b| b == b',').find_map(|o| {
        let v = o.strip_prefix(key)?.strip_prefix(b"=")?;
        Some(unescape(v))
    })
}

/// Parse one mountinfo line; `None` if it is malformed.
pub fn parse_line(line: &[u8]) -> Option<Mount> {
    let sep = memchr::memmem::find(line, b" - ")?;
    let (left, right) = (&line[..sep], &line[sep + 3..]);
    let mut l = left.split(|&b| b == b' ');
    let id = std::str::from_utf8(l.next()?).ok()?.parse().ok()?;
    let _parent = l.next()?;
    let dev = l.next()?.to_vec();
    let root = unescape(l.next()?);
    let mount_point = unescape(l.next()?);
    let options = l.next()?;
    let mut r = right.splitn(3, |&b| b == b' ');
    let fs_type = r.next()?.to_vec();
    let _source = r.next()?;
    let super_opts = r.next().unwrap_or_default();
    let upperdir = if fs_type == b"overlay" {
        super_option(super_opts, b"upperdir")
    } else {
        None
    };
    Some(Mount {
        id,
        dev,
        root,
        mount_point,
        idmapped: options.split(|&b| b == b',').any(|o| o == b"idmapped"),
        fs_type,
        upperdir,
    })
}

/// The top-most mount at `mount_point` in a mountinfo text.
pub fn find_mount_at(text: &[u8], mount_point: &[u8]) -> Option<Mount> {
    text.split(|&b| b == b'\n')
        .rev()
        .filter_map(parse_line)
        .find(|m| m.mount_point == mount_point)
}

/// The line of mount `id` in a mountinfo text.
pub fn find_mount(text: &[u8], id: u64) -> Option<Mount> {
    let prefix = format!("{id} ");
    text.split(|&b| b == b'\n')
        .filter(|l| l.starts_with(prefix.as_bytes()))
        .find_map(parse_line)
}

fn read_mountinfo(pid: u32) -> Result<Vec<u8>, SetidError> {
    std::fs::read(format!("/proc/{pid}/mountinfo"))
        .map_err(|source| SetidError::Mountinfo { pid, source })
}

/// The container's root file system, by identity: the device and root of
/// the mount that was its init's root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootFs {
    dev: Vec<u8>,
    root: Vec<u8>,
}

impl RootFs {
    pub fn new(dev: &[u8], root: &[u8]) -> Self {
        RootFs {
            dev: dev.to_vec(),
            root: root.to_vec(),
        }
    }

    /// The root file system `syscont-runc` mounted for container `id` in
    /// the data directory, as the host's mount table shows it. `Ok(None)`:
    /// nothing is mounted there (the rootfs is a chowned copy, a plain
    /// directory of a file system that is never ID-mapped).
    pub fn of_store(data_dir: &Path, id: &str) -> Result<Option<Self>, SetidError> {
        let dir = Store::new(data_dir).dir(id)?;
        if !dir.is_dir() {
            return Err(SetidError::NotOurs(format!("container {id}")));
        }
        let at = dir.join("rootfs");
        let at = std::fs::canonicalize(&at).map_err(|source| SetidError::Io {
            path: at.display().to_string(),
            source,
        })?;
        let text = std::fs::read("/proc/self/mountinfo").map_err(|source| SetidError::Io {
            path: "/proc/self/mountinfo".into(),
            source,
        })?;
        Ok(find_mount_at(&text, at.as_os_str().as_bytes()).map(|m| RootFs::new(&m.dev, &m.root)))
    }

    /// The directory `path` of the host (not a mount point of its own) as
    /// a tree: the device and root of the host mount that holds it, and the
    /// path below that mount's root.
    pub fn of_dir(path: &Path) -> Result<Self, SetidError> {
        let at = std::fs::canonicalize(path).map_err(|source| SetidError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let fd: OwnedFd = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
                .open(&at)
                .map_err(|source| SetidError::Io {
                    path: at.display().to_string(),
                    source,
                })?
                .into()
        };
        let st = mount_stat(&fd).map_err(|source| SetidError::Root { pid: 0, source })?;
        let text = std::fs::read("/proc/self/mountinfo").map_err(|source| SetidError::Io {
            path: "/proc/self/mountinfo".into(),
            source,
        })?;
        let m = find_mount(&text, st.mnt_id).ok_or(SetidError::RootNotListed {
            pid: 0,
            mnt_id: st.mnt_id,
        })?;
        let below = at
            .as_os_str()
            .as_bytes()
            .strip_prefix(m.mount_point.as_slice())
            .unwrap_or(b"");
        let mut root = m.root.clone();
        if root == b"/" {
            root.clear();
        }
        root.extend_from_slice(below);
        if root.is_empty() {
            root.push(b'/');
        }
        Ok(RootFs::new(&m.dev, &root))
    }

    /// The root file system of process `pid` (a container's init, when it
    /// registers).
    pub fn of_process(pid: u32) -> Result<Self, SetidError> {
        let fd = open_base(pid, Base::Root).map_err(|source| SetidError::Root { pid, source })?;
        let st = mount_stat(&fd).map_err(|source| SetidError::Root { pid, source })?;
        let text = read_mountinfo(pid)?;
        let m = find_mount(&text, st.mnt_id).ok_or(SetidError::RootNotListed {
            pid,
            mnt_id: st.mnt_id,
        })?;
        Ok(RootFs::new(&m.dev, &m.root))
    }

    /// Does mount `m` show (part of) this file system tree?
    pub fn holds(&self, m: &Mount) -> bool {
        if m.dev != self.dev {
            return false;
        }
        if self.root == b"/" || m.root == self.root {
            return true;
        }
        m.root.starts_with(&self.root) && m.root.get(self.root.len()) == Some(&b'/')
    }
}

/// What one mount says about a set-id change of a file on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    Allow,
    Refuse,
    /// An overlay the container made: judge the mount of its upper layer.
    Upper(Vec<u8>),
}

/// Judge one mount; `own`: the container's own trees (its root file
/// system, its inner engines' directories).
pub fn judge(m: &Mount, own: &[RootFs]) -> Judgement {
    if own.iter().any(|r| r.holds(m)) {
        return Judgement::Allow;
    }
    if m.idmapped {
        return Judgement::Refuse;
    }
    match &m.upperdir {
        // An overlay without an upper layer is read-only (EROFS).
        Some(upper) => Judgement::Upper(upper.clone()),
        None => Judgement::Allow,
    }
}

/// The final answer for one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Refuse,
}

/// What the call would change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Object {
    /// The file the fd names (chmod, setxattr; an existing file for open).
    Existing,
    /// A new file in the directory the fd names (`O_CREAT`, `O_TMPFILE`,
    /// `mknod`).
    NewIn,
}

/// A container's scope for the policy, kept by its worker.
#[derive(Debug, Default)]
pub struct Scope {
    /// The container's own trees: its root file system (when known), and
    /// the inner engines' directories (`/var/lib/docker`, …), private to
    /// the container like its root file system (mode 0710, owned by its
    /// root, in the data directory), so set-id files there are as
    /// harmless to the host, and inner images need them (`su`, `passwd`).
    own: Vec<RootFs>,
    init_pid: Option<u32>,
    /// Overlays the container mounted, by `upperdir` as their mount table
    /// line shows it: was the upper directory, judged where the mounter
    /// saw it when it mounted (see [`Scope::record_overlay`]), allowed?
    uppers: std::cell::RefCell<std::collections::HashMap<Vec<u8>, bool>>,
    /// Where `uppers` is kept across supervisor restarts.
    uppers_file: Option<std::path::PathBuf>,
}

/// Overlays remembered per container, at most (inner engines make one per
/// layer and container; the oldest are forgotten first, by clearing).
const MAX_UPPERS: usize = 16384;

impl Scope {
    /// The scope of container `id` whose init is `init_pid`: its root file
    /// system from `syscont-runc`'s data directory, else from its init's
    /// root (see the module docs).
    pub fn for_container(id: &str, data_dir: Option<&Path>, init_pid: u32) -> Self {
        let from_store = match data_dir {
            Some(d) => RootFs::of_store(d, id),
            None => Err(SetidError::NotOurs(format!("container {id}"))),
        };
        let rootfs = match from_store {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(container = %id, error = %e, "root file system not found in the data directory; taking the init's root");
                match RootFs::of_process(init_pid) {
                    Ok(r) => Some(r),
                    Err(e) => {
                        tracing::warn!(container = %id, pid = init_pid, error = %e, "cannot identify the container's root file system; set-id changes will be refused on every ID-mapped mount but the inner engines' directories");
                        None
                    }
                }
            }
        };
        let dir = data_dir.and_then(|d| Store::new(d).dir(id).ok());
        let mut own: Vec<RootFs> = rootfs.into_iter().collect();
        if let Some(dir) = &dir {
            own.extend(
                crate::runtime::workload::INNER_DIRS
                    .iter()
                    .filter_map(|(_, name)| RootFs::of_dir(&dir.join("inner").join(name)).ok()),
            );
        }
        let uppers_file = dir.filter(|d| d.is_dir()).map(|d| d.join("overlays.json"));
        let uppers = uppers_file
            .as_ref()
            .and_then(|f| std::fs::read(f).ok())
            .and_then(|b| serde_json::from_slice::<Vec<(String, bool)>>(&b).ok())
            .map(|v| v.into_iter().map(|(k, ok)| (k.into_bytes(), ok)).collect())
            .unwrap_or_default();
        Scope {
            own,
            init_pid: Some(init_pid),
            uppers: std::cell::RefCell::new(uppers),
            uppers_file,
        }
    }

    /// The line of mount `id` as the caller sees it, else as the
    /// container's init does.
    fn lookup(&self, pid: u32, caller_table: &mut Option<Vec<u8>>, id: u64) -> Option<Mount> {
        if caller_table.is_none() {
            *caller_table = read_mountinfo(pid).ok();
        }
        if let Some(m) = caller_table.as_deref().and_then(|t| find_mount(t, id)) {
            return Some(m);
        }
        let init = self.init_pid.filter(|&i| i != pid)?;
        find_mount(&read_mountinfo(init).ok()?, id)
    }

    /// May process `pid` make `object` (reached through `fd`) set-id?
    pub fn verdict(&self, walker: &Walker, pid: u32, fd: &OwnedFd, object: Object) -> Verdict {
        let Ok(mut st) = mount_stat(fd) else {
            return Verdict::Refuse;
        };
        // Set-group-ID on a directory only passes the group on; set-uid on
        // one means nothing. Neither makes a privileged binary.
        if object == Object::Existing && st.is_dir() {
            return Verdict::Allow;
        }
        let mut table = None;
        for _ in 0..MAX_LAYERS {
            let Some(m) = self.lookup(pid, &mut table, st.mnt_id) else {
                return unlisted(fd, st, object);
            };
            match judge(&m, &self.own) {
                Judgement::Allow => return Verdict::Allow,
                Judgement::Refuse => return Verdict::Refuse,
                Judgement::Upper(upper) => {
                    // Judged when it was mounted, where its mounter saw it
                    // (an inner engine's containers do not see the upper
                    // directories of their own root).
                    if let Some(&ok) = self.uppers.borrow().get(&upper) {
                        return if ok { Verdict::Allow } else { Verdict::Refuse };
                    }
                    // A relative upperdir was relative to the mounter's cwd,
                    // which is not known here.
                    if upper.first() != Some(&b'/') {
                        return Verdict::Refuse;
                    }
                    match walker
                        .open(pid, Base::Root, &upper, false, 0)
                        .and_then(|u| mount_stat(&u))
                    {
                        Ok(u) => st = u,
                        Err(_) => return Verdict::Refuse,
                    }
                }
            }
        }
        Verdict::Refuse
    }

    /// Process `pid` is mounting an overlay with this `upperdir` (as given,
    /// overlay's escapes removed), which it reaches as `dir` (walked in its
    /// root from its cwd): judge that directory as a place to make a new
    /// set-id file,
    /// and remember the answer for files later made through the overlay.
    /// The kernel mounts after this look (a mounter that swaps the path in
    /// between can win, as for every decision taken before a call).
    pub fn record_overlay(&self, walker: &Walker, pid: u32, upper: &[u8], dir: &OwnedFd) {
        let ok = self.verdict(walker, pid, dir, Object::NewIn) == Verdict::Allow;
        let mut uppers = self.uppers.borrow_mut();
        // One string may name different directories for different
        // mounters (relative paths, chroots): once any of them is refused,
        // every overlay with that string is.
        let was = uppers.get(upper).copied();
        let ok = was.unwrap_or(true) && ok;
        if was == Some(ok) {
            return;
        }
        if uppers.len() >= MAX_UPPERS {
            uppers.clear();
        }
        uppers.insert(upper.to_vec(), ok);
        if let Some(f) = &self.uppers_file {
            let list: Vec<(String, bool)> = uppers
                .iter()
                .filter_map(|(k, v)| String::from_utf8(k.clone()).ok().map(|k| (k, *v)))
                .collect();
            let r = serde_json::to_vec(&list)
                .map_err(std::io::Error::other)
                .and_then(|b| crate::kernel::fs::replace_file(f, &b));
            if let Err(e) = r {
                tracing::debug!(file = %f.display(), error = %e, "cannot keep the overlay records");
            }
        }
    }
}

/// The `upperdir` of overlay mount options `data` (comma-separated,
/// backslash escapes as overlay reads them), unescaped.
pub fn overlay_upperdir(data: &[u8]) -> Option<Vec<u8>> {
    let mut opts: Vec<Vec<u8>> = vec![Vec::new()];
    let mut it = data.iter();
    while let Some(&c) = it.next() {
        match c {
            b'\\' => {
                if let Some(&n) = it.next() {
                    opts.last_mut()?.push(n);
                }
            }
            b',' => opts.push(Vec::new()),
            c => opts.last_mut()?.push(c),
        }
    }
    opts.into_iter()
        .rev()
        .find_map(|o| o.strip_prefix(b"upperdir=").map(<[u8]>::to_vec))
}

/// A mount in neither table: the kernel's internal mounts (memfds, pipes,
/// sockets), which no host user reaches, or one outside the container's
/// view, which cannot be judged.
fn unlisted(fd: &OwnedFd, st: MountStat, object: Object) -> Verdict {
    if object == Object::Existing
        && (!st.is_regular() || fs_magic(fd).is_ok_and(|m| m == TMPFS_MAGIC))
    {
        Verdict::Allow
    } else {
        Verdict::Refuse
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &[u8] = b"89 58 0:39 / / rw,relatime - overlay none rw,lowerdir+=/l/a,upperdir=/var/lib/x/diff,workdir=/var/lib/x/work\n\
90 89 0:44 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw\n\
111 89 254:0 /var/tmp/setid\\040probe /vol rw,relatime,idmapped - ext4 /dev/vda rw,discard\n\
114 89 254:0 /var/lib/docker/containers/c/hosts /etc/hosts rw,relatime,idmapped - ext4 /dev/vda rw\n\
120 89 0:60 / /mnt/ovl rw,relatime - overlay overlay rw,lowerdir=/lo,upperdir=/vol/up\\054per,workdir=/vol/wk\n\
121 89 0:61 / /mnt/ro rw,relatime - overlay overlay rw,lowerdir=/a:/b\n\
122 89 254:0 /srv/rootfs /bound rw,relatime,idmapped - ext4 /dev/vda rw\n\
garbage\n";

    fn m(id: u64) -> Mount {
        find_mount(TABLE, id).unwrap()
    }

    #[test]
    fn parses_the_fields_the_policy_needs() {
        let root = m(89);
        assert_eq!(root.dev, b"0:39");
        assert_eq!(root.root, b"/");
        assert_eq!(root.mount_point, b"/");
        assert!(!root.idmapped);
        assert_eq!(root.upperdir.as_deref(), Some(&b"/var/lib/x/diff"[..]));
        let vol = m(111);
        assert!(vol.idmapped);
        assert_eq!(vol.root, b"/var/tmp/setid probe");
        assert_eq!(vol.mount_point, b"/vol");
        assert_eq!(vol.fs_type, b"ext4");
        assert_eq!(vol.upperdir, None);
        assert_eq!(m(120).upperdir.as_deref(), Some(&b"/vol/up,per"[..]));
        assert_eq!(m(121).upperdir, None);
        assert!(!m(90).idmapped);
        // "1" must not match mount 111, nor 11 find anything.
        assert_eq!(find_mount(TABLE, 1), None);
        assert_eq!(find_mount(TABLE, 11), None);
        assert_eq!(parse_line(b"garbage"), None);
        assert_eq!(parse_line(b"x 1 0:1 / / rw - tmpfs t rw"), None);
        assert_eq!(unescape(b"a\\134b\\0"), b"a\\b\\0");
    }

    #[test]
    fn judges_volumes_the_rootfs_and_overlays() {
        let overlay_root = RootFs::new(b"0:39", b"/");
        let r = std::slice::from_ref(&overlay_root);
        assert_eq!(judge(&m(89), r), Judgement::Allow);
        assert_eq!(judge(&m(90), r), Judgement::Allow);
        assert_eq!(judge(&m(111), r), Judgement::Refuse);
        assert_eq!(judge(&m(114), r), Judgement::Refuse);
        // An overlay of the container's own: its upper layer decides.
        assert_eq!(judge(&m(120), r), Judgement::Upper(b"/vol/up,per".to_vec()));
        assert_eq!(judge(&m(121), r), Judgement::Allow);
        // Without a known root file system, every ID-mapped mount refuses.
        assert_eq!(judge(&m(111), &[]), Judgement::Refuse);
        assert_eq!(
            judge(&m(89), &[]),
            Judgement::Upper(b"/var/lib/x/diff".to_vec())
        );
    }

    #[test]
    fn overlay_options_give_their_upperdir() {
        assert_eq!(
            overlay_upperdir(b"lowerdir=/a:/b,upperdir=/var/lib/docker/overlay2/x/diff,workdir=/w"),
            Some(b"/var/lib/docker/overlay2/x/diff".to_vec())
        );
        assert_eq!(
            overlay_upperdir(b"upperdir=/up\\,per,workdir=/w"),
            Some(b"/up,per".to_vec())
        );
        assert_eq!(overlay_upperdir(b"lowerdir=/a"), None);
        assert_eq!(overlay_upperdir(b""), None);
    }

    #[test]
    fn the_inner_engine_directories_are_the_containers_own() {
        let d = tempfile::tempdir().unwrap();
        let inner = d.path().join("inner/docker");
        std::fs::create_dir_all(&inner).unwrap();
        let tree = RootFs::of_dir(&inner).unwrap();
        // The same tree seen through an ID-mapped bind inside the container.
        let line = format!(
            "140 89 {} {}/sub /var/lib/docker/overlay2/x/diff rw,idmapped - ext4 /dev/vda rw",
            String::from_utf8_lossy(&tree.dev),
            String::from_utf8_lossy(&tree.root)
        );
        let m = parse_line(line.as_bytes()).unwrap();
        assert_eq!(judge(&m, std::slice::from_ref(&tree)), Judgement::Allow);
        assert_eq!(judge(&m, &[]), Judgement::Refuse);
        // A sibling directory is not it.
        let other = RootFs::of_dir(d.path()).unwrap();
        assert_eq!(judge(&m, std::slice::from_ref(&other)), Judgement::Allow);
        let sib = format!(
            "141 89 {} {}/inner/dockerx /v rw,idmapped - ext4 /dev/vda rw",
            String::from_utf8_lossy(&tree.dev),
            String::from_utf8_lossy(&other.root)
        );
        let m = parse_line(sib.as_bytes()).unwrap();
        assert_eq!(judge(&m, std::slice::from_ref(&tree)), Judgement::Refuse);
    }

    #[test]
    fn an_idmapped_root_file_system_is_known_by_identity() {
        // A rootfs directory bound ID-mapped (not an overlay).
        let bound = RootFs::new(b"254:0", b"/srv/rootfs");
        let r = std::slice::from_ref(&bound);
        assert_eq!(judge(&m(122), r), Judgement::Allow);
        // A volume of the same disk is not the rootfs, nor is a sibling
        // directory whose name merely starts the same.
        assert_eq!(judge(&m(111), r), Judgement::Refuse);
        let sibling =
            parse_line(b"130 89 254:0 /srv/rootfs2 /x rw,idmapped - ext4 /dev/vda rw").unwrap();
        assert_eq!(judge(&sibling, r), Judgement::Refuse);
        // A bind of a part of the rootfs is the rootfs.
        let part =
            parse_line(b"131 89 254:0 /srv/rootfs/usr /y rw,idmapped - ext4 /dev/vda rw").unwrap();
        assert_eq!(judge(&part, r), Judgement::Allow);
        // A caller chrooted into the volume sees it at "/": still refused.
        let chrooted =
            parse_line(b"111 89 254:0 /var/tmp/v / rw,idmapped - ext4 /dev/vda rw").unwrap();
        assert_eq!(judge(&chrooted, r), Judgement::Refuse);
    }
}
