//! The PTP follower against a real leader: linuxptp's `ptp4l` as grandmaster (software
//! timestamps) in one network namespace, `streamlib ptp` in another, joined by a veth pair.
//! Both namespaces read the same kernel clock, so the true offset is zero and what
//! `streamlib ptp` measures against the system clock is the follower's own error. Needs root
//! and ptp4l (CI installs linuxptp and must run it: STREAMLIB_REQUIRE_PRIVILEGED); skips
//! elsewhere. The leader never touches the clock (it only leads), and the follower computes
//! PTP time without setting or slewing anything.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn skip(why: &str) -> bool {
    if std::env::var_os("STREAMLIB_REQUIRE_PRIVILEGED").is_some() {
        panic!("the PTP test must run here but cannot: {why}");
    }
    eprintln!("SKIPPED the PTP test: {why}");
    true
}

fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().expect("ip (iproute2)");
    assert!(status.success(), "ip {args:?}");
}

/// Two namespaces and a veth pair, removed on drop with whatever runs in them.
struct Link {
    leader: String,
    follower: String,
    ptp4l: Option<Child>,
}

impl Drop for Link {
    fn drop(&mut self) {
        if let Some(mut child) = self.ptp4l.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in [&self.leader, &self.follower] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

#[test]
fn the_ptp_follower_locks_to_ptp4l_and_stays_within_100_us() {
    let root = Command::new("id").arg("-u").output().map(|o| o.stdout == b"0\n").unwrap_or(false);
    if !root && skip("not root (network namespaces)") {
        return;
    }
    let Ok(ptp4l) = which("ptp4l") else {
        skip("no ptp4l (apt install linuxptp)");
        return;
    };
    let tag = std::process::id() % 100_000;
    let mut link = Link { leader: format!("slptpgm{tag}"), follower: format!("slptpfo{tag}"), ptp4l: None };
    let (gm_if, fo_if) = (format!("slgm{tag}"), format!("slfo{tag}"));
    ip(&["netns", "add", &link.leader]);
    ip(&["netns", "add", &link.follower]);
    ip(&["link", "add", &gm_if, "type", "veth", "peer", "name", &fo_if]);
    for (ns, iface, addr) in [(&link.leader, &gm_if, "10.77.0.1/24"), (&link.follower, &fo_if, "10.77.0.2/24")] {
        ip(&["link", "set", iface, "netns", ns]);
        ip(&["-n", ns, "addr", "add", addr, "dev", iface]);
        ip(&["-n", ns, "link", "set", iface, "up"]);
        ip(&["-n", ns, "link", "set", "lo", "up"]);
        // PTP's event and general messages go to 224.0.1.129.
        ip(&["-n", ns, "route", "add", "224.0.0.0/4", "dev", iface]);
    }
    // The grandmaster: software timestamps, UDP over IPv4, leading only, with SMPTE ST 2059-2's
    // default message rates (8 syncs and delay requests a second, 4 announces).
    let mut child = Command::new("ip")
        .args(["netns", "exec", &link.leader, &ptp4l, "-i", &gm_if, "-S", "-4", "-m", "--masterOnly", "1"])
        .args(["--logSyncInterval", "-3", "--logMinDelayReqInterval", "-3", "--logAnnounceInterval", "-2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("ptp4l");
    let stdout = child.stdout.take().expect("ptp4l stdout");
    link.ptp4l = Some(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("assuming the grand master role") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(20)).expect("ptp4l became grandmaster");
    // The follower, from the moment a leader is there.
    let json = std::env::temp_dir().join(format!("streamlib-ptp-{tag}.json"));
    let start = Instant::now();
    let out = Command::new("ip")
        .args(["netns", "exec", &link.follower, env!("CARGO_BIN_EXE_streamlib"), "ptp", "--interface", &fo_if])
        .args(["--lock-timeout", "10", "--seconds", "60", "--json"])
        .arg(&json)
        .output()
        .expect("streamlib ptp");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{text}");
    assert!(out.status.success(), "{text}");
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("JSON");
    let figure = |k: &str| doc[k].as_f64().unwrap_or(f64::NAN);
    println!(
        "locked in {:.2} s; |error| p50 {:.1} µs, p95 {:.1} µs, max {:.1} µs over {} samples ({:.0} s in all)",
        figure("lock_seconds"),
        figure("error_us_p50"),
        figure("error_us_p95"),
        figure("error_us_max"),
        figure("samples"),
        start.elapsed().as_secs_f64()
    );
    assert!(figure("lock_seconds") <= 10.0, "lock within 10 s");
    // Issue 16's targets. (GStreamer's own estimate missed them in some runs here: one bad
    // observation skewed its regression and it ran off by ~1.8 ms for a second; the clock reads
    // a line of our own through its observations, outliers left out: docs/time.md.)
    assert!(figure("error_us_p95") <= 100.0, "p95 error {} µs", figure("error_us_p95"));
    assert!(figure("error_us_max") <= 500.0, "max error {} µs", figure("error_us_max"));
    assert_eq!(doc["status"]["steps"], 0, "no step after lock: {}", doc["status"]);
    assert_eq!(doc["status"]["state"], "locked");
    assert_eq!(doc["status"]["timescale"], "tai");
    assert!(doc["status"]["path_delay_ns"].as_u64().is_some(), "path delay measured: {}", doc["status"]);
}

fn which(program: &str) -> Result<String, ()> {
    for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin", "/usr/local/bin"] {
        let path = format!("{dir}/{program}");
        if std::path::Path::new(&path).is_file() {
            return Ok(path);
        }
    }
    Err(())
}
