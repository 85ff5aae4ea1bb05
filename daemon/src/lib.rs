//! # nemo-daemon — the shell every NEMO daemon shares
//!
//! had, mrd, babymdd and nemonetd each keep their own command line (SHISA's flags) and
//! their own event loop; what a supervisor, an operator or a script sees of them as
//! processes is the same, and lives here:
//!
//! * [`logging`]: tracing on stderr, `RUST_LOG` over the flags, debug switchable at runtime;
//! * [`exit`]: one exit-code policy ([`Exit`]: 0, 1, 2 for usage, 78 for configuration),
//!   each daemon's error type implementing [`Failure`], and [`finish`] ending `main`;
//! * [`signals`]: SIGTERM/SIGINT stop, SIGHUP re-reads the configuration, SIGUSR1 dumps
//!   state, as one async stream ([`Signals`]);
//! * [`notify`]: `READY=1` to `$NOTIFY_SOCKET` (systemd `Type=notify`);
//! * [`block_on`]: the tokio runtime every daemon runs on;
//! * [`check`]: the `--check` report.
//!
//! No dependency on the mipsock bus: the bus's own CLI uses the logging too.

pub mod check;
pub mod exit;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod signals;

pub use exit::{Exit, Failure, finish};
pub use logging::{Logging, init_logging};
pub use signals::{Signal, Signals, Stop};

/// Runs `future` to completion on the runtime every daemon uses: current-thread, IO and
/// time drivers on. One thread is plenty for the signalling and the bus (a few messages a
/// second); nemonetd's packet work runs on threads of its own.
///
/// # Errors
/// The runtime could not be built (out of file descriptors or memory).
pub fn block_on<F: std::future::Future>(future: F) -> std::io::Result<F::Output> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(rt.block_on(future))
}

#[cfg(test)]
mod tests {
    #[test]
    fn block_on_runs_with_timers_and_io() {
        let v = super::block_on(async {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            let (a, b) = tokio::net::UnixDatagram::pair().unwrap();
            a.send(b"x").await.unwrap();
            let mut buf = [0; 1];
            b.recv(&mut buf).await.unwrap();
            buf[0]
        })
        .unwrap();
        assert_eq!(v, b'x');
    }
}
