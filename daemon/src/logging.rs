//! Logging: tracing on stderr (ANSI colours only when stderr is a terminal, plain
//! `key=value` in journald and test log files), `RUST_LOG` winning over the default
//! directives, and a filter that can be switched to debug once the configuration is read
//! (`debug N;` in had.conf / mrd.conf) or re-read on SIGHUP.

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, reload};

/// The log filter, switchable (e.g. to debug after the configuration is read).
#[derive(Debug)]
pub struct Logging {
    handle: reload::Handle<EnvFilter, Registry>,
    from_env: bool,
}

/// The default directives: `debug` with `-d`, else `info`.
pub fn level(debug: bool) -> &'static str {
    if debug { "debug" } else { "info" }
}

/// Sets up tracing on stderr: `RUST_LOG` if set, else `info` (`debug` with `-d`).
pub fn init_logging(debug: bool) -> Logging {
    Logging::init(level(debug))
}

impl Logging {
    /// Sets up tracing on stderr: `RUST_LOG` if set, else `default` (filter directives).
    pub fn init(default: &str) -> Logging {
        let from_env = std::env::var_os("RUST_LOG").is_some_and(|v| !v.is_empty());
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
        let (filter, handle) = reload::Layer::new(filter);
        tracing_subscriber::registry()
            .with(filter)
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    // Colours only for a person at a terminal, not in journald or a log file.
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
            )
            // A second set-up in one process (tests) keeps the first subscriber.
            .try_init()
            .ok();
        Logging { handle, from_env }
    }

    /// Replaces the filter directives (no effect when `RUST_LOG` chose the filter).
    pub fn set(&self, directives: &str) {
        if !self.from_env {
            let _ = self.handle.modify(|f| *f = EnvFilter::new(directives));
        }
    }

    /// Debug logs on or off (no effect when `RUST_LOG` chose the filter).
    pub fn set_debug(&self, on: bool) {
        self.set(level(on));
    }
}
