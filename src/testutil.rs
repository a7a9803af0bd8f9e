//! Helpers shared by the unit tests.

/// Whether the test runs as root. Outside CI a test that needs root is
/// skipped with a visible reason; in CI (where it runs as root) a missing
/// root fails loudly.
pub fn root_or_skip(what: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    assert!(std::env::var_os("CI").is_none(), "{what} needs root in CI");
    eprintln!("SKIPPED: {what} needs root");
    false
}
