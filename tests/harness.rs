//! The harness itself: namespaces and veth links work, traffic crosses them, and nothing
//! is left behind when the guards drop.

use std::process::Command;

use tests::{Netns, require_root, veth};

fn namespaces() -> String {
    String::from_utf8_lossy(
        &Command::new("ip")
            .args(["netns", "list"])
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned()
}

#[test]
fn namespaces_link_and_disappear() {
    require_root();
    let (a_name, b_name, mut child);
    {
        let a = Netns::new("harness");
        let b = Netns::new("harness");
        a_name = a.name().to_string();
        b_name = b.name().to_string();
        veth(&a, "eth0", &b, "eth0");
        a.ip(&["addr", "add", "2001:db8:ff::1/64", "dev", "eth0", "nodad"]);
        b.ip(&["addr", "add", "2001:db8:ff::2/64", "dev", "eth0", "nodad"]);
        let ping = a.try_exec("ping", &["-6", "-c", "1", "-W", "2", "2001:db8:ff::2"]);
        assert!(
            ping.status.success(),
            "ping across the veth failed: {}",
            String::from_utf8_lossy(&ping.stdout)
        );
        // A process left running inside is killed by the guard.
        let mut sleeper = a.command(std::path::Path::new("sleep"));
        sleeper.arg("600");
        child = sleeper.spawn().unwrap();
        assert!(namespaces().contains(&a_name));
    }
    // Killed with the namespace: reap it.
    let _ = child.wait();
    let list = namespaces();
    assert!(!list.contains(&a_name), "{a_name} left behind: {list}");
    assert!(!list.contains(&b_name), "{b_name} left behind: {list}");
}
