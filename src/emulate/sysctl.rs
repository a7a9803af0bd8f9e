//! Per-container sysctls: which of the host's (not namespaced) sysctls a
//! system container may set for itself, and how a written value is checked
//! and stored, as the kernel's own handlers would.
//!
//! The kernel gives a container's root the sysctls of its own namespaces
//! (`net.*` of its network namespace, the IPC ones); every other sysctl is
//! host root's (`EACCES`). System software writes some of those at boot
//! (`systemd-sysctl`, distribution `sysctl.d` files, init scripts). For the
//! ones in [`TABLE`] the container gets its own copy: it reads back what it
//! wrote, the host and the other containers never see it, and the host's
//! value shows until the container writes one. This module is pure: the
//! supervisor decides when a file is one of these and keeps the values.

/// How a sysctl's text is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One integer in `min..=max` (`proc_dointvec_minmax`: decimal, `0x`
    /// hex or `0` octal, optional sign, surrounding white space).
    Int { min: i64, max: i64 },
    /// `n` integers, each in `min..=max` (`kernel.printk`).
    Ints { n: usize, min: i64, max: i64 },
    /// A string of at most `max` bytes, up to the first newline
    /// (`proc_dostring`).
    Str { max: usize },
    /// A name of the container's UTS namespace (`kernel.hostname`,
    /// `kernel.domainname`): the kernel keeps it per namespace but lets
    /// only host root write the file; the supervisor sets it in the
    /// writer's namespace (reads are the kernel's). Up to the first
    /// newline, cut at `max` bytes as the kernel does.
    Uts { max: usize },
}

/// One emulated sysctl: its key (dots) and kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sysctl {
    pub key: &'static str,
    pub kind: Kind,
}

const fn int(key: &'static str, min: i64, max: i64) -> Sysctl {
    Sysctl {
        key,
        kind: Kind::Int { min, max },
    }
}

const I32: i64 = i32::MAX as i64;

/// The emulated sysctls, with the kernel's ranges (Linux 6.x).
pub const TABLE: [Sysctl; 29] = [
    Sysctl {
        key: "kernel.hostname",
        kind: Kind::Uts { max: 64 },
    },
    Sysctl {
        key: "kernel.domainname",
        kind: Kind::Uts { max: 64 },
    },
    int("kernel.panic", i32::MIN as i64, I32),
    int("kernel.panic_on_oops", 0, 1),
    int("kernel.sysrq", i32::MIN as i64, I32),
    int("kernel.core_uses_pid", i32::MIN as i64, I32),
    Sysctl {
        key: "kernel.core_pattern",
        kind: Kind::Str { max: 127 },
    },
    int("kernel.kptr_restrict", 0, 2),
    int("kernel.dmesg_restrict", 0, 1),
    int("kernel.perf_event_paranoid", i32::MIN as i64, I32),
    int("kernel.pid_max", 301, 4_194_304),
    int("kernel.threads-max", 20, 0x3fff_ffff),
    int("kernel.unprivileged_bpf_disabled", 0, 2),
    int("kernel.yama.ptrace_scope", 0, 3),
    Sysctl {
        key: "kernel.printk",
        kind: Kind::Ints {
            n: 4,
            min: i32::MIN as i64,
            max: I32,
        },
    },
    int("kernel.randomize_va_space", i32::MIN as i64, I32),
    int("fs.protected_hardlinks", 0, 1),
    int("fs.protected_symlinks", 0, 1),
    int("fs.protected_regular", 0, 2),
    int("fs.protected_fifos", 0, 2),
    int("fs.suid_dumpable", 0, 2),
    int("fs.file-max", 0, i64::MAX),
    int("fs.inotify.max_user_watches", 1, I32),
    int("fs.inotify.max_user_instances", 1, I32),
    int("vm.overcommit_memory", 0, 2),
    int("vm.overcommit_ratio", 0, i64::MAX),
    int("vm.swappiness", 0, 200),
    int("vm.max_map_count", 0, I32),
    int("net.netfilter.nf_conntrack_max", 0, I32),
];

/// The emulated sysctl at `/proc/sys/<rel>` (`rel` with slashes), if any.
pub fn by_path(rel: &[u8]) -> Option<&'static Sysctl> {
    let rel = std::str::from_utf8(rel).ok()?;
    TABLE
        .iter()
        .find(|s| s.key.len() == rel.len() && s.key.split('.').eq(rel.split('/')))
}

/// `/proc/sys/` path of a key.
pub fn path_of(key: &str) -> String {
    format!("/proc/sys/{}", key.replace('.', "/"))
}

/// Why a written value was not taken (the kernel's `EINVAL`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SysctlError {
    #[error("{key}: not a number: {text:?}")]
    NotANumber { key: &'static str, text: String },
    #[error("{key}: {value} is out of range {min}..={max}")]
    OutOfRange {
        key: &'static str,
        value: i64,
        min: i64,
        max: i64,
    },
    #[error("{key}: {got} values where {want} are expected")]
    Count {
        key: &'static str,
        got: usize,
        want: usize,
    },
    #[error("{key}: longer than {max} bytes")]
    TooLong { key: &'static str, max: usize },
}

/// Parse one integer as the kernel's `proc_get_long` does (base from the
/// prefix: `0x` hex, `0` octal, else decimal; optional `-`).
fn parse_int(t: &str) -> Option<i64> {
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let v = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        i64::from_str_radix(h, 16).ok()?
    } else if t.len() > 1 && t.starts_with('0') {
        i64::from_str_radix(&t[1..], 8).ok()?
    } else {
        t.parse::<i64>().ok()?
    };
    Some(if neg { -v } else { v })
}

