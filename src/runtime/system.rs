//! The system-container spec: what `create` changes in `config.json`
//! besides seccomp, as a pure edit of the JSON value.
//!
//! It refuses what cannot work in a system container (the host's pid,
//! network, ipc or uts namespace, another container's namespaces,
//! `--privileged`, a spec that already has a user namespace of its own),
//! and otherwise adds a user namespace with the container's exclusive
//! ids, a cgroup namespace with a writable cgroup mount (its directories
//! are delegated by [`crate::runtime::cgroups`]), every capability the
//! host can grant, and clamps id-valued sysctls to the mapping. The
//! original values it replaces are kept in annotations so that a second
//! run over the same bundle finds the same answer.

use serde_json::{json, Map, Value};

/// Annotation holding the rootfs path the engine gave (before syscont
/// replaced it with its ID-mapped one).
pub const ANN_ROOT: &str = "org.syscont.rootfs";
/// Annotation marking a spec syscont has rewritten.
pub const ANN_IDS: &str = "org.syscont.ids";

/// Errors of the system-container edit.
#[derive(Debug, thiserror::Error)]
pub enum SystemError {
    /// The spec asks for something a system container cannot do.
    #[error("{0}")]
    Refused(String),
    #[error("config.json: {0}")]
    Shape(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

/// A container's ids: host uid and gid of its root, and how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ids {
    pub uid: u32,
    pub gid: u32,
    pub size: u32,
}

/// Capability names by number (as in linux/capability.h, up to 40).
pub const CAPS: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Give the process of an `exec` (`runc exec --process FILE`) the system
/// container's capabilities: every one the host can grant, in the
/// bounding, effective and permitted sets, as [`apply`] gives the init.
/// The engine writes its own defaults there (Docker's 14 for a plain
/// `docker exec`); only those three sets change, the file's layout stays.
pub fn exec_capabilities(path: &std::path::Path) -> Result<(), SystemError> {
    let io = |source| SystemError::Io {
        what: path.display().to_string(),
        source,
    };
    let text = std::fs::read_to_string(path).map_err(io)?;
    let mut doc: Value = serde_json::from_str(&text)
        .map_err(|e| SystemError::Shape(format!("{}: {e}", path.display())))?;
    let caps = host_capabilities().map_err(io)?;
    let process = doc
        .as_object_mut()
        .ok_or_else(|| SystemError::Shape(format!("{}: not an object", path.display())))?;
    give_capabilities(process, &caps)?;
    let out = serde_json::to_vec(&doc).map_err(|e| SystemError::Shape(e.to_string()))?;
    crate::kernel::fs::replace_file(path, &out).map_err(io)
}

/// `caps` in the bounding, effective and permitted sets of a process spec
/// (the kernel then keeps effective empty for a non-root user).
fn give_capabilities(process: &mut Map<String, Value>, caps: &[&str]) -> Result<(), SystemError> {
    let capabilities = obj(
        process.entry("capabilities").or_insert_with(|| json!({})),
        "process.capabilities",
    )?;
    let list: Vec<Value> = caps.iter().map(|c| Value::String((*c).into())).collect();
    for set in ["bounding", "effective", "permitted"] {
        capabilities.insert(set.into(), Value::Array(list.clone()));
    }
    Ok(())
}

/// The capabilities in a `CapBnd:` mask (hex), by name, in number order.
pub fn caps_from_mask(mask: u64) -> Vec<&'static str> {
    CAPS.iter()
        .enumerate()
        .filter(|(i, _)| mask & (1u64 << i) != 0)
        .map(|(_, n)| *n)
        .collect()
}

/// The bounding set of this process (what the host can grant): the
/// `CapBnd` line of `/proc/self/status`.
pub fn host_capabilities() -> std::io::Result<Vec<&'static str>> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .ok_or_else(|| std::io::Error::other("no CapBnd line in /proc/self/status"))?;
    Ok(caps_from_mask(mask))
}

fn obj<'a>(v: &'a mut Value, what: &str) -> Result<&'a mut Map<String, Value>, SystemError> {
    v.as_object_mut()
        .ok_or_else(|| SystemError::Shape(format!("\"{what}\" is not an object")))
}

/// Namespaces a system container must have of its own, with the Docker
/// flag that shares the host's.
const OWN_NAMESPACES: [(&str, &str); 5] = [
    ("mount", "a shared mount namespace"),
    ("pid", "--pid=host"),
    ("network", "--network=host"),
    ("ipc", "--ipc=host"),
    ("uts", "--uts=host"),
];

