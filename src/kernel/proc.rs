//! Small `/proc/<pid>` look-ups about a trapped process: its ids in its own
//! pid namespace, and what its cwd or an fd points at.

use std::os::unix::ffi::OsStrExt;

use super::{KernelError, Result};

/// A process's tgid and tid as seen in its innermost pid namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NsIds {
    pub tgid: u32,
    pub tid: u32,
}

fn last_number(line: &str) -> Option<u32> {
    line.split_ascii_whitespace().last()?.parse().ok()
}

/// Read `NStgid` and `NSpid` of host tid `tid`.
pub fn ns_ids(tid: u32) -> Result<NsIds> {
    let status =
        std::fs::read_to_string(format!("/proc/{tid}/status")).map_err(|e| KernelError::Sys {
            op: "read /proc/<pid>/status",
            source: e,
        })?;
    let mut tgid = None;
    let mut ntid = None;
    for line in status.lines() {
        if let Some(rest) = line.strip_prefix("NStgid:") {
            tgid = last_number(rest);
        } else if let Some(rest) = line.strip_prefix("NSpid:") {
            ntid = last_number(rest);
        }
    }
    match (tgid, ntid) {
        (Some(tgid), Some(tid)) => Ok(NsIds { tgid, tid }),
        _ => Err(KernelError::Invalid(format!(
            "/proc/{tid}/status has no NStgid/NSpid"
        ))),
    }
}

/// Target of a `/proc/<pid>/...` magic link (`cwd`, `fd/<n>`), as bytes.
pub fn link_target(pid: u32, what: &str) -> Result<Vec<u8>> {
    let p = std::fs::read_link(format!("/proc/{pid}/{what}")).map_err(|e| KernelError::Sys {
        op: "readlink /proc/<pid>/…",
        source: e,
    })?;
    Ok(p.as_os_str().as_bytes().to_vec())
}

/// Host pid of the thread-group leader of host tid `tid` (`Tgid:`).
pub fn tgid(tid: u32) -> Result<u32> {
    let status =
        std::fs::read_to_string(format!("/proc/{tid}/status")).map_err(|e| KernelError::Sys {
            op: "read /proc/<pid>/status",
            source: e,
        })?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Tgid:").and_then(last_number))
        .ok_or_else(|| KernelError::Invalid(format!("/proc/{tid}/status has no Tgid")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_ids() {
        let me = std::process::id();
        let ids = ns_ids(me).unwrap();
        assert_eq!(ids.tgid, me);
        assert_eq!(tgid(me).unwrap(), me);
        assert!(link_target(me, "cwd").unwrap().starts_with(b"/"));
    }
}
