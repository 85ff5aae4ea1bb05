//! `--check` (like `nginx -t`), the same in every daemon: read the configuration and the
//! files it names exactly as a start would, print each warning on stderr, then one summary
//! line on stdout, and exit 0 ([`crate::Exit::Ok`]) when the daemon would start, 78
//! ([`crate::Exit::Config`]) with the error (`file:line:column: ...`) when not. It opens no
//! socket, touches no file, needs no privileges.

use std::fmt::Display;
use std::path::Path;

/// A warning of the configuration, as `--check` prints it (stderr).
pub fn warning(w: &dyn Display) {
    eprintln!("warning: {w}");
}

/// The summary line for a configuration that would start, for `subject` (the interface,
/// or what else the configuration was read for); `config` is `None` when the daemon was
/// given no file and only its command line was checked.
pub fn ok_line(config: Option<&Path>, subject: &str, summary: &str) -> String {
    match config {
        Some(c) => format!("{}: configuration OK for {subject}: {summary}", c.display()),
        None => format!("no configuration file: command line OK for {subject}: {summary}"),
    }
}

/// Prints [`ok_line`] on stdout.
pub fn ok(config: Option<&Path>, subject: &str, summary: &str) {
    println!("{}", ok_line(config, subject, summary));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_line_names_the_file_and_the_subject() {
        assert_eq!(
            ok_line(Some(Path::new("/etc/nemo/mrd.conf")), "mip0", "3 warnings"),
            "/etc/nemo/mrd.conf: configuration OK for mip0: 3 warnings"
        );
        assert!(ok_line(None, "eth0", "x").starts_with("no configuration file: "));
    }
}
