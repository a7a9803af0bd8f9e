//! Exclusive uid/gid ranges for system containers (the first piece of
//! issue 3; not yet used by `create`).
//!
//! Every container gets its own block of host ids (65536 by default) for
//! its user namespace, taken from a pool the operator controls: the
//! `syscont` entries of `/etc/subuid` and `/etc/subgid`. Allocations are
//! kept in one JSON file under a state directory (`/var/lib/syscont` by
//! default), read and rewritten only under an exclusive `flock`, so
//! concurrent `create`s never hand out the same ids. A container keeps its
//! block across stop and start (Docker calls `delete` and `create` again);
//! a block whose container is gone is reclaimed by the next allocation,
//! decided by a liveness test the caller provides (for Docker: the bundle
//! and rootfs still exist).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Default number of ids per container.
pub const DEFAULT_SIZE: u32 = 65536;
/// Name of the allocations file in the state directory.
const STATE_FILE: &str = "idranges.json";
/// Name of the lock file in the state directory.
const LOCK_FILE: &str = "idranges.lock";

/// Errors of the id range pool.
#[derive(Debug, thiserror::Error)]
pub enum IdRangeError {
    #[error("{path}:{line}: malformed subordinate id entry {text:?} (want NAME:START:COUNT)")]
    SubId {
        path: PathBuf,
        line: usize,
        text: String,
    },
    #[error("no {user:?} entries in {path}: start syscont-supervisor once (it adds them) or add e.g. \"{user}:100000:6553600\"")]
    NoPool { user: String, path: PathBuf },
    #[error("the id pool has no free block of {size} ids left ({used} in use)")]
    Exhausted { size: u32, used: usize },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a valid allocation file (left untouched): {source}")]
    State {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("block size must be between 1 and 2^31, got {0}")]
    Size(u64),
}

/// A run of subordinate ids: `start .. start + count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdRun {
    pub start: u32,
    pub count: u32,
}

/// The `user` entries of a subuid/subgid file's text.
pub fn parse_subid(text: &str, user: &str, path: &Path) -> Result<Vec<IdRun>, IdRangeError> {
    let mut runs = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = || IdRangeError::SubId {
            path: path.to_path_buf(),
            line: i + 1,
            text: raw.to_string(),
        };
        let mut parts = line.split(':');
        let (Some(name), Some(start), Some(count), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let start: u32 = start.parse().map_err(|_| bad())?;
        let count: u32 = count.parse().map_err(|_| bad())?;
        if start.checked_add(count).is_none() {
            return Err(bad());
        }
        if name == user && count > 0 {
            runs.push(IdRun { start, count });
        }
    }
    Ok(runs)
}

/// `text` of a subuid/subgid file with an entry for `user` of `count` ids
/// added, placed above every existing entry (at or above 100000, aligned to
/// 65536) so it overlaps no other user's ids; `None` if `user` already has
/// an entry. For the set-up, which creates the pool when it is missing.
pub fn with_pool_entry(
    text: &str,
    user: &str,
    count: u32,
    path: &Path,
) -> Result<Option<String>, IdRangeError> {
    if !parse_subid(text, user, path)?.is_empty() {
        return Ok(None);
    }
    let mut end: u64 = 100_000;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // Every line parsed above; any user's run counts here.
        let mut parts = line.split(':').skip(1);
        let start: u64 =
            parts
                .next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| IdRangeError::SubId {
                    path: path.to_path_buf(),
                    line: i + 1,
                    text: raw.to_string(),
                })?;
        let n: u64 = parts.next().and_then(|v| v.parse().ok()).unwrap_or(0);
        end = end.max(start + n);
    }
    let start = end.div_ceil(65536) * 65536;
    if start + count as u64 > u32::MAX as u64 {
        return Err(IdRangeError::Exhausted {
            size: count,
            used: 0,
        });
    }
    let mut out = text.to_string();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&format!("{user}:{start}:{count}\n"));
    Ok(Some(out))
}

/// Ids the set-up gives the pool when it makes it: 4096 containers of
/// 65536 ids.
pub const SETUP_POOL_IDS: u32 = 65536 * 4096;

