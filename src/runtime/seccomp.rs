//! The merge of syscont's NOTIFY rules into a container's `linux.seccomp`.
//!
//! This module owns the seccomp part of the rewrite, on `serde_json` values so
//! that every field it does not touch stays as it was, in its place:
//!
//! 1. An earlier syscont rewrite (recognised by a `listenerMetadata` that
//!    parses as [`ListenerMetadata`]) is undone first: the intercepted names
//!    are taken out of every rule and given back their remembered original
//!    actions as plain unconditional rules. Running `create` twice on one
//!    bundle therefore yields the same filter, never stacked NOTIFY rules,
//!    and a different intercept profile on the second run starts from the
//!    real original. (Only names whose original action was unconditional are
//!    ever intercepted, so the undo is exact in effect.)
//! 2. Each name of the intercept profile gets its original action: that of
//!    the first unconditional rule naming it, else the profile's
//!    `defaultAction`. `SCMP_ACT_ALLOW`/`SCMP_ACT_LOG` become
//!    [`OrigAction::Allow`], `SCMP_ACT_ERRNO` becomes [`OrigAction::Errno`]
//!    (`errnoRet`, default `EPERM`). A name with any other action, or named in
//!    a rule with `args`, is left alone and reported in [`Merged::skipped`].
//! 3. The intercepted names are removed from every other rule (a rule left
//!    without names is dropped): an earlier rule that allows `openat` would
//!    hide a later NOTIFY rule.
//! 4. The profile's NOTIFY rules go first, then its not-trapped (`ALLOW`)
//!    rules, each carrying the name's original action, then the container's
//!    own rules. `listenerPath` and `listenerMetadata` are set; `flags` and
//!    everything else are kept as they are.
//!
//! A config without `linux.seccomp` gets a section that allows everything
//! but the intercepted calls.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::{json, Map, Value};

use crate::agent_meta::{ListenerMetadata, OrigAction, METADATA_VERSION};
use crate::runtime::intercept::{InterceptProfile, RuleKind};

/// `EPERM`, what runc uses for `SCMP_ACT_ERRNO` without `errnoRet`.
const DEFAULT_ERRNO: u32 = 1;

/// Errors of the seccomp merge.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SeccompError {
    #[error("linux.seccomp is malformed: {0}")]
    Malformed(String),
    #[error(
        "linux.seccomp already sends notifications to another agent ({0}); syscont needs the seccomp listener for itself"
    )]
    ForeignListener(String),
}

/// A syscall of the intercept profile that is not intercepted, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub name: String,
    pub reason: String,
    /// Expected and harmless (not worth a warning).
    pub expected: bool,
}

/// What the merge did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged {
    /// The metadata written to `listenerMetadata` (empty `orig` when nothing
    /// could be intercepted, in which case no listener is set).
    pub metadata: ListenerMetadata,
    /// Names left alone, with the reason.
    pub skipped: Vec<Skipped>,
    /// Whether a section was created because the config had none.
    pub created: bool,
    /// Whether an earlier syscont rewrite was undone first.
    pub undone: bool,
}

