//! Helpers for end-to-end tests: network namespaces that are always removed, veth links,
//! commands and daemons run inside a namespace and killed when the test ends, and the
//! paths of the workspace's binaries.
//!
//! Everything here needs root (CI runs as root). Namespace names carry a per-test prefix and
//! the process id, so tests run in parallel and a crashed run's leftovers are recognisable
//! (`ip netns list | grep ^nemo-`).

pub mod setup;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Panics with a clear message unless running as root.
pub fn require_root() {
    let uid = nix_uid();
    assert_eq!(
        uid, 0,
        "end-to-end tests build network namespaces and need root (CI runs them as root)"
    );
}

fn nix_uid() -> u32 {
    // /proc/self/status avoids a libc dependency for one number.
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(u32::MAX)
}

/// Whether `program` is installed (on `$PATH`).
pub fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Whether this kernel has SRv6 lightweight tunnels (`CONFIG_IPV6_SEG6_LWTUNNEL`), which
/// nemonetd's kernel data plane is built on: asked once, by adding an `encap seg6` route
/// in a namespace of its own. Kernels without them exist among ours (6.18 built without
/// it, 2026-12-04); there `--dataplane auto` chooses TUN, and the tests of the kernel path
/// itself say they are skipped.
pub fn kernel_srv6() -> bool {
    static SRV6: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SRV6.get_or_init(|| {
        let ns = format!("srv6probe-{}", std::process::id());
        let ip = |args: &[&str]| {
            Command::new("ip")
                .args(args)
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if !ip(&["netns", "add", &ns]) {
            return false;
        }
        let ok = ip(&[
            "-n", &ns, "link", "add", "p0", "type", "veth", "peer", "name", "p1",
        ]) && ip(&["-n", &ns, "link", "set", "p0", "up"])
            && ip(&[
                "-n",
                &ns,
                "-6",
                "route",
                "add",
                "2001:db8:ffff::1/128",
                "encap",
                "seg6",
                "mode",
                "encap",
                "segs",
                "2001:db8:ffff::2",
                "dev",
                "p0",
            ]);
        ip(&["netns", "del", &ns]);
        ok
    })
}

/// Whether this kernel takes nemonetd's BPF encapsulation: a tc program attached by tcx
/// (Linux 6.6), asked once by attaching a program that passes everything to the loopback
/// device of a network namespace made for the question (on a thread of its own, so the
/// test process's namespace is untouched). nemonetd loads its own programs and says so if
/// the verifier refuses them; this asks whether the hook exists.
pub fn kernel_bpf() -> bool {
    static BPF: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *BPF.get_or_init(|| {
        std::thread::spawn(|| {
            if nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).is_err() {
                return false;
            }
            // mov64 r0, 0; exit.
            let insns: [u64; 2] = [0x0000_0000_0000_00b7, 0x0000_0000_0000_0095];
            let license = c"BSD";
            // bpf_attr for BPF_PROG_LOAD: prog_type 3 (sched_cls), insn_cnt, insns, license.
            let mut load = [0u64; 16];
            load[0] = 3 | (2 << 32);
            load[1] = insns.as_ptr() as u64;
            load[2] = license.as_ptr() as u64;
            let sys = |cmd: i64, attr: &mut [u64]| {
                // SAFETY: a zero-padded bpf_attr whose pointers outlive the call.
                unsafe {
                    nix::libc::syscall(
                        nix::libc::SYS_bpf,
                        cmd,
                        attr.as_mut_ptr(),
                        std::mem::size_of_val(attr),
                    )
                }
            };
            let prog = sys(5, &mut load);
            if prog < 0 {
                return false;
            }
            // BPF_LINK_CREATE: prog_fd, target_ifindex 1 (lo), attach type 46 (tcx ingress).
            let mut link = [0u64; 6];
            link[0] = (prog as u64) | (1 << 32);
            link[1] = 46;
            let linked = sys(28, &mut link);
            // SAFETY: both descriptors are ours, opened above; closing them detaches the
            // program, and the namespace goes with the thread.
            unsafe {
                if linked >= 0 {
                    nix::libc::close(linked as i32);
                }
                nix::libc::close(prog as i32);
            }
            linked >= 0
        })
        .join()
        .unwrap_or(false)
    })
}

