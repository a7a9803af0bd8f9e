//! Overlay mounts through the new mount API (`fsopen`, `fsconfig`,
//! `fsmount`, `move_mount`): one `lowerdir+` per layer, so the number of
//! layers is not limited by the page-sized option string of mount(2), and
//! the kernel's own error text (read from the fs context) names the cause.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::{KernelError, Result};

const FSOPEN_CLOEXEC: libc::c_uint = 1;
const FSMOUNT_CLOEXEC: libc::c_uint = 1;
const FSCONFIG_SET_FLAG: libc::c_uint = 0;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;

/// What to mount.
#[derive(Debug, Clone, Default)]
pub struct Overlay {
    /// Lower layers, top first.
    pub lower: Vec<PathBuf>,
    pub upper: Option<PathBuf>,
    pub work: Option<PathBuf>,
    /// Other options: `(key, None)` is a flag, `(key, Some(v))` a value.
    pub options: Vec<(String, Option<String>)>,
}

fn cstring(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| KernelError::Invalid(format!("contains NUL: {s:?}")))
}

fn path_str(p: &Path) -> Result<&str> {
    p.to_str()
        .ok_or_else(|| KernelError::Invalid(format!("not UTF-8: {}", p.display())))
}

/// The messages the kernel left in an fs context, joined.
fn context_log(fs: &OwnedFd) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        // SAFETY: buf is a valid writable buffer of the given length.
        let n = unsafe { libc::read(fs.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
        out.push(String::from_utf8_lossy(&buf[..n as usize]).into_owned());
    }
    out.join("; ")
}

