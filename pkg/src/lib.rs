//! Packaging: man pages and shell completions generated from the clap definitions the
//! binaries themselves parse with (so `--help` and the man page cannot disagree), and a
//! Debian package assembled with `dpkg-deb`.
//!
//! The package installs the four daemons in /usr/sbin and `mipsock` in /usr/bin, the
//! systemd units, the sample configurations in /etc/nemo as conffiles, SHISA's rc.d
//! scripts in /usr/share/nemo/rc.d, the man pages and bash completions. Its maintainer
//! scripts create /var/lib/nemo and start, enable or restart nothing: an operator reviews
//! /etc/nemo first.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::CommandFactory;

/// The programs, their man section and their clap definition.
pub fn programs() -> Vec<(&'static str, &'static str, clap::Command)> {
    vec![
        ("had", "8", had::shell::Cli::command()),
        ("mrd", "8", mrd::shell::Cli::command()),
        ("mnd", "8", mrd::shell::mnd_command()),
        ("babymdd", "8", babymdd::cli::Args::command()),
        ("nemonetd", "8", nemonetd::config::Cli::command()),
        ("mipsock", "1", mipsock::cli::Cli::command()),
    ]
}

/// Writes `NAME.SECTION` man pages into `dir`; returns their paths.
///
/// # Errors
/// Writing the files.
pub fn man_pages(dir: &Path) -> io::Result<Vec<PathBuf>> {
    fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    for (name, section, cmd) in programs() {
        let cmd = cmd.name(name);
        let mut page = Vec::new();
        clap_mangen::Man::new(cmd)
            .section(section)
            .render(&mut page)?;
        let path = dir.join(format!("{name}.{section}"));
        fs::write(&path, page)?;
        written.push(path);
    }
    Ok(written)
}

/// Writes bash completions (one file per program, named after it) into `dir`.
///
/// # Errors
/// Writing the files.
pub fn completions(dir: &Path) -> io::Result<Vec<PathBuf>> {
    fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    for (name, _, mut cmd) in programs() {
        let mut out = Vec::new();
        clap_complete::generate(clap_complete::Shell::Bash, &mut cmd, name, &mut out);
        let path = dir.join(name);
        fs::write(&path, out)?;
        written.push(path);
    }
    Ok(written)
}

/// The sample configurations installed in /etc/nemo (conffiles).
pub const CONFFILES: [&str; 5] = [
    "had.conf",
    "mrd.conf",
    "mnd.conf",
    "auth-database",
    "prefixtable.cf",
];

/// What `deb` needs: where the built binaries and the repository's etc/ are.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// Directory holding had, mrd, babymdd, nemonetd and mipsock (e.g. target/release).
    pub bin_dir: PathBuf,
    /// The repository's etc/ (samples, rc.d, systemd).
    pub etc: PathBuf,
    /// Package version.
    pub version: String,
    /// Debian architecture (`dpkg --print-architecture`).
    pub arch: String,
    /// `dpkg-deb -Z` compression (`xz`, `gzip`, `zstd`, `none`); `None`: dpkg's default.
    /// Debug builds weigh hundreds of megabytes: tests pass `none`.
    pub compression: Option<String>,
}

/// Builds `nemo_VERSION_ARCH.deb` in `out`; returns its path.
///
/// # Errors
/// A missing input (named), writing the tree, or `dpkg-deb` failing (its output).
pub fn deb(inputs: &Inputs, out: &Path) -> io::Result<PathBuf> {
    let stage = out.join("stage");
    if stage.exists() {
        fs::remove_dir_all(&stage)?;
    }
    let put = |from: &Path, to: &str, mode: u32| -> io::Result<()> {
        let dst = stage.join(to);
        if let Some(parent) = dst.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::copy(from, &dst)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", from.display())))?;
        set_mode(&dst, mode)
    };
    for name in ["had", "mrd", "mnd", "babymdd", "nemonetd"] {
        put(
            &inputs.bin_dir.join(name),
            &format!("usr/sbin/{name}"),
            0o755,
        )?;
    }
    put(&inputs.bin_dir.join("mipsock"), "usr/bin/mipsock", 0o755)?;
    for f in CONFFILES {
        put(&inputs.etc.join(f), &format!("etc/nemo/{f}"), 0o644)?;
    }
    for dir in ["systemd", "rc.d"] {
        for entry in fs::read_dir(inputs.etc.join(dir))? {
            let path = entry?.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_string();
            match dir {
                "systemd" => put(&path, &format!("lib/systemd/system/{name}"), 0o644)?,
                _ => put(&path, &format!("usr/share/nemo/rc.d/{name}"), 0o755)?,
            }
        }
    }
    man_pages(&stage.join("usr/share/man/man8"))?;
    // mipsock(1) belongs in man1.
    fs::create_dir_all(stage.join("usr/share/man/man1"))?;
    fs::rename(
        stage.join("usr/share/man/man8/mipsock.1"),
        stage.join("usr/share/man/man1/mipsock.1"),
    )?;
    completions(&stage.join("usr/share/bash-completion/completions"))?;
    let debian = stage.join("DEBIAN");
    fs::create_dir_all(&debian)?;
    fs::write(debian.join("control"), control(inputs))?;
    let conffiles: String = CONFFILES
        .iter()
        .map(|f| format!("/etc/nemo/{f}\n"))
        .collect();
    fs::write(debian.join("conffiles"), conffiles)?;
    fs::write(debian.join("postinst"), POSTINST)?;
    set_mode(&debian.join("postinst"), 0o755)?;
    let deb = out.join(format!("nemo_{}_{}.deb", inputs.version, inputs.arch));
    let mut build = Command::new("dpkg-deb");
    build.arg("--root-owner-group");
    if let Some(z) = &inputs.compression {
        build.arg(format!("-Z{z}"));
    }
    let result = build.arg("--build").arg(&stage).arg(&deb).output()?;
    if !result.status.success() {
        return Err(io::Error::other(format!(
            "dpkg-deb --build: {}{}",
            String::from_utf8_lossy(&result.stdout),
            String::from_utf8_lossy(&result.stderr)
        )));
    }
    Ok(deb)
}

fn control(inputs: &Inputs) -> String {
    format!(
        "Package: nemo\n\
         Version: {}\n\
         Architecture: {}\n\
         Maintainer: nemo maintainers <nemo@example.invalid>\n\
         Section: net\n\
         Priority: optional\n\
         Depends: nftables, iproute2\n\
         Recommends: radvd\n\
         Description: dual-stack network mobility (NEMO, Mobile IPv6, DSMIPv6) for Linux\n \
         A drop-in replacement for KAME SHISA's mobility daemons: had (home agent), mrd\n \
         (mobile router), babymdd (movement detection), nemonetd (tunnels and routes) and\n \
         the mipsock bus tool. Nothing is started at installation: review /etc/nemo, then\n \
         enable the units (had and nemonetd-ha, or mrd, babymdd and nemonetd-mr).\n",
        inputs.version, inputs.arch
    )
}

/// Creates the state directory; never starts, enables or restarts a service.
const POSTINST: &str = "#!/bin/sh
set -e
if [ \"$1\" = configure ]; then
    install -d -m 0700 /var/lib/nemo
fi
exit 0
";

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}