/// The architectures of a created section: every ABI the host kernel runs.
pub fn host_architectures() -> Vec<&'static str> {
    match std::env::consts::ARCH {
        "x86_64" => vec!["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "x86" => vec!["SCMP_ARCH_X86"],
        "aarch64" => vec!["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
        "arm" => vec!["SCMP_ARCH_ARM"],
        "riscv64" => vec!["SCMP_ARCH_RISCV64"],
        "s390x" => vec!["SCMP_ARCH_S390X", "SCMP_ARCH_S390"],
        "powerpc64" => vec!["SCMP_ARCH_PPC64"],
        // An empty list means the native architecture to runc.
        _ => vec![],
    }
}

/// Map an OCI action (with its errno) to what the supervisor can reproduce.
fn orig_of(action: &str, errno: Option<&Value>) -> Result<Option<OrigAction>, SeccompError> {
    Ok(match action {
        "SCMP_ACT_ALLOW" | "SCMP_ACT_LOG" => Some(OrigAction::Allow),
        "SCMP_ACT_ERRNO" => {
            let errno = match errno {
                None | Some(Value::Null) => DEFAULT_ERRNO,
                Some(v) => v
                    .as_u64()
                    .and_then(|e| u32::try_from(e).ok())
                    .ok_or_else(|| {
                        SeccompError::Malformed(format!(
                            "errno value {v} is not a small unsigned integer"
                        ))
                    })?,
            };
            Some(OrigAction::Errno { errno })
        }
        _ => None,
    })
}

/// The rule as an action and its optional errno.
fn rule_action(rule: &Map<String, Value>) -> Result<(&str, Option<&Value>), SeccompError> {
    let action = rule
        .get("action")
        .and_then(Value::as_str)
        .ok_or_else(|| SeccompError::Malformed("a syscall rule has no \"action\" string".into()))?;
    Ok((action, rule.get("errnoRet")))
}

fn rule_has_args(rule: &Map<String, Value>) -> bool {
    match rule.get("args") {
        None | Some(Value::Null) => false,
        Some(Value::Array(a)) => !a.is_empty(),
        Some(_) => true,
    }
}

fn rule_names(rule: &Map<String, Value>) -> Result<Vec<&str>, SeccompError> {
    match rule.get("names") {
        None | Some(Value::Null) => Ok(vec![]),
        Some(Value::Array(a)) => a
            .iter()
            .map(|n| {
                n.as_str().ok_or_else(|| {
                    SeccompError::Malformed(format!("syscall name {n} is not a string"))
                })
            })
            .collect(),
        Some(v) => Err(SeccompError::Malformed(format!(
            "\"names\" is not an array: {v}"
        ))),
    }
}

/// The section's rules, checked to be objects.
fn rules_mut(section: &mut Map<String, Value>) -> Result<&mut Vec<Value>, SeccompError> {
    let syscalls = section
        .entry("syscalls")
        .or_insert_with(|| Value::Array(vec![]));
    if syscalls.is_null() {
        *syscalls = Value::Array(vec![]);
    }
    let rules = syscalls
        .as_array_mut()
        .ok_or_else(|| SeccompError::Malformed("\"syscalls\" is not an array".into()))?;
    for r in rules.iter() {
        let obj = r.as_object().ok_or_else(|| {
            SeccompError::Malformed(format!("a syscall rule is not an object: {r}"))
        })?;
        rule_names(obj)?;
        rule_action(obj)?;
    }
    Ok(rules)
}

/// The original action of calls that no rule names.
fn default_orig(section: &Map<String, Value>) -> Result<Option<OrigAction>, SeccompError> {
    let action = section
        .get("defaultAction")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            SeccompError::Malformed("\"defaultAction\" is missing or not a string".into())
        })?;
    orig_of(action, section.get("defaultErrnoRet"))
}

/// Remove `names` from every rule; drop rules left empty. Rules that had no
/// names to begin with are kept as they are.
fn remove_names(rules: &mut Vec<Value>, names: &BTreeSet<&str>) {
    rules.retain_mut(|r| {
        let Some(Value::Array(list)) = r.get_mut("names") else {
            return true;
        };
        if list.is_empty() {
            return true;
        }
        list.retain(|n| n.as_str().map_or(true, |n| !names.contains(n)));
        !list.is_empty()
    });
}

/// The OCI rule for an original action, without names.
fn action_rule(orig: OrigAction) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("names".into(), Value::Array(vec![]));
    match orig {
        OrigAction::Allow => {
            m.insert("action".into(), json!("SCMP_ACT_ALLOW"));
        }
        OrigAction::Errno { errno } => {
            m.insert("action".into(), json!("SCMP_ACT_ERRNO"));
            m.insert("errnoRet".into(), json!(errno));
        }
    }
    m
}

fn orig_key(o: OrigAction) -> (u8, u32) {
    match o {
        OrigAction::Allow => (0, 0),
        OrigAction::Errno { errno } => (1, errno),
    }
}

/// Rules of `names` grouped by original action, each built from `base`.
fn grouped_rules(
    names: &[&str],
    orig: &BTreeMap<String, OrigAction>,
    args: Option<&Value>,
) -> Vec<Value> {
    let mut groups: BTreeMap<(u8, u32), (OrigAction, Vec<&str>)> = BTreeMap::new();
    for n in names {
        if let Some(o) = orig.get(*n) {
            groups.entry(orig_key(*o)).or_insert((*o, vec![])).1.push(n);
        }
    }
    groups
        .into_values()
        .map(|(o, ns)| {
            let mut m = action_rule(o);
            m.insert("names".into(), json!(ns));
            if let Some(a) = args {
                m.insert("args".into(), a.clone());
            }
            Value::Object(m)
        })
        .collect()
}

