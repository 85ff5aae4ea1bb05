//! Helpers for tests that run the real `mipsock` binary: children are killed on drop,
//! readiness is a line the child prints, never a sleep.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

/// Generous upper bound for things that normally take milliseconds; only a hang hits it.
pub const PATIENCE: Duration = Duration::from_secs(10);

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_mipsock")
}

/// A running `mipsock` process, killed and reaped on drop.
pub struct Proc {
    pub child: Child,
    pub stdout: Receiver<String>,
    pub stderr: Receiver<String>,
    what: String,
}

fn pump(stream: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

impl Proc {
    pub fn spawn(bus: &Path, args: &[&str]) -> Proc {
        let mut child = Command::new(bin())
            .arg("--bus-dir")
            .arg(bus)
            .args(args)
            .env_remove("MIPSOCK_DIR")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start mipsock");
        let stdout = pump(child.stdout.take().unwrap());
        let stderr = pump(child.stderr.take().unwrap());
        Proc {
            child,
            stdout,
            stderr,
            what: args.join(" "),
        }
    }

    /// Starts `mipsock tap ARGS` and waits for its ready line; returns it and its socket.
    pub fn tap(bus: &Path, args: &[&str]) -> (Proc, PathBuf) {
        let mut all = vec!["tap"];
        all.extend_from_slice(args);
        let p = Proc::spawn(bus, &all);
        let ready = p.expect_stderr(|l| l.starts_with("ready: tapping "));
        let sock = PathBuf::from(ready.trim_start_matches("ready: tapping "));
        assert!(sock.exists(), "tap socket {} missing", sock.display());
        (p, sock)
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    #[track_caller]
    fn expect(rx: &Receiver<String>, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PATIENCE;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if pred(&line) => return line,
                Ok(line) => seen.push(line),
                Err(RecvTimeoutError::Timeout) => panic!("{what}: no matching line; saw {seen:#?}"),
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("{what}: process ended without a matching line; saw {seen:#?}")
                }
            }
        }
    }

    /// The first stdout line matching `pred` (earlier lines are discarded).
    #[track_caller]
    pub fn expect_stdout(&self, pred: impl Fn(&str) -> bool) -> String {
        Self::expect(
            &self.stdout,
            &format!("stdout of `mipsock {}`", self.what),
            pred,
        )
    }

    /// The first stderr line matching `pred`.
    #[track_caller]
    pub fn expect_stderr(&self, pred: impl Fn(&str) -> bool) -> String {
        Self::expect(
            &self.stderr,
            &format!("stderr of `mipsock {}`", self.what),
            pred,
        )
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), sig).expect("signal child");
    }

    /// Waits for the process to exit by itself.
    pub fn wait(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "`mipsock {}` did not exit",
                self.what
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // SIGCONT first: a stopped child cannot die of SIGKILL until... it can, but be sure.
        let pid = nix::unistd::Pid::from_raw(self.pid());
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `mipsock ARGS` to completion (bounded by PATIENCE) and returns its output.
pub fn run(bus: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(bin());
    cmd.arg("--bus-dir")
        .arg(bus)
        .args(args)
        .env_remove("MIPSOCK_DIR")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
    let mut child = cmd.spawn().expect("start mipsock");
    if let Some(input) = stdin {
        use std::io::Write;
        let mut w = child.stdin.take().unwrap();
        w.write_all(input.as_bytes()).unwrap();
    }
    // Reading the pipes to the end also bounds the wait: the child exits or is killed.
    let guard = KillAfter::new(child.id() as i32);
    let out = child.wait_with_output().expect("wait mipsock");
    drop(guard);
    out
}

/// Kills a pid if it is still running after PATIENCE (a hang guard, not a timing check).
struct KillAfter {
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl KillAfter {
    fn new(pid: i32) -> Self {
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let d = done.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + PATIENCE;
            while Instant::now() < deadline {
                if d.load(std::sync::atomic::Ordering::Relaxed) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        });
        KillAfter { done }
    }
}

impl Drop for KillAfter {
    fn drop(&mut self) {
        self.done.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

pub fn stdout_of(out: &Output) -> String {
    assert!(
        out.status.success(),
        "mipsock failed: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A fresh bus directory (removed on drop).
pub fn bus() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("mipsock-test")
        .tempdir()
        .expect("tempdir")
}
