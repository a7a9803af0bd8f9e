//! runc's command line, as `syscont-runc` sees it.
//!
//! This module owns the split of an argument vector into three parts:
//! syscont's own global options (`--syscont-*`, removed), everything the
//! engine must see (passed on byte for byte, in order), and what syscont needs
//! to know about the call: the subcommand and, for `create` and `run`, the
//! bundle directory.
//!
//! runc parses its global options with Go's `flag` package (through
//! urfave/cli v1): `-opt` and `--opt` are the same, a value is either the next
//! argument or follows `=`, and parsing stops at the first non-option argument
//! (the subcommand) or at `--`. The subcommand's own options likewise stop at
//! the first positional argument (the container id).

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use crate::agent_meta::DEFAULT_STATE_DIR;
use crate::runtime::idrange::DEFAULT_SIZE;

/// Default data directory: per-container host state and the id pool.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/syscont";

/// Prefix of every option that belongs to syscont rather than the engine.
pub const SYSCONT_PREFIX: &str = "syscont-";

/// runc global options that take a value.
const GLOBAL_VALUE_OPTS: &[&str] = &["root", "log", "log-format", "criu", "rootless"];

/// Options of `create` and `run` that take a value (besides `bundle`).
const CREATE_VALUE_OPTS: &[&str] = &["console-socket", "pid-file", "preserve-fds", "pidfd-socket"];

/// Errors of reading the command line.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArgvError {
    #[error("unknown option --{0} (syscont knows --syscont-state-dir, --syscont-data-dir, --syscont-ids, --syscont-engine, --syscont-intercept)")]
    UnknownOption(String),
    #[error("option --{0} needs a value")]
    MissingValue(String),
    #[error("option --{0} has an empty value")]
    EmptyValue(String),
    #[error("option --{0} has a bad value {1:?} (ids per container: a number of at least 65536)")]
    BadValue(String, String),
}

/// The fewest ids a container may have: images own files up to 65534.
pub const MIN_IDS: u32 = 65536;

/// syscont's own options, taken out of the argument vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyscontOptions {
    /// Directory of the supervisor's sockets (`--syscont-state-dir`).
    pub state_dir: PathBuf,
    /// The engine to exec (`--syscont-engine`); `None` means `runc` from `PATH`.
    pub engine: Option<PathBuf>,
    /// An intercept profile that replaces the built-in one (`--syscont-intercept`).
    pub intercept: Option<PathBuf>,
    /// Per-container host state and the id-range pool (`--syscont-data-dir`).
    pub data_dir: PathBuf,
    /// Ids per container (`--syscont-ids`).
    pub ids: u32,
}

impl Default for SyscontOptions {
    fn default() -> Self {
        SyscontOptions {
            state_dir: PathBuf::from(DEFAULT_STATE_DIR),
            engine: None,
            intercept: None,
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            ids: DEFAULT_SIZE,
        }
    }
}

/// What the call asks the engine to do, as far as syscont cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `create`: the bundle's `config.json` is rewritten first.
    Create { bundle: PathBuf },
    /// `run` (create and start in one): the bundle's `config.json` is rewritten first.
    Run { bundle: PathBuf },
    /// Any other subcommand (or none: `--help`, `--version`): passed straight through.
    Passthrough { subcommand: Option<OsString> },
}

/// A parsed invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// syscont's own options.
    pub syscont: SyscontOptions,
    /// Every argument after the program name that the engine must see, unchanged.
    pub engine_args: Vec<OsString>,
    /// The subcommand and what syscont needs from it.
    pub command: Command,
    /// runc's `--log` file, if given.
    pub log_file: Option<PathBuf>,
    /// runc's `--log-format`, if given.
    pub log_format: Option<String>,
    /// The container id of `create`, `run`, `delete` and `kill`.
    pub container_id: Option<String>,
}

impl Invocation {
    /// The index in `engine_args` of the subcommand, if any.
    pub fn subcommand_index(&self) -> Option<usize> {
        let Command::Passthrough {
            subcommand: Some(sub),
        } = &self.command
        else {
            return None;
        };
        self.engine_args.iter().position(|a| a == sub)
    }

    /// The bundle directory of a `create` or `run`.
    pub fn bundle(&self) -> Option<&PathBuf> {
        match &self.command {
            Command::Create { bundle } | Command::Run { bundle } => Some(bundle),
            Command::Passthrough { .. } => None,
        }
    }
}

