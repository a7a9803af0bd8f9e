//! The intercept profile: which syscalls syscont traps, and under which
//! argument conditions.
//!
//! This module owns reading and validating `seccomp-profiles/intercept.json`
//! (compiled in) or the file given with `--syscont-intercept`. The format is a
//! subset of the Docker/OCI seccomp JSON (see `seccomp-profiles/README.md`):
//!
//! ```json
//! {"syscalls": [
//!   {"names": ["sysinfo"], "action": "SCMP_ACT_NOTIFY"},
//!   {"names": ["lseek"], "action": "SCMP_ACT_NOTIFY",
//!    "args": [{"index": 1, "value": 0, "op": "SCMP_CMP_EQ"},
//!             {"index": 2, "value": 0, "op": "SCMP_CMP_EQ"}]},
//!   {"names": ["lseek"], "action": "SCMP_ACT_ALLOW",
//!    "args": [{"index": 1, "value": 0, "op": "SCMP_CMP_NE"}]}
//! ]}
//! ```
//!
//! `SCMP_ACT_NOTIFY` rules trap; `SCMP_ACT_ALLOW` rules name the argument
//! cases that are *not* trapped, and the runtime gives them the syscall's
//! original action from the container's profile (which may be an errno).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Deserialize;
use serde_json::{json, Value};

/// The built-in profile.
pub const BUILTIN: &str = include_str!("../../seccomp-profiles/intercept.json");

/// Comparison operators of the OCI seccomp format.
const OPS: &[&str] = &[
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
];

/// Syscalls runc refuses to give `SCMP_ACT_NOTIFY` (its own writes to the
/// agent socket and the log would deadlock).
const NEVER_NOTIFY: &[&str] = &["write"];

/// Errors of reading an intercept profile.
#[derive(Debug, thiserror::Error)]
pub enum InterceptError {
    #[error("cannot read intercept profile {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("intercept profile {origin} is not valid: {source}")]
    Json {
        origin: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("intercept profile {origin} is not valid: {reason}")]
    Invalid { origin: String, reason: String },
}

/// What an intercept rule does with the calls it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKind {
    /// `SCMP_ACT_NOTIFY`: trapped and sent to the supervisor.
    Notify,
    /// `SCMP_ACT_ALLOW`: not trapped; gets the syscall's original action.
    Pass,
}

/// One argument condition, in OCI terms.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ArgCond {
    pub index: u32,
    pub value: u64,
    #[serde(default)]
    pub value_two: u64,
    pub op: String,
}

impl ArgCond {
    /// The OCI JSON form.
    pub fn to_json(&self) -> Value {
        json!({"index": self.index, "value": self.value, "valueTwo": self.value_two, "op": self.op})
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    names: Vec<String>,
    action: String,
    #[serde(default)]
    args: Vec<ArgCond>,
    #[serde(default)]
    #[allow(dead_code)]
    comment: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    #[serde(default)]
    #[allow(dead_code)]
    comment: Option<Value>,
    syscalls: Vec<RawRule>,
}

/// One validated rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterceptRule {
    pub names: Vec<String>,
    pub kind: RuleKind,
    pub args: Vec<ArgCond>,
}

/// A validated intercept profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterceptProfile {
    rules: Vec<InterceptRule>,
}

impl InterceptProfile {
    /// The profile compiled into this build.
    pub fn builtin() -> Result<Self, InterceptError> {
        Self::parse(BUILTIN, "built-in")
    }

