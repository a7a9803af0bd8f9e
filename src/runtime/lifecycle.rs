//! `create`/`run` and `delete` as syscont sees them: the order of the
//! steps that turn a bundle into a system container, and their undoing.
//!
//! create: check the spec (refusals change nothing) → take the store lock
//! → free containers that are gone → the container's id range → its
//! ID-mapped rootfs and bind mounts → the spec edits (user and cgroup
//! namespaces, mappings, capabilities, seccomp) → cgroup delegation →
//! `config.json` written. A failure after the mounts undoes them.
//!
//! delete: the container's mounts are undone (its directory and range
//! stay for the next create; see [`crate::runtime::store`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::kernel::mountinfo;
use crate::runtime::cgroups::{self, CgroupsError};
use crate::runtime::config::{self, ConfigError};
use crate::runtime::idrange::IdRangeError;
use crate::runtime::intercept::InterceptProfile;
use crate::runtime::rootfs::{self, Bind, RootfsError};
use crate::runtime::seccomp::Merged;
use crate::runtime::store::{Store, StoreError};
use crate::runtime::system::{self, Ids, SystemError};
use crate::runtime::workload;

/// Annotation holding the original sources of the bind mounts syscont
/// replaced, by index (JSON object).
pub const ANN_BINDS: &str = "org.syscont.binds";

/// Where the pool's subordinate id files are.
pub const SUBUID: &str = "/etc/subuid";
pub const SUBGID: &str = "/etc/subgid";

/// Errors of turning a bundle into a system container.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    System(#[from] SystemError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ids(#[from] IdRangeError),
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    #[error(transparent)]
    Cgroups(#[from] CgroupsError),
    #[error(transparent)]
    Workload(#[from] crate::runtime::workload::WorkloadError),
    #[error("no container id on the command line")]
    NoId,
    #[error("config.json has no root.path")]
    NoRoot,
    #[error("cannot read the host's capabilities: {0}")]
    Caps(std::io::Error),
    #[error("cannot read the mount table: {0}")]
    Mounts(crate::kernel::KernelError),
}

/// What `create` needs beyond the bundle.
pub struct CreateArgs<'a> {
    pub id: Option<&'a str>,
    pub bundle: &'a Path,
    pub data_dir: &'a Path,
    pub ids: u32,
    /// The intercept profile; `None`: no supervisor (isolation only).
    pub profile: Option<&'a InterceptProfile>,
    pub listener: &'a Path,
    pub subuid: &'a Path,
    pub subgid: &'a Path,
}

/// The outcome of a create, for the log.
#[derive(Debug)]
pub struct Created {
    pub ids: Ids,
    pub root: PathBuf,
    pub merged: Option<Merged>,
    pub copied_rootfs: bool,
    pub mapped_binds: usize,
}

fn is_bind(m: &Value) -> bool {
    m.get("type").and_then(Value::as_str) == Some("bind")
        || m.get("options")
            .and_then(Value::as_array)
            .is_some_and(|o| o.iter().any(|x| x == "bind" || x == "rbind"))
}

/// The bind mounts to ID-map: host files and directories outside the
/// kernel's own trees.
fn binds(root: &serde_json::Map<String, Value>, originals: &BTreeMap<String, String>) -> Vec<Bind> {
    let Some(mounts) = root.get("mounts").and_then(Value::as_array) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (index, m) in mounts.iter().enumerate() {
        if !is_bind(m) {
            continue;
        }
        let source = originals
            .get(&index.to_string())
            .map(String::as_str)
            .or_else(|| m.get("source").and_then(Value::as_str));
        let Some(source) = source.filter(|s| s.starts_with('/')) else {
            continue;
        };
        let p = Path::new(source);
        if ["/proc", "/sys", "/dev"].iter().any(|k| p.starts_with(k)) {
            continue;
        }
        let recursive = m
            .get("options")
            .and_then(Value::as_array)
            .is_some_and(|o| o.iter().any(|x| x == "rbind"));
        out.push(Bind {
            index,
            source: p.to_path_buf(),
            recursive,
        });
    }
    out
}