/// Add a `user` entry of `count` ids to the subuid/subgid file at `path`
/// if it has none (the set-up; atomically, keeping the file's mode).
/// Returns the line added.
pub fn ensure_pool_entry(
    path: &Path,
    user: &str,
    count: u32,
) -> Result<Option<String>, IdRangeError> {
    let io = |source| IdRangeError::Io {
        path: path.to_path_buf(),
        source,
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io(e)),
    };
    let Some(new) = with_pool_entry(&text, user, count, path)? else {
        return Ok(None);
    };
    let tmp = path.with_extension("syscont-tmp");
    std::fs::write(&tmp, &new).map_err(io)?;
    let mode = std::fs::metadata(path).map(|m| m.permissions()).ok();
    if let Some(m) = mode {
        std::fs::set_permissions(&tmp, m).map_err(io)?;
    } else {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644)).map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)?;
    Ok(new.lines().last().map(str::to_string))
}

/// One container's ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    /// First host uid (container uid 0).
    pub uid: u32,
    /// First host gid (container gid 0).
    pub gid: u32,
    /// Number of ids.
    pub size: u32,
    /// The container's bundle when it was allocated (for liveness tests).
    pub bundle: PathBuf,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    /// Container id → its ids.
    containers: BTreeMap<String, Allocation>,
}

/// The blocks of `size` ids that fit in `runs`, in order: (start of each).
fn blocks(runs: &[IdRun], size: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for r in runs {
        let mut s = r.start as u64;
        let end = r.start as u64 + r.count as u64;
        while s + size as u64 <= end {
            out.push(s as u32);
            s += size as u64;
        }
    }
    out
}

/// The pool of uid and gid blocks, and where allocations are kept.
#[derive(Debug, Clone)]
pub struct Pool {
    state_dir: PathBuf,
    size: u32,
    uid_blocks: Vec<u32>,
    gid_blocks: Vec<u32>,
}

/// An exclusive lock on the allocation file, released on drop.
struct Locked {
    _lock: nix::fcntl::Flock<File>,
}

impl Pool {
    /// A pool of blocks of `size` ids from the given uid and gid runs, with
    /// allocations kept in `state_dir`. The n-th container gets the n-th
    /// uid block and the n-th gid block.
    pub fn new(
        state_dir: &Path,
        size: u32,
        uids: &[IdRun],
        gids: &[IdRun],
    ) -> Result<Self, IdRangeError> {
        if size == 0 || size > 1 << 31 {
            return Err(IdRangeError::Size(size as u64));
        }
        Ok(Pool {
            state_dir: state_dir.to_path_buf(),
            size,
            uid_blocks: blocks(uids, size),
            gid_blocks: blocks(gids, size),
        })
    }

    /// The pool of `user`'s entries in `/etc/subuid`-style files.
    pub fn from_subid_files(
        state_dir: &Path,
        size: u32,
        user: &str,
        subuid: &Path,
        subgid: &Path,
    ) -> Result<Self, IdRangeError> {
        let read = |p: &Path| -> Result<Vec<IdRun>, IdRangeError> {
            let text = std::fs::read_to_string(p).map_err(|source| IdRangeError::Io {
                path: p.to_path_buf(),
                source,
            })?;
            let runs = parse_subid(&text, user, p)?;
            if runs.is_empty() {
                return Err(IdRangeError::NoPool {
                    user: user.to_string(),
                    path: p.to_path_buf(),
                });
            }
            Ok(runs)
        };
        Pool::new(state_dir, size, &read(subuid)?, &read(subgid)?)
    }

    /// How many containers the pool can hold.
    pub fn capacity(&self) -> usize {
        self.uid_blocks.len().min(self.gid_blocks.len())
    }

    fn io(&self, path: PathBuf) -> impl FnOnce(std::io::Error) -> IdRangeError {
        move |source| IdRangeError::Io { path, source }
    }