    /// Read a profile file.
    pub fn load(path: &Path) -> Result<Self, InterceptError> {
        let text = std::fs::read_to_string(path).map_err(|source| InterceptError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parse and validate profile text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, InterceptError> {
        let raw: RawProfile =
            serde_json::from_str(text).map_err(|source| InterceptError::Json {
                origin: origin.to_string(),
                source,
            })?;
        let invalid = |reason: String| InterceptError::Invalid {
            origin: origin.to_string(),
            reason,
        };
        if raw.syscalls.is_empty() {
            return Err(invalid("\"syscalls\" is empty".into()));
        }
        let mut rules = Vec::with_capacity(raw.syscalls.len());
        for (n, r) in raw.syscalls.into_iter().enumerate() {
            let kind = match r.action.as_str() {
                "SCMP_ACT_NOTIFY" => RuleKind::Notify,
                "SCMP_ACT_ALLOW" => RuleKind::Pass,
                other => {
                    return Err(invalid(format!(
                        "rule {n}: action {other} (only SCMP_ACT_NOTIFY and SCMP_ACT_ALLOW)"
                    )))
                }
            };
            if r.names.is_empty() {
                return Err(invalid(format!("rule {n}: \"names\" is empty")));
            }
            for name in &r.names {
                let ok = !name.is_empty()
                    && name
                        .bytes()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_');
                if !ok {
                    return Err(invalid(format!("rule {n}: {name:?} is not a syscall name")));
                }
                if NEVER_NOTIFY.contains(&name.as_str()) {
                    return Err(invalid(format!(
                        "rule {n}: {name} cannot be intercepted (runc refuses it)"
                    )));
                }
            }
            for a in &r.args {
                if a.index > 5 {
                    return Err(invalid(format!(
                        "rule {n}: argument index {} (0..=5)",
                        a.index
                    )));
                }
                if !OPS.contains(&a.op.as_str()) {
                    return Err(invalid(format!("rule {n}: unknown operator {}", a.op)));
                }
            }
            rules.push(InterceptRule {
                names: r.names,
                kind,
                args: r.args,
            });
        }
        let profile = InterceptProfile { rules };
        profile.check_coverage().map_err(invalid)?;
        Ok(profile)
    }

    /// Each name: either one unconditional NOTIFY rule and nothing else, or
    /// conditional NOTIFY rules plus conditional ALLOW rules for the rest.
    fn check_coverage(&self) -> Result<(), String> {
        #[derive(Default)]
        struct Seen {
            notify_uncond: usize,
            notify_cond: usize,
            pass_uncond: usize,
            pass_cond: usize,
        }
        let mut seen: BTreeMap<&str, Seen> = BTreeMap::new();
        for r in &self.rules {
            for name in &r.names {
                let s = seen.entry(name).or_default();
                match (r.kind, r.args.is_empty()) {
                    (RuleKind::Notify, true) => s.notify_uncond += 1,
                    (RuleKind::Notify, false) => s.notify_cond += 1,
                    (RuleKind::Pass, true) => s.pass_uncond += 1,
                    (RuleKind::Pass, false) => s.pass_cond += 1,
                }
            }
        }
        for (name, s) in seen {
            if s.notify_uncond + s.notify_cond == 0 {
                return Err(format!(
                    "{name} has SCMP_ACT_ALLOW rules but no SCMP_ACT_NOTIFY rule"
                ));
            }
            if s.pass_uncond > 0 {
                return Err(format!("{name} has an SCMP_ACT_ALLOW rule without \"args\" (it would hide the NOTIFY rule)"));
            }
            if s.notify_uncond > 0 && (s.notify_uncond + s.notify_cond + s.pass_cond) > 1 {
                return Err(format!(
                    "{name} has an unconditional SCMP_ACT_NOTIFY rule and other rules"
                ));
            }
            if s.notify_cond > 0 && s.pass_cond == 0 {
                return Err(format!(
                    "{name} has conditional SCMP_ACT_NOTIFY rules but no SCMP_ACT_ALLOW rules for the other argument values"
                ));
            }
        }
        Ok(())
    }

    /// The rules, in file order.
    pub fn rules(&self) -> &[InterceptRule] {
        &self.rules
    }

    /// Every syscall name the profile traps.
    pub fn names(&self) -> BTreeSet<&str> {
        self.rules
            .iter()
            .flat_map(|r| r.names.iter().map(String::as_str))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_is_valid_and_names_the_issue_set() {
        let p = InterceptProfile::builtin().unwrap();
        let names: Vec<&str> = p.names().into_iter().collect();
        assert_eq!(
            names,
            [
                "_llseek",
                "chmod",
                "creat",
                "fchmod",
                "fchmodat",
                "fchmodat2",
                "fsetxattr",
                "lseek",
                "lsetxattr",
                "mknod",
                "mknodat",
                "mount",
                "open",
                "openat",
                "openat2",
                "setxattr",
                "setxattrat",
                "sysinfo",
                "umount",
                "umount2"
            ]
        );
        // lseek is trapped only on a rewind to 0.
        let lseek_notify: Vec<_> = p
            .rules()
            .iter()
            .filter(|r| r.kind == RuleKind::Notify && r.names.iter().any(|n| n == "lseek"))
            .collect();
        assert_eq!(lseek_notify.len(), 1);
        assert_eq!(lseek_notify[0].args.len(), 2);
    }

    fn err(text: &str) -> String {
        InterceptProfile::parse(text, "t").unwrap_err().to_string()
    }

    #[test]
    fn malformed_profiles() {
        assert!(err("{").contains("not valid"));
        assert!(err("[]").contains("not valid"));
        assert!(err(r#"{"syscalls":[]}"#).contains("empty"));
        assert!(
            err(r#"{"syscalls":[{"names":["x"],"action":"SCMP_ACT_KILL"}]}"#)
                .contains("SCMP_ACT_KILL")
        );
        assert!(err(r#"{"syscalls":[{"names":[],"action":"SCMP_ACT_NOTIFY"}]}"#).contains("empty"));
        assert!(
            err(r#"{"syscalls":[{"names":["Open"],"action":"SCMP_ACT_NOTIFY"}]}"#)
                .contains("not a syscall name")
        );
        assert!(
            err(r#"{"syscalls":[{"names":["write"],"action":"SCMP_ACT_NOTIFY"}]}"#)
                .contains("runc refuses")
        );
        assert!(err(r#"{"syscalls":[{"names":["x"],"action":"SCMP_ACT_NOTIFY","args":[{"index":6,"value":0,"op":"SCMP_CMP_EQ"}]}]}"#).contains("index"));
        assert!(err(r#"{"syscalls":[{"names":["x"],"action":"SCMP_ACT_NOTIFY","args":[{"index":1,"value":0,"op":"EQ"}]}]}"#).contains("operator"));
        assert!(
            err(r#"{"syscalls":[{"names":["x"],"action":"SCMP_ACT_NOTIFY","bogus":1}]}"#)
                .contains("bogus")
        );
        assert!(err(r#"{"syscalls":[{"names":["x"],"action":"SCMP_ACT_ALLOW","args":[{"index":1,"value":0,"op":"SCMP_CMP_EQ"}]}]}"#).contains("no SCMP_ACT_NOTIFY"));
        assert!(err(r#"{"syscalls":[{"names":["x"],"action":"SCMP_ACT_NOTIFY","args":[{"index":1,"value":0,"op":"SCMP_CMP_EQ"}]}]}"#).contains("no SCMP_ACT_ALLOW"));
        assert!(err(r#"{"syscalls":[{"names":["x"],"action":"SCMP_ACT_NOTIFY"},{"names":["x"],"action":"SCMP_ACT_NOTIFY"}]}"#).contains("other rules"));
        assert!(err(r#"{"syscalls":[{"names":["x"],"action":"SCMP_ACT_NOTIFY","args":[{"index":1,"value":0,"op":"SCMP_CMP_EQ"}]},{"names":["x"],"action":"SCMP_ACT_ALLOW"}]}"#).contains("without"));
    }

    #[test]
    fn load_reports_the_path() {
        let e = InterceptProfile::load(Path::new("/nonexistent/intercept.json")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/intercept.json"));
    }
}
