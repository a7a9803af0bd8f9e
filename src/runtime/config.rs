//! The bundle's `config.json`: read, rewrite, write back atomically.
//!
//! This module owns the file: it parses `config.json` as a `serde_json::Value`
//! (with `preserve_order`, so unknown fields and key order survive), hands
//! `linux` to the rewrites ([`crate::runtime::seccomp`] for this issue), and
//! replaces the file with a temporary file in the same directory, synced and
//! renamed over it with the same mode and owner. Any error leaves the file as
//! it was. The output keeps the input's layout: compact stays compact, an
//! indented file is indented with its own indent string.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::runtime::intercept::InterceptProfile;
use crate::runtime::seccomp::{self, Merged, SeccompError};

/// File name of the OCI runtime spec inside a bundle.
pub const CONFIG_FILE: &str = "config.json";

/// Errors of rewriting a bundle's `config.json`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not valid JSON: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: {what}")]
    Shape { path: PathBuf, what: String },
    #[error("{path}: {source}")]
    Seccomp {
        path: PathBuf,
        #[source]
        source: SeccompError,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Errors of the text-level rewrite, before a path is attached.
#[derive(Debug)]
enum TextError {
    Parse(serde_json::Error),
    Shape(String),
    Seccomp(SeccompError),
}

impl TextError {
    fn at(self, path: &Path) -> ConfigError {
        let path = path.to_path_buf();
        match self {
            TextError::Parse(source) => ConfigError::Parse { path, source },
            TextError::Shape(what) => ConfigError::Shape { path, what },
            TextError::Seccomp(source) => ConfigError::Seccomp { path, source },
        }
    }
}

/// The indent of an indented JSON text (the leading whitespace of its second
/// line), or `None` for a compact one.
fn detect_indent(text: &str) -> Option<&str> {
    let second = text.trim_start().split_once('\n')?.1;
    let indent_len = second.len() - second.trim_start_matches([' ', '\t']).len();
    (indent_len > 0).then(|| &second[..indent_len])
}

fn serialise(value: &Value, like: &str) -> Result<String, serde_json::Error> {
    let mut out = match detect_indent(like) {
        Some(indent) => {
            let mut buf = Vec::with_capacity(like.len() + 4096);
            let fmt = serde_json::ser::PrettyFormatter::with_indent(indent.as_bytes());
            let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
            value.serialize(&mut ser)?;
            // serde_json writes only UTF-8.
            String::from_utf8_lossy(&buf).into_owned()
        }
        None => serde_json::to_string(value)?,
    };
    if like.ends_with('\n') {
        out.push('\n');
    }
    Ok(out)
}

fn rewrite_text_inner(
    text: &str,
    profile: &InterceptProfile,
    listener: &Path,
) -> Result<(String, Merged), TextError> {
    let mut doc: Value = serde_json::from_str(text).map_err(TextError::Parse)?;
    let root = doc
        .as_object_mut()
        .ok_or_else(|| TextError::Shape("the spec is not a JSON object".into()))?;
    let linux = root
        .entry("linux")
        .or_insert_with(|| Value::Object(Map::new()));
    let linux = linux
        .as_object_mut()
        .ok_or_else(|| TextError::Shape("\"linux\" is not an object".into()))?;
    let merged = seccomp::merge(linux, profile, listener).map_err(TextError::Seccomp)?;
    let out = serialise(&doc, text).map_err(TextError::Parse)?;
    Ok((out, merged))
}

/// Rewrite the text of a `config.json`; `origin` names it in errors.
pub fn rewrite_text(
    text: &str,
    profile: &InterceptProfile,
    listener: &Path,
    origin: &Path,
) -> Result<(String, Merged), ConfigError> {
    rewrite_text_inner(text, profile, listener).map_err(|e| e.at(origin))
}

/// Rewrite `bundle/config.json` in place.
pub fn rewrite_bundle(
    bundle: &Path,
    profile: &InterceptProfile,
    listener: &Path,
) -> Result<Merged, ConfigError> {
    let mut cfg = load(bundle)?;
    let merged = cfg.merge_seccomp(profile, listener)?;
    cfg.store()?;
    Ok(merged)
}

/// A bundle's `config.json`, read for editing.
pub struct Loaded {
    /// The file given (for messages).
    pub given: PathBuf,
    /// The file written (a symlinked config.json's target).
    path: PathBuf,
    text: String,
    pub doc: Value,
}

/// Read and parse `bundle/config.json`.
pub fn load(bundle: &Path) -> Result<Loaded, ConfigError> {
    let given = bundle.join(CONFIG_FILE);
    let path = fs::canonicalize(&given).map_err(|source| ConfigError::Read {
        path: given.clone(),
        source,
    })?;
    let text = fs::read_to_string(&path).map_err(|source| ConfigError::Read {
        path: given.clone(),
        source,
    })?;
    let doc: Value = serde_json::from_str(&text).map_err(|source| ConfigError::Parse {
        path: given.clone(),
        source,
    })?;
    if !doc.is_object() {
        return Err(ConfigError::Shape {
            path: given,
            what: "the spec is not a JSON object".into(),
        });
    }
    Ok(Loaded {
        given,
        path,
        text,
        doc,
    })
}

impl Loaded {
    /// The spec's top-level object.
    pub fn root(&mut self) -> &mut Map<String, Value> {
        self.doc.as_object_mut().expect("checked at load")
    }

    /// Merge the intercept profile's NOTIFY rules into `linux.seccomp`.
    pub fn merge_seccomp(
        &mut self,
        profile: &InterceptProfile,
        listener: &Path,
    ) -> Result<Merged, ConfigError> {
        let given = self.given.clone();
        let linux = self
            .root()
            .entry("linux")
            .or_insert_with(|| Value::Object(Map::new()));
        let linux = linux.as_object_mut().ok_or_else(|| ConfigError::Shape {
            path: given.clone(),
            what: "\"linux\" is not an object".into(),
        })?;
        seccomp::merge(linux, profile, listener).map_err(|source| ConfigError::Seccomp {
            path: given,
            source,
        })
    }

    /// Before the merge: [`seccomp::SYSTEM_GRANTED`] allowed (so that the
    /// merge finds `mount` allowed and traps it).
    pub fn open_system_syscalls(&mut self) -> Result<(), ConfigError> {
        self.edit_seccomp(|linux| seccomp::grant(linux, &seccomp::SYSTEM_GRANTED))
    }

    /// After the merge (which writes a section where there was none):
    /// [`seccomp::DENIED`] refused, [`seccomp::SYSTEM_ENOSYS`] answered
    /// `ENOSYS`, whatever the container's own profile said.
    pub fn close_system_syscalls(&mut self) -> Result<(), ConfigError> {
        self.edit_seccomp(|linux| {
            seccomp::deny(linux, &seccomp::DENIED)?;
            seccomp::refuse_with(linux, &seccomp::SYSTEM_ENOSYS, libc::ENOSYS)
        })
    }

    fn edit_seccomp(
        &mut self,
        edit: impl FnOnce(&mut Map<String, Value>) -> Result<(), seccomp::SeccompError>,
    ) -> Result<(), ConfigError> {
        let given = self.given.clone();
        let Some(linux) = self.root().get_mut("linux").and_then(Value::as_object_mut) else {
            return Ok(());
        };
        edit(linux).map_err(|source| ConfigError::Seccomp {
            path: given,
            source,
        })
    }

    /// Write the edited spec back atomically, in the input's layout.
    pub fn store(&self) -> Result<(), ConfigError> {
        let out = serialise(&self.doc, &self.text).map_err(|source| ConfigError::Parse {
            path: self.given.clone(),
            source,
        })?;
        write_atomically(&self.path, out.as_bytes()).map_err(|source| ConfigError::Write {
            path: self.given.clone(),
            source,
        })
    }
}

/// Replace `path` with `data`: temporary file in the same directory, same
/// mode and owner, fsync, rename, fsync of the directory.
fn write_atomically(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let meta = fs::metadata(path)?;
    let mode = meta.permissions().mode() & 0o7777;
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| CONFIG_FILE.into());
    let tmp = dir.join(format!(".{name}.syscont-{}.tmp", std::process::id()));
    // A leftover of a killed run with the same pid: ours to remove.
    let _ = fs::remove_file(&tmp);
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        // The umask may have narrowed the mode.
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        if meta.uid() != nix::unistd::geteuid().as_raw()
            || meta.gid() != nix::unistd::getegid().as_raw()
        {
            std::os::unix::fs::fchown(&f, Some(meta.uid()), Some(meta.gid()))?;
        }
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    // Make the rename durable; a failure here leaves a complete file either way.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent_meta::ListenerMetadata;
    use std::os::unix::fs::PermissionsExt;

    const DOCKER: &str = include_str!("testdata/docker-config.orig.json");
    const SOCK: &str = "/tmp/rt-test/agent.sock";

    fn builtin() -> InterceptProfile {
        InterceptProfile::builtin().unwrap()
    }

    /// Every key path of a JSON value, in document order.
    fn key_paths(v: &Value, prefix: &str, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    let p = format!("{prefix}/{k}");
                    out.push(p.clone());
                    key_paths(x, &p, out);
                }
            }
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    key_paths(x, &format!("{prefix}[{i}]"), out);
                }
            }
            _ => {}
        }
    }

    fn paths(v: &Value) -> Vec<String> {
        let mut out = vec![];
        key_paths(v, "", &mut out);
        out
    }

    #[test]
    fn docker_config_key_order_and_unknown_fields_kept() {
        let mut text = DOCKER.replacen('{', r#"{"zzUnknown":{"b":1,"a":[{"y":1,"x":2}]},"#, 1);
        text = text.replacen(r#""linux":{"#, r#""linux":{"notInSpec":true,"#, 1);
        let (out, merged) =
            rewrite_text(&text, &builtin(), Path::new(SOCK), Path::new("c")).unwrap();
        // fchmodat2 is newer than this Docker's profile: left to runc's ENOSYS.
        assert_eq!(merged.metadata.orig.len(), builtin().names().len() - 1);
        let before: Value = serde_json::from_str(&text).unwrap();
        let after: Value = serde_json::from_str(&out).unwrap();
        // Outside linux.seccomp.syscalls, every key path is the same and in
        // the same order, plus the two listener keys at the end of seccomp.
        let outside = |v: &Value| -> Vec<String> {
            paths(v)
                .into_iter()
                .filter(|p| !p.starts_with("/linux/seccomp/syscalls["))
                .collect()
        };
        let mut want = outside(&before);
        let pos = want
            .iter()
            .rposition(|p| p.starts_with("/linux/seccomp/"))
            .unwrap();
        want.insert(pos + 1, "/linux/seccomp/listenerPath".into());
        want.insert(pos + 2, "/linux/seccomp/listenerMetadata".into());
        assert_eq!(outside(&after), want);
        assert_eq!(after["zzUnknown"], before["zzUnknown"]);
        assert_eq!(after["linux"]["notInSpec"], true);
        // Everything but linux.seccomp is equal.
        let mut a = after.clone();
        let mut b = before.clone();
        a["linux"]["seccomp"] = Value::Null;
        b["linux"]["seccomp"] = Value::Null;
        assert_eq!(a, b);
        // Docker writes compact JSON; so do we.
        assert!(!out.contains('\n'));
    }

    #[test]
    fn indented_layout_is_kept() {
        let text =
            "{\n\t\"ociVersion\": \"1.0.2-dev\",\n\t\"linux\": {\n\t\t\"namespaces\": []\n\t}\n}\n";
        let (out, m) = rewrite_text(text, &builtin(), Path::new(SOCK), Path::new("c")).unwrap();
        assert!(m.created);
        assert!(out.starts_with("{\n\t\"ociVersion\": \"1.0.2-dev\",\n\t\"linux\": {\n\t\t\"namespaces\": [],\n\t\t\"seccomp\": {"));
        assert!(out.ends_with("}\n"));
        assert_eq!(detect_indent("{\n  \"a\": 1\n}"), Some("  "));
        assert_eq!(detect_indent("{\"a\":1}"), None);
    }

    #[test]
    fn no_linux_section_gets_one() {
        let (out, m) = rewrite_text(
            r#"{"ociVersion":"1.0.2"}"#,
            &builtin(),
            Path::new(SOCK),
            Path::new("c"),
        )
        .unwrap();
        assert!(m.created);
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["linux"]["seccomp"]["listenerPath"], SOCK);
    }

    #[test]
    fn malformed_texts() {
        let p = Path::new("/b/config.json");
        for (text, want) in [
            ("{", "is not valid JSON"),
            ("", "is not valid JSON"),
            ("[1]", "not a JSON object"),
            (r#"{"linux":[]}"#, "\"linux\" is not an object"),
            (r#"{"linux":{"seccomp":7}}"#, "linux.seccomp is malformed"),
        ] {
            let e = rewrite_text(text, &builtin(), Path::new(SOCK), p)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(want) && e.contains("/b/config.json"),
                "{text}: {e}"
            );
        }
    }

    #[test]
    fn bundle_rewrite_in_place_keeps_mode_and_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join(CONFIG_FILE);
        fs::write(&cfg, DOCKER).unwrap();
        fs::set_permissions(&cfg, fs::Permissions::from_mode(0o640)).unwrap();
        let m1 = rewrite_bundle(dir.path(), &builtin(), Path::new(SOCK)).unwrap();
        let once = fs::read_to_string(&cfg).unwrap();
        let m2 = rewrite_bundle(dir.path(), &builtin(), Path::new(SOCK)).unwrap();
        let twice = fs::read_to_string(&cfg).unwrap();
        let m3 = rewrite_bundle(dir.path(), &builtin(), Path::new(SOCK)).unwrap();
        assert_eq!(fs::read_to_string(&cfg).unwrap(), twice);
        assert!(!m1.undone && m2.undone && m3.undone);
        assert_eq!(m1.metadata, m2.metadata);
        let count = |s: &str| s.matches("SCMP_ACT_NOTIFY").count();
        assert_eq!(count(&once), count(&twice));
        assert_eq!(
            fs::metadata(&cfg).unwrap().permissions().mode() & 0o7777,
            0o640
        );
        let v: Value = serde_json::from_str(&twice).unwrap();
        ListenerMetadata::parse(v["linux"]["seccomp"]["listenerMetadata"].as_str().unwrap())
            .unwrap();
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn bad_bundles_leave_the_file_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let e = rewrite_bundle(dir.path(), &builtin(), Path::new(SOCK)).unwrap_err();
        assert!(matches!(e, ConfigError::Read { .. }), "{e}");
        assert!(e.to_string().contains("config.json"));
        let cfg = dir.path().join(CONFIG_FILE);
        let bad = r#"{"linux":{"seccomp":{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":[1]}]}}}"#;
        fs::write(&cfg, bad).unwrap();
        assert!(rewrite_bundle(dir.path(), &builtin(), Path::new(SOCK)).is_err());
        assert_eq!(fs::read_to_string(&cfg).unwrap(), bad);
        fs::write(&cfg, "{\"linux\":").unwrap();
        assert!(matches!(
            rewrite_bundle(dir.path(), &builtin(), Path::new(SOCK)),
            Err(ConfigError::Parse { .. })
        ));
        assert_eq!(fs::read_to_string(&cfg).unwrap(), "{\"linux\":");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn symlinked_config_replaces_the_target() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.json");
        fs::write(&real, r#"{"linux":{}}"#).unwrap();
        std::os::unix::fs::symlink("real.json", dir.path().join(CONFIG_FILE)).unwrap();
        rewrite_bundle(dir.path(), &builtin(), Path::new(SOCK)).unwrap();
        assert!(fs::symlink_metadata(dir.path().join(CONFIG_FILE))
            .unwrap()
            .file_type()
            .is_symlink());
        assert!(fs::read_to_string(&real).unwrap().contains("listenerPath"));
    }
}
