//! What system software inside a system container needs from the spec,
//! added without the user passing anything:
//!
//! - **Directories for inner engines.** An inner dockerd or containerd
//!   cannot put overlay on overlay, so `/var/lib/docker` and
//!   `/var/lib/containerd` are bind mounts of per-container host
//!   directories (`<data>/containers/<id>/inner/{docker,containerd}`),
//!   owned by the container's root, kept across stop and start with the
//!   rest of the container's directory and removed with it.
//! - **An init.** When the container's command is an init (`/sbin/init`,
//!   systemd), `/run` and `/run/lock` are tmpfs (systemd refuses to boot
//!   otherwise), and `container` is set in its environment so that
//!   systemd and `systemd-detect-virt` know they are in a container.
//! - **`/proc/sys` and `/sys` as the kernel guards them**: not read-only,
//!   so the container's root sets its own network and IPC sysctls and
//!   device attributes (the kernel keeps every other one host root's); the
//!   kernel debug file systems, which cannot be mounted in a user
//!   namespace, are masked.
//!
//! A destination the spec already mounts is left as the user gave it.

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use crate::runtime::store::mkdir_mode;
use crate::runtime::system::Ids;

/// Errors of preparing the workload directories.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config.json: {0}")]
    Shape(String),
}

/// Inner engines' state directories: (destination, name under `inner/`).
pub const INNER_DIRS: [(&str, &str); 2] = [
    ("/var/lib/docker", "docker"),
    ("/var/lib/containerd", "containerd"),
];

/// The value of `container` given to an init that has none.
pub const CONTAINER_ENV: &str = "container=syscont";

/// Make the inner engines' directories under the container's directory,
/// owned by its root. Existing ones (an earlier start) are kept as they are.
pub fn prepare_dirs(dir: &Path, ids: Ids) -> Result<Vec<(String, PathBuf)>, WorkloadError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| WorkloadError::Io { path, source }
    };
    let inner = dir.join("inner");
    mkdir_mode(&inner, 0o711).map_err(io(&inner))?;
    let mut out = Vec::new();
    for (dest, name) in INNER_DIRS {
        let p = inner.join(name);
        if !p.exists() {
            mkdir_mode(&p, 0o710).map_err(io(&p))?;
            std::os::unix::fs::chown(&p, Some(ids.uid), Some(ids.gid)).map_err(io(&p))?;
        }
        out.push((dest.to_string(), p));
    }
    Ok(out)
}

/// Whether the container's command is an init.
pub fn runs_init(root: &Map<String, Value>) -> bool {
    let Some(arg0) = root
        .get("process")
        .and_then(|p| p.get("args"))
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(Value::as_str)
    else {
        return false;
    };
    let base = arg0.rsplit('/').next().unwrap_or(arg0);
    matches!(base, "init" | "systemd")
}

/// Whether the init the spec runs is systemd, resolved inside `rootfs`
/// (`/sbin/init` is usually a symlink to it; symlinks are followed as the
/// container would, absolute ones from the rootfs).
pub fn init_is_systemd(root: &Map<String, Value>, rootfs: &Path) -> bool {
    if !runs_init(root) {
        return false;
    }
    let arg0 = root["process"]["args"][0].as_str().unwrap_or_default();
    let candidates: Vec<String> = if arg0.starts_with('/') {
        vec![arg0.to_string()]
    } else {
        ["/sbin/", "/usr/sbin/", "/usr/lib/systemd/", "/lib/systemd/"]
            .iter()
            .map(|d| format!("{d}{arg0}"))
            .collect()
    };
    candidates.iter().any(|c| {
        let mut inside = PathBuf::from(c);
        for _ in 0..16 {
            let host = rootfs.join(inside.strip_prefix("/").unwrap_or(&inside));
            match std::fs::read_link(&host) {
                Ok(t) if t.is_absolute() => inside = t,
                Ok(t) => inside = inside.parent().unwrap_or(Path::new("/")).join(t),
                Err(_) => {
                    return host.is_file() && inside.file_name().is_some_and(|n| n == "systemd");
                }
            }
        }
        false
    })
}

/// systemd's stop signal: SIGRTMIN+3 as glibc numbers it.
pub const SYSTEMD_STOP_SIGNAL: &str = "37";

