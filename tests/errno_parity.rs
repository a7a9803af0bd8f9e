//! Opens that are not emulated (and writes to emulated files) get exactly
//! what the kernel gives outside the filter: the same script runs under the
//! runtime under test and under the reference (the same system container
//! without the supervisor), same image, same user, and the
//! outputs must be identical.

mod common;

use common::*;

fn parity(user: Option<&str>) -> (Out, Out) {
    let env = common::env().expect("checked by the caller");
    let script = ["python3", "/fixtures/errno_cases.py"];
    let mk = |r: Run| {
        let r = r.limited().fixtures();
        match user {
            Some(u) => r.user(u),
            None => r,
        }
    };
    let ours = mk(env.run(BOOKWORM)).cmd(&script).ok();
    let base = mk(env.run_baseline(BOOKWORM)).cmd(&script).ok();
    let diff = kv_diff(&ours.stdout, &base.stdout);
    assert!(
        diff.is_empty(),
        "errno differs from the reference:\n  {}\n--- {} ---\n{ours}\n--- reference ---\n{base}",
        diff.join("\n  "),
        env.runtime
    );
    assert_eq!(ours.stdout, base.stdout);
    (ours, base)
}

/// The cases really exercise the errors they are named after (checked on the
/// plain-runc side, so the script cannot silently test nothing).
#[track_caller]
fn expect(base: &Out, case: &str, want: &str) {
    let kv = kv_lines(&base.stdout);
    assert_eq!(
        kv.get(case).map(String::as_str),
        Some(want),
        "case {case} under the reference:\n{base}"
    );
}

#[test]
fn errno_parity_as_root() {
    let _env = require_env!();
    let (_, base) = parity(None);
    for (case, want) in [
        ("enoent", "ENOENT"),
        ("enoent_proc_dirfd", "ENOENT"),
        ("enotdir_meminfo_component", "ENOTDIR"),
        ("eloop_nofollow", "ELOOP"),
        ("efault_ptr", "EFAULT"),
        ("enametoolong_path", "ENAMETOOLONG"),
        ("creat_new", "ok"),
        ("creat_excl_existing", "EEXIST"),
        ("excl_meminfo", "EEXIST"),
        ("directory_meminfo", "ENOTDIR"),
        ("directory_on_file", "ENOTDIR"),
        ("path_meminfo", "ok"),
        ("path_missing", "ENOENT"),
        ("tmpfile_rdonly_einval", "EINVAL"),
        ("o2_beneath_escape", "EXDEV"),
        ("o2_beneath_absolute", "EXDEV"),
        ("o2_no_symlinks_proc_self", "ELOOP"),
        ("o2_no_symlinks_self_meminfo", "ELOOP"),
        ("o2_no_symlinks_link", "ELOOP"),
        ("o2_no_magiclinks_fd", "ELOOP"),
        ("o2_no_xdev_meminfo", "EXDEV"),
        ("o2_size_small", "EINVAL"),
        ("o2_size_big_nonzero", "E2BIG"),
        ("o2_unknown_flags", "EINVAL"),
        ("o2_unknown_resolve", "EINVAL"),
        ("o2_mode_without_creat", "EINVAL"),
    ] {
        expect(&base, case, want);
    }
}

#[test]
fn errno_parity_as_non_root() {
    let _env = require_env!();
    let (_, base) = parity(Some("1000"));
    for (case, want) in [
        ("eacces_shadow", "EACCES"),
        ("eacces_root_home", "EACCES"),
        ("eperm_noatime", "EPERM"),
        ("creat_in_etc", "EACCES"),
        ("wronly_meminfo", "EACCES"),
    ] {
        expect(&base, case, want);
    }
}