/// Undo an earlier syscont rewrite described by `meta`.
fn undo(section: &mut Map<String, Value>, meta: &ListenerMetadata) -> Result<(), SeccompError> {
    let default = default_orig(section)?;
    let names: BTreeSet<&str> = meta.orig.keys().map(String::as_str).collect();
    let rules = rules_mut(section)?;
    remove_names(rules, &names);
    let back: Vec<&str> = meta
        .orig
        .iter()
        .filter(|(_, o)| Some(**o) != default)
        .map(|(n, _)| n.as_str())
        .collect();
    rules.extend(grouped_rules(&back, &meta.orig, None));
    section.remove("listenerPath");
    section.remove("listenerMetadata");
    Ok(())
}

/// Merge `profile` into `linux.seccomp` of the `linux` object.
pub fn merge(
    linux: &mut Map<String, Value>,
    profile: &InterceptProfile,
    listener_path: &Path,
) -> Result<Merged, SeccompError> {
    let created = match linux.get("seccomp") {
        None | Some(Value::Null) => {
            let mut s = Map::new();
            s.insert("defaultAction".into(), json!("SCMP_ACT_ALLOW"));
            s.insert("architectures".into(), json!(host_architectures()));
            s.insert("syscalls".into(), json!([]));
            linux.insert("seccomp".into(), Value::Object(s));
            true
        }
        Some(_) => false,
    };
    let section = linux
        .get_mut("seccomp")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| SeccompError::Malformed("it is not an object".into()))?;

    // 1. Undo an earlier rewrite.
    let previous = section
        .get("listenerMetadata")
        .and_then(Value::as_str)
        .and_then(|s| ListenerMetadata::parse(s).ok());
    let undone = match previous {
        Some(meta) => {
            undo(section, &meta)?;
            true
        }
        None => {
            if let Some(p) = section
                .get("listenerPath")
                .filter(|p| p.as_str().map_or(true, |s| !s.is_empty()))
            {
                return Err(SeccompError::ForeignListener(
                    p.as_str().map_or_else(|| p.to_string(), str::to_string),
                ));
            }
            false
        }
    };

    // 2. Original actions.
    let default = default_orig(section)?;
    let default_name = section
        .get("defaultAction")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let rules = rules_mut(section)?;
    // runc answers ENOSYS (not the default action) for syscalls newer than
    // every one the profile names, so that libc falls back to older calls.
    // Naming a newer syscall here would move that line and turn those
    // ENOSYS into the default errno.
    let newest = rules
        .iter()
        .filter_map(Value::as_object)
        .filter_map(|r| rule_names(r).ok())
        .flatten()
        .filter_map(x86_64_nr)
        .max();
    let mut orig = BTreeMap::new();
    let mut skipped = Vec::new();
    for name in profile.names() {
        let mut conditional = false;
        let mut first_uncond = None;
        for r in rules.iter().filter_map(Value::as_object) {
            if !rule_names(r)?.contains(&name) {
                continue;
            }
            if rule_has_args(r) {
                conditional = true;
            } else if first_uncond.is_none() {
                first_uncond = Some(rule_action(r)?);
            }
        }
        if conditional {
            skipped.push(Skipped {
                name: name.to_string(),
                reason: "the profile has rules with argument conditions for it".into(),
                expected: false,
            });
            continue;
        }
        let newer = match (x86_64_nr(name), newest) {
            (Some(nr), Some(max)) => nr > max,
            _ => false,
        };
        if first_uncond.is_none() && newer && default != Some(OrigAction::Allow) {
            skipped.push(Skipped {
                name: name.to_string(),
                reason: "newer than every syscall the profile names: the engine answers ENOSYS, as without syscont".into(),
                expected: true,
            });
            continue;
        }
        let o = match first_uncond {
            Some((action, errno)) => orig_of(action, errno)?.ok_or(action.to_string()),
            None => default.ok_or_else(|| format!("{default_name} (the default action)")),
        };
        match o {
            Ok(o) => {
                orig.insert(name.to_string(), o);
            }
            Err(action) => skipped.push(Skipped {
                name: name.to_string(),
                reason: format!(
                    "its action in the profile is {action}, which a notification cannot reproduce"
                ),
                expected: false,
            }),
        }
    }

    // 3. Take the intercepted names out of every other rule.
    let names: BTreeSet<&str> = orig.keys().map(String::as_str).collect();
    remove_names(rules, &names);

    // 4. syscont's rules first.
    let mut ours = Vec::new();
    let mut passes = Vec::new();
    for r in profile.rules() {
        let ns: Vec<&str> = r
            .names
            .iter()
            .map(String::as_str)
            .filter(|n| names.contains(n))
            .collect();
        if ns.is_empty() {
            continue;
        }
        let args = (!r.args.is_empty())
            .then(|| Value::Array(r.args.iter().map(|a| a.to_json()).collect()));
        match r.kind {
            RuleKind::Notify => {
                let mut m = Map::new();
                m.insert("names".into(), json!(ns));
                m.insert("action".into(), json!("SCMP_ACT_NOTIFY"));
                if let Some(a) = args {
                    m.insert("args".into(), a);
                }
                ours.push(Value::Object(m));
            }
            RuleKind::Pass => passes.extend(grouped_rules(&ns, &orig, args.as_ref())),
        }
    }
    ours.extend(passes);
    let theirs = std::mem::take(rules);
    *rules = ours;
    rules.extend(theirs);

    let metadata = ListenerMetadata {
        v: METADATA_VERSION,
        orig,
    };
    if !metadata.orig.is_empty() {
        section.insert(
            "listenerPath".into(),
            json!(listener_path.to_string_lossy()),
        );
        section.insert("listenerMetadata".into(), json!(metadata.to_json()));
    }
    Ok(Merged {
        metadata,
        skipped,
        created,
        undone,
    })
}