    fn lock(&self) -> Result<Locked, IdRangeError> {
        std::fs::create_dir_all(&self.state_dir).map_err(self.io(self.state_dir.clone()))?;
        let path = self.state_dir.join(LOCK_FILE);
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(self.io(path.clone()))?;
        let lock =
            nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive).map_err(|(_, e)| {
                IdRangeError::Io {
                    path,
                    source: e.into(),
                }
            })?;
        Ok(Locked { _lock: lock })
    }

    fn load(&self, _held: &Locked) -> Result<State, IdRangeError> {
        let path = self.state_dir.join(STATE_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|source| IdRangeError::State { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(e) => Err(IdRangeError::Io { path, source: e }),
        }
    }

    fn store(&self, _held: &Locked, state: &State) -> Result<(), IdRangeError> {
        let path = self.state_dir.join(STATE_FILE);
        let tmp = self.state_dir.join(format!(".{STATE_FILE}.tmp"));
        let bytes = serde_json::to_vec_pretty(state).map_err(|source| IdRangeError::State {
            path: path.clone(),
            source,
        })?;
        let mut f = File::create(&tmp).map_err(self.io(tmp.clone()))?;
        f.write_all(&bytes).map_err(self.io(tmp.clone()))?;
        f.sync_all().map_err(self.io(tmp.clone()))?;
        std::fs::rename(&tmp, &path).map_err(self.io(path))?;
        Ok(())
    }

    /// The ids of container `id`: its existing block, or a free one. Blocks
    /// of other containers for which `alive` says false are reclaimed first.
    pub fn allocate(
        &self,
        id: &str,
        bundle: &Path,
        alive: impl Fn(&str, &Allocation) -> bool,
    ) -> Result<Allocation, IdRangeError> {
        let held = self.lock()?;
        let mut state = self.load(&held)?;
        if let Some(a) = state.containers.get(id) {
            if a.size == self.size {
                return Ok(a.clone());
            }
        }
        let before = state.containers.len();
        state.containers.retain(|k, a| k != id && alive(k, a));
        let taken: std::collections::HashSet<u32> =
            state.containers.values().map(|a| a.uid).collect();
        let taken_gids: std::collections::HashSet<u32> =
            state.containers.values().map(|a| a.gid).collect();
        let free = (0..self.capacity()).find(|&i| {
            !taken.contains(&self.uid_blocks[i]) && !taken_gids.contains(&self.gid_blocks[i])
        });
        let Some(i) = free else {
            if state.containers.len() != before {
                self.store(&held, &state)?;
            }
            return Err(IdRangeError::Exhausted {
                size: self.size,
                used: state.containers.len(),
            });
        };
        let a = Allocation {
            uid: self.uid_blocks[i],
            gid: self.gid_blocks[i],
            size: self.size,
            bundle: bundle.to_path_buf(),
        };
        state.containers.insert(id.to_string(), a.clone());
        self.store(&held, &state)?;
        Ok(a)
    }

    /// Give back container `id`'s block; true if it had one.
    pub fn release(&self, id: &str) -> Result<bool, IdRangeError> {
        let held = self.lock()?;
        let mut state = self.load(&held)?;
        let had = state.containers.remove(id).is_some();
        if had {
            self.store(&held, &state)?;
        }
        Ok(had)
    }

    /// Every allocation, by container id.
    pub fn list(&self) -> Result<BTreeMap<String, Allocation>, IdRangeError> {
        let held = self.lock()?;
        Ok(self.load(&held)?.containers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const RUNS: [IdRun; 1] = [IdRun {
        start: 100_000,
        count: 65536 * 40,
    }];

    fn pool(dir: &Path) -> Pool {
        Pool::new(dir, DEFAULT_SIZE, &RUNS, &RUNS).unwrap()
    }

    fn overlaps(a: &Allocation, b: &Allocation) -> bool {
        let o = |x: u32, y: u32| x < y + b.size && y < x + a.size;
        o(a.uid, b.uid) || o(a.gid, b.gid)
    }

    #[test]
    fn parses_subid_files() {
        let text =
            "# comment\nalice:1000000:65536\nsyscont:100000:131072\n\nsyscont:500000:65536\n";
        let runs = parse_subid(text, "syscont", Path::new("/etc/subuid")).unwrap();
        assert_eq!(
            runs,
            [
                IdRun {
                    start: 100_000,
                    count: 131_072
                },
                IdRun {
                    start: 500_000,
                    count: 65536
                }
            ]
        );
        for bad in [
            "syscont:1",
            "syscont:x:1",
            "syscont:1:2:3",
            "syscont:4294967295:2",
        ] {
            let e = parse_subid(bad, "syscont", Path::new("f")).unwrap_err();
            assert!(
                matches!(e, IdRangeError::SubId { line: 1, .. }),
                "{bad}: {e}"
            );
        }
        assert_eq!(blocks(&runs, 65536), [100_000, 165_536, 500_000]);
    }

    #[test]
    fn disjoint_stable_and_released() {
        let d = tempfile::tempdir().unwrap();
        let p = pool(d.path());
        let all: Vec<Allocation> = (0..30)
            .map(|i| {
                p.allocate(&format!("c{i}"), Path::new("/b"), |_, _| true)
                    .unwrap()
            })
            .collect();
        for (i, a) in all.iter().enumerate() {
            assert!(a.uid >= 100_000 && a.uid + a.size <= 100_000 + 65536 * 40);
            for b in &all[i + 1..] {
                assert!(!overlaps(a, b), "{a:?} overlaps {b:?}");
            }
        }
        // The same container keeps its ids (Docker: stop, then start).
        assert_eq!(
            p.allocate("c7", Path::new("/b"), |_, _| true).unwrap(),
            all[7]
        );
        assert!(p.release("c7").unwrap());
        assert!(!p.release("c7").unwrap());
        // The freed block is handed out again.
        assert_eq!(
            p.allocate("new", Path::new("/b"), |_, _| true).unwrap().uid,
            all[7].uid
        );
    }

    #[test]
    fn exhaustion_and_reclaim_of_dead_containers() {
        let d = tempfile::tempdir().unwrap();
        let p = Pool::new(
            d.path(),
            65536,
            &RUNS[..],
            &[IdRun {
                start: 0,
                count: 65536 * 2,
            }],
        )
        .unwrap();
        assert_eq!(p.capacity(), 2);
        p.allocate("a", Path::new("/gone"), |_, _| true).unwrap();
        p.allocate("b", Path::new("/here"), |_, _| true).unwrap();
        let e = p
            .allocate("c", Path::new("/here"), |_, _| true)
            .unwrap_err();
        assert!(matches!(e, IdRangeError::Exhausted { used: 2, .. }), "{e}");
        // "a" is gone: its block is reclaimed for "c".
        let c = p
            .allocate("c", Path::new("/here"), |_, a| {
                a.bundle != Path::new("/gone")
            })
            .unwrap();
        let list = p.list().unwrap();
        assert_eq!(list.keys().collect::<Vec<_>>(), ["b", "c"]);
        assert!(!overlaps(&c, &list["b"]));
    }

    #[test]
    fn concurrent_creates_never_share_ids() {
        let d = tempfile::tempdir().unwrap();
        let p = Arc::new(pool(d.path()));
        let got: Vec<Allocation> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..20)
                .map(|i| {
                    let p = p.clone();
                    s.spawn(move || {
                        p.allocate(&format!("c{i}"), Path::new("/b"), |_, _| true)
                            .unwrap()
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (i, a) in got.iter().enumerate() {
            for b in &got[i + 1..] {
                assert!(!overlaps(a, b), "{a:?} overlaps {b:?}");
            }
        }
        assert_eq!(p.list().unwrap().len(), 20);
    }

    #[test]
    fn a_corrupt_state_file_is_an_error_and_left_alone() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join(STATE_FILE);
        std::fs::write(&path, b"{not json").unwrap();
        let p = pool(d.path());
        let e = p.allocate("x", Path::new("/b"), |_, _| true).unwrap_err();
        assert!(matches!(e, IdRangeError::State { .. }), "{e}");
        assert_eq!(std::fs::read(&path).unwrap(), b"{not json");
        assert!(matches!(
            Pool::new(d.path(), 0, &RUNS, &RUNS),
            Err(IdRangeError::Size(0))
        ));
    }

    #[test]
    fn the_set_up_adds_a_pool_above_every_other_entry() {
        let f = Path::new("/etc/subuid");
        let text = "alice:100000:65536\nbob:165536:65536";
        let out = with_pool_entry(text, "syscont", 65536 * 100, f)
            .unwrap()
            .unwrap();
        assert_eq!(
            out,
            "alice:100000:65536\nbob:165536:65536\nsyscont:262144:6553600\n"
        );
        let runs = parse_subid(&out, "syscont", f).unwrap();
        assert_eq!(runs[0].start % 65536, 0);
        assert!(with_pool_entry(&out, "syscont", 65536, f)
            .unwrap()
            .is_none());
        assert_eq!(
            with_pool_entry("", "syscont", 65536, f).unwrap().unwrap(),
            "syscont:131072:65536\n"
        );
        assert!(with_pool_entry("bad line", "syscont", 65536, f).is_err());
        assert!(with_pool_entry("x:4294000000:10", "syscont", 65536 * 100, f).is_err());
    }

    #[test]
    fn missing_pool_entries_say_how_to_add_them() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("subuid");
        std::fs::write(&f, "alice:100000:65536\n").unwrap();
        let e = Pool::from_subid_files(d.path(), DEFAULT_SIZE, "syscont", &f, &f).unwrap_err();
        assert!(e.to_string().contains("syscont:100000:6553600"), "{e}");
    }
}