/// Whether the namespace file at `path` is this process's (the host's)
/// namespace of type `t`.
fn is_host_namespace(t: &str, path: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    let own = match t {
        "network" => "net",
        "mount" => "mnt",
        other => other,
    };
    match (
        std::fs::metadata(path),
        std::fs::metadata(format!("/proc/self/ns/{own}")),
    ) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// True if syscont has already rewritten this spec.
pub fn rewritten(root: &Map<String, Value>) -> bool {
    root.get("annotations")
        .and_then(|a| a.get(ANN_IDS))
        .is_some()
}

/// Refuse, with one line saying why, what cannot work in a system
/// container. Changes nothing.
pub fn check(root: &Map<String, Value>) -> Result<(), SystemError> {
    let ours = rewritten(root);
    let linux = root.get("linux").and_then(Value::as_object);
    let empty = Vec::new();
    let namespaces = linux
        .and_then(|l| l.get("namespaces"))
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    let find = |t: &str| {
        namespaces
            .iter()
            .find(|n| n.get("type").and_then(Value::as_str) == Some(t))
    };
    for (t, flag) in OWN_NAMESPACES {
        match find(t) {
            None => {
                return Err(SystemError::Refused(format!(
                    "a system container needs its own {t} namespace; this one shares the host's ({flag}), which its root could then act on"
                )))
            }
            Some(n) => {
                if let Some(p) = n.get("path").and_then(Value::as_str).filter(|p| !p.is_empty()) {
                    if is_host_namespace(t, p) {
                        return Err(SystemError::Refused(format!(
                            "a system container needs its own {t} namespace; this one joins the host's ({flag}), which its root could then act on"
                        )));
                    }
                    return Err(SystemError::Refused(format!(
                        "a system container cannot join another {t} namespace ({p}; e.g. --{t}=container:...): it belongs to another user namespace"
                    )));
                }
            }
        }
    }
    for t in ["user", "cgroup"] {
        if let Some(p) = find(t)
            .and_then(|n| n.get("path"))
            .and_then(Value::as_str)
            .filter(|p| !p.is_empty())
        {
            return Err(SystemError::Refused(format!(
                "a system container cannot join an existing {t} namespace ({p})"
            )));
        }
    }
    if !ours {
        let has_maps = |k: &str| {
            linux
                .and_then(|l| l.get(k))
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty())
        };
        if find("user").is_some() || has_maps("uidMappings") || has_maps("gidMappings") {
            return Err(SystemError::Refused(
                "the spec already has a user namespace (dockerd --userns-remap?); syscont gives every container its own exclusive one: run this daemon without userns-remap".into(),
            ));
        }
    }
    if privileged(root) {
        return Err(SystemError::Refused(
            "--privileged cannot work in a system container: it asks for the host's devices and unmasked /proc and /sys; the container's root already has every capability inside its own user namespace".into(),
        ));
    }
    Ok(())
}

/// Docker's `--privileged`: every device allowed and nothing masked.
fn privileged(root: &Map<String, Value>) -> bool {
    let linux = root.get("linux").and_then(Value::as_object);
    let all_devices = linux
        .and_then(|l| l.get("resources"))
        .and_then(|r| r.get("devices"))
        .and_then(Value::as_array)
        .is_some_and(|rules| {
            rules.iter().any(|r| {
                r.get("allow").and_then(Value::as_bool) == Some(true)
                    && r.get("type").map_or(true, |t| t == "a")
                    && r.get("major").map_or(true, |m| m == -1)
                    && r.get("minor").map_or(true, |m| m == -1)
            })
        });
    let masked = linux
        .and_then(|l| l.get("maskedPaths"))
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    all_devices && !masked
}

/// Clamp the ids of `net.ipv4.ping_group_range` ("lo hi") to `0..size`.
fn clamp_range(v: &str, size: u32) -> Option<String> {
    let mut it = v.split_whitespace();
    let lo: u64 = it.next()?.parse().ok()?;
    let hi: u64 = it.next()?.parse().ok()?;
    let max = size as u64 - 1;
    Some(format!("{} {}", lo.min(max), hi.min(max)))
}

/// Turn the spec into a system container's: user and cgroup namespaces,
/// the id mappings, every capability in `caps`, a writable cgroup mount,
/// clamped sysctls, annotations. `orig_root` is recorded for later runs.
pub fn apply(
    root: &mut Map<String, Value>,
    ids: Ids,
    caps: &[&str],
    orig_root: &str,
) -> Result<(), SystemError> {
    let linux = obj(root.entry("linux").or_insert_with(|| json!({})), "linux")?;
    let ns = linux.entry("namespaces").or_insert_with(|| json!([]));
    let ns = ns
        .as_array_mut()
        .ok_or_else(|| SystemError::Shape("\"linux.namespaces\" is not an array".into()))?;
    for t in ["user", "cgroup"] {
        if !ns
            .iter()
            .any(|n| n.get("type").and_then(Value::as_str) == Some(t))
        {
            ns.push(json!({ "type": t }));
        }
    }
    let map = json!([{ "containerID": 0, "hostID": ids.uid, "size": ids.size }]);
    linux.insert("uidMappings".into(), map);
    linux.insert(
        "gidMappings".into(),
        json!([{ "containerID": 0, "hostID": ids.gid, "size": ids.size }]),
    );
    if let Some(sysctl) = linux.get_mut("sysctl").and_then(Value::as_object_mut) {
        if let Some(v) = sysctl
            .get("net.ipv4.ping_group_range")
            .and_then(Value::as_str)
        {
            if let Some(c) = clamp_range(v, ids.size) {
                sysctl.insert("net.ipv4.ping_group_range".into(), Value::String(c));
            }
        }
    }
    if let Some(mounts) = root.get_mut("mounts").and_then(Value::as_array_mut) {
        for m in mounts {
            if m.get("type").and_then(Value::as_str) == Some("cgroup")
                || m.get("destination").and_then(Value::as_str) == Some("/sys/fs/cgroup")
            {
                if let Some(opts) = m.get_mut("options").and_then(Value::as_array_mut) {
                    opts.retain(|o| o != "ro");
                }
            }
        }
    }
    let process = obj(
        root.entry("process").or_insert_with(|| json!({})),
        "process",
    )?;
    give_capabilities(process, caps)?;
    let ann = obj(
        root.entry("annotations").or_insert_with(|| json!({})),
        "annotations",
    )?;
    ann.entry(ANN_ROOT)
        .or_insert_with(|| Value::String(orig_root.into()));
    ann.insert(
        ANN_IDS.into(),
        Value::String(format!("uid={} gid={} size={}", ids.uid, ids.gid, ids.size)),
    );
    Ok(())
}