/// An option argument split into its name (without dashes) and inline value.
struct OptArg<'a> {
    name: &'a [u8],
    inline: Option<&'a [u8]>,
}

/// Split `-name`, `--name` or `--name=value`; `None` for a non-option
/// (including `-` alone and `--`).
fn split_opt(arg: &OsStr) -> Option<OptArg<'_>> {
    let b = arg.as_bytes();
    let rest = b.strip_prefix(b"--").or_else(|| b.strip_prefix(b"-"))?;
    if rest.is_empty() || rest.starts_with(b"-") {
        return None;
    }
    match rest.iter().position(|&c| c == b'=') {
        Some(i) => Some(OptArg {
            name: &rest[..i],
            inline: Some(&rest[i + 1..]),
        }),
        None => Some(OptArg {
            name: rest,
            inline: None,
        }),
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Parse the arguments after the program name.
pub fn parse<I, S>(args: I) -> Result<Invocation, ArgvError>
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let mut syscont = SyscontOptions::default();
    // Engines that pass no runtime arguments (containerd's --runc-binary)
    // configure through the environment; options win.
    if let Some(v) = std::env::var_os("SYSCONT_STATE_DIR").filter(|v| !v.is_empty()) {
        syscont.state_dir = PathBuf::from(v);
    }
    if let Some(v) = std::env::var_os("SYSCONT_DATA_DIR").filter(|v| !v.is_empty()) {
        syscont.data_dir = PathBuf::from(v);
    }
    let mut engine_args = Vec::with_capacity(args.len());
    let mut i = 0;

    // Global options, up to the subcommand.
    let mut sub_index = None;
    let mut log_file = None;
    let mut log_format = None;
    while i < args.len() {
        let arg = &args[i];
        if arg.as_bytes() == b"--" {
            engine_args.push(arg.clone());
            i += 1;
            if i < args.len() {
                sub_index = Some(engine_args.len());
            }
            break;
        }
        let Some(opt) = split_opt(arg) else {
            sub_index = Some(engine_args.len());
            break;
        };
        if let Some(own) = opt.name.strip_prefix(SYSCONT_PREFIX.as_bytes()) {
            let own_name = lossy(opt.name);
            let value = match opt.inline {
                Some(v) => v.to_vec(),
                None => {
                    i += 1;
                    match args.get(i) {
                        Some(v) => v.as_bytes().to_vec(),
                        None => return Err(ArgvError::MissingValue(own_name)),
                    }
                }
            };
            if value.is_empty() {
                return Err(ArgvError::EmptyValue(own_name));
            }
            let value = PathBuf::from(OsStr::from_bytes(&value));
            match own {
                b"state-dir" => syscont.state_dir = value,
                b"engine" => syscont.engine = Some(value),
                b"intercept" => syscont.intercept = Some(value),
                b"data-dir" => syscont.data_dir = value,
                b"ids" => {
                    syscont.ids = value
                        .to_str()
                        .and_then(|v| v.parse().ok())
                        .filter(|&n: &u32| n >= MIN_IDS)
                        .ok_or(ArgvError::BadValue(
                            own_name,
                            lossy(value.as_os_str().as_bytes()),
                        ))?
                }
                _ => return Err(ArgvError::UnknownOption(own_name)),
            }
            i += 1;
            continue;
        }
        engine_args.push(arg.clone());
        let takes_value = GLOBAL_VALUE_OPTS.iter().any(|o| o.as_bytes() == opt.name);
        let mut value = opt.inline;
        if takes_value && opt.inline.is_none() {
            // The value is the next argument, whatever it looks like; a
            // missing one is the engine's error to report.
            i += 1;
            if let Some(v) = args.get(i) {
                engine_args.push(v.clone());
                value = Some(v.as_bytes());
            }
        }
        match (opt.name, value) {
            (b"log", Some(v)) => log_file = Some(PathBuf::from(OsStr::from_bytes(v))),
            (b"log-format", Some(v)) => log_format = Some(lossy(v)),
            _ => {}
        }
        i += 1;
    }
    // Everything from the subcommand on goes to the engine unchanged.
    engine_args.extend(args.iter().skip(i).cloned());

    let container_id = sub_index.and_then(|s| match engine_args[s].as_bytes() {
        b"create" | b"run" => find_id(&engine_args[s + 1..], true),
        b"delete" | b"kill" => find_id(&engine_args[s + 1..], false),
        _ => None,
    });
    let command = match sub_index.map(|s| (s, engine_args[s].as_bytes())) {
        Some((s, b"create")) => Command::Create {
            bundle: find_bundle(&engine_args[s + 1..]),
        },
        Some((s, b"run")) => Command::Run {
            bundle: find_bundle(&engine_args[s + 1..]),
        },
        Some((s, _)) => Command::Passthrough {
            subcommand: Some(engine_args[s].clone()),
        },
        None => Command::Passthrough { subcommand: None },
    };
    Ok(Invocation {
        syscont,
        engine_args,
        command,
        log_file,
        log_format,
        container_id,
    })
}