/// Syscalls a system container is denied whatever its profile says:
/// io_uring's operations create files and set extended attributes without
/// any syscall the filter sees, which would bypass the set-id policy on
/// shared mounts (Docker 25 and later deny them by default too).
pub const DENIED: [&str; 3] = ["io_uring_setup", "io_uring_enter", "io_uring_register"];

/// Syscalls a system container's root needs whatever its profile says,
/// because it runs systemd, an inner runtime and mounts: what Docker's
/// profile grants with `CAP_SYS_ADMIN` for namespaces and mounts, plus the
/// keyring calls (runc joins a session keyring) and `clone` with namespace
/// flags. (`reboot` stays denied: systemd then ends a container's
/// shutdown by exiting with status 0, which is what `docker stop` should
/// report.) The kernel checks each against the container's own user
/// namespace; `mount`, `umount` and `umount2` are also trapped by the
/// supervisor (the protected mounts, `seccomp-profiles/intercept.json`).
pub const SYSTEM_GRANTED: [&str; 15] = [
    "mount",
    "umount",
    "umount2",
    "unshare",
    "setns",
    "pivot_root",
    "clone",
    "keyctl",
    "add_key",
    "request_key",
    "sethostname",
    "setdomainname",
    "name_to_handle_at",
    "chroot",
    "syncfs",
];

/// The new mount API answers `ENOSYS` in a system container: its calls act
/// on mounts through fds, past the supervisor's checks of `mount(2)` and
/// `umount2(2)`, and every user of it (systemd, util-linux, runc) falls
/// back to `mount(2)` on `ENOSYS`.
pub const SYSTEM_ENOSYS: [&str; 7] = [
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
];

/// Deny `names` with `EPERM` (see [`set_action`]).
pub fn deny(linux: &mut Map<String, Value>, names: &[&str]) -> Result<(), SeccompError> {
    refuse_with(linux, names, libc::EPERM)
}

/// Answer `names` with `errno` (see [`set_action`]).
pub fn refuse_with(
    linux: &mut Map<String, Value>,
    names: &[&str],
    errno: i32,
) -> Result<(), SeccompError> {
    set_action(
        linux,
        names,
        json!({"action": "SCMP_ACT_ERRNO", "errnoRet": errno}),
    )
}

/// Allow `names` unconditionally (see [`set_action`]).
pub fn grant(linux: &mut Map<String, Value>, names: &[&str]) -> Result<(), SeccompError> {
    set_action(linux, names, json!({"action": "SCMP_ACT_ALLOW"}))
}

/// Give `names` one action: they are taken out of every rule (conditional
/// ones too), and one rule for them with `action` (an object with
/// `action` and maybe `errnoRet`) is placed first. A spec without a seccomp
/// section is left as it is (everything is allowed there; the caller
/// writes one when it intercepts). Applying it twice gives the same rules.
fn set_action(
    linux: &mut Map<String, Value>,
    names: &[&str],
    action: Value,
) -> Result<(), SeccompError> {
    let Some(section) = linux.get_mut("seccomp").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    let rules = rules_mut(section)?;
    let set: BTreeSet<&str> = names.iter().copied().collect();
    remove_names(rules, &set);
    let mut rule = Map::new();
    rule.insert("names".into(), json!(names));
    if let Value::Object(a) = action {
        rule.extend(a);
    }
    rules.insert(0, Value::Object(rule));
    Ok(())
}