/// Whether this kernel can run nemonetd's kernel data plane at all: BPF or SRv6.
pub fn kernel_dataplane() -> bool {
    kernel_bpf() || kernel_srv6()
}

/// For a test of the kernel data plane itself: true (and a line saying so) when this
/// kernel cannot run it ([`kernel_dataplane`]).
pub fn skip_without_kernel_dataplane(test: &str) -> bool {
    if kernel_dataplane() {
        return false;
    }
    eprintln!(
        "{test}: skipped: this kernel has neither tcx BPF programs (Linux 6.6) nor SRv6 \
         lightweight tunnels (CONFIG_IPV6_SEG6_LWTUNNEL), which nemonetd's kernel data plane \
         needs; --dataplane auto uses TUN here"
    );
    true
}

/// For a test of the SRv6 encapsulation itself: true (and a line saying so) when this
/// kernel has none ([`kernel_srv6`]).
pub fn skip_without_srv6(test: &str) -> bool {
    if kernel_srv6() {
        return false;
    }
    eprintln!(
        "{test}: skipped: this kernel has no SRv6 lightweight tunnels (CONFIG_IPV6_SEG6_LWTUNNEL)"
    );
    true
}

/// Runs a command, panicking with its output if it fails.
pub fn run(program: &str, args: &[&str]) -> Output {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {} failed ({}): {}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A network namespace, deleted (with every process left in it) when dropped.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates `nemo-<tag>-<pid>-<n>` with loopback up.
    pub fn new(tag: &str) -> Netns {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("nemo-{tag}-{}-{n}", std::process::id());
        run("ip", &["netns", "add", &name]);
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip netns exec NAME program args...`, panicking on failure.
    pub fn exec(&self, program: &str, args: &[&str]) -> Output {
        let mut full = vec!["netns", "exec", &self.name, program];
        full.extend_from_slice(args);
        run("ip", &full)
    }

    /// Runs the scapy `script` (written to `dir/name`) with `args` in this namespace and
    /// returns what it printed; panics with its stderr if it fails. Debian's python3 has
    /// python3-scapy (a python3 earlier on PATH may not).
    pub fn scapy(&self, dir: &Path, name: &str, script: &str, args: &[&str]) -> String {
        let path = dir.join(name);
        std::fs::write(&path, script).expect("write the scapy script");
        let python = if Path::new("/usr/bin/python3").exists() {
            "/usr/bin/python3"
        } else {
            "python3"
        };
        let mut full = vec![path.to_str().expect("a UTF-8 path")];
        full.extend_from_slice(args);
        let out = self.try_exec(python, &full);
        assert!(
            out.status.success(),
            "scapy {name} (apt-get install python3-scapy): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// Like [`Netns::exec`] but returns the output whatever the exit status.
    pub fn try_exec(&self, program: &str, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name, program])
            .args(args)
            .output()
            .expect("run ip netns exec")
    }

    /// `ip ARGS` inside the namespace.
    pub fn ip(&self, args: &[&str]) -> Output {
        self.exec("ip", args)
    }

    /// `sh -c SCRIPT` inside the namespace, panicking on failure; its standard output.
    pub fn sh(&self, script: &str) -> String {
        String::from_utf8_lossy(&self.exec("sh", &["-c", script]).stdout).into_owned()
    }

    /// Runs `f` on a thread that has joined this namespace with `setns(2)` (sockets made
    /// there stay in the namespace) and returns its result.
    pub fn within<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/run/netns/{}", self.name);
        std::thread::scope(|s| {
            s.spawn(|| {
                let file = std::fs::File::open(&path).expect("netns file");
                nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
                f()
            })
            .join()
            .expect("namespace thread panicked")
        })
    }

    /// `ip ARGS` inside the namespace, its standard output as text.
    pub fn ip_text(&self, args: &[&str]) -> String {
        String::from_utf8_lossy(&self.ip(args).stdout).into_owned()
    }

    /// The interface index of `ifname` inside the namespace.
    pub fn ifindex(&self, ifname: &str) -> u32 {
        let out = self.exec("cat", &[&format!("/sys/class/net/{ifname}/ifindex")]);
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    }

    /// Writes a sysctl inside the namespace.
    pub fn sysctl(&self, key: &str, value: &str) {
        self.exec("sysctl", &["-qw", &format!("{key}={value}")]);
    }

    /// A command prepared to run inside the namespace (for [`Daemon::spawn`]).
    pub fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }

    /// A counter from `/proc/net/snmp6` inside the namespace (e.g. `Icmp6OutErrors`).
    pub fn snmp6(&self, counter: &str) -> u64 {
        let out = self.exec("cat", &["/proc/net/snmp6"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| {
                let mut it = l.split_whitespace();
                (it.next() == Some(counter)).then(|| it.next()?.parse().ok())?
            })
            .unwrap_or_else(|| panic!("no {counter} in /proc/net/snmp6"))
    }

    /// Any SNMP counter of the namespace by `nstat`'s name (IPv4's too, e.g.
    /// `UdpOutDatagrams`, which `/proc/net/snmp` has in another layout).
    pub fn nstat(&self, counter: &str) -> u64 {
        // `-s`: leave nstat's history file alone; a line `NAME VALUE RATE`.
        let out = self.exec("nstat", &["-asz", counter]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| {
                let mut it = l.split_whitespace();
                (it.next() == Some(counter)).then(|| it.next()?.parse().ok())?
            })
            .unwrap_or_else(|| panic!("no {counter} in nstat's output"))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Kill what is left inside, then delete; keep going on errors (teardown must not
        // stop half way), and never panic in drop.
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-9", pid]).status();
            }
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Joins two namespaces with a veth pair and brings both ends up.
pub fn veth(a: &Netns, a_if: &str, b: &Netns, b_if: &str) {
    let tmp_a = format!("v{}a", COUNTER.fetch_add(1, Ordering::Relaxed));
    let tmp_b = format!("v{}b", COUNTER.fetch_add(1, Ordering::Relaxed));
    let tmp_a = format!("{tmp_a}{}", std::process::id() % 100_000);
    let tmp_b = format!("{tmp_b}{}", std::process::id() % 100_000);
    run(
        "ip",
        &[
            "link", "add", &tmp_a, "type", "veth", "peer", "name", &tmp_b,
        ],
    );
    run(
        "ip",
        &["link", "set", &tmp_a, "netns", a.name(), "name", a_if],
    );
    run(
        "ip",
        &["link", "set", &tmp_b, "netns", b.name(), "name", b_if],
    );
    a.ip(&["link", "set", a_if, "up"]);
    b.ip(&["link", "set", b_if, "up"]);
}

/// A process started for a test, killed (SIGKILL) and reaped when dropped.
#[derive(Debug)]
pub struct Daemon {
    child: Child,
    name: String,
}

impl Daemon {
    /// Starts `cmd` with stdout/stderr captured into `log` (a file path).
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Daemon {
        let file = std::fs::File::create(log).expect("create log file");
        let err = file.try_clone().unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::from(file))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Daemon {
            child,
            name: name.to_string(),
        }
    }

    /// The process id (of `ip netns exec`, which execs the daemon in place).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal by name (`TERM`, `KILL`, `HUP`).
    pub fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status();
    }

    /// Waits for the process to exit, up to `timeout`; returns its exit code if it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status.code().unwrap_or(-1));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Waits for the process to exit, however long it takes.
    pub fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        self.child.wait()
    }

    /// The daemon's name given at spawn.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `cond` every 20 ms until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Path of a binary of this workspace (`had`, `mrd`, `mipsock`, ...), built by
/// `cargo test --workspace` next to the test executable.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target profile directory");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not built: run the whole workspace's tests (`cargo test --workspace`) or \
         `cargo build --workspace` first",
        path.display()
    );
    path
}

/// The workspace root (for `etc/` samples).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}
