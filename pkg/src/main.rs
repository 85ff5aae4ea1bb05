//! `nemo-pkg`: man pages, completions and the Debian package (see the library).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// nemo-pkg: man pages and bash completions from the daemons' own command-line
/// definitions, and the Debian package.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Write had.8, mrd.8, mnd.8, babymdd.8, nemonetd.8 and mipsock.1 into DIR.
    Man { dir: PathBuf },
    /// Write bash completions for each program into DIR.
    Completions { dir: PathBuf },
    /// Build nemo_VERSION_ARCH.deb in OUT from the built binaries (dpkg-deb).
    Deb {
        /// Where the package (and its staging tree) goes.
        #[arg(long)]
        out: PathBuf,
        /// The directory with had, mrd, babymdd, nemonetd and mipsock.
        #[arg(long, default_value = "target/release")]
        bin_dir: PathBuf,
        /// The repository's etc/.
        #[arg(long, default_value = "etc")]
        etc: PathBuf,
        /// Debian architecture [default: `dpkg --print-architecture`].
        #[arg(long)]
        arch: Option<String>,
        /// Compression of the package (`xz`, `gzip`, `zstd`, `none`) [default: dpkg's].
        #[arg(long)]
        compression: Option<String>,
    },
}

fn main() -> ExitCode {
    let result = match Cli::parse().cmd {
        Cmd::Man { dir } => nemo_pkg::man_pages(&dir).map(|w| format!("{} man pages", w.len())),
        Cmd::Completions { dir } => {
            nemo_pkg::completions(&dir).map(|w| format!("{} completion files", w.len()))
        }
        Cmd::Deb {
            out,
            bin_dir,
            etc,
            arch,
            compression,
        } => {
            let arch = arch.unwrap_or_else(|| {
                std::process::Command::new("dpkg")
                    .arg("--print-architecture")
                    .output()
                    .ok()
                    .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                    .filter(|a| !a.is_empty())
                    .unwrap_or_else(|| "amd64".into())
            });
            let inputs = nemo_pkg::Inputs {
                bin_dir,
                etc,
                version: env!("CARGO_PKG_VERSION").into(),
                arch,
                compression,
            };
            nemo_pkg::deb(&inputs, &out).map(|p| p.display().to_string())
        }
    };
    match result {
        Ok(what) => {
            println!("{what}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("nemo-pkg: {e}");
            ExitCode::FAILURE
        }
    }
}