fn config(
    fs: &OwnedFd,
    cmd: libc::c_uint,
    key: Option<&str>,
    value: Option<&str>,
) -> std::io::Result<()> {
    let key = key
        .map(cstring)
        .transpose()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let value = value
        .map(cstring)
        .transpose()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    // SAFETY: fs is an fs context fd; key and value are valid C strings or null.
    let r = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            cmd,
            key.as_ref().map_or(std::ptr::null(), |k| k.as_ptr()),
            value.as_ref().map_or(std::ptr::null(), |v| v.as_ptr()),
            0,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn escape_layer(p: &str) -> String {
    let mut s = String::with_capacity(p.len());
    for c in p.chars() {
        if matches!(c, ':' | ',' | '\\') {
            s.push('\\');
        }
        s.push(c);
    }
    s
}

/// Mount `ov` on `target` (as the calling process's credentials: the
/// overlay's creator).
pub fn mount(ov: &Overlay, target: &Path) -> Result<()> {
    if ov.lower.is_empty() {
        return Err(KernelError::Invalid(
            "an overlay needs a lower layer".into(),
        ));
    }
    // SAFETY: the file system name is a valid C string.
    let raw = unsafe { libc::syscall(libc::SYS_fsopen, c"overlay".as_ptr(), FSOPEN_CLOEXEC) };
    if raw < 0 {
        return Err(KernelError::last("fsopen(overlay)"));
    }
    // SAFETY: fsopen returned a fresh fd.
    let fs = unsafe { OwnedFd::from_raw_fd(raw as i32) };
    let fail = |op: &'static str, e: std::io::Error| {
        let log = context_log(&fs);
        if log.is_empty() {
            KernelError::Sys { op, source: e }
        } else {
            KernelError::Sys {
                op,
                source: std::io::Error::new(e.kind(), format!("{e} ({log})")),
            }
        }
    };
    let lowers: Vec<&str> = ov
        .lower
        .iter()
        .map(|p| path_str(p))
        .collect::<Result<_>>()?;
    // One layer at a time (Linux 6.8+); older kernels take the joined list.
    let mut appended = true;
    for (i, l) in lowers.iter().enumerate() {
        if let Err(e) = config(&fs, FSCONFIG_SET_STRING, Some("lowerdir+"), Some(l)) {
            if i == 0 && e.raw_os_error() == Some(libc::EINVAL) {
                appended = false;
                let _ = context_log(&fs);
                break;
            }
            return Err(fail("fsconfig(lowerdir+)", e));
        }
    }
    if !appended {
        let joined = lowers
            .iter()
            .map(|l| escape_layer(l))
            .collect::<Vec<_>>()
            .join(":");
        config(&fs, FSCONFIG_SET_STRING, Some("lowerdir"), Some(&joined))
            .map_err(|e| fail("fsconfig(lowerdir)", e))?;
    }
    if let Some(u) = &ov.upper {
        config(
            &fs,
            FSCONFIG_SET_STRING,
            Some("upperdir"),
            Some(path_str(u)?),
        )
        .map_err(|e| fail("fsconfig(upperdir)", e))?;
    }
    if let Some(w) = &ov.work {
        config(
            &fs,
            FSCONFIG_SET_STRING,
            Some("workdir"),
            Some(path_str(w)?),
        )
        .map_err(|e| fail("fsconfig(workdir)", e))?;
    }
    for (k, v) in &ov.options {
        let r = match v {
            Some(v) => config(&fs, FSCONFIG_SET_STRING, Some(k), Some(v)),
            None => config(&fs, FSCONFIG_SET_FLAG, Some(k), None),
        };
        r.map_err(|e| fail("fsconfig(option)", e))?;
    }
    config(&fs, FSCONFIG_CMD_CREATE, None, None).map_err(|e| fail("fsconfig(create)", e))?;
    // SAFETY: fs is a configured fs context.
    let raw = unsafe { libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, 0) };
    if raw < 0 {
        return Err(fail("fsmount", std::io::Error::last_os_error()));
    }
    // SAFETY: fsmount returned a fresh fd.
    let mnt = unsafe { OwnedFd::from_raw_fd(raw as i32) };
    super::idmap::attach(&mnt, target)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::idmap::{self, IdMap};
    use std::os::unix::fs::MetadataExt;

    /// The rootfs plan: lower and upper layers seen through one ID-mapped
    /// mount of their parent, the overlay created by host root. A mapping
    /// of host root to one id above the container's range lets the
    /// overlay's own work files be created; everything the container's
    /// root writes lands on disk as uid 0, copy-ups included.
    #[test]
    fn overlay_on_an_idmapped_parent_writes_back_unshifted() {
        if !crate::testutil::root_or_skip("overlay tests") {
            return;
        }
        let d = tempfile::tempdir_in("/var/tmp").unwrap();
        let p = |n: &str| d.path().join(n);
        for n in [
            "layers/low",
            "layers/up/diff",
            "layers/up/work",
            "mapped",
            "merged",
        ] {
            std::fs::create_dir_all(p(n)).unwrap();
        }
        std::fs::write(p("layers/low/f"), b"x").unwrap();
        let maps = [
            IdMap {
                inside: 0,
                outside: 300_000,
                count: 65536,
            },
            IdMap {
                inside: 65536,
                outside: 0,
                count: 1,
            },
        ];
        let ns = idmap::userns_with_maps(&maps, &maps).unwrap();
        idmap::attach(
            &idmap::idmapped_tree(&p("layers"), &ns, false).unwrap(),
            &p("mapped"),
        )
        .unwrap();
        let ov = Overlay {
            lower: vec![p("mapped/low")],
            upper: Some(p("mapped/up/diff")),
            work: Some(p("mapped/up/work")),
            options: vec![("index".into(), Some("off".into()))],
        };
        let r = mount(&ov, &p("merged"));
        // The overlay holds its own clones of the layers.
        idmap::detach(&p("mapped")).unwrap();
        r.unwrap();
        let out = std::process::Command::new("setpriv")
            .args([
                "--reuid=300000",
                "--regid=300000",
                "--clear-groups",
                "sh",
                "-c",
            ])
            .arg(format!(
                "cd {}; echo y >> f && echo n > new",
                p("merged").display()
            ))
            .status()
            .unwrap();
        let seen = std::fs::metadata(p("merged/f")).unwrap().uid();
        idmap::detach(&p("merged")).unwrap();
        assert!(out.success());
        assert_eq!(seen, 300_000);
        for f in ["f", "new"] {
            let md = std::fs::metadata(p(&format!("layers/up/diff/{f}"))).unwrap();
            assert_eq!((md.uid(), md.gid()), (0, 0), "{f} on disk");
        }
        assert_eq!(std::fs::read(p("layers/up/diff/f")).unwrap(), b"xy\n");
    }

    #[test]
    fn errors_name_the_cause() {
        if !crate::testutil::root_or_skip("overlay tests") {
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let ov = Overlay {
            lower: vec![d.path().join("missing")],
            ..Default::default()
        };
        let e = mount(&ov, d.path()).unwrap_err().to_string();
        assert!(e.contains("lowerdir"), "{e}");
    }
}
