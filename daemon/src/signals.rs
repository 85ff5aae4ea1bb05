//! The signals every daemon answers, with one meaning each:
//!
//! * SIGTERM, SIGINT: stop (each daemon its own way: had keeps its bindings, mrd
//!   deregisters first, nemonetd tears its routes down, babymdd just exits);
//! * SIGHUP: read the configuration again; a bad one is reported and the running one kept;
//! * SIGUSR1: dump the state to the log.
//!
//! All four handlers are installed together by [`Signals::install`], before a daemon says it
//! is ready: from then on none of these signals kills it (SIGUSR1's default action would).

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::signal::unix::{SignalKind, signal};

/// Which stop signal came (for the log line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stop {
    /// SIGTERM (systemd, rc.d `stop`, `kill`).
    Term,
    /// SIGINT (Ctrl-C in a terminal).
    Int,
}

/// A signal, by what it asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signal {
    /// SIGTERM or SIGINT: stop.
    Stop(Stop),
    /// SIGHUP: re-read the configuration.
    Reload,
    /// SIGUSR1: dump the state to the log.
    DumpState,
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Signal::Stop(Stop::Term) => "SIGTERM",
            Signal::Stop(Stop::Int) => "SIGINT",
            Signal::Reload => "SIGHUP",
            Signal::DumpState => "SIGUSR1",
        })
    }
}

/// The four handlers as one stream of [`Signal`]s. Needs a tokio runtime with IO enabled.
#[derive(Debug)]
pub struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
    usr1: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installs the handlers for SIGTERM, SIGINT, SIGHUP and SIGUSR1.
    ///
    /// # Errors
    /// A handler could not be installed (the error names which).
    pub fn install() -> std::io::Result<Signals> {
        let one = |kind, name: &str| {
            signal(kind).map_err(|e| std::io::Error::new(e.kind(), format!("{name} handler: {e}")))
        };
        Ok(Signals {
            term: one(SignalKind::terminate(), "SIGTERM")?,
            int: one(SignalKind::interrupt(), "SIGINT")?,
            hup: one(SignalKind::hangup(), "SIGHUP")?,
            usr1: one(SignalKind::user_defined1(), "SIGUSR1")?,
        })
    }

    /// The next signal. Stop signals come first when several are pending. Cancel-safe (for
    /// `tokio::select!`): a signal is taken only when this returns it.
    pub async fn recv(&mut self) -> Signal {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Polls for the next signal (see [`Signals::recv`]).
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Signal> {
        // `None` only once the runtime is shutting down: nothing more will come.
        let ready = |p: Poll<Option<()>>| matches!(p, Poll::Ready(Some(())));
        if ready(self.term.poll_recv(cx)) {
            return Poll::Ready(Signal::Stop(Stop::Term));
        }
        if ready(self.int.poll_recv(cx)) {
            return Poll::Ready(Signal::Stop(Stop::Int));
        }
        if ready(self.hup.poll_recv(cx)) {
            return Poll::Ready(Signal::Reload);
        }
        if ready(self.usr1.poll_recv(cx)) {
            return Poll::Ready(Signal::DumpState);
        }
        Poll::Pending
    }
}

impl futures::Stream for Signals {
    type Item = Signal;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Signal>> {
        self.get_mut().poll_recv(cx).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures::StreamExt;
    use nix::sys::signal::{Signal as Nix, raise};

    use super::*;

    // One test raises them all: the handlers are process-wide, so two tests raising signals
    // in parallel would see each other's.
    #[test]
    fn each_signal_arrives_with_its_meaning_and_none_kills_the_process() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut s = Signals::install().unwrap();
            for (raised, meaning, name) in [
                (Nix::SIGHUP, Signal::Reload, "SIGHUP"),
                (Nix::SIGUSR1, Signal::DumpState, "SIGUSR1"),
                (Nix::SIGINT, Signal::Stop(Stop::Int), "SIGINT"),
                (Nix::SIGTERM, Signal::Stop(Stop::Term), "SIGTERM"),
            ] {
                raise(raised).unwrap();
                let got = tokio::time::timeout(Duration::from_secs(5), s.next())
                    .await
                    .unwrap_or_else(|_| panic!("{name} not received"));
                assert_eq!(got, Some(meaning));
                assert_eq!(meaning.to_string(), name);
            }
            // Both pending at once: the stop is served first.
            raise(Nix::SIGUSR1).unwrap();
            raise(Nix::SIGTERM).unwrap();
            // Let the signal driver see both before polling.
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert_eq!(s.recv().await, Signal::Stop(Stop::Term));
            assert_eq!(s.recv().await, Signal::DumpState);
        });
    }
}