/// The arguments of an engine `kill` for a systemd container: a SIGTERM
/// (the engine's default stop signal, which systemd takes as "re-execute")
/// becomes SIGRTMIN+3 (orderly shutdown). `sub_args` follow `kill`;
/// returns the index (in `sub_args`) and value to set, or to append.
pub fn systemd_kill_signal(sub_args: &[String]) -> Option<(usize, &'static str)> {
    let positional: Vec<usize> = sub_args
        .iter()
        .enumerate()
        .filter(|(_, a)| !a.starts_with('-'))
        .map(|(i, _)| i)
        .collect();
    match positional.as_slice() {
        [_id] => Some((sub_args.len(), SYSTEMD_STOP_SIGNAL)),
        [_id, sig, ..] => {
            let s = sub_args[*sig].trim_start_matches("SIG");
            matches!(s, "15" | "TERM").then_some((*sig, SYSTEMD_STOP_SIGNAL))
        }
        _ => None,
    }
}

fn mounted(mounts: &[Value], dest: &str) -> bool {
    mounts.iter().any(|m| {
        m.get("destination")
            .and_then(Value::as_str)
            .map(|d| d.trim_end_matches('/'))
            == Some(dest)
    })
}

/// Kernel debug file systems masked in every system container (when the
/// host has them): they cannot be mounted in a user namespace, and an
/// empty read-only mount there makes systemd's `sys-kernel-debug.mount`
/// and `sys-kernel-tracing.mount` see them mounted instead of failing.
pub const MASKED_DEBUG_FS: [&str; 2] = ["/sys/kernel/debug", "/sys/kernel/tracing"];

/// `/proc/sys` and `/sys` are not read-only in a system container: the
/// kernel gives the sysctls and sysfs files of the container's own
/// namespaces (`net.*`, the IPC ones, its network devices) to its root and
/// keeps every other one host root's (`EACCES`), so the engine's read-only
/// mounts add nothing but `EROFS` for the container's own settings — and a
/// read-only `/sys` makes the kernel refuse any writable sysfs inside (an
/// inner `--privileged` container). The debug file systems are masked (see
/// [`MASKED_DEBUG_FS`]).
fn open_proc_sys(root: &mut Map<String, Value>) -> Result<(), WorkloadError> {
    if let Some(mounts) = root.get_mut("mounts").and_then(Value::as_array_mut) {
        for m in mounts.iter_mut() {
            let sysfs = m.get("type").and_then(Value::as_str) == Some("sysfs")
                && m.get("destination").and_then(Value::as_str) == Some("/sys");
            if sysfs {
                if let Some(opts) = m.get_mut("options").and_then(Value::as_array_mut) {
                    opts.retain(|o| o != "ro");
                }
            }
        }
    }
    let Some(linux) = root.get_mut("linux").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    if let Some(ro) = linux.get_mut("readonlyPaths").and_then(Value::as_array_mut) {
        ro.retain(|p| p.as_str() != Some("/proc/sys"));
    }
    let masked = linux.entry("maskedPaths").or_insert_with(|| json!([]));
    let masked = masked
        .as_array_mut()
        .ok_or_else(|| WorkloadError::Shape("\"linux.maskedPaths\" is not an array".into()))?;
    for p in MASKED_DEBUG_FS {
        if Path::new(p).is_dir() && !masked.iter().any(|m| m.as_str() == Some(p)) {
            masked.push(json!(p));
        }
    }
    Ok(())
}

