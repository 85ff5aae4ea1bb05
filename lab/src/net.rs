//! Network namespaces, veth links and processes inside them, with a teardown that always
//! runs (Drop, errors, SIGINT/SIGTERM) and keeps going after an error.

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

/// Errors of the lab.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A command failed.
    #[error("{cmd}: {why}")]
    Command {
        /// The command line.
        cmd: String,
        /// Exit status and output.
        why: String,
    },
    /// SIGINT or SIGTERM arrived.
    #[error("interrupted")]
    Interrupted,
    /// Something else, in words.
    #[error("{0}")]
    Msg(String),
    /// I/O.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The lab's result type.
pub type Result<T> = std::result::Result<T, Error>;

/// Shorthand for an [`Error::Msg`].
pub fn err<T>(msg: impl Into<String>) -> Result<T> {
    Err(Error::Msg(msg.into()))
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: nix::libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// SIGINT and SIGTERM set a flag that every wait loop checks, so the lab stops at the next
/// step and tears everything down.
pub fn install_signal_handlers() {
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for sig in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic.
        unsafe {
            let _ = sigaction(sig, &action);
        }
    }
}

/// Whether SIGINT/SIGTERM arrived.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// `Err(Interrupted)` once a signal arrived.
pub fn check() -> Result<()> {
    if interrupted() {
        Err(Error::Interrupted)
    } else {
        Ok(())
    }
}

/// Sleeps, waking early (with an error) on SIGINT/SIGTERM.
pub fn sleep(d: Duration) -> Result<()> {
    let end = Instant::now() + d;
    loop {
        check()?;
        let now = Instant::now();
        if now >= end {
            return Ok(());
        }
        std::thread::sleep((end - now).min(Duration::from_millis(20)));
    }
}