impl Sysctl {
    /// Check `written` (what the container wrote) and give the value as the
    /// file will read back: integers in decimal, tab-separated, one newline.
    pub fn normalise(&self, written: &[u8]) -> Result<String, SysctlError> {
        let text = String::from_utf8_lossy(written);
        match self.kind {
            Kind::Str { max } => {
                let line = text.split('\n').next().unwrap_or("");
                if line.len() > max {
                    return Err(SysctlError::TooLong { key: self.key, max });
                }
                Ok(format!("{line}\n"))
            }
            Kind::Uts { max } => {
                let line = written.split(|&b| b == b'\n').next().unwrap_or(b"");
                Ok(String::from_utf8_lossy(&line[..line.len().min(max)]).into_owned())
            }
            Kind::Int { min, max } => {
                let v = self.ints(&text, 1, min, max)?;
                Ok(format!("{}\n", v[0]))
            }
            Kind::Ints { n, min, max } => {
                let v = self.ints(&text, n, min, max)?;
                let parts: Vec<String> = v.iter().map(i64::to_string).collect();
                Ok(format!("{}\n", parts.join("\t")))
            }
        }
    }

    fn ints(&self, text: &str, n: usize, min: i64, max: i64) -> Result<Vec<i64>, SysctlError> {
        let words: Vec<&str> = text.split_whitespace().collect();
        // The kernel takes up to n values and keeps the others' old values;
        // here a write must give all n (what every tool writes) or one for
        // a single-valued sysctl.
        if words.is_empty() || words.len() > n || (n > 1 && words.len() != n) {
            return Err(SysctlError::Count {
                key: self.key,
                got: words.len(),
                want: n,
            });
        }
        words
            .iter()
            .map(|w| {
                let v = parse_int(w).ok_or_else(|| SysctlError::NotANumber {
                    key: self.key,
                    text: (*w).to_string(),
                })?;
                if v < min || v > max {
                    return Err(SysctlError::OutOfRange {
                        key: self.key,
                        value: v,
                        min,
                        max,
                    });
                }
                Ok(v)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(key: &str) -> &'static Sysctl {
        TABLE.iter().find(|s| s.key == key).unwrap()
    }

    #[test]
    fn paths_map_to_keys() {
        assert_eq!(by_path(b"kernel/panic").unwrap().key, "kernel.panic");
        assert_eq!(
            by_path(b"net/netfilter/nf_conntrack_max").unwrap().key,
            "net.netfilter.nf_conntrack_max"
        );
        assert!(by_path(b"kernel/panic/x").is_none());
        assert!(by_path(b"kernel.panic").is_none());
        assert!(by_path(b"net/core/somaxconn").is_none());
        assert_eq!(
            path_of("fs.protected_fifos"),
            "/proc/sys/fs/protected_fifos"
        );
    }

    #[test]
    fn values_are_checked_as_the_kernel_does() {
        let sysrq = get("kernel.sysrq");
        assert_eq!(sysrq.normalise(b"0x01b6\n").unwrap(), "438\n");
        assert_eq!(get("kernel.panic").normalise(b" -1 ").unwrap(), "-1\n");
        assert_eq!(get("kernel.panic").normalise(b"010").unwrap(), "8\n");
        let om = get("vm.overcommit_memory");
        assert_eq!(om.normalise(b"2\n").unwrap(), "2\n");
        assert!(matches!(
            om.normalise(b"3"),
            Err(SysctlError::OutOfRange { .. })
        ));
        assert!(matches!(
            om.normalise(b"abc"),
            Err(SysctlError::NotANumber { .. })
        ));
        assert!(matches!(om.normalise(b""), Err(SysctlError::Count { .. })));
        assert!(matches!(
            om.normalise(b"1 2"),
            Err(SysctlError::Count { .. })
        ));
        assert!(get("fs.protected_regular").normalise(b"3").is_err());
        assert!(get("kernel.pid_max").normalise(b"300").is_err());
        assert_eq!(
            get("kernel.pid_max").normalise(b"4194304").unwrap(),
            "4194304\n"
        );
        let printk = get("kernel.printk");
        assert_eq!(printk.normalise(b"4 4 1 7\n").unwrap(), "4\t4\t1\t7\n");
        assert!(printk.normalise(b"4 4").is_err());
        let core = get("kernel.core_pattern");
        assert_eq!(
            core.normalise(b"|/lib/systemd/systemd-coredump %P\n")
                .unwrap(),
            "|/lib/systemd/systemd-coredump %P\n"
        );
        assert!(core.normalise(&[b'a'; 200]).is_err());
        let host = get("kernel.hostname");
        assert_eq!(host.normalise(b"box\n").unwrap(), "box");
        assert_eq!(host.normalise(&[b'h'; 80]).unwrap().len(), 64);
    }

    #[test]
    fn every_key_exists_on_this_host_or_is_optional() {
        // The table names real sysctls: each is either on this host or one
        // that depends on a module, an LSM or a build option (netfilter,
        // yama, CONFIG_MAGIC_SYSRQ).
        for s in TABLE {
            let p = path_of(s.key);
            let optional = s.key.starts_with("net.netfilter.")
                || s.key.starts_with("kernel.yama.")
                || s.key == "kernel.sysrq";
            assert!(
                std::path::Path::new(&p).exists() || optional,
                "{} missing on this host",
                s.key
            );
        }
    }
}