/// Add the mounts and environment described in the module docs.
pub fn apply(
    root: &mut Map<String, Value>,
    inner: &[(String, PathBuf)],
) -> Result<(), WorkloadError> {
    let init = runs_init(root);
    open_proc_sys(root)?;
    let mounts = root.entry("mounts").or_insert_with(|| json!([]));
    let mounts = mounts
        .as_array_mut()
        .ok_or_else(|| WorkloadError::Shape("\"mounts\" is not an array".into()))?;
    for (dest, src) in inner {
        if !mounted(mounts, dest) {
            mounts.push(json!({
                "destination": dest,
                "type": "bind",
                "source": src.to_string_lossy(),
                "options": ["rbind", "rprivate"],
            }));
        }
    }
    if init {
        let tmpfs = [
            json!({"destination": "/run", "type": "tmpfs", "source": "tmpfs",
                   "options": ["nosuid", "nodev", "mode=755", "size=65536k"]}),
            json!({"destination": "/run/lock", "type": "tmpfs", "source": "tmpfs",
                   "options": ["nosuid", "nodev", "noexec", "size=5120k"]}),
        ];
        for t in tmpfs {
            let dest = t["destination"].as_str().unwrap_or_default().to_string();
            if mounted(mounts, &dest) {
                continue;
            }
            // Right after the mount of its parent if the spec has one, and
            // before anything the spec mounts below it (a socket given with
            // -v under /run), which the tmpfs would hide.
            let parent = Path::new(&dest)
                .parent()
                .and_then(Path::to_str)
                .unwrap_or("/");
            let after_parent = mounts
                .iter()
                .rposition(|m| m.get("destination").and_then(Value::as_str) == Some(parent))
                .map(|i| i + 1);
            let below = mounts.iter().position(|m| {
                m.get("destination")
                    .and_then(Value::as_str)
                    .is_some_and(|d| d.starts_with(&format!("{dest}/")))
            });
            let at = match (after_parent, below) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => a.or(b).unwrap_or(mounts.len()),
            };
            mounts.insert(at, t);
        }
        let process = root
            .entry("process")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .ok_or_else(|| WorkloadError::Shape("\"process\" is not an object".into()))?;
        let env = process.entry("env").or_insert_with(|| json!([]));
        let env = env
            .as_array_mut()
            .ok_or_else(|| WorkloadError::Shape("\"process.env\" is not an array".into()))?;
        if !env
            .iter()
            .any(|e| e.as_str().is_some_and(|e| e.starts_with("container=")))
        {
            env.push(Value::String(CONTAINER_ENV.into()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(args: &[&str], mounts: Value) -> Map<String, Value> {
        json!({"process": {"args": args, "env": ["PATH=/bin"]}, "mounts": mounts})
            .as_object()
            .unwrap()
            .clone()
    }

    fn dests(root: &Map<String, Value>) -> Vec<String> {
        root["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["destination"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn systemd_is_found_through_the_init_symlink() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        std::fs::create_dir_all(r.join("lib/systemd")).unwrap();
        std::fs::create_dir_all(r.join("sbin")).unwrap();
        std::fs::write(r.join("lib/systemd/systemd"), b"").unwrap();
        std::os::unix::fs::symlink("/lib/systemd/systemd", r.join("sbin/init")).unwrap();
        assert!(init_is_systemd(&spec(&["/sbin/init"], json!([])), r));
        assert!(init_is_systemd(&spec(&["init"], json!([])), r));
        assert!(!init_is_systemd(&spec(&["sh"], json!([])), r));
        // busybox's init is not systemd.
        std::fs::remove_file(r.join("sbin/init")).unwrap();
        std::fs::write(r.join("sbin/busybox"), b"").unwrap();
        std::os::unix::fs::symlink("busybox", r.join("sbin/init")).unwrap();
        assert!(!init_is_systemd(&spec(&["/sbin/init"], json!([])), r));
        // A symlink loop ends.
        std::fs::remove_file(r.join("sbin/init")).unwrap();
        std::os::unix::fs::symlink("/sbin/init", r.join("sbin/init")).unwrap();
        assert!(!init_is_systemd(&spec(&["/sbin/init"], json!([])), r));
    }

    #[test]
    fn proc_sys_and_sys_are_left_to_the_kernel() {
        let text = include_str!("testdata/docker-config.orig.json");
        let mut root: Map<String, Value> = serde_json::from_str(text).unwrap();
        let ro = |r: &Map<String, Value>| -> Vec<String> {
            r["linux"]["readonlyPaths"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect()
        };
        let sys_opts = |r: &Map<String, Value>| -> Vec<String> {
            r["mounts"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["destination"] == "/sys")
                .map(|m| {
                    m["options"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|o| o.as_str().unwrap().to_string())
                        .collect()
                })
                .unwrap()
        };
        assert!(ro(&root).iter().any(|p| p == "/proc/sys"));
        assert!(sys_opts(&root).iter().any(|o| o == "ro"));
        apply(&mut root, &[]).unwrap();
        let once = serde_json::to_string(&root).unwrap();
        assert!(!ro(&root).iter().any(|p| p == "/proc/sys"));
        assert!(ro(&root).iter().any(|p| p == "/proc/bus"), "others stay");
        assert!(!sys_opts(&root).iter().any(|o| o == "ro"));
        assert!(sys_opts(&root).iter().any(|o| o == "nosuid"));
        for p in MASKED_DEBUG_FS {
            let masked = root["linux"]["maskedPaths"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m == p);
            assert_eq!(masked, std::path::Path::new(p).is_dir(), "{p}");
        }
        apply(&mut root, &[]).unwrap();
        assert_eq!(
            serde_json::to_string(&root).unwrap(),
            once,
            "not idempotent"
        );
    }

    #[test]
    fn sigterm_becomes_systemds_stop_signal() {
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(systemd_kill_signal(&a(&["id", "15"])), Some((1, "37")));
        assert_eq!(systemd_kill_signal(&a(&["id", "SIGTERM"])), Some((1, "37")));
        assert_eq!(
            systemd_kill_signal(&a(&["--all", "id", "TERM"])),
            Some((2, "37"))
        );
        assert_eq!(systemd_kill_signal(&a(&["id"])), Some((1, "37")));
        assert_eq!(systemd_kill_signal(&a(&["id", "9"])), None);
        assert_eq!(systemd_kill_signal(&a(&["id", "KILL"])), None);
        assert_eq!(systemd_kill_signal(&a(&[])), None);
    }

    #[test]
    fn inits_are_recognised() {
        for (a, want) in [
            ("/sbin/init", true),
            ("/lib/systemd/systemd", true),
            ("init", true),
            ("sh", false),
            ("/bin/initramfs", false),
        ] {
            assert_eq!(runs_init(&spec(&[a], json!([]))), want, "{a}");
        }
        assert!(!runs_init(&Map::new()));
    }

    #[test]
    fn an_init_gets_run_tmpfs_before_binds_below_it_and_the_container_variable() {
        let inner = vec![(
            "/var/lib/docker".to_string(),
            PathBuf::from("/d/inner/docker"),
        )];
        let mut c = spec(
            &["/sbin/init"],
            json!([{"destination": "/proc", "type": "proc"}, {"destination": "/run/app.sock", "type": "bind", "source": "/x"}]),
        );
        apply(&mut c, &inner).unwrap();
        assert_eq!(
            dests(&c),
            [
                "/proc",
                "/run",
                "/run/lock",
                "/run/app.sock",
                "/var/lib/docker"
            ]
        );
        assert!(c["process"]["env"]
            .as_array()
            .unwrap()
            .contains(&json!(CONTAINER_ENV)));
        // Again: nothing added twice.
        let before = c.clone();
        apply(&mut c, &inner).unwrap();
        assert_eq!(c, before);
    }

    #[test]
    fn a_plain_command_gets_only_the_inner_dirs_and_user_mounts_win() {
        let inner = vec![
            (
                "/var/lib/docker".to_string(),
                PathBuf::from("/d/inner/docker"),
            ),
            (
                "/var/lib/containerd".to_string(),
                PathBuf::from("/d/inner/containerd"),
            ),
        ];
        let mut c = spec(
            &["sh"],
            json!([{"destination": "/var/lib/docker/", "type": "bind", "source": "/mine"}]),
        );
        apply(&mut c, &inner).unwrap();
        assert_eq!(dests(&c), ["/var/lib/docker/", "/var/lib/containerd"]);
        assert_eq!(c["process"]["env"], json!(["PATH=/bin"]));
        // An init that sets its own `container` keeps it.
        let mut c = spec(&["/sbin/init"], json!([]));
        c["process"]["env"] = json!(["container=docker"]);
        apply(&mut c, &[]).unwrap();
        assert_eq!(c["process"]["env"], json!(["container=docker"]));
    }

    #[test]
    fn inner_dirs_belong_to_the_container_root_and_survive() {
        if !crate::testutil::root_or_skip("the inner directories test") {
            return;
        }
        use std::os::unix::fs::MetadataExt;
        let t = tempfile::tempdir().unwrap();
        let ids = Ids {
            uid: 300_000,
            gid: 300_001,
            size: 65536,
        };
        let d = prepare_dirs(t.path(), ids).unwrap();
        assert_eq!(d.len(), 2);
        let md = std::fs::metadata(&d[0].1).unwrap();
        assert_eq!(
            (md.uid(), md.gid(), md.mode() & 0o777),
            (300_000, 300_001, 0o710)
        );
        std::fs::write(d[0].1.join("state"), b"x").unwrap();
        prepare_dirs(t.path(), ids).unwrap();
        assert!(d[0].1.join("state").exists());
    }
}
