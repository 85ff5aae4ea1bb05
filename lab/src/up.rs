//! `nemo-lab up` leaves the whole network running for exploring; `move`, `plug`,
//! `unplug` and `link` change it; `down` removes it. The state between these commands is
//! a JSON file in a state directory (`/run/nemo-lab` unless `--state` says otherwise):
//! the namespaces' prefix, the processes started, the commands that stop the rc.d
//! scripts, where each of the MR's uplinks is attached, and the work directory.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::net::{Result, err, now_ns};
use crate::topo::{Access, Lab, Options};

/// Default state directory.
pub const STATE_DIR: &str = "/run/nemo-lab";

/// What `nemo-lab up` leaves for the commands after it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpState {
    /// `nl-<pid>`.
    pub prefix: String,
    /// The nodes, in creation order (the namespaces are `<prefix>-<node>`).
    pub nodes: Vec<String>,
    /// Processes the lab started directly (radvd, the tap, emulators).
    pub pids: Vec<i32>,
    /// Commands that stop what the rc.d scripts started.
    pub stop_cmds: Vec<Vec<String>>,
    /// Where the MR's eth0 and eth1 are attached.
    pub attached: [Option<Access>; 2],
    /// Whether each is plugged.
    pub plugged: [bool; 2],
    /// Configs, buses, logs.
    pub work: PathBuf,
    /// The link emulator's profile on the uplinks, if any.
    pub link: Option<String>,
}

fn state_file(dir: &Path) -> PathBuf {
    dir.join("state.json")
}

fn load(dir: &Path) -> Result<UpState> {
    let path = state_file(dir);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        crate::net::Error::Msg(format!(
            "no lab is up ({}: {e}); start one with `nemo-lab up`",
            path.display()
        ))
    })?;
    serde_json::from_str(&text)
        .map_err(|e| crate::net::Error::Msg(format!("{}: {e}", path.display())))
}

fn save(dir: &Path, state: &UpState) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let text =
        serde_json::to_string_pretty(state).map_err(|e| crate::net::Error::Msg(e.to_string()))?;
    std::fs::write(state_file(dir), text)?;
    Ok(())
}

/// The MR's uplink by name.
pub fn uplink(name: &str) -> Result<usize> {
    match name {
        "eth0" => Ok(0),
        "eth1" => Ok(1),
        _ => err(format!("no uplink {name:?}: the MR has eth0 and eth1")),
    }
}

/// `nemo-lab up`: builds the lab, starts the daemons, plugs eth0 into network A, waits
/// for the registration, prints how to reach each node, and leaves it all running.
pub fn up(opts: Options, state_dir: &Path) -> Result<()> {
    if state_file(state_dir).exists() {
        return err(format!(
            "a lab is up already ({}); `nemo-lab down` first",
            state_file(state_dir).display()
        ));
    }
    let link = opts.link.clone();
    let work = opts.work.clone();
    let mut lab = Lab::build(opts)?;
    lab.start_daemons()?;
    let t = now_ns();
    lab.plug(0, true)?;
    let ok = crate::handover::wait_registered(&lab, t, Access::V6, Duration::from_secs(20))?;
    if !ok {
        return err(format!(
            "the MR did not register; logs in {} (the lab is removed)",
            work.display()
        ));
    }
    let (prefix, nodes, pids, stop_cmds) = lab.nss.detach();
    let state = UpState {
        prefix: prefix.clone(),
        nodes: nodes.clone(),
        pids,
        stop_cmds,
        attached: lab.attached,
        plugged: lab.plugged,
        work: work.clone(),
        link,
    };
    save(state_dir, &state)?;
    println!("The lab is up; the MR is registered from network A (eth0).");
    println!("Nodes (a shell in one: sudo ip netns exec NAMESPACE bash):");
    for node in &nodes {
        println!("  {node:5} {prefix}-{node}");
    }
    println!(
        "Signalling on the MR's bus: sudo {} -b {} tap",
        lab.bin("mipsock").display(),
        lab.bus("mr").display()
    );
    println!(
        "Bindings:                   sudo {} -b {} state",
        lab.bin("mipsock").display(),
        lab.bus("ha").display()
    );
    println!("Logs and configs:           {}", work.display());
    println!(
        "Change it: nemo-lab move eth0 a2 | plug eth1 | unplug eth0 | link eth0 lte; remove it: nemo-lab down"
    );
    Ok(())
}

/// Runs `f` on the lab that is up, then saves where its uplinks are.
fn with_lab(opts: Options, state_dir: &Path, f: impl FnOnce(&mut Lab) -> Result<()>) -> Result<()> {
    let mut state = load(state_dir)?;
    let opts = Options {
        work: state.work.clone(),
        link: state.link.clone(),
        ..opts
    };
    let mut lab = Lab::attach(opts, &state);
    let r = f(&mut lab);
    lab.nss.keep_running();
    state.attached = lab.attached;
    state.plugged = lab.plugged;
    save(state_dir, &state)?;
    r
}

/// `nemo-lab move IFACE NET`.
pub fn move_to(opts: Options, state_dir: &Path, iface: &str, to: &str) -> Result<()> {
    let i = uplink(iface)?;
    let Some(access) = Access::named(to) else {
        return err(format!("no network {to:?}: a, a2, b, nat or home"));
    };
    with_lab(opts, state_dir, |lab| {
        lab.move_link(i, access)?;
        println!("{iface} is on the {}", access.describe());
        Ok(())
    })
}

/// `nemo-lab plug IFACE` / `unplug IFACE`.
pub fn plug(opts: Options, state_dir: &Path, iface: &str, up: bool) -> Result<()> {
    let i = uplink(iface)?;
    with_lab(opts, state_dir, |lab| {
        lab.plug(i, up)?;
        println!("{iface} {}", if up { "plugged in" } else { "unplugged" });
        Ok(())
    })
}

/// `nemo-lab link IFACE PROFILE`.
pub fn link(opts: Options, state_dir: &Path, iface: &str, profile: &str) -> Result<()> {
    let i = uplink(iface)?;
    with_lab(opts, state_dir, |lab| {
        lab.set_link(i, profile)?;
        println!("{iface}: {profile}");
        Ok(())
    })
}

/// `nemo-lab down`: stops everything `up` started and deletes the namespaces; the work
/// directory goes too unless `keep`.
pub fn down(opts: Options, state_dir: &Path, keep: bool) -> Result<()> {
    let state = load(state_dir)?;
    let opts = Options {
        work: state.work.clone(),
        link: state.link.clone(),
        ..opts
    };
    let mut lab = Lab::attach(opts, &state);
    let errors = lab.nss.teardown();
    std::fs::remove_file(state_file(state_dir))?;
    if !keep {
        let _ = std::fs::remove_dir_all(&state.work);
    }
    for e in &errors {
        eprintln!("nemo-lab down: {e}");
    }
    if errors.is_empty() {
        println!("The lab is down.");
        Ok(())
    } else {
        err(format!("{} teardown errors", errors.len()))
    }
}
