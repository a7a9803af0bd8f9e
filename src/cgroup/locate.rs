//! Finding a process's cgroup directories: cgroup mounts from a mountinfo,
//! the process's paths from `/proc/<pid>/cgroup`, joined under a root.

use std::path::Path;

use super::dir::CgDir;
use super::parse;
use super::{v1, v2, Cgroup, CgroupError, Inner, Result};

/// A cgroup (v1) or cgroup2 mount from a mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMount {
    /// Root of the mount within its hierarchy (field 4), usually `/`.
    pub root: String,
    /// Where it is mounted (field 5), unescaped.
    pub mount_point: String,
    /// True for `cgroup2`.
    pub v2: bool,
    /// Super options (v1: the controllers, e.g. `rw,cpu,cpuacct`).
    pub super_opts: String,
}

impl CgroupMount {
    fn has_controller(&self, c: &str) -> bool {
        self.super_opts.split(',').any(|o| o == c)
    }
}

/// One line of `/proc/<pid>/cgroup`: `hierarchy-id:controllers:path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcCgroupLine {
    pub controllers: Vec<String>,
    pub path: String,
}

/// Undo mountinfo's octal escapes (`\040` for a space, …).
fn unescape(s: &[u8]) -> String {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'\\'
            && i + 3 < s.len()
            && s[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (u32::from(s[i + 1] - b'0') << 6)
                | (u32::from(s[i + 2] - b'0') << 3)
                | u32::from(s[i + 3] - b'0');
            out.push(u8::try_from(v & 0xff).unwrap_or(b'?'));
            i += 4;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every cgroup and cgroup2 mount of a mountinfo. Lines that do not parse
/// are skipped (they are not cgroup mounts we could use anyway).
pub fn parse_mountinfo(text: &[u8]) -> Vec<CgroupMount> {
    let mut out = Vec::new();
    for line in parse::lines(text) {
        let Some(sep) = memchr::memmem::find(line, b" - ") else {
            continue;
        };
        let mut pre = parse::fields(&line[..sep]);
        let mut post = parse::fields(&line[sep + 3..]);
        let (Some(_id), Some(_parent), Some(_dev), Some(root), Some(mp)) =
            (pre.next(), pre.next(), pre.next(), pre.next(), pre.next())
        else {
            continue;
        };
        let (Some(fstype), Some(_source), Some(opts)) = (post.next(), post.next(), post.next())
        else {
            continue;
        };
        let v2 = match fstype {
            b"cgroup2" => true,
            b"cgroup" => false,
            _ => continue,
        };
        out.push(CgroupMount {
            root: unescape(root),
            mount_point: unescape(mp),
            v2,
            super_opts: String::from_utf8_lossy(opts).into_owned(),
        });
    }
    out
}

/// Parse `/proc/<pid>/cgroup`. `None` when a line is malformed.
pub fn parse_proc_cgroup(text: &[u8]) -> Option<Vec<ProcCgroupLine>> {
    let mut out = Vec::new();
    for line in parse::lines(text) {
        let c1 = line.iter().position(|&c| c == b':')?;
        let rest = &line[c1 + 1..];
        let c2 = rest.iter().position(|&c| c == b':')?;
        parse::parse_u64(&line[..c1])?;
        let controllers = std::str::from_utf8(&rest[..c2]).ok()?;
        let path = std::str::from_utf8(&rest[c2 + 1..]).ok()?;
        if !path.starts_with('/') {
            return None;
        }
        out.push(ProcCgroupLine {
            controllers: if controllers.is_empty() {
                Vec::new()
            } else {
                controllers.split(',').map(str::to_owned).collect()
            },
            path: path.to_owned(),
        });
    }
    Some(out)
}

pub(super) struct Found<'a> {
    fs_root: &'a Path,
    proc_cgroup: &'a Path,
}

impl Found<'_> {
    /// The directory of `cgroup_path` inside `mount`, under the fs root.
    fn dir_of(&self, mount: &CgroupMount, cgroup_path: &str) -> Result<CgDir> {
        let rel = if mount.root == "/" {
            cgroup_path
        } else {
            cgroup_path
                .strip_prefix(mount.root.as_str())
                .filter(|r| r.is_empty() || r.starts_with('/'))
                .ok_or_else(|| CgroupError::OutsideMount {
                    cgroup_path: cgroup_path.to_owned(),
                    mount_root: mount.root.clone(),
                    proc_cgroup: self.proc_cgroup.to_owned(),
                })?
        };
        let mount_dir = self.fs_root.join(mount.mount_point.trim_start_matches('/'));
        let mut dir = mount_dir.clone();
        for comp in rel.split('/').filter(|c| !c.is_empty()) {
            if comp == "." || comp == ".." {
                return Err(CgroupError::Malformed {
                    path: self.proc_cgroup.to_owned(),
                    what: format!("cgroup path {cgroup_path:?} has . or .."),
                });
            }
            dir.push(comp);
        }
        CgDir::open(dir, mount_dir)
    }
}