/// The container id: the first argument after the subcommand's options.
fn find_id(sub_args: &[OsString], create: bool) -> Option<String> {
    let mut i = 0;
    while i < sub_args.len() {
        let Some(opt) = split_opt(&sub_args[i]) else {
            if sub_args[i].as_bytes() == b"--" {
                return sub_args
                    .get(i + 1)
                    .map(|s| s.to_string_lossy().into_owned());
            }
            return Some(sub_args[i].to_string_lossy().into_owned());
        };
        let takes_value = create
            && (opt.name == b"bundle"
                || opt.name == b"b"
                || CREATE_VALUE_OPTS.iter().any(|o| o.as_bytes() == opt.name));
        if takes_value && opt.inline.is_none() {
            i += 1;
        }
        i += 1;
    }
    None
}

/// The bundle of a `create`/`run`: the last `--bundle`/`-b` before the
/// container id, else the current directory (as runc does).
fn find_bundle(sub_args: &[OsString]) -> PathBuf {
    let mut bundle = PathBuf::from(".");
    let mut i = 0;
    while i < sub_args.len() {
        let Some(opt) = split_opt(&sub_args[i]) else {
            break;
        };
        let is_bundle = opt.name == b"bundle" || opt.name == b"b";
        let takes_value = is_bundle || CREATE_VALUE_OPTS.iter().any(|o| o.as_bytes() == opt.name);
        let value = match (takes_value, opt.inline) {
            (false, _) => None,
            (true, Some(v)) => Some(v),
            (true, None) => {
                i += 1;
                sub_args.get(i).map(|v| v.as_bytes())
            }
        };
        if is_bundle {
            if let Some(v) = value {
                // runc treats an empty bundle as the current directory.
                bundle = if v.is_empty() {
                    PathBuf::from(".")
                } else {
                    PathBuf::from(OsStr::from_bytes(v))
                };
            }
        }
        i += 1;
    }
    bundle
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: &str = "/var/run/docker/containerd/daemon/io.containerd.runtime.v2.task/moby/abc";
    const ID: &str = "abc";

    fn docker_globals() -> Vec<String> {
        vec![
            "--root".into(),
            "/var/run/docker/runtime-runc/moby".into(),
            "--log".into(),
            format!("{B}/log.json"),
            "--log-format".into(),
            "json".into(),
        ]
    }

    fn own() -> Vec<String> {
        vec![
            "--syscont-state-dir".into(),
            "/tmp/rt-state".into(),
            "--syscont-engine=/usr/sbin/runc".into(),
        ]
    }

    fn strs(v: &[OsString]) -> Vec<String> {
        v.iter().map(|s| s.to_string_lossy().into_owned()).collect()
    }

    /// Every command line of `docker-runtime-argv.txt`, as (subcommand args, expected bundle).
    fn docker_lines() -> Vec<(Vec<String>, Option<String>)> {
        let s = |v: &[&str]| {
            v.iter()
                .map(|x| x.replace("<B>", B).replace("<ID>", ID))
                .collect::<Vec<_>>()
        };
        vec![
            (
                s(&[
                    "create",
                    "--bundle",
                    "<B>",
                    "--pid-file",
                    "<B>/init.pid",
                    "<ID>",
                ]),
                Some(B.to_string()),
            ),
            (
                s(&[
                    "create",
                    "--bundle",
                    "<B>",
                    "--pid-file",
                    "<B>/init.pid",
                    "--console-socket",
                    "/tmp/pty1/pty.sock",
                    "<ID>",
                ]),
                Some(B.to_string()),
            ),
            (s(&["start", "<ID>"]), None),
            (
                s(&[
                    "exec",
                    "--process",
                    "/tmp/runc-process75047623",
                    "--detach",
                    "--pid-file",
                    "<B>/e1.pid",
                    "<ID>",
                ]),
                None,
            ),
            (
                s(&[
                    "exec",
                    "--process",
                    "/tmp/runc-process1",
                    "--console-socket",
                    "/tmp/pty2/pty.sock",
                    "--detach",
                    "--pid-file",
                    "<B>/e2.pid",
                    "<ID>",
                ]),
                None,
            ),
            (s(&["ps", "--format", "json", "<ID>"]), None),
            (s(&["pause", "<ID>"]), None),
            (s(&["resume", "<ID>"]), None),
            (s(&["update", "--resources", "-", "<ID>"]), None),
            (s(&["kill", "<ID>", "15"]), None),
            (s(&["kill", "<ID>", "9"]), None),
            (s(&["delete", "<ID>"]), None),
            (s(&["delete", "--force", "<ID>"]), None),
        ]
    }

    #[test]
    fn docker_argv_lines_with_own_options_in_front() {
        for (sub, bundle) in docker_lines() {
            let mut argv = own();
            argv.extend(docker_globals());
            argv.extend(sub.clone());
            let inv = parse(&argv).unwrap();
            let mut want = docker_globals();
            want.extend(sub.clone());
            assert_eq!(strs(&inv.engine_args), want, "engine argv for {sub:?}");
            assert_eq!(inv.syscont.state_dir, PathBuf::from("/tmp/rt-state"));
            assert_eq!(inv.syscont.engine, Some(PathBuf::from("/usr/sbin/runc")));
            assert_eq!(inv.log_file, Some(PathBuf::from(format!("{B}/log.json"))));
            assert_eq!(inv.log_format.as_deref(), Some("json"));
            assert_eq!(
                inv.bundle().map(|b| b.to_string_lossy().into_owned()),
                bundle
            );
            match &inv.command {
                Command::Create { .. } => assert_eq!(sub[0], "create"),
                Command::Passthrough { subcommand } => {
                    assert_eq!(subcommand.as_deref(), Some(OsStr::new(&sub[0])))
                }
                Command::Run { .. } => panic!("no run in docker's argv"),
            }
        }
    }

    /// The sample file itself: every command line, each alternative of a line.
    #[test]
    fn docker_runtime_argv_sample_file() {
        let text = include_str!("testdata/docker-runtime-argv.txt");
        let mut seen = 0;
        for line in text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        {
            let line = line.split("  #").next().unwrap_or_default();
            for alt in line.split(" / ").flat_map(|a| a.split(" ; ")) {
                let sub: Vec<String> = alt
                    .split_whitespace()
                    .map(|t| {
                        t.replace("<B>", B)
                            .replace("<ID>", ID)
                            .replace("<EXECID>", "e1")
                    })
                    .collect();
                let mut argv = own();
                argv.extend(docker_globals());
                argv.extend(sub.clone());
                let inv = parse(&argv).unwrap();
                let mut want = docker_globals();
                want.extend(sub.clone());
                assert_eq!(strs(&inv.engine_args), want);
                let bundle = inv.bundle().map(|b| b.to_string_lossy().into_owned());
                if sub[0] == "create" {
                    assert_eq!(bundle.as_deref(), Some(B));
                } else {
                    assert_eq!(bundle, None, "{alt}");
                }
                seen += 1;
            }
        }
        assert_eq!(seen, 12);
    }

    #[test]
    fn docker_argv_lines_without_own_options() {
        for (sub, bundle) in docker_lines() {
            let mut argv = docker_globals();
            argv.extend(sub.clone());
            let inv = parse(&argv).unwrap();
            assert_eq!(strs(&inv.engine_args), argv);
            assert_eq!(inv.syscont, SyscontOptions::default());
            assert_eq!(
                inv.bundle().map(|b| b.to_string_lossy().into_owned()),
                bundle
            );
        }
    }

    #[test]
    fn own_options_mixed_among_globals_and_eq_forms() {
        let argv = [
            "--root=/r",
            "--syscont-intercept=/etc/i.json",
            "-log",
            "/l.json",
            "--debug",
            "--syscont-state-dir=/s",
            "--log-format=text",
            "--systemd-cgroup",
            "--criu",
            "/c",
            "--rootless",
            "false",
            "run",
            "-b=/bun",
            "-d",
            "x",
        ];
        let inv = parse(argv).unwrap();
        assert_eq!(
            strs(&inv.engine_args),
            [
                "--root=/r",
                "-log",
                "/l.json",
                "--debug",
                "--log-format=text",
                "--systemd-cgroup",
                "--criu",
                "/c",
                "--rootless",
                "false",
                "run",
                "-b=/bun",
                "-d",
                "x"
            ]
        );
        assert_eq!(inv.syscont.state_dir, PathBuf::from("/s"));
        assert_eq!(inv.syscont.intercept, Some(PathBuf::from("/etc/i.json")));
        assert_eq!(inv.syscont.engine, None);
        assert_eq!(
            inv.command,
            Command::Run {
                bundle: "/bun".into()
            }
        );
    }

    #[test]
    fn global_value_that_looks_like_a_subcommand() {
        // `--root create` is the root dir named "create", not the subcommand.
        let inv = parse(["--root", "create", "--log", "run", "state", "id"]).unwrap();
        assert_eq!(
            inv.command,
            Command::Passthrough {
                subcommand: Some("state".into())
            }
        );
    }

    #[test]
    fn bundle_forms_and_default() {
        let b = |argv: &[&str]| parse(argv).unwrap().bundle().cloned();
        assert_eq!(b(&["create", "id"]), Some(".".into()));
        assert_eq!(b(&["run", "id"]), Some(".".into()));
        assert_eq!(b(&["create", "--bundle=/x", "id"]), Some("/x".into()));
        assert_eq!(b(&["create", "-b", "/x", "id"]), Some("/x".into()));
        assert_eq!(b(&["create", "-bundle", "/x", "id"]), Some("/x".into()));
        assert_eq!(b(&["create", "--bundle", "", "id"]), Some(".".into()));
        assert_eq!(
            b(&["run", "--pid-file", "-b", "--bundle", "rel/dir", "id"]),
            Some("rel/dir".into())
        );
        assert_eq!(
            b(&["run", "--console-socket=/s", "--no-pivot", "-b", "/y", "id"]),
            Some("/y".into())
        );
        // After the container id, runc reads no more options.
        assert_eq!(b(&["create", "id", "--bundle", "/x"]), Some(".".into()));
        assert_eq!(
            b(&["--debug", "run", "--bundle", "/z", "--", "id"]),
            Some("/z".into())
        );
    }

    #[test]
    fn passthrough_without_subcommand() {
        for argv in [
            vec!["--help"],
            vec!["-v"],
            vec!["--version"],
            vec!["-h"],
            vec![],
        ] {
            let inv = parse(&argv).unwrap();
            assert_eq!(strs(&inv.engine_args), argv);
            assert_eq!(inv.command, Command::Passthrough { subcommand: None });
        }
        let inv = parse(["--syscont-engine", "/bin/crun", "features"]).unwrap();
        assert_eq!(strs(&inv.engine_args), ["features"]);
        assert_eq!(
            inv.command,
            Command::Passthrough {
                subcommand: Some("features".into())
            }
        );
    }

    #[test]
    fn own_options_after_subcommand_are_not_ours() {
        let inv = parse(["state", "--syscont-state-dir", "/x", "id"]).unwrap();
        assert_eq!(
            strs(&inv.engine_args),
            ["state", "--syscont-state-dir", "/x", "id"]
        );
        assert_eq!(inv.syscont, SyscontOptions::default());
    }

    #[test]
    fn double_dash_ends_globals() {
        let inv = parse(["--debug", "--", "create", "id"]).unwrap();
        assert_eq!(strs(&inv.engine_args), ["--debug", "--", "create", "id"]);
        assert_eq!(inv.command, Command::Create { bundle: ".".into() });
    }

    #[test]
    fn non_utf8_arguments_pass_unchanged() {
        let odd = OsString::from(OsStr::from_bytes(b"/tmp/\xff\xfe"));
        let inv = parse(vec![
            OsString::from("--root"),
            odd.clone(),
            OsString::from("create"),
            OsString::from("-b"),
            odd.clone(),
            OsString::from("id"),
        ])
        .unwrap();
        assert_eq!(inv.engine_args[1], odd);
        assert_eq!(inv.bundle(), Some(&PathBuf::from(odd)));
    }

    #[test]
    fn own_option_errors() {
        assert_eq!(
            parse(["--syscont-bogus", "x", "run"]),
            Err(ArgvError::UnknownOption("syscont-bogus".into()))
        );
        assert_eq!(
            parse(["--syscont-state-dir"]),
            Err(ArgvError::MissingValue("syscont-state-dir".into()))
        );
        assert_eq!(
            parse(["--syscont-engine=", "run"]),
            Err(ArgvError::EmptyValue("syscont-engine".into()))
        );
    }
}
