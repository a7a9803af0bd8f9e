//! `/proc/self/mountinfo`: the mount that holds a path, with its file
//! system type and super options (an overlay's layers). Parsing only; no
//! syscalls beyond reading the file.

use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use super::{KernelError, Result};

/// One line of mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub mount_id: u32,
    /// The id of the mount this one is mounted on (itself for a root).
    pub parent_id: u32,
    pub mount_point: PathBuf,
    pub fs_type: String,
    pub source: String,
    /// Per-mount options (`rw,nosuid,...`).
    pub mount_options: String,
    /// Super-block options, still escaped as the kernel shows them.
    pub super_options: String,
}

/// Undo mountinfo's octal escapes (`\040` for a space, and so on), bytes
/// kept as they are.
pub fn unescape_bytes(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'\\' && i + 3 < s.len() {
            let oct = &s[i + 1..i + 4];
            if oct.iter().all(|c| (b'0'..=b'7').contains(c)) {
                let v = u32::from(oct[0] - b'0') * 64
                    + u32::from(oct[1] - b'0') * 8
                    + u32::from(oct[2] - b'0');
                if let Ok(b) = u8::try_from(v) {
                    out.push(b);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

/// [`unescape_bytes`] as text (invalid UTF-8 replaced).
pub fn unescape(s: &str) -> String {
    String::from_utf8_lossy(&unescape_bytes(s.as_bytes())).into_owned()
}

/// Parse mountinfo text; malformed lines are skipped.
pub fn parse(text: &str) -> Vec<MountEntry> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let l: Vec<&str> = left.split(' ').collect();
        let r: Vec<&str> = right.splitn(3, ' ').collect();
        if l.len() < 6 || r.len() < 3 {
            continue;
        }
        let (Ok(mount_id), Ok(parent_id)) = (l[0].parse(), l[1].parse()) else {
            continue;
        };
        out.push(MountEntry {
            mount_id,
            parent_id,
            mount_point: PathBuf::from(std::ffi::OsString::from_vec(unescape_bytes(
                l[4].as_bytes(),
            ))),
            mount_options: l[5].to_string(),
            fs_type: r[0].to_string(),
            source: unescape(r[1]),
            super_options: r[2].to_string(),
        });
    }
    out
}

/// Every mount of this process's mount namespace.
///
/// The kernel builds the text in several reads; when mounts change in
/// between (other containers start and stop all the time), a line can be
/// skipped. Callers that must find a given mount use [`find_mount`].
pub fn read_self() -> Result<Vec<MountEntry>> {
    let text =
        std::fs::read_to_string("/proc/self/mountinfo").map_err(|source| KernelError::Sys {
            op: "read /proc/self/mountinfo",
            source,
        })?;
    Ok(parse(&text))
}

/// The top-most mount at `path` if `path` is a mount point, reading the
/// table again (up to 50 times) while a mount known to be there (`path`'s
/// device differs from its parent's) is missing from what was read.
pub fn find_mount(path: &Path) -> Result<Option<MountEntry>> {
    use std::os::unix::fs::MetadataExt;
    let dev = |p: &Path| std::fs::metadata(p).ok().map(|m| m.dev());
    let is_mount_root = path.parent().is_some_and(|parent| dev(parent) != dev(path));
    for _ in 0..50 {
        let table = read_self()?;
        if let Some(m) = mounted_at(&table, path) {
            return Ok(Some(m.clone()));
        }
        if !is_mount_root {
            return Ok(None);
        }
        std::thread::yield_now();
    }
    Err(KernelError::Invalid(format!(
        "{} is a mount point missing from the mount table",
        path.display()
    )))
}

/// The top-most mount whose mount point is exactly `path`.
pub fn mounted_at<'a>(mounts: &'a [MountEntry], path: &Path) -> Option<&'a MountEntry> {
    mounts.iter().rev().find(|m| m.mount_point == path)
}

/// Split super options at commas not escaped by a backslash, unescaped.
pub fn super_options(opts: &str) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = opts.chars().peekable();
    let mut push = |cur: &mut String| {
        let item = std::mem::take(cur);
        if item.is_empty() {
            return;
        }
        match item.split_once('=') {
            Some((k, v)) => out.push((k.to_string(), Some(unescape(v)))),
            None => out.push((item, None)),
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                // Keep octal escapes for unescape; a backslash before a
                // comma (or anything else) keeps the next character.
                if let Some(&n) = chars.peek() {
                    if n.is_ascii_digit() {
                        cur.push('\\');
                    } else {
                        cur.push(n);
                        chars.next();
                    }
                }
            }
            ',' => push(&mut cur),
            _ => cur.push(c),
        }
    }
    push(&mut cur);
    out
}

/// Split an overlay `lowerdir` value into its layers (`:` separated,
/// `\:` escaped). Data-only layers (after `::`) are reported as an error
/// by the caller: the result keeps empty entries.
pub fn split_layers(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            ':' => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n\
        300 22 0:50 / /var/lib/docker/overlay2/abc/merged rw,relatime - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/AAA:/var/lib/docker/overlay2/l/BBB,upperdir=/var/lib/docker/overlay2/abc/diff,workdir=/var/lib/docker/overlay2/abc/work,index=off\n\
        301 22 0:51 / /mnt/with\\040space rw - tmpfs tmp\\040fs rw\n\
        garbage line\n";

    #[test]
    fn parses_lines_and_escapes() {
        let m = parse(SAMPLE);
        assert_eq!(m.len(), 3);
        assert_eq!(m[2].mount_point, Path::new("/mnt/with space"));
        assert_eq!(m[2].source, "tmp fs");
        let o = mounted_at(&m, Path::new("/var/lib/docker/overlay2/abc/merged")).unwrap();
        assert_eq!(o.fs_type, "overlay");
        let opts = super_options(&o.super_options);
        let get = |k: &str| {
            opts.iter()
                .find(|(n, _)| n == k)
                .and_then(|(_, v)| v.clone())
        };
        assert_eq!(
            split_layers(&get("lowerdir").unwrap()),
            [
                "/var/lib/docker/overlay2/l/AAA",
                "/var/lib/docker/overlay2/l/BBB"
            ]
        );
        assert_eq!(
            get("upperdir").unwrap(),
            "/var/lib/docker/overlay2/abc/diff"
        );
        assert_eq!(get("index").unwrap(), "off");
        assert!(mounted_at(&m, Path::new("/nope")).is_none());
    }

    #[test]
    fn finds_mounts_of_this_process() {
        let m = read_self().unwrap();
        assert!(m.iter().any(|e| e.fs_type == "proc"));
        assert_eq!(
            find_mount(Path::new("/proc")).unwrap().unwrap().fs_type,
            "proc"
        );
        assert!(find_mount(Path::new("/proc/self")).unwrap().is_none());
    }

    #[test]
    fn escaped_separators() {
        assert_eq!(split_layers("/a\\:b:/c"), ["/a:b", "/c"]);
        assert_eq!(split_layers("/a::/d"), ["/a", "", "/d"]);
        let o = super_options("lowerdir=/x\\,y,upperdir=/u\\040v");
        assert_eq!(o[0], ("lowerdir".into(), Some("/x,y".into())));
        assert_eq!(o[1], ("upperdir".into(), Some("/u v".into())));
    }
}