/// The rootfs path the engine gave: the annotation of an earlier run, or
/// `root.path`.
pub fn original_root(root: &Map<String, Value>) -> Option<String> {
    root.get("annotations")
        .and_then(|a| a.get(ANN_ROOT))
        .and_then(Value::as_str)
        .or_else(|| {
            root.get("root")
                .and_then(|r| r.get("path"))
                .and_then(Value::as_str)
        })
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docker() -> Map<String, Value> {
        serde_json::from_str(include_str!("testdata/docker-config.orig.json")).unwrap()
    }

    const IDS: Ids = Ids {
        uid: 231072,
        gid: 296608,
        size: 65536,
    };

    #[test]
    fn docker_spec_becomes_a_system_container() {
        let mut c = docker();
        check(&c).unwrap();
        let orig = original_root(&c).unwrap();
        apply(&mut c, IDS, &["CAP_CHOWN", "CAP_SYS_ADMIN"], &orig).unwrap();
        let l = &c["linux"];
        let types: Vec<&str> = l["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert!(types.contains(&"user") && types.contains(&"cgroup"));
        assert_eq!(l["uidMappings"][0]["hostID"], 231072);
        assert_eq!(l["gidMappings"][0]["hostID"], 296608);
        assert_eq!(l["uidMappings"][0]["size"], 65536);
        assert_eq!(l["sysctl"]["net.ipv4.ping_group_range"], "0 65535");
        assert_eq!(
            c["process"]["capabilities"]["bounding"],
            json!(["CAP_CHOWN", "CAP_SYS_ADMIN"])
        );
        let cg = c["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["type"] == "cgroup")
            .unwrap();
        assert!(!cg["options"].as_array().unwrap().contains(&json!("ro")));
        // A second run over the rewritten spec passes the check and keeps the original root.
        check(&c).unwrap();
        c["root"]["path"] = json!("/var/lib/syscont/containers/x/rootfs");
        assert_eq!(original_root(&c).unwrap(), orig);
        let before = c.clone();
        apply(&mut c, IDS, &["CAP_CHOWN", "CAP_SYS_ADMIN"], "/elsewhere").unwrap();
        assert_eq!(c, before);
    }

    fn refused(c: &Map<String, Value>) -> String {
        match check(c) {
            Err(SystemError::Refused(s)) => s,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn host_namespaces_and_joins_are_refused() {
        for (t, flag) in [
            ("pid", "--pid=host"),
            ("network", "--network=host"),
            ("ipc", "--ipc=host"),
            ("uts", "--uts=host"),
        ] {
            let mut c = docker();
            c["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .retain(|n| n["type"] != t);
            assert!(refused(&c).contains(flag), "{t}");
        }
        let mut c = docker();
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|n| n["type"] == "network")
            .unwrap()["path"] = json!("/run/netns/syscont-other");
        assert!(refused(&c).contains("/run/netns/syscont-other"));
        let mut c = docker();
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        assert!(refused(&c).contains("userns-remap"));
    }

    #[test]
    fn privileged_is_refused() {
        let mut c = docker();
        c["linux"]["resources"]["devices"] = json!([{"allow": true, "access": "rwm"}]);
        c["linux"]["maskedPaths"] = json!([]);
        assert!(refused(&c).contains("--privileged"));
        // Docker's default device rules are not privileged.
        check(&docker()).unwrap();
    }

    #[test]
    fn capability_masks() {
        assert_eq!(caps_from_mask(0b1), ["CAP_CHOWN"]);
        let all = caps_from_mask(0x1ff_ffff_ffff);
        assert_eq!(all.len(), 41);
        // This host's set lacks CAP_SYS_RESOURCE (bit 24).
        assert!(!caps_from_mask(0x1ff_ffff_ffff & !(1 << 24)).contains(&"CAP_SYS_RESOURCE"));
        assert!(host_capabilities().unwrap().contains(&"CAP_CHOWN"));
    }

    #[test]
    fn clamps() {
        assert_eq!(clamp_range("0 2147483647", 65536).unwrap(), "0 65535");
        assert_eq!(clamp_range("1 1", 65536).unwrap(), "1 1");
        assert!(clamp_range("x", 65536).is_none());
    }
}