/// Polls `cond` every 20 ms until it holds (true) or `timeout` passes (false).
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> Result<bool> {
    let end = Instant::now() + timeout;
    loop {
        if cond() {
            return Ok(true);
        }
        check()?;
        if Instant::now() >= end {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether we run as root.
pub fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

/// Runs a command; its stdout on success, an error with its output otherwise.
pub fn run(program: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::Command {
            cmd: format!("{program} {}", args.join(" ")),
            why: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(Error::Command {
            cmd: format!("{program} {}", args.join(" ")),
            why: format!(
                "{}: {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout).trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Wall clock in nanoseconds since the UNIX epoch (the daemons' logs and the bus use it).
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// A network namespace of the lab (`nl-<pid>-<node>`). Deleted by [`Namespaces::teardown`].
#[derive(Debug, Clone)]
pub struct Ns {
    /// The namespace's name.
    pub name: String,
    /// The node's name in the topology (`cn`, `ha`, `mr`, ...).
    pub node: String,
}

impl Ns {
    /// `ip -n NAME ARGS`.
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        let mut full = vec!["-n", &self.name];
        full.extend_from_slice(args);
        run("ip", &full)
    }

    /// `ip netns exec NAME program args`, failing on a non-zero exit.
    pub fn exec(&self, program: &str, args: &[&str]) -> Result<String> {
        let mut full = vec!["netns", "exec", &self.name, program];
        full.extend_from_slice(args);
        run("ip", &full)
    }

    /// Like [`Ns::exec`] but returns the output whatever the exit status.
    pub fn try_exec(&self, program: &str, args: &[&str]) -> Result<Output> {
        Ok(Command::new("ip")
            .args(["netns", "exec", &self.name, program])
            .args(args)
            .stdin(Stdio::null())
            .output()?)
    }

    /// Sets sysctls inside the namespace (one `sysctl` process for all).
    pub fn sysctls(&self, kv: &[(&str, &str)]) -> Result<()> {
        let args: Vec<String> = kv.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut a: Vec<&str> = vec!["-qw"];
        a.extend(args.iter().map(String::as_str));
        self.exec("sysctl", &a).map(|_| ())
    }

    /// Starts `program args` inside the namespace, stdout and stderr into `log`, in its own
    /// process group (a Ctrl-C on the terminal reaches the lab only, which stops the
    /// daemons in order).
    pub fn spawn(&self, program: &Path, args: &[&str], log: &Path) -> Result<Child> {
        use std::os::unix::process::CommandExt;
        let file = File::create(log)?;
        let err = file.try_clone()?;
        let child = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .arg(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(file))
            .stderr(Stdio::from(err))
            .process_group(0)
            .spawn()
            .map_err(|e| Error::Command {
                cmd: format!("{} {}", program.display(), args.join(" ")),
                why: e.to_string(),
            })?;
        Ok(child)
    }
}

/// A process the lab started, with its name and log.
#[derive(Debug)]
pub struct Proc {
    /// What it is (`had`, `mrd@mr`, ...).
    pub name: String,
    /// The child (`ip netns exec` execs the program in place, so this is its pid).
    pub child: Child,
    /// Its log file.
    pub log: std::path::PathBuf,
}

impl Proc {
    /// Sends a signal.
    pub fn signal(&self, sig: Signal) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), sig);
    }

    /// Whether it still runs.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Every namespace and process the lab created; teardown on drop.
#[derive(Debug)]
pub struct Namespaces {
    prefix: String,
    list: Vec<Ns>,
    /// Processes of an earlier `nemo-lab` (`up`), by pid: killed at teardown too.
    orphans: Vec<i32>,
    /// Processes, stopped (SIGTERM, then SIGKILL) in reverse start order at teardown.
    pub procs: Vec<Proc>,
    /// Commands that stop what the lab started indirectly (`rc.d/nemo_mr stop`), run in
    /// reverse order first at teardown.
    pub stop_cmds: Vec<Vec<String>>,
    done: bool,
}

impl Default for Namespaces {
    fn default() -> Self {
        Self::new()
    }
}

impl Namespaces {
    /// An empty set with the prefix `nl-<pid>`.
    pub fn new() -> Namespaces {
        Namespaces {
            prefix: format!("nl-{}", std::process::id()),
            list: Vec::new(),
            orphans: Vec::new(),
            procs: Vec::new(),
            stop_cmds: Vec::new(),
            done: false,
        }
    }

    /// Creates `nl-<pid>-<node>` with loopback up.
    pub fn add(&mut self, node: &str) -> Result<Ns> {
        let ns = Ns {
            name: format!("{}-{node}", self.prefix),
            node: node.to_string(),
        };
        run("ip", &["netns", "add", &ns.name])?;
        self.list.push(ns.clone());
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Stops every process and deletes every namespace, in reverse order, continuing after
    /// errors; returns them all. Runs once (later calls return nothing).
    pub fn teardown(&mut self) -> Vec<String> {
        let mut errors = Vec::new();
        if self.done {
            return errors;
        }
        self.done = true;
        for cmd in self.stop_cmds.iter().rev() {
            let args: Vec<&str> = cmd[1..].iter().map(String::as_str).collect();
            if let Err(e) = run(&cmd[0], &args) {
                errors.push(e.to_string());
            }
        }
        // An earlier run's processes: SIGTERM, a moment, SIGKILL.
        for pid in &self.orphans {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(*pid), Signal::SIGTERM);
        }
        if !self.orphans.is_empty() {
            std::thread::sleep(Duration::from_millis(500));
            for pid in &self.orphans {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(*pid), Signal::SIGKILL);
            }
        }
        // SIGTERM to all (mrd deregisters, nemonetd removes its routes), then wait a
        // little and SIGKILL the rest.
        for p in self.procs.iter().rev() {
            p.signal(Signal::SIGTERM);
        }
        let end = Instant::now() + Duration::from_millis(2500);
        for p in self.procs.iter_mut() {
            while p.alive() && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(20));
            }
            if p.alive() {
                let _ = p.child.kill();
            }
            let _ = p.child.wait();
        }
        for ns in self.list.iter().rev() {
            if let Ok(out) = run("ip", &["netns", "pids", &ns.name]) {
                for pid in out.split_whitespace() {
                    if let Ok(pid) = pid.parse::<i32>() {
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(pid),
                            Signal::SIGKILL,
                        );
                    }
                }
            }
            if let Err(e) = run("ip", &["netns", "del", &ns.name]) {
                errors.push(format!("deleting namespace {}: {e}", ns.name));
            }
        }
        errors
    }

    /// Leaves everything running (`nemo-lab up`): no teardown on drop. Returns what a
    /// later `nemo-lab` needs to stop it: the prefix, the namespaces' nodes, the pids and
    /// the stop commands.
    pub fn detach(&mut self) -> (String, Vec<String>, Vec<i32>, Vec<Vec<String>>) {
        self.done = true;
        (
            self.prefix.clone(),
            self.list.iter().map(|n| n.node.clone()).collect(),
            self.procs.iter().map(|p| p.child.id() as i32).collect(),
            self.stop_cmds.clone(),
        )
    }

    /// Takes over what an earlier `nemo-lab up` left running; teardown stops it all.
    pub fn adopt(state: &crate::up::UpState) -> Namespaces {
        Namespaces {
            prefix: state.prefix.clone(),
            list: state
                .nodes
                .iter()
                .map(|node| Ns {
                    name: format!("{}-{node}", state.prefix),
                    node: node.clone(),
                })
                .collect(),
            orphans: state.pids.clone(),
            procs: Vec::new(),
            stop_cmds: state.stop_cmds.clone(),
            done: false,
        }
    }

    /// Like [`Namespaces::detach`] for an adopted set: leaves it running after a command
    /// that only changed it (`move`, `plug`, `link`).
    pub fn keep_running(&mut self) {
        self.done = true;
    }

    /// The namespaces' names.
    pub fn names(&self) -> Vec<String> {
        self.list.iter().map(|n| n.name.clone()).collect()
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for e in self.teardown() {
            eprintln!("nemo-lab: teardown: {e}");
        }
    }
}

/// A veth pair from `a`'s `a_if` to `b`'s `b_if`, both ends up.
pub fn veth(a: &Ns, a_if: &str, b: &Ns, b_if: &str) -> Result<()> {
    run(
        "ip",
        &[
            "link", "add", a_if, "netns", &a.name, "type", "veth", "peer", "name", b_if, "netns",
            &b.name,
        ],
    )?;
    a.ip(&["link", "set", a_if, "up"])?;
    b.ip(&["link", "set", b_if, "up"])?;
    Ok(())
}
