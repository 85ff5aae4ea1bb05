//! One exit-code policy for every daemon: sysexits(3) where it has a word for it, so a
//! supervisor can tell "do not restart, fix the file" (`RestartPreventExitStatus=78`) from
//! "something failed, try again".

use std::fmt;
use std::process::ExitCode;

/// How a daemon ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Exit {
    /// 0: stopped by SIGTERM/SIGINT, or `--check` found the configuration good.
    Ok,
    /// 1: anything else (sockets, bus, netlink, devices, privileges); a restart may help.
    Failure,
    /// 2: the command line could not be parsed. clap exits with it before any daemon
    /// code runs; listed so the policy is complete in one place.
    Usage,
    /// 78 (EX_CONFIG): the configuration file, a file it names, or a value of the command
    /// line is wrong; nothing was set up, and restarting will not help.
    Config,
}

impl Exit {
    /// The process exit status.
    pub const fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Failure => 1,
            Exit::Usage => 2,
            Exit::Config => 78,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e.code())
    }
}

/// A daemon's error: what it says, and which [`Exit`] it is. Every daemon's top-level error
/// type implements this, so [`crate::main`] ends them all the same way.
pub trait Failure: fmt::Display {
    /// The exit this error means.
    fn exit(&self) -> Exit;
}

/// Ends a daemon: `Ok` exits 0; an error is printed on stderr as `NAME: error` and exits with
/// its [`Failure::exit`] code. Use it as the whole of `main`.
pub fn finish<E: Failure>(name: &str, result: Result<(), E>) -> ExitCode {
    match result {
        Ok(()) => Exit::Ok.into(),
        Err(e) => {
            eprintln!("{name}: {e}");
            e.exit().into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    enum E {
        Conf,
        Io,
    }
    impl fmt::Display for E {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("x")
        }
    }
    impl Failure for E {
        fn exit(&self) -> Exit {
            match self {
                E::Conf => Exit::Config,
                E::Io => Exit::Failure,
            }
        }
    }

    #[test]
    fn the_policy_s_numbers() {
        // sysexits(3) EX_CONFIG is 78; clap's usage errors are 2.
        assert_eq!(
            [Exit::Ok, Exit::Failure, Exit::Usage, Exit::Config].map(Exit::code),
            [0, 1, 2, 78]
        );
    }

    #[test]
    fn errors_map_through_their_exit() {
        // ExitCode has no PartialEq with numbers; compare through the Debug of the same
        // conversion.
        let dbg = |c: ExitCode| format!("{c:?}");
        assert_eq!(dbg(finish::<E>("t", Ok(()))), dbg(ExitCode::from(0)));
        assert_eq!(dbg(finish("t", Err(E::Conf))), dbg(ExitCode::from(78)));
        assert_eq!(dbg(finish("t", Err(E::Io))), dbg(ExitCode::from(1)));
    }
}