pub(super) fn locate(
    mountinfo: &[u8],
    mountinfo_path: &Path,
    proc_cgroup: &[u8],
    proc_cgroup_path: &Path,
    fs_root: &Path,
) -> Result<Cgroup> {
    let mounts = parse_mountinfo(mountinfo);
    let lines = parse_proc_cgroup(proc_cgroup).ok_or_else(|| CgroupError::Malformed {
        path: proc_cgroup_path.to_owned(),
        what: "expected id:controllers:/path lines".to_owned(),
    })?;
    let found = Found {
        fs_root,
        proc_cgroup: proc_cgroup_path,
    };
    let v1_mount = |c: &str| mounts.iter().find(|m| !m.v2 && m.has_controller(c));
    let v1_path = |c: &str| {
        lines
            .iter()
            .find(|l| l.controllers.iter().any(|x| x == c))
            .map(|l| l.path.as_str())
    };
    // cgroup v1 (or hybrid with an empty unified mount) when the memory
    // controller is on a v1 hierarchy; otherwise the unified hierarchy.
    if let (Some(m), Some(p)) = (v1_mount("memory"), v1_path("memory")) {
        let memory = found.dir_of(m, p)?;
        let open = |c: &'static str| -> Result<Option<CgDir>> {
            match (v1_mount(c), v1_path(c)) {
                (Some(m), Some(p)) => found.dir_of(m, p).map(Some),
                _ => Ok(None),
            }
        };
        let v = v1::V1 {
            cpu: open("cpu")?,
            cpuacct: open("cpuacct")?,
            cpuset: open("cpuset")?,
            blkio: open("blkio")?,
            pids: open("pids")?,
            memory,
            proc_cgroup: proc_cgroup_path.to_owned(),
        };
        tracing::debug!(cgroup = ?v.describe(), "located cgroup v1");
        return Ok(Cgroup {
            inner: Inner::V1(Box::new(v)),
        });
    }
    let unified = mounts.iter().find(|m| m.v2);
    let path = lines
        .iter()
        .find(|l| l.controllers.is_empty())
        .map(|l| l.path.as_str());
    match (unified, path) {
        (Some(m), Some(p)) => {
            let v = v2::V2 {
                dir: found.dir_of(m, p)?,
                ancestors: std::sync::OnceLock::new(),
            };
            tracing::debug!(cgroup = ?v.describe(), "located cgroup v2");
            Ok(Cgroup {
                inner: Inner::V2(Box::new(v)),
            })
        }
        _ => Err(CgroupError::NoHierarchy {
            mountinfo: mountinfo_path.to_owned(),
        }),
    }
}

/// Joined for logs: `controller=path` pairs.
pub(super) fn describe_dirs(dirs: &[(&str, Option<&CgDir>)]) -> String {
    let mut s = String::new();
    for (name, d) in dirs {
        if let Some(d) = d {
            if !s.is_empty() {
                s.push(' ');
            }
            s.push_str(name);
            s.push('=');
            s.push_str(&d.path.to_string_lossy());
        }
    }
    s
}