/// Turn the bundle into a system container's (see the module docs).
pub fn create(a: &CreateArgs) -> Result<Created, LifecycleError> {
    let id = a.id.ok_or(LifecycleError::NoId)?;
    let mut cfg = config::load(a.bundle)?;
    system::check(cfg.root())?;
    let caps = system::host_capabilities().map_err(LifecycleError::Caps)?;
    let store = Store::new(a.data_dir);
    store.dir(id)?;
    let lock = store.lock()?;
    let pool = store.pool(a.ids, a.subuid, a.subgid)?;
    store.reap_locked(&lock, Some(&pool));
    let alloc = pool.allocate(id, a.bundle, |k, al| store.alive(k, Some(al)))?;
    let ids = Ids {
        uid: alloc.uid,
        gid: alloc.gid,
        size: alloc.size,
    };
    let root = cfg.root();
    let orig_root = system::original_root(root).ok_or(LifecycleError::NoRoot)?;
    let engine_root = {
        let p = Path::new(&orig_root);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            a.bundle.join(p)
        }
    };
    let originals: BTreeMap<String, String> = root
        .get("annotations")
        .and_then(|x| x.get(ANN_BINDS))
        .and_then(Value::as_str)
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default();
    let wanted = binds(root, &originals);
    let prepared = rootfs::prepare(&store, id, a.bundle, &engine_root, &wanted, ids)?;
    let finish = (|| -> Result<Created, LifecycleError> {
        let inner = workload::prepare_dirs(&store.dir(id)?, ids)?;
        if workload::init_is_systemd(cfg.root(), &prepared.root) {
            if let Some(mut r) = store.load(id)? {
                r.systemd = true;
                store.save(&r)?;
            }
        }
        let root = cfg.root();
        system::apply(root, ids, &caps, &orig_root)?;
        workload::apply(root, &inner)?;
        let rootobj = root
            .entry("root")
            .or_insert_with(|| serde_json::json!({}))
            .as_object_mut()
            .ok_or(LifecycleError::NoRoot)?;
        rootobj.insert(
            "path".into(),
            Value::String(prepared.root.to_string_lossy().into_owned()),
        );
        let mut originals = originals.clone();
        if let Some(mounts) = root.get_mut("mounts").and_then(Value::as_array_mut) {
            for (index, src) in &prepared.binds {
                if let Some(m) = mounts.get_mut(*index).and_then(Value::as_object_mut) {
                    if let Some(old) = m.get("source").and_then(Value::as_str) {
                        originals
                            .entry(index.to_string())
                            .or_insert_with(|| old.to_string());
                    }
                    m.insert(
                        "source".into(),
                        Value::String(src.to_string_lossy().into_owned()),
                    );
                }
            }
        }
        if !originals.is_empty() {
            let text = serde_json::to_string(&originals).unwrap_or_default();
            if let Some(ann) = root.get_mut("annotations").and_then(Value::as_object_mut) {
                ann.insert(ANN_BINDS.into(), Value::String(text));
            }
        }
        let cgroups_path = root
            .get("linux")
            .and_then(|l| l.get("cgroupsPath"))
            .and_then(Value::as_str)
            .map(str::to_string);
        cfg.open_system_syscalls()?;
        let merged = match a.profile {
            Some(p) => Some(cfg.merge_seccomp(p, a.listener)?),
            None => None,
        };
        cfg.close_system_syscalls()?;
        if let Some(cp) = cgroups_path {
            let mounts = mountinfo::read_self().map_err(LifecycleError::Mounts)?;
            let dirs = cgroups::directories(&mounts, &cp)?;
            if dirs.is_empty() {
                tracing::warn!(container = %id, cgroups_path = %cp, "cgroups not delegated (a systemd-managed path)");
            }
            cgroups::delegate(&dirs, ids.uid, ids.gid)?;
        }
        cfg.store()?;
        Ok(Created {
            ids,
            root: prepared.root.clone(),
            merged,
            copied_rootfs: prepared.copied_rootfs,
            mapped_binds: prepared.binds.len(),
        })
    })();
    if finish.is_err() {
        if let Err(e) = store.teardown(id) {
            tracing::warn!(container = %id, error = %e, "cannot undo the mounts of a failed create");
        }
    }
    finish
}

/// The engine's `kill` of a systemd container: SIGTERM becomes systemd's
/// stop signal (see [`workload::systemd_kill_signal`]). `sub_args` are the
/// arguments after `kill`; returns them changed, or `None`.
pub fn kill_args(data_dir: &Path, id: &str, sub_args: &[String]) -> Option<Vec<String>> {
    let store = Store::new(data_dir);
    let systemd = store.load(id).ok().flatten().is_some_and(|r| r.systemd);
    if !systemd {
        return None;
    }
    let (i, sig) = workload::systemd_kill_signal(sub_args)?;
    let mut out = sub_args.to_vec();
    if i == out.len() {
        out.push(sig.to_string());
    } else {
        out[i] = sig.to_string();
    }
    Some(out)
}

/// The engine's `delete`: undo the container's mounts, keep the rest.
pub fn delete(data_dir: &Path, id: &str) -> Result<(), LifecycleError> {
    let store = Store::new(data_dir);
    if !store.dir(id)?.exists() {
        return Ok(());
    }
    let _lock = store.lock()?;
    store.teardown(id)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn binds_skip_kernel_trees_and_use_originals() {
        let spec = json!({"mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/etc/hosts", "type": "bind", "source": "/var/lib/docker/containers/x/hosts", "options": ["rbind", "rprivate"]},
            {"destination": "/dev/fuse", "type": "bind", "source": "/dev/fuse", "options": ["bind"]},
            {"destination": "/data", "source": "/srv/data", "options": ["bind"]},
            {"destination": "/rel", "type": "bind", "source": "relative", "options": ["bind"]}
        ]});
        let root = spec.as_object().unwrap();
        let b = binds(root, &BTreeMap::new());
        assert_eq!(b.len(), 2);
        assert_eq!((b[0].index, b[0].recursive), (1, true));
        assert_eq!(
            (b[1].index, b[1].source.as_path(), b[1].recursive),
            (3, Path::new("/srv/data"), false)
        );
        let mut orig = BTreeMap::new();
        orig.insert("3".to_string(), "/srv/orig".to_string());
        assert_eq!(binds(root, &orig)[1].source, Path::new("/srv/orig"));
    }
}