/// The x86_64 number of a syscall name, if libseccomp knows it.
fn x86_64_nr(name: &str) -> Option<i32> {
    libseccomp::ScmpSyscall::from_name_by_arch(name, libseccomp::ScmpArch::X8664)
        .ok()
        .map(i32::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::intercept::InterceptProfile;

    const DOCKER: &str = include_str!("testdata/docker-config.orig.json");
    const SOCK: &str = "/run/syscont/agent.sock";
    /// The names the built-in profile intercepts (the list itself is pinned
    /// by the intercept module's tests).
    fn intercepted() -> Vec<String> {
        builtin().names().into_iter().map(String::from).collect()
    }
    /// NOTIFY and not-trapped rules of the built-in profile.
    const NOTIFY_RULES: usize = 16;
    const PASS_RULES: usize = 13;

    fn docker_linux() -> Map<String, Value> {
        let v: Value = serde_json::from_str(DOCKER).unwrap();
        v["linux"].as_object().unwrap().clone()
    }

    fn builtin() -> InterceptProfile {
        InterceptProfile::builtin().unwrap()
    }

    fn rules(linux: &Map<String, Value>) -> &Vec<Value> {
        linux["seccomp"]["syscalls"].as_array().unwrap()
    }

    fn names_of(r: &Value) -> Vec<&str> {
        r["names"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap())
            .collect()
    }

    fn profile(text: &str) -> InterceptProfile {
        InterceptProfile::parse(text, "test").unwrap()
    }

    #[test]
    fn docker_profile_merge() {
        let mut linux = docker_linux();
        let before = rules(&linux).len();
        let m = merge(&mut linux, &builtin(), Path::new(SOCK)).unwrap();
        assert!(!m.created && !m.undone);
        // This Docker's profile predates fchmodat2: runc answers it ENOSYS,
        // and it is left alone. setxattrat is unknown to this libseccomp:
        // the profile's default (EPERM) is its original action.
        let skipped: Vec<&str> = m.skipped.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(skipped, ["fchmodat2"], "{:?}", m.skipped);
        for n in intercepted() {
            let n = n.as_str();
            let want = match n {
                "fchmodat2" => None,
                // Not granted by Docker's profile without CAP_SYS_ADMIN
                // (a system container grants them first, see
                // `system_calls_are_granted_whatever_the_conditions`).
                "setxattrat" | "mount" | "umount" | "umount2" => {
                    Some(OrigAction::Errno { errno: 1 })
                }
                _ => Some(OrigAction::Allow),
            };
            assert_eq!(m.metadata.orig_action(n), want, "{n}");
        }
        let rs = rules(&linux);
        // NOTIFY rules first, then the pass rules, then Docker's (none emptied).
        let notify: Vec<_> = rs
            .iter()
            .take_while(|r| r["action"] == "SCMP_ACT_NOTIFY")
            .collect();
        assert_eq!(notify.len(), NOTIFY_RULES);
        assert_eq!(names_of(notify[0]), ["openat2", "sysinfo"]);
        let ours = NOTIFY_RULES + PASS_RULES;
        let passes: Vec<_> = rs[NOTIFY_RULES..]
            .iter()
            .take_while(|r| r.get("args").is_some())
            .collect();
        assert_eq!(passes.len(), PASS_RULES);
        // Each carries its name's original action: mount's is Docker's
        // EPERM here.
        for r in &passes {
            let want = if names_of(r) == ["mount"] {
                "SCMP_ACT_ERRNO"
            } else {
                "SCMP_ACT_ALLOW"
            };
            assert_eq!(r["action"], want, "{r}");
        }
        assert_eq!(rs.len(), before + ours);
        // The names are gone from every rule of Docker's.
        let names = intercepted();
        for r in &rs[ours..] {
            for n in names_of(r) {
                assert!(!names.iter().any(|o| o == n), "{n} left in {r}");
            }
        }
        let s = &linux["seccomp"];
        assert_eq!(s["listenerPath"], SOCK);
        let meta = ListenerMetadata::parse(s["listenerMetadata"].as_str().unwrap()).unwrap();
        assert_eq!(meta, m.metadata);
        assert!(s.get("flags").is_none());
        // NOTIFY is never the default action.
        assert_eq!(s["defaultAction"], "SCMP_ACT_ERRNO");
    }

    #[test]
    fn denied_names_keep_their_errno() {
        // mount/umount2 are in no rule of Docker's profile: default ERRNO (EPERM).
        let p = profile(
            r#"{"syscalls":[{"names":["mount","umount2","clone3"],"action":"SCMP_ACT_NOTIFY"}]}"#,
        );
        let mut linux = docker_linux();
        let m = merge(&mut linux, &p, Path::new(SOCK)).unwrap();
        assert_eq!(
            m.metadata.orig_action("mount"),
            Some(OrigAction::Errno { errno: 1 })
        );
        assert_eq!(
            m.metadata.orig_action("umount2"),
            Some(OrigAction::Errno { errno: 1 })
        );
        // clone3 has its own ERRNO rule with errnoRet 38 (ENOSYS), which is emptied and dropped.
        assert_eq!(
            m.metadata.orig_action("clone3"),
            Some(OrigAction::Errno { errno: 38 })
        );
        assert!(rules(&linux)[1..]
            .iter()
            .all(|r| !names_of(r).contains(&"clone3")));
    }

    #[test]
    fn system_calls_are_granted_whatever_the_conditions() {
        let mut linux = docker_linux();
        let before = serde_json::to_string(&linux).unwrap();
        assert!(
            before.contains("\"clone\""),
            "Docker's profile restricts clone"
        );
        grant(&mut linux, &SYSTEM_GRANTED).unwrap();
        refuse_with(&mut linux, &SYSTEM_ENOSYS, libc::ENOSYS).unwrap();
        let once = serde_json::to_string(&linux).unwrap();
        grant(&mut linux, &SYSTEM_GRANTED).unwrap();
        refuse_with(&mut linux, &SYSTEM_ENOSYS, libc::ENOSYS).unwrap();
        assert_eq!(
            serde_json::to_string(&linux).unwrap(),
            once,
            "not idempotent"
        );
        let rs = rules(&linux);
        assert_eq!(rs[0]["errnoRet"], json!(libc::ENOSYS));
        assert_eq!(names_of(&rs[0]), SYSTEM_ENOSYS);
        assert_eq!(rs[1]["action"], "SCMP_ACT_ALLOW");
        assert!(rs[1].get("args").is_none());
        assert_eq!(names_of(&rs[1]), SYSTEM_GRANTED);
        for r in &rs[2..] {
            for n in names_of(r) {
                assert!(
                    !SYSTEM_GRANTED.contains(&n) && !SYSTEM_ENOSYS.contains(&n),
                    "{n} still in {r}"
                );
            }
        }
        // Then the merge intercepts mount and umount2 with Allow as their
        // original action.
        let m = merge(&mut linux, &builtin(), Path::new(SOCK)).unwrap();
        for n in ["mount", "umount2"] {
            assert_eq!(m.metadata.orig_action(n), Some(OrigAction::Allow), "{n}");
        }
    }

    #[test]
    fn io_uring_is_denied() {
        let mut linux = docker_linux();
        deny(&mut linux, &DENIED).unwrap();
        let rs = rules(&linux);
        assert_eq!(rs[0]["action"], "SCMP_ACT_ERRNO");
        assert_eq!(names_of(&rs[0]), DENIED);
        for r in &rs[1..] {
            for n in names_of(r) {
                assert!(!DENIED.contains(&n), "{n} still in {r}");
            }
        }
        let mut none = Map::new();
        deny(&mut none, &DENIED).unwrap();
        assert!(none.is_empty());
    }

    #[test]
    fn syscalls_newer_than_the_profile_keep_the_engines_enosys() {
        // fchmodat2 (452) is newer than anything this profile names.
        let p =
            profile(r#"{"syscalls":[{"names":["fchmodat2","chmod"],"action":"SCMP_ACT_NOTIFY"}]}"#);
        let mut linux = Map::new();
        linux.insert(
            "seccomp".into(),
            json!({"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["chmod","read","openat2"],"action":"SCMP_ACT_ALLOW"}]}),
        );
        let m = merge(&mut linux, &p, Path::new(SOCK)).unwrap();
        assert_eq!(m.metadata.orig_action("chmod"), Some(OrigAction::Allow));
        assert_eq!(m.metadata.orig_action("fchmodat2"), None);
        assert!(m
            .skipped
            .iter()
            .any(|s| s.name == "fchmodat2" && s.reason.contains("ENOSYS")));
        let text = serde_json::to_string(&linux).unwrap();
        assert!(!text.contains("fchmodat2"), "{text}");
        // A profile that names it (or allows by default) gets it intercepted.
        let mut linux = Map::new();
        linux.insert(
            "seccomp".into(),
            json!({"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["chmod","fchmodat2"],"action":"SCMP_ACT_ALLOW"}]}),
        );
        let m = merge(&mut linux, &p, Path::new(SOCK)).unwrap();
        assert_eq!(m.metadata.orig_action("fchmodat2"), Some(OrigAction::Allow));
    }

    #[test]
    fn pass_rules_carry_the_original_errno() {
        let p = profile(
            r#"{"syscalls":[
            {"names":["open"],"action":"SCMP_ACT_NOTIFY","args":[{"index":1,"value":65536,"valueTwo":0,"op":"SCMP_CMP_MASKED_EQ"}]},
            {"names":["open"],"action":"SCMP_ACT_ALLOW","args":[{"index":1,"value":65536,"valueTwo":65536,"op":"SCMP_CMP_MASKED_EQ"}]}]}"#,
        );
        let mut linux = Map::new();
        linux.insert(
            "seccomp".into(),
            json!({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["open","read"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}),
        );
        let m = merge(&mut linux, &p, Path::new(SOCK)).unwrap();
        assert_eq!(
            m.metadata.orig_action("open"),
            Some(OrigAction::Errno { errno: 13 })
        );
        let rs = rules(&linux);
        assert_eq!(rs[1]["action"], "SCMP_ACT_ERRNO");
        assert_eq!(rs[1]["errnoRet"], 13);
        assert_eq!(rs[1]["args"][0]["valueTwo"], 65536);
        assert_eq!(names_of(&rs[2]), ["read"]);
    }

    #[test]
    fn unreproducible_or_conditional_names_are_left_alone() {
        let mut linux = Map::new();
        let sec = json!({"defaultAction":"SCMP_ACT_KILL_PROCESS","syscalls":[
            {"names":["sysinfo","read"],"action":"SCMP_ACT_TRAP"},
            {"names":["lseek"],"action":"SCMP_ACT_ALLOW","args":[{"index":2,"value":1,"op":"SCMP_CMP_EQ"}]},
            {"names":["openat"],"action":"SCMP_ACT_LOG"}]});
        linux.insert("seccomp".into(), sec.clone());
        let m = merge(&mut linux, &builtin(), Path::new(SOCK)).unwrap();
        let skipped: Vec<&str> = m.skipped.iter().map(|s| s.name.as_str()).collect();
        // Every name but openat, lseek and sysinfo: default KILL_PROCESS;
        // sysinfo: TRAP; lseek: conditional.
        let names = intercepted();
        let mut want: Vec<&str> = names.iter().map(String::as_str).collect();
        want.retain(|n| *n != "openat");
        assert_eq!(skipped, want);
        assert_eq!(m.metadata.orig.keys().collect::<Vec<_>>(), ["openat"]);
        let rs = rules(&linux);
        // The TRAP and conditional rules are untouched.
        assert_eq!(rs[rs.len() - 2], sec["syscalls"][0]);
        assert_eq!(rs[rs.len() - 1], sec["syscalls"][1]);
        // The LOG rule for openat was emptied and dropped; openat has three
        // NOTIFY and three not-trapped rules.
        assert_eq!(rs.len(), 6 + 2);
        assert!(m.skipped.iter().any(|s| s.reason.contains("SCMP_ACT_TRAP")));
    }

    #[test]
    fn nothing_interceptable_sets_no_listener() {
        let mut linux = Map::new();
        linux.insert(
            "seccomp".into(),
            json!({"defaultAction":"SCMP_ACT_KILL","syscalls":[]}),
        );
        let m = merge(&mut linux, &builtin(), Path::new(SOCK)).unwrap();
        assert!(m.metadata.orig.is_empty());
        assert!(linux["seccomp"].get("listenerPath").is_none());
        assert_eq!(rules(&linux).len(), 0);
    }

    #[test]
    fn no_section_creates_one() {
        let mut linux = Map::new();
        linux.insert("namespaces".into(), json!([]));
        let m = merge(&mut linux, &builtin(), Path::new(SOCK)).unwrap();
        assert!(m.created);
        let s = linux["seccomp"].as_object().unwrap();
        assert_eq!(
            s.keys().collect::<Vec<_>>(),
            [
                "defaultAction",
                "architectures",
                "syscalls",
                "listenerPath",
                "listenerMetadata"
            ]
        );
        assert_eq!(s["defaultAction"], "SCMP_ACT_ALLOW");
        if cfg!(target_arch = "x86_64") {
            assert_eq!(
                s["architectures"],
                json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
            );
        }
        assert!(intercepted()
            .iter()
            .all(|n| m.metadata.orig_action(n) == Some(OrigAction::Allow)));
        // The pass rules of an all-allowing section are plain ALLOWs.
        assert_eq!(rules(&linux).len(), NOTIFY_RULES + PASS_RULES);
    }

    #[test]
    fn idempotent_on_docker_and_created_sections() {
        for mut linux in [docker_linux(), Map::new()] {
            merge(&mut linux, &builtin(), Path::new(SOCK)).unwrap();
            let once = linux.clone();
            let m = merge(&mut linux, &builtin(), Path::new(SOCK)).unwrap();
            assert!(m.undone);
            let twice = linux.clone();
            assert_eq!(rules(&once)[..10], rules(&twice)[..10]);
            assert_eq!(
                once["seccomp"]["listenerMetadata"],
                twice["seccomp"]["listenerMetadata"]
            );
            let notify = |l: &Map<String, Value>| {
                rules(l)
                    .iter()
                    .filter(|r| r["action"] == "SCMP_ACT_NOTIFY")
                    .count()
            };
            assert_eq!(notify(&once), notify(&twice));
            // A third run is byte-identical to the second.
            merge(&mut linux, &builtin(), Path::new(SOCK)).unwrap();
            assert_eq!(linux, twice);
        }
    }

    #[test]
    fn rerun_with_a_smaller_profile_restores_the_rest() {
        let mut linux = docker_linux();
        merge(&mut linux, &builtin(), Path::new(SOCK)).unwrap();
        let p = profile(r#"{"syscalls":[{"names":["sysinfo"],"action":"SCMP_ACT_NOTIFY"}]}"#);
        let m = merge(&mut linux, &p, Path::new("/other/agent.sock")).unwrap();
        assert_eq!(m.metadata.orig.keys().collect::<Vec<_>>(), ["sysinfo"]);
        let rs = rules(&linux);
        assert_eq!(
            rs.iter()
                .filter(|r| r["action"] == "SCMP_ACT_NOTIFY")
                .count(),
            1
        );
        // openat is allowed again by a plain rule.
        let allow_openat = rs
            .iter()
            .filter(|r| {
                r["action"] == "SCMP_ACT_ALLOW"
                    && r.get("args").is_none()
                    && names_of(r).contains(&"openat")
            })
            .count();
        assert_eq!(allow_openat, 1);
        assert_eq!(linux["seccomp"]["listenerPath"], "/other/agent.sock");
    }

    #[test]
    fn foreign_listener_is_refused() {
        let mut linux = Map::new();
        linux.insert("seccomp".into(), json!({"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/other.sock","listenerMetadata":"x"}));
        assert_eq!(
            merge(&mut linux, &builtin(), Path::new(SOCK)),
            Err(SeccompError::ForeignListener("/run/other.sock".into()))
        );
    }

    #[test]
    fn flags_and_unknown_fields_are_kept() {
        let mut linux = Map::new();
        linux.insert(
            "seccomp".into(),
            json!({"zeta":1,"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_LOG"],"syscalls":[{"names":["openat","x"],"action":"SCMP_ACT_ALLOW","alpha":true}],"alpha":2}),
        );
        merge(&mut linux, &builtin(), Path::new(SOCK)).unwrap();
        let s = linux["seccomp"].as_object().unwrap();
        assert_eq!(
            s.keys().collect::<Vec<_>>(),
            [
                "zeta",
                "defaultAction",
                "flags",
                "syscalls",
                "alpha",
                "listenerPath",
                "listenerMetadata"
            ]
        );
        let last = rules(&linux).last().unwrap();
        assert_eq!(
            last,
            &json!({"names":["x"],"action":"SCMP_ACT_ALLOW","alpha":true})
        );
    }

    #[test]
    fn malformed_sections() {
        let bad = [
            json!("x"),
            json!({"syscalls":[]}),
            json!({"defaultAction":"SCMP_ACT_ALLOW","syscalls":{}}),
            json!({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[1]}),
            json!({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":"openat","action":"SCMP_ACT_ALLOW"}]}),
            json!({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":[1],"action":"SCMP_ACT_ALLOW"}]}),
            json!({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["a"]}]}),
            json!({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["openat"],"action":"SCMP_ACT_ERRNO","errnoRet":-1}]}),
        ];
        for b in bad {
            let mut linux = Map::new();
            linux.insert("seccomp".into(), b.clone());
            let e = merge(&mut linux, &builtin(), Path::new(SOCK)).unwrap_err();
            assert!(matches!(e, SeccompError::Malformed(_)), "{b}: {e}");
        }
    }
}
