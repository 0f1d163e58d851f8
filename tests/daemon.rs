//! `poolwatch run` as a daemon against real parts: a mosquitto broker, a pseudo-terminal serial pair
//! (socat), a NOTIFY_SOCKET, SIGHUP reloads, a source that goes away, MJPEG on stdin, the preview
//! server. Needs `mosquitto` and `socat` (`.ci/run` installs them).

mod common;

use poolwatch::device::sink::nmea;
use std::io::{BufRead, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn signal(child: &Child, sig: &str) {
    assert!(Command::new("kill").args([sig, &child.id().to_string()]).status().unwrap().success());
}

/// The daemon with its stdout lines on a channel and its log in a file.
struct Daemon {
    child: Child,
    lines: Receiver<String>,
    log: PathBuf,
}

impl Daemon {
    fn start(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Daemon {
        let log = dir.join(format!("daemon-{}.log", free_port()));
        let mut cmd = common::poolwatch();
        cmd.arg("run").args(args).env("RUST_LOG", "info").stdin(Stdio::null()).stdout(Stdio::piped());
        cmd.stderr(std::fs::File::create(&log).unwrap());
        for (k, v) in env {
            cmd.env(k, v);
        }
        Daemon::wrap(cmd.spawn().unwrap(), log)
    }

    /// `poolwatch run --stdin mjpeg`: frames come through the returned pipe; its log goes to `dir`.
    fn on_stdin(dir: &Path, env: &[(&str, &str)]) -> (Daemon, std::process::ChildStdin) {
        let log = dir.join(format!("daemon-{}.log", free_port()));
        let mut cmd = common::poolwatch();
        cmd.args(["run", "--stdin", "mjpeg"]).env("RUST_LOG", "info").stdin(Stdio::piped()).stdout(Stdio::piped());
        cmd.stderr(std::fs::File::create(&log).unwrap());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let stdin = child.stdin.take().unwrap();
        (Daemon::wrap(child, log), stdin)
    }

    fn wrap(mut child: Child, log: PathBuf) -> Daemon {
        let out = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Daemon { child, lines, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for a JSON line that satisfies `pred`.
    fn wait_line(&self, what: &str, secs: u64, pred: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let end = Instant::now() + common::deadline(secs as f64);
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            if let Ok(l) = self.lines.recv_timeout(left) {
                let v: serde_json::Value = serde_json::from_str(&l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}"));
                if pred(&v) {
                    return v;
                }
            }
        }
        panic!("no line with {what} in {secs} s; log:\n{}", self.log());
    }

    fn wait_log(&self, needle: &str, secs: u64) {
        let end = Instant::now() + common::deadline(secs as f64);
        while Instant::now() < end {
            if self.log().contains(needle) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("log never said {needle:?}:\n{}", self.log());
    }

    /// Waits (`secs` of a real CPU) for the daemon to exit by itself; its exit code.
    fn wait_exit(mut self, secs: f64) -> Option<i32> {
        let end = Instant::now() + common::deadline(secs);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.code();
            }
            assert!(Instant::now() < end, "no exit; log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, and the exit status.
    fn stop(mut self) -> i32 {
        signal(&self.child, "-TERM");
        let end = Instant::now() + common::deadline(20.0);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.code().unwrap_or(-1);
            }
            assert!(Instant::now() < end, "no exit 20 s after SIGTERM; log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_config(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("poolwatch.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// Tracks confirmed after 3 frames and kept through 5 misses: the output tests need swimmers and events
/// soon, also under qemu, where frames are processed about a second apart.
const QUICK_TRACKS: &str = "[tracking]\nmin_hits = 3\nmax_missed = 5\n";

const LANES: &str = "[lanes]\ncorners = [[0, 479], [639, 479], [639, 0], [0, 0]]\ncount = 4\nlength_m = 25.0\n";

fn tool(name: &str) -> String {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p.to_string_lossy().into_owned();
        }
    }
    panic!("{name} is not installed (apt-get install {name}); .ci/run installs it");
}

// ---------------------------------------------------------------- MQTT

struct Broker {
    child: Child,
}

impl Broker {
    fn start(port: u16) -> Broker {
        let child = Command::new(tool("mosquitto")).args(["-p", &port.to_string()]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        let end = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < end, "mosquitto did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Broker { child }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A subscriber to everything; keeps every message (topic, payload, retained) it got.
struct Inbox {
    rx: Receiver<(String, String, bool)>,
    seen: std::cell::RefCell<Vec<(String, String, bool)>>,
}

fn subscribe(port: u16, id: &str) -> Inbox {
    use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
    let mut opts = MqttOptions::new(id, "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(5));
    let (client, mut conn) = Client::new(opts, 100);
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for ev in conn.iter() {
            match ev {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    client.subscribe("poolwatch/#", QoS::AtLeastOnce).unwrap();
                    client.subscribe("homeassistant/#", QoS::AtLeastOnce).unwrap();
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let msg = (p.topic.clone(), String::from_utf8_lossy(&p.payload).into_owned(), p.retain);
                    if tx.send(msg).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    });
    Inbox { rx, seen: Default::default() }
}

/// The first message (in arrival order, including ones already received) that satisfies `pred`.
fn wait_msg(inbox: &Inbox, secs: u64, pred: impl Fn(&str, &str, bool) -> bool) -> (String, String, bool) {
    wait_msg_from(inbox, 0, secs, pred).1
}

/// Like [`wait_msg`], looking only at messages from position `start` on; also returns the position.
fn wait_msg_from(inbox: &Inbox, start: usize, secs: u64, pred: impl Fn(&str, &str, bool) -> bool) -> (usize, (String, String, bool)) {
    let end = Instant::now() + common::deadline(secs as f64);
    let mut i = start;
    loop {
        {
            let seen = inbox.seen.borrow();
            while i < seen.len() {
                let m = &seen[i];
                if pred(&m.0, &m.1, m.2) {
                    return (i, m.clone());
                }
                i += 1;
            }
        }
        let Some(left) = end.checked_duration_since(Instant::now()) else { break };
        if let Ok(m) = inbox.rx.recv_timeout(left) {
            inbox.seen.borrow_mut().push(m);
        }
    }
    let mut topics: Vec<String> = inbox.seen.borrow().iter().map(|m| m.0.clone()).collect();
    topics.sort();
    topics.dedup();
    panic!("no matching MQTT message in {secs} s; saw topics {topics:?}");
}

#[test]
fn mqtt_topics_retained_status_discovery_last_will_and_broker_restart() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut broker = Broker::start(port);
    let cfg = write_config(
        dir.path(),
        &format!(
            "name = \"test\"\n[stdout]\nenabled = false\n[source]\nkind = \"synth\"\nfps = 15.0\n[mqtt]\nhost = \"127.0.0.1\"\nport = {port}\nstats_interval_s = 1.0\n{LANES}{QUICK_TRACKS}"
        ),
    );
    let daemon = Daemon::start(dir.path(), &["--config", cfg.to_str().unwrap()], &[]);
    let rx = subscribe(port, "t1");
    let (_, status, _) = wait_msg(&rx, 30, |t, _, _| t == "poolwatch/test/status");
    assert_eq!(status, "online");
    let (_, det, _) = wait_msg(&rx, 30, |t, p, _| t == "poolwatch/test/detections" && p.contains("\"swimmers\":[{"));
    let det: serde_json::Value = serde_json::from_str(&det).unwrap();
    assert!(det["frame"].is_u64() && det["ts"].is_f64() && det["boxes"].is_array());
    let (_, ev, _) = wait_msg(&rx, 30, |t, _, _| t == "poolwatch/test/events");
    let ev: serde_json::Value = serde_json::from_str(&ev).unwrap();
    assert!(["new", "update", "end"].contains(&ev["event"].as_str().unwrap()), "{ev}");
    assert!(ev["id"].is_u64() && ev["lane"].as_u64().is_some_and(|l| (1..=4).contains(&l)), "{ev}");
    // Stats go out every second from the start; wait for one that counts processed frames (the first
    // may come before the model has finished its first frame on a slow CPU).
    let counted = |p: &str| serde_json::from_str::<serde_json::Value>(p).is_ok_and(|v| v["processed"].as_u64() > Some(0));
    let (_, stats, _) = wait_msg(&rx, 30, |t, p, _| t == "poolwatch/test/stats" && counted(p));
    let stats: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert!(stats["fps"].is_f64() && stats["captured"].as_u64() > Some(0), "{stats}");

    // A subscriber that comes later gets the retained state: status, lanes and discovery.
    let late = subscribe(port, "t2");
    let (_, s, r) = wait_msg(&late, 10, |t, _, _| t == "poolwatch/test/status");
    assert_eq!((s.as_str(), r), ("online", true));
    let (_, lanes, r) = wait_msg(&late, 10, |t, _, _| t == "poolwatch/test/lanes");
    let lanes: serde_json::Value = serde_json::from_str(&lanes).unwrap();
    assert!(r && lanes["lanes"].as_array().unwrap().len() == 4 && lanes["swimmers"].is_u64(), "{lanes}");
    let (_, disc, r) = wait_msg(&late, 10, |t, _, _| t == "homeassistant/binary_sensor/poolwatch_test/lane4/config");
    let disc: serde_json::Value = serde_json::from_str(&disc).unwrap();
    assert!(r && disc["state_topic"] == "poolwatch/test/lanes", "{disc}");
    wait_msg(&late, 10, |t, _, _| t == "homeassistant/sensor/poolwatch_test/swimmers/config");

    // The broker restarts (and forgets everything): the daemon reconnects and says it all again.
    let _ = broker.child.kill();
    let _ = broker.child.wait();
    std::thread::sleep(Duration::from_millis(1500));
    broker = Broker::start(port);
    let after = subscribe(port, "t3");
    let (_, s, _) = wait_msg(&after, 40, |t, _, _| t == "poolwatch/test/status");
    assert_eq!(s, "online");
    wait_msg(&after, 20, |t, _, _| t == "homeassistant/sensor/poolwatch_test/swimmers/config");
    wait_msg(&after, 20, |t, _, _| t == "poolwatch/test/detections");
    daemon.wait_log("reconnecting", 1);

    // A clean stop says offline (retained).
    assert_eq!(daemon.stop(), 0);
    wait_msg(&after, 10, |t, p, _| t == "poolwatch/test/status" && p == "offline");

    // A crash leaves the last will: offline.
    let watch = subscribe(port, "t4");
    let (i, (_, s, r)) = wait_msg_from(&watch, 0, 10, |t, _, _| t == "poolwatch/test/status");
    assert_eq!((s.as_str(), r), ("offline", true), "the goodbye is retained");
    let mut d2 = Daemon::start(dir.path(), &["--config", cfg.to_str().unwrap()], &[]);
    let (i, _) = wait_msg_from(&watch, i + 1, 30, |t, p, _| t == "poolwatch/test/status" && p == "online");
    d2.child.kill().unwrap();
    let _ = d2.child.wait();
    wait_msg_from(&watch, i + 1, 15, |t, p, _| t == "poolwatch/test/status" && p == "offline");
    drop(broker);
}

#[test]
fn an_outage_that_fills_the_buffer_still_ends_in_online_and_discovery() {
    // With a small buffer, 8 s without a broker filled the request queue with detections; the
    // republish of `online` and discovery on reconnect failed silently and Home Assistant showed the
    // device unavailable until a restart.
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut broker = Broker::start(port);
    let cfg = write_config(
        dir.path(),
        &format!(
            "name = \"small\"\n[stdout]\nenabled = false\n[source]\nkind = \"synth\"\nfps = 15.0\n[mqtt]\nhost = \"127.0.0.1\"\nport = {port}\nbuffer = 10\nstats_interval_s = 1.0\n{LANES}{QUICK_TRACKS}"
        ),
    );
    let daemon = Daemon::start(dir.path(), &["--config", cfg.to_str().unwrap()], &[]);
    let rx = subscribe(port, "o1");
    wait_msg(&rx, 30, |t, p, _| t == "poolwatch/small/status" && p == "online");
    wait_msg(&rx, 30, |t, _, _| t == "poolwatch/small/detections");
    let _ = broker.child.kill();
    let _ = broker.child.wait();
    std::thread::sleep(Duration::from_secs(8));
    broker = Broker::start(port);
    let after = subscribe(port, "o2");
    wait_msg(&after, 40, |t, p, _| t == "poolwatch/small/status" && p == "online");
    for lane in 1..=4 {
        let topic = format!("homeassistant/binary_sensor/poolwatch_small/lane{lane}/config");
        wait_msg(&after, 20, |t, _, _| t == topic);
    }
    wait_msg(&after, 20, |t, _, _| t == "poolwatch/small/lanes");
    wait_msg(&after, 30, |t, _, _| t == "poolwatch/small/events");
    // What the outage cost is counted.
    let (_, stats, _) = wait_msg(&after, 20, |t, _, _| t == "poolwatch/small/stats");
    let stats: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert!(stats["output_dropped"].as_u64() > Some(0), "{stats}");
    assert_eq!(daemon.stop(), 0);
    drop(broker);
}

#[test]
fn broker_down_at_start_is_retried_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = write_config(
        dir.path(),
        &format!("[source]\nkind = \"synth\"\nfps = 15.0\n[mqtt]\nhost = \"127.0.0.1\"\nport = {port}\n"),
    );
    let daemon = Daemon::start(dir.path(), &["--config", cfg.to_str().unwrap()], &[]);
    daemon.wait_line("a frame", 30, |v| v["frame"].is_u64());
    daemon.wait_log("reconnecting with back-off", 10);
    let _broker = Broker::start(port);
    let rx = subscribe(port, "late");
    wait_msg(&rx, 40, |t, p, _| t == "poolwatch/pool/status" && p == "online");
    assert_eq!(daemon.stop(), 0);
}

// ---------------------------------------------------------------- serial

struct PtyPair {
    child: Child,
}

impl PtyPair {
    /// `dev` is the daemon's end, `app` the timing system's.
    fn start(dev: &Path, app: &Path) -> PtyPair {
        let child = Command::new(tool("socat"))
            .arg(format!("pty,raw,echo=0,link={}", dev.display()))
            .arg(format!("pty,raw,echo=0,link={}", app.display()))
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let end = Instant::now() + Duration::from_secs(10);
        while !(dev.exists() && app.exists()) {
            assert!(Instant::now() < end, "socat made no pty pair");
            std::thread::sleep(Duration::from_millis(20));
        }
        PtyPair { child }
    }
}

impl Drop for PtyPair {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads sentences from the timing system's end for `secs`, checking every checksum.
fn read_sentences(app: &Path, secs: f64, until: impl Fn(&[Vec<String>]) -> bool) -> Vec<Vec<String>> {
    let f = std::fs::OpenOptions::new().read(true).open(app).unwrap();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(f).lines() {
            match l {
                Ok(l) => {
                    if tx.send(l).is_err() {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
    });
    let end = Instant::now() + common::deadline(secs);
    let mut out = Vec::new();
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            // A blank line is what ends a sentence cut short by a write that timed out (see the stall
            // test); a receiver skips it.
            Ok(l) if l.trim().is_empty() => {}
            Ok(l) => {
                let fields = nmea::parse(&l).unwrap_or_else(|e| panic!("{l:?}: {e}"));
                out.push(fields.iter().map(|s| s.to_string()).collect::<Vec<_>>());
                if until(&out) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    out
}

fn has(s: &[Vec<String>], kind: &str) -> bool {
    s.iter().any(|f| f[0] == kind)
}

/// A pty pair (the daemon's end and the timing system's, `app`) and the daemon writing sentences to it
/// from the synthetic camera with these `[source]` keys.
fn serial_daemon(dir: &Path, source: &str) -> (PtyPair, PathBuf, PathBuf, Daemon) {
    let (dev, app) = (dir.join("ttyPOOL"), dir.join("ttyTIMING"));
    let pty = PtyPair::start(&dev, &app);
    let cfg = write_config(
        dir,
        &format!(
            "[stdout]\nenabled = false\n[source]\nkind = \"synth\"\n{source}[serial]\nport = \"{}\"\nbaud = 57600\n{LANES}{QUICK_TRACKS}",
            dev.display()
        ),
    );
    let daemon = Daemon::start(dir, &["--config", cfg.to_str().unwrap()], &[]);
    (pty, dev, app, daemon)
}

#[test]
fn serial_sentences_over_a_pty_and_a_port_that_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let (pty, dev, app, daemon) = serial_daemon(dir.path(), "fps = 15.0\n");
    let ok_beat = |s: &[Vec<String>]| s.iter().any(|f| f[0] == "PWHBT" && f[4] == "OK");
    let all = |s: &[Vec<String>]| ["PWFRM", "PWDET", "PWLAN", "PWEVT"].iter().all(|k| has(s, k)) && ok_beat(s);
    let s = read_sentences(&app, 40.0, all);
    assert!(all(&s), "kinds seen: {:?}", s.iter().map(|f| f[0].clone()).collect::<std::collections::BTreeSet<_>>());
    let frm = s.iter().find(|f| f[0] == "PWFRM").unwrap();
    assert_eq!(frm.len(), 6, "{frm:?}");
    let det = s.iter().find(|f| f[0] == "PWDET").unwrap();
    assert_eq!(det.len(), 10, "{det:?}");
    let lane: u32 = det[3].parse().unwrap();
    assert!((1..=4).contains(&lane));
    let dist: f64 = det[4].parse().unwrap();
    assert!((0.0..=25.0).contains(&dist));
    let lan = s.iter().find(|f| f[0] == "PWLAN").unwrap();
    assert_eq!(lan.len(), 6, "frame + 4 lanes: {lan:?}");
    let hbt = s.iter().find(|f| f[0] == "PWHBT" && f[4] == "OK").unwrap();
    assert_eq!(hbt.len(), 6, "{hbt:?}");

    // The port goes away, the daemon keeps running, and it comes back.
    drop(pty);
    std::thread::sleep(Duration::from_secs(2));
    let mut daemon = daemon;
    assert!(daemon.child.try_wait().unwrap().is_none(), "the daemon keeps running without its port");
    let _pty = PtyPair::start(&dev, &app);
    let s = read_sentences(&app, 40.0, |s| has(s, "PWFRM") && has(s, "PWHBT"));
    assert!(has(&s, "PWFRM") && has(&s, "PWHBT"), "no sentences after the port came back; log:\n{}", daemon.log());
    assert!(daemon.log().contains("reopening") || daemon.log().contains("cannot open"), "{}", daemon.log());
    assert_eq!(daemon.stop(), 0);
}

#[test]
fn serial_port_that_stalls_is_warned_about_once_and_writing_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let (pty, _dev, app, daemon) = serial_daemon(dir.path(), "fps = 25.0\nswimmers = \"4..4\"\n");
    // One reader for the whole test, as a timing system has.
    let (tx, lines) = channel::<String>();
    let f = std::fs::OpenOptions::new().read(true).open(&app).unwrap();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(f).lines() {
            let Ok(l) = l else { break };
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    // Sentences until a PWFRM; the number of lines that do not parse.
    let frame = |secs: f64| -> (bool, usize) {
        let end = Instant::now() + common::deadline(secs);
        let mut bad = 0;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            let Ok(l) = lines.recv_timeout(left) else { break };
            match nmea::parse(&l) {
                Ok(f) if f[0] == "PWFRM" => return (true, bad),
                Ok(_) => {}
                Err(_) => bad += 1,
            }
        }
        (false, bad)
    };
    assert_eq!(frame(40.0), (true, 0), "sentences flow; log:\n{}", daemon.log());
    // The timing system stops reading (socat stopped): once the pty's buffers are full, every write
    // times out. Before, each reopen reset the back-off and the warning came every second.
    signal(&pty.child, "-STOP");
    let end = Instant::now() + common::deadline(120.0);
    while !daemon.log().contains("write failed") && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(daemon.log().contains("write failed"), "the stall is seen: {}", daemon.log());
    std::thread::sleep(common::deadline(6.0));
    let warnings = |log: &str| log.lines().filter(|l| l.contains("WARN") && l.contains("serial")).count();
    let log = daemon.log();
    assert_eq!(warnings(&log), 1, "one warning for the whole stall: {log}");
    signal(&pty.child, "-CONT");
    // What was buffered comes out, then new sentences: at most the one cut short by the timeout is broken.
    let mut bad = 0;
    let end = Instant::now() + common::deadline(30.0);
    while !daemon.log().contains("writing again") && Instant::now() < end {
        let (_, b) = frame(1.0);
        bad += b;
    }
    let log = daemon.log();
    assert!(log.contains("writing again"), "the return is logged: {log}");
    let (seen, b) = frame(20.0);
    assert!(seen && bad + b <= 1, "{} broken lines around the stall; log:\n{log}", bad + b);
    assert_eq!(warnings(&log), 1, "{log}");
    assert_eq!(daemon.stop(), 0);
}

// ---------------------------------------------------------------- systemd

#[test]
fn notify_socket_gets_readiness_and_a_watchdog_fed_only_while_frames_flow() {
    use std::os::unix::net::UnixDatagram;
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    // Drained all the time, as systemd does, by a thread that polls (qemu-user does not honour
    // SO_RCVTIMEO on this socket); the messages come out of a channel.
    sock.set_nonblocking(true).unwrap();
    let (notes_tx, notes) = channel::<String>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match sock.recv(&mut buf) {
                Ok(n) => {
                    if notes_tx.send(String::from_utf8_lossy(&buf[..n]).into_owned()).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => panic!("notify socket: {e}"),
            }
        }
    });
    // Frames on stdin that we control: 25, then silence with the pipe still open. The watchdog interval
    // (1 s on a real CPU) and the windows below stretch with the test slowdown.
    let interval = common::deadline(1.0);
    let usec = interval.as_micros().to_string();
    let (daemon, mut stdin) =
        Daemon::on_stdin(dir.path(), &[("NOTIFY_SOCKET", sock_path.to_str().unwrap()), ("WATCHDOG_USEC", &usec)]);
    let recv_until = |secs: f64, want: &str| -> Vec<String> {
        let end = Instant::now() + Duration::from_secs_f64(secs);
        let mut got = Vec::new();
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            let Ok(m) = notes.recv_timeout(left) else { break };
            let done = m.contains(want);
            got.push(m);
            if done {
                break;
            }
        }
        got
    };
    let got = recv_until(common::deadline(30.0).as_secs_f64(), "READY=1");
    assert!(got.iter().any(|m| m.contains("READY=1")), "{got:?}");
    // Frames flow (a JPEG every 100 ms for 2.5 s): the watchdog is fed.
    let jpeg = synth_jpeg();
    let writer = std::thread::spawn(move || {
        for _ in 0..25 {
            stdin.write_all(&jpeg).unwrap();
            stdin.flush().unwrap();
            std::thread::sleep(Duration::from_millis(100));
        }
        stdin // kept open: no more frames, no end of stream
    });
    daemon.wait_line("a frame", 30, |v| v["frame"].is_u64());
    let got = recv_until(2.0 * interval.as_secs_f64(), "WATCHDOG=1");
    assert!(got.iter().any(|m| m.contains("WATCHDOG=1")), "fed while frames flow: {got:?}");
    let stdin = writer.join().unwrap();
    // Every frame processed (a slow CPU is still busy with the backlog; stdin frames are never dropped).
    daemon.wait_line("the last frame", 30, |v| v["frame"] == 24);
    // Silence: after the pipeline has been idle for half the interval, no more pings.
    std::thread::sleep(interval.mul_f64(0.8));
    let _ = recv_until(0.3, "never");
    let got = recv_until(2.0 * interval.as_secs_f64(), "never");
    assert!(!got.iter().any(|m| m.contains("WATCHDOG=1")), "not fed without frames: {got:?}");
    drop(stdin); // end of stream: the daemon finishes by itself
    assert_eq!(daemon.wait_exit(20.0), Some(0));
    let got = recv_until(1.0, "STOPPING=1");
    assert!(got.iter().any(|m| m.contains("STOPPING=1")), "{got:?}");
}

#[test]
fn a_service_manager_that_does_not_read_never_stalls_the_pipeline() {
    use std::os::unix::net::UnixDatagram;
    // A notify socket nobody reads: it holds 10 datagrams (net.unix.max_dgram_qlen), and a watchdog of
    // 150 ms asks for a ping every 50 ms while frames flow. A blocking sender would stop the outputs
    // thread, and with it the pipeline, after the tenth message; every frame must still come out.
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify.sock");
    let _sock = UnixDatagram::bind(&sock_path).unwrap();
    let frames = 60;
    let jpeg = synth_jpeg();
    let (daemon, mut stdin) =
        Daemon::on_stdin(dir.path(), &[("NOTIFY_SOCKET", sock_path.to_str().unwrap()), ("WATCHDOG_USEC", "150000")]);
    std::thread::spawn(move || {
        for _ in 0..frames {
            if stdin.write_all(&jpeg).is_err() {
                return;
            }
        }
    }); // then stdin closes: end of stream
    daemon.wait_line("the last frame", 60, |v| v["frame"] == frames - 1);
    assert_eq!(daemon.wait_exit(20.0), Some(0));
}

#[test]
fn serial_health_and_log_say_failing_while_every_frame_fails_and_ok_once_frames_pass() {
    // A daemon whose every frame failed looked `stalled` (or `starting`), with one warning a frame.
    let dir = tempfile::tempdir().unwrap();
    let (dev, app) = (dir.path().join("ttyPOOL"), dir.path().join("ttyTIMING"));
    let _pty = PtyPair::start(&dev, &app);
    let port = free_port();
    // Frames over max_pixels are refused: the synthetic 320x240 JPEGs fail, 120x90 ones pass.
    let cfg = write_config(
        dir.path(),
        &format!("[pipeline]\nmax_pixels = 20000\n[source]\nkind = \"stdin\"\nformat = \"mjpeg\"\n[http]\nlisten = \"127.0.0.1:{port}\"\n[serial]\nport = \"{}\"\n", dev.display()),
    );
    let log = dir.path().join("daemon.log");
    let mut cmd = common::poolwatch();
    cmd.args(["run", "--stdin", "mjpeg", "--config", cfg.to_str().unwrap()]).env("RUST_LOG", "info");
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(std::fs::File::create(&log).unwrap());
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let daemon = Daemon::wrap(child, log);
    let big = synth_jpeg();
    let small = {
        let (img, _) = poolwatch::synth::Scene::new(1, 120, 90, (1, 2)).render(3.0, 0);
        let mut out = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Jpeg).unwrap();
        out
    };
    let good = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let feeder = {
        let (good, written) = (Arc::clone(&good), Arc::clone(&written));
        std::thread::spawn(move || {
            while stdin.write_all(if good.load(Ordering::Relaxed) { &small } else { &big }).is_ok() {
                written.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let health = || {
        let (code, answer) = http_get(port, "/health", 1 << 16);
        let answer = String::from_utf8_lossy(&answer).into_owned();
        let body = answer.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
        (code, serde_json::from_str::<serde_json::Value>(body).unwrap_or_default())
    };
    let end = Instant::now() + common::deadline(40.0);
    let failing = loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            let (code, v) = health();
            if v["status"] == "failing" {
                assert_eq!(code, 503);
                break v;
            }
        }
        assert!(Instant::now() < end, "never failing; log:\n{}", daemon.log());
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(failing["error"].as_str().unwrap().contains("320x240"), "{failing}");
    let (_, metrics) = http_get(port, "/metrics", 1 << 20);
    assert!(String::from_utf8_lossy(&metrics).contains("poolwatch_failing 1"));
    let s = read_sentences(&app, 20.0, |s| s.iter().any(|f| f[0] == "PWHBT" && f[4] == "ERR"));
    assert!(s.iter().any(|f| f[0] == "PWHBT" && f[4] == "ERR"), "no ERR heartbeat: {s:?}");
    // Tens of failed frames, a warning or two: the rate is bounded.
    let n = written.load(Ordering::Relaxed);
    let warnings = daemon.log().matches("skipping a frame").count();
    assert!(n >= 40 && (1..=3).contains(&warnings), "{n} frames written, {warnings} warnings:\n{}", daemon.log());
    // Frames that pass: ok again, and the heartbeat says so.
    good.store(true, Ordering::Relaxed);
    daemon.wait_line("a processed frame", 30, |v| v["frame"].is_u64());
    let end = Instant::now() + common::deadline(20.0);
    loop {
        let (code, v) = health();
        if code == 200 && v["status"] == "ok" {
            break;
        }
        assert!(Instant::now() < end, "not ok again: {code} {v}; log:\n{}", daemon.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    let s = read_sentences(&app, 20.0, |s| s.iter().any(|f| f[0] == "PWHBT" && f[4] == "OK"));
    assert!(s.iter().any(|f| f[0] == "PWHBT" && f[4] == "OK"), "no OK heartbeat: {s:?}");
    assert_eq!(daemon.stop(), 0);
    feeder.join().unwrap();
}

fn synth_jpeg() -> Vec<u8> {
    let (img, _) = poolwatch::synth::Scene::new(1, 320, 240, (1, 2)).render(3.0, 0);
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Jpeg).unwrap();
    out
}

// ---------------------------------------------------------------- reload, sources

#[test]
fn sighup_applies_a_good_config_and_refuses_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let base = "[source]\nkind = \"synth\"\nfps = 15.0\n";
    let cfg = write_config(dir.path(), base);
    let daemon = Daemon::start(dir.path(), &["--config", cfg.to_str().unwrap()], &[]);
    let first = daemon.wait_line("a frame", 30, |v| v["frame"].is_u64());
    // Without [lanes], the synthetic camera's own (6 to 10 of them).
    let lanes = |v: &serde_json::Value| v["lanes"].as_array().map(Vec::len);
    assert!(lanes(&first).is_some_and(|n| (6..=10).contains(&n)), "{first}");
    // A good new config: its 4 lanes in the output, the camera is not reopened (numbers go on).
    std::fs::write(&cfg, format!("{base}{LANES}")).unwrap();
    signal(&daemon.child, "-HUP");
    let with_lanes = daemon.wait_line("lanes after reload", 30, |v| lanes(v) == Some(4));
    assert!(with_lanes["frame"].as_u64() > first["frame"].as_u64());
    daemon.wait_log("reloaded", 5);
    // A broken config is refused with the key named; the running one goes on.
    std::fs::write(&cfg, format!("{base}{LANES}[tracking]\nmin_hits = 0\n")).unwrap();
    signal(&daemon.child, "-HUP");
    daemon.wait_log("reload refused", 30);
    assert!(daemon.log().contains("tracking.min_hits"), "{}", daemon.log());
    daemon.wait_line("lanes still there", 10, |v| lanes(v) == Some(4));
    // A config that validates but would fail every frame (its mask image is not there) was accepted,
    // and then nothing was processed: refused now, as check-config and a start refuse it.
    let no_mask = format!("{base}{LANES}[pool]\nmask = {{ image = \"/nonexistent/pool-mask.png\" }}\n");
    std::fs::write(&cfg, &no_mask).unwrap();
    signal(&daemon.child, "-HUP");
    let end = Instant::now() + common::deadline(30.0);
    while daemon.log().matches("reload refused").count() < 2 {
        assert!(Instant::now() < end, "the reload was not refused; log:\n{}", daemon.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(daemon.log().contains("pool-mask.png"), "{}", daemon.log());
    daemon.wait_line("frames still flow", 10, |v| v["frame"].is_u64());
    assert_eq!(daemon.log().matches("source: synthetic").count(), 1, "the source was opened once");
    assert_eq!(daemon.stop(), 0);
    for args in [vec!["check-config", cfg.to_str().unwrap()], vec!["run", "--config", cfg.to_str().unwrap(), "--frames", "1"]] {
        let o = common::poolwatch().args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("pool-mask.png"), "{args:?}: {err}");
    }
}

#[test]
fn a_directory_source_that_vanishes_mid_stream_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let frames = dir.path().join("frames");
    let o = common::poolwatch()
        .args(["synth", "--out", frames.to_str().unwrap(), "--frames", "4", "--size", "320x240"])
        .output()
        .unwrap();
    assert!(o.status.success());
    let cfg = write_config(
        dir.path(),
        &format!("[source]\nkind = \"dir\"\npath = [\"{}\"]\nloop = true\nfps = 20.0\n", frames.display()),
    );
    let daemon = Daemon::start(dir.path(), &["--config", cfg.to_str().unwrap()], &[]);
    daemon.wait_line("a frame", 30, |v| v["frame"].as_u64() >= Some(5));
    let away = dir.path().join("away");
    std::fs::rename(&frames, &away).unwrap();
    daemon.wait_log("retrying", 10);
    std::thread::sleep(Duration::from_millis(500));
    std::fs::rename(&away, &frames).unwrap();
    let mut last = 0;
    for _ in 0..5 {
        let v = daemon.wait_line("frames after the source came back", 30, |v| v["frame"].is_u64());
        let f = v["frame"].as_u64().unwrap();
        assert!(f > last || last == 0);
        last = f;
    }
    assert_eq!(daemon.stop(), 0);
}

#[test]
fn stdin_mjpeg_with_a_corrupt_frame_in_the_middle() {
    let dir = tempfile::tempdir().unwrap();
    let jpeg = synth_jpeg();
    let mut data = Vec::new();
    for i in 0..6 {
        if i == 3 {
            data.extend_from_slice(&jpeg[..jpeg.len() * 2 / 3]); // cut short by the next frame
        } else {
            data.extend_from_slice(&jpeg);
        }
    }
    let mut child = common::poolwatch()
        .args(["run", "--stdin", "mjpeg"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    std::thread::spawn(move || {
        stdin.write_all(&data).unwrap();
    });
    let o = child.wait_with_output().unwrap();
    let _ = dir;
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let frames: Vec<u64> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["frame"].as_u64().unwrap())
        .collect();
    assert_eq!(frames, [0, 1, 2, 4, 5], "frame 3 is skipped, none lost");
    assert!(String::from_utf8_lossy(&o.stderr).contains("skipping a frame"));
}

// ---------------------------------------------------------------- preview, snapshots, commands

fn http_get(port: u16, path: &str, max: usize) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    while out.len() < max {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&out[..out.len().min(20)]).into_owned();
    let code = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, out)
}

#[test]
fn preview_server_and_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = write_config(
        dir.path(),
        &format!(
            "[stdout]\nenabled = false\n[source]\nkind = \"synth\"\nfps = 15.0\n[http]\nlisten = \"127.0.0.1:{port}\"\n[snapshots]\ndir = \"snaps\"\nkeep = 2\nmin_interval_s = 0.0\n[tracking]\nmin_hits = 1\nmax_missed = 0\n{LANES}"
        ),
    );
    let daemon = Daemon::start(dir.path(), &["--config", cfg.to_str().unwrap()], &[]);
    let end = Instant::now() + common::deadline(30.0);
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() && http_get(port, "/health", 1 << 16).0 == 200 {
            break;
        }
        assert!(Instant::now() < end, "never healthy; log:\n{}", daemon.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    let (code, body) = http_get(port, "/metrics", 1 << 16);
    let body = String::from_utf8_lossy(&body);
    assert_eq!(code, 200);
    assert!(body.contains("# TYPE poolwatch_frames_processed_total counter"), "{body}");
    let processed: f64 = body.lines().find(|l| l.starts_with("poolwatch_frames_processed_total ")).unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    assert!(processed > 0.0);
    let (code, body) = http_get(port, "/snapshot.jpg", 1 << 22);
    assert_eq!(code, 200);
    let start = body.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let img = image::load_from_memory(&body[start..]).unwrap();
    assert_eq!((img.width(), img.height()), (640, 480));
    let (code, body) = http_get(port, "/stream.mjpeg", 300_000);
    assert_eq!(code, 200);
    let head = String::from_utf8_lossy(&body[..body.len().min(400)]).into_owned();
    assert!(head.contains("multipart/x-mixed-replace; boundary=frame"), "{head}");
    assert!(body.windows(7).filter(|w| w == b"--frame").count() >= 1);
    let (code, body) = http_get(port, "/", 1 << 16);
    assert!(code == 200 && String::from_utf8_lossy(&body).contains("/stream.mjpeg"));
    assert_eq!(http_get(port, "/nope", 1 << 16).0, 404);
    // Snapshots: written on events, rotated to `keep`. Events come when swimmers appear, which on a
    // loaded machine can take a while at a debug build's frame rate.
    let snaps = dir.path().join("snaps");
    let end = Instant::now() + common::deadline(90.0);
    loop {
        let n = std::fs::read_dir(&snaps).map(|r| r.count()).unwrap_or(0);
        if n >= 2 {
            break;
        }
        assert!(Instant::now() < end, "no snapshots; log:\n{}", daemon.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(daemon.stop(), 0);
    let files: Vec<_> = std::fs::read_dir(&snaps).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(files.len() <= 2, "{files:?}");
    for f in files {
        assert!(f.to_string_lossy().ends_with(".jpg"));
        image::open(&f).unwrap();
    }
}

#[test]
fn check_config_and_record() {
    let dir = tempfile::tempdir().unwrap();
    let good = write_config(dir.path(), &format!("name = \"lane-cam\"\n[source]\nkind = \"synth\"\nfps = 50.0\n{LANES}"));
    let o = common::poolwatch().args(["check-config", good.to_str().unwrap()]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("lane-cam"));
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[serial]\nport = \"/dev/ttyS0\"\nbaud = 7\n").unwrap();
    let o = common::poolwatch().args(["check-config", bad.to_str().unwrap()]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("serial.baud") && err.lines().count() == 1, "{err}");
    // A wrong type inside [source] (a table of one of several kinds) names its key too.
    std::fs::write(&bad, "[source]\nkind = \"synth\"\nfps = \"fast\"\n").unwrap();
    let o = common::poolwatch().args(["check-config", bad.to_str().unwrap()]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("source.fps: invalid type") && err.lines().count() == 1, "{err}");
    std::fs::write(&bad, "[serial]\nport = \"/dev/ttyS0\"\nbaud = 7\n").unwrap();
    let o = common::poolwatch().args(["run", "--config", bad.to_str().unwrap()]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let o = common::poolwatch().args(["run", "--model", "/nonexistent.onnx", "--frames", "1"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("nonexistent"));

    let out = dir.path().join("rec");
    let o = common::poolwatch()
        .args(["record", "--config", good.to_str().unwrap(), "--out", out.to_str().unwrap(), "--frames", "3", "--every", "2"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut names: Vec<String> = std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(names, ["frame-000000.jpg", "frame-000001.jpg", "frame-000002.jpg", "times.csv"]);
    assert_eq!(image::open(out.join("frame-000002.jpg")).unwrap().width(), 640);
    // When each was taken, in order, for a replay on the recording's clock.
    let times = poolwatch::media::times::read(&out).unwrap().unwrap();
    let at: Vec<f64> = (0..3).map(|i| times[&format!("frame-{i:06}.jpg")]).collect();
    assert!(at[0] > 1.7e9 && at[0] < at[1] && at[1] < at[2], "{at:?}");
}

#[test]
fn sigterm_while_stdin_is_quiet_still_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (daemon, mut stdin) = Daemon::on_stdin(dir.path(), &[]);
    stdin.write_all(&synth_jpeg()).unwrap();
    stdin.flush().unwrap();
    daemon.wait_line("the one frame", 30, |v| v["frame"] == 0);
    // The pipe stays open and silent: the capture thread is blocked in a read.
    let t = Instant::now();
    assert_eq!(daemon.stop(), 0);
    assert!(t.elapsed() < common::deadline(15.0));
    drop(stdin);
}

// ---------------------------------------------------------------- hostile input

#[test]
fn a_tiny_frame_is_one_bad_frame_and_the_stream_goes_on() {
    // A 1x1 frame panicked the automatic pool mask: the detection thread died, the daemon said
    // "stopped after 1 frames", exited 0 and never processed the good frames after it.
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "[pool]\nmask = \"auto\"\n");
    let mut cmd = common::poolwatch();
    cmd.args(["run", "--stdin", "mjpeg", "--config", cfg.to_str().unwrap()]).env("RUST_LOG", "info");
    let good = synth_jpeg();
    let mut tiny = Vec::new();
    image::RgbImage::from_pixel(1, 1, image::Rgb([30, 120, 200])).write_to(&mut std::io::Cursor::new(&mut tiny), image::ImageFormat::Jpeg).unwrap();
    let mut input = Vec::new();
    // And a frame over pipeline.max_pixels (the default 4 MP): refused from its header.
    let mut huge = Vec::new();
    image::RgbImage::new(2600, 1700).write_to(&mut std::io::Cursor::new(&mut huge), image::ImageFormat::Jpeg).unwrap();
    for frame in [&good, &tiny, &good, &huge, &good] {
        input.extend_from_slice(frame);
    }
    let out = run_with_stdin(cmd, &input);
    let frames: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert_eq!(frames.iter().map(|f| f["frame"].as_u64().unwrap()).collect::<Vec<_>>(), [0, 2, 4], "{log}");
    assert!(log.contains("too small") && log.contains("2600x1700") && log.contains("2 unreadable"), "{log}");
}

#[test]
fn a_stream_that_ends_inside_a_frame_counts_that_frame() {
    // A truncated last MJPEG frame, or a partial last raw RGB frame, was dropped without a word.
    let dir = tempfile::tempdir().unwrap();
    let good = synth_jpeg();
    let mut input = Vec::new();
    for frame in [&good, &good] {
        input.extend_from_slice(frame);
    }
    input.extend_from_slice(&good[..good.len() / 2]);
    let mut cmd = common::poolwatch();
    cmd.args(["run", "--stdin", "mjpeg"]).env("RUST_LOG", "info").current_dir(dir.path());
    let out = run_with_stdin(cmd, &input);
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2, "{log}");
    assert!(log.contains("ended inside a frame") && log.contains("1 unreadable"), "{log}");
    // Raw RGB: two whole 64x48 frames of plain water (the whole frame as pool) and a third's first 1000 bytes.
    let cfg = write_config(dir.path(), "[pool]\nmask = \"none\"\n");
    let water: Vec<u8> = [30u8, 120, 200].repeat(64 * 48);
    let mut input = [water.clone(), water.clone()].concat();
    input.extend_from_slice(&water[..1000]);
    let mut cmd = common::poolwatch();
    cmd.args(["run", "--stdin", "rgb", "--size", "64x48", "--config", cfg.to_str().unwrap()]).env("RUST_LOG", "info").current_dir(dir.path());
    let out = run_with_stdin(cmd, &input);
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2, "{log}");
    assert!(log.contains("(1000 bytes of it)") && log.contains("1 unreadable"), "{log}");
}

/// Runs `cmd` with `input` on its stdin (closed after it); its output.
fn run_with_stdin(mut cmd: std::process::Command, input: &[u8]) -> std::process::Output {
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

/// Sends `raw` and reads the answer (at most `max` bytes, or until the server closes).
fn http_raw(port: u16, raw: &[u8], max: usize) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(common::deadline(10.0))).unwrap();
    s.write_all(raw).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while out.len() < max {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn hostile_http_clients_cannot_stop_or_blind_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = write_config(dir.path(), &format!("[stdout]\nenabled = false\n[source]\nkind = \"synth\"\nfps = 10.0\n[http]\nlisten = \"127.0.0.1:{port}\"\nmax_streams = 1\n"));
    let mut daemon = Daemon::start(dir.path(), &["--config", cfg.to_str().unwrap()], &[]);
    let end = Instant::now() + common::deadline(30.0);
    while TcpStream::connect(("127.0.0.1", port)).is_err() || http_get(port, "/health", 1 << 16).0 != 200 {
        assert!(Instant::now() < end, "never healthy; log:\n{}", daemon.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    // One request announcing a 100 GB body killed the process (tiny_http allocated it): exit 134.
    let r = http_raw(port, b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n", 1 << 16);
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    // What it does not speak is answered, not held: an HTTP/2 preface, a bare-LF request, another method.
    assert!(http_raw(port, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 1 << 16).starts_with("HTTP/1.1 505"));
    assert!(http_raw(port, b"GET /health HTTP/1.1\nHost: x\n\n", 1 << 16).starts_with("HTTP/1.1 200"));
    assert!(http_raw(port, b"POST /health HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", 1 << 16).starts_with("HTTP/1.1 405"));
    // Fifty half-sent requests hold no thread for long: they time out, and then /health answers.
    let idle: Vec<TcpStream> = (0..50)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", port)).ok())
        .map(|mut s| {
            let _ = s.write_all(b"GET /heal");
            s
        })
        .collect();
    let end = Instant::now() + common::deadline(20.0);
    loop {
        if http_get(port, "/health", 1 << 16).0 == 200 {
            break;
        }
        assert!(Instant::now() < end, "no answer after the idle clients timed out; log:\n{}", daemon.log());
        std::thread::sleep(Duration::from_millis(250));
    }
    drop(idle);
    // A stream client that never reads does not keep the only stream slot. (Under emulation frames
    // come too slowly to fill the socket buffers in reasonable time; the server's own unit test covers
    // the write timeout there.)
    if common::slowdown() > 1.0 {
        assert_eq!(daemon.stop(), 0);
        return;
    }
    let mut lazy = TcpStream::connect(("127.0.0.1", port)).unwrap();
    lazy.write_all(b"GET /stream.mjpeg HTTP/1.1\r\n\r\n").unwrap();
    let end = Instant::now() + common::deadline(60.0);
    loop {
        let r = http_raw(port, b"GET /stream.mjpeg HTTP/1.1\r\n\r\n", 2000);
        if r.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(r.contains("too many streams"), "{r}");
        assert!(Instant::now() < end, "the lazy stream client still holds the slot; log:\n{}", daemon.log());
        std::thread::sleep(Duration::from_millis(500));
    }
    drop(lazy);
    assert!(daemon.child.try_wait().unwrap().is_none(), "the daemon died; log:\n{}", daemon.log());
    assert_eq!(daemon.stop(), 0);
}


/// The config of a daemon named `name` whose synthetic camera's first swimmer is still from the start,
/// with a broker and the preview on the given ports and `extra` sections; with the seconds still
/// before a warning and an alarm (longer under emulation, a frame every second or so).
fn still_swimmer(dir: &Path, name: &str, mqtt_port: u16, http_port: u16, extra: &str) -> (PathBuf, f64, f64) {
    let (warn, alarm) = (common::slowdown(), 2.0 * common::slowdown());
    let cfg = write_config(
        dir,
        &format!(
            "name = \"{name}\"\n[source]\nkind = \"synth\"\nfps = 15.0\nswimmers = \"2\"\nstop = \"0+600\"\n[mqtt]\nhost = \"127.0.0.1\"\nport = {mqtt_port}\n[http]\nlisten = \"127.0.0.1:{http_port}\"\n[alarm]\nwarn_s = {warn:.1}\nalarm_s = {alarm:.1}\n{extra}{QUICK_TRACKS}"
        ),
    );
    (cfg, warn, alarm)
}

/// A swimmer who stops (the synthetic camera's first, still from the start): a warning, then an alarm,
/// on stdout, on the retained MQTT `alarm` topic (`clear` before it), on `/health` and `/metrics`.
#[test]
fn a_swimmer_who_stops_raises_a_warning_then_an_alarm_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let (mqtt_port, http_port) = (free_port(), free_port());
    let broker = Broker::start(mqtt_port);
    let (cfg, warn, alarm) = still_swimmer(dir.path(), "still", mqtt_port, http_port, "[snapshots]\ndir = \"snaps\"\nmin_interval_s = 600.0\n");
    let rx = subscribe(mqtt_port, "alarm-watch");
    let daemon = Daemon::start(dir.path(), &["--config", cfg.to_str().unwrap()], &[]);
    // At start the retained state is clear (a stale alarm of an earlier run never stays).
    let (i, (_, first, _)) = wait_msg_from(&rx, 0, 30, |t, _, _| t == "poolwatch/still/alarm");
    let first: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert!(first["state"] == "clear" && first["alarms"].as_array().is_some_and(|a| a.is_empty()), "{first}");
    let raised = |level: &'static str| move |v: &serde_json::Value| v["alarms"].as_array().is_some_and(|a| a.iter().any(|e| e["state"] == level));
    let w = daemon.wait_line("a warning", 60, raised("warning"));
    let a = daemon.wait_line("an alarm", 30, raised("alarm"));
    let (w, a) = (&w["alarms"][0], &a["alarms"][0]);
    assert_eq!(w["track"], a["track"], "{w} {a}");
    assert!(w["still_s"].as_f64().is_some_and(|s| (warn..warn + 0.5 * warn).contains(&s)), "{w}");
    assert!(a["still_s"].as_f64().is_some_and(|s| (alarm..alarm + 0.5 * warn).contains(&s)), "{a}");
    // The demo venue knows its lanes: the alarm says where, in lane and metres.
    assert!(a["lane"].as_u64().is_some() && a["distance_m"].as_f64().is_some() && a["box"].as_array().is_some_and(|b| b.len() == 4), "{a}");
    wait_msg_from(&rx, i + 1, 30, |t, p, _| t == "poolwatch/still/alarm" && p.contains("\"state\":\"alarm\""));
    // Retained: a subscriber that comes later gets it.
    let late = subscribe(mqtt_port, "alarm-late");
    let (_, msg, retained) = wait_msg(&late, 10, |t, _, _| t == "poolwatch/still/alarm");
    let msg: serde_json::Value = serde_json::from_str(&msg).unwrap();
    assert!(retained && msg["state"] == "alarm" && msg["alarms"][0]["track"] == a["track"], "{msg}");
    let (code, body) = http_get(http_port, "/health", 1 << 16);
    let start = body.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let health: serde_json::Value = serde_json::from_slice(&body[start..]).unwrap();
    assert!(code == 200 && health["alarm"] == "alarm" && health["alarms"][0]["lane"] == a["lane"], "{health}");
    let (_, body) = http_get(http_port, "/metrics", 1 << 16);
    assert!(String::from_utf8_lossy(&body).contains("\npoolwatch_alarm 2\n"));
    daemon.wait_log("alarm: swimmer", 5);
    // Pictured, though the swimmers' first snapshot was less than min_interval_s before. The snapshot
    // sink writes on its own thread, after the log line (seconds later under emulation): wait for it.
    let track = a["track"].as_u64().unwrap();
    let end = Instant::now() + common::deadline(20.0);
    loop {
        let snaps: Vec<String> = std::fs::read_dir(dir.path().join("snaps")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        if ["warning", "alarm"].iter().all(|kind| snaps.iter().any(|n| n.ends_with(&format!("-{kind}-{track}.jpg")))) {
            break;
        }
        assert!(Instant::now() < end, "no warning and alarm snapshots of swimmer {track}: {snaps:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(daemon.stop(), 0);
    drop(broker);
}

/// Publishes one message (QoS 1) and waits until the broker has it.
fn mqtt_publish(port: u16, topic: &str, payload: &str, retain: bool) {
    use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
    let (client, mut conn) = Client::new(MqttOptions::new(format!("pub-{}", free_port()), "127.0.0.1", port), 10);
    client.publish(topic, QoS::AtLeastOnce, retain, payload.as_bytes().to_vec()).unwrap();
    let end = Instant::now() + Duration::from_secs(10);
    for ev in conn.iter() {
        if matches!(ev, Ok(Event::Incoming(Packet::PubAck(_)))) {
            return;
        }
        assert!(Instant::now() < end, "the broker never acknowledged {topic}");
    }
}

/// An alarm zone switched off over MQTT clears the alarm in it (reason `off`) and keeps it quiet;
/// switched back on over HTTP (from this machine), the alarm comes back. Bad switch requests are refused
/// with the reason.
#[test]
fn an_alarm_zone_switched_off_over_mqtt_is_quiet_until_http_switches_it_on() {
    let dir = tempfile::tempdir().unwrap();
    let (mqtt_port, http_port) = (free_port(), free_port());
    let broker = Broker::start(mqtt_port);
    let (cfg, _, alarm) = still_swimmer(dir.path(), "z", mqtt_port, http_port, "[zones.pool]\npolygon = [[0, 0], [640, 0], [640, 480], [0, 480]]\nmax_off_min = 30.0\n");
    // A switch left retained on the broker is not taken when the daemon subscribes (it would switch
    // the zone again at every reconnect, long after it was meant): the alarm is raised all the same.
    mqtt_publish(mqtt_port, "poolwatch/z/zones/pool/set", "off 30", true);
    let rx = subscribe(mqtt_port, "zone-watch");
    let daemon = Daemon::start(dir.path(), &["--config", cfg.to_str().unwrap()], &[]);
    let has = |level: &'static str| move |v: &serde_json::Value| v["alarms"].as_array().is_some_and(|a| a.iter().any(|e| e["state"] == level));
    daemon.wait_line("an alarm", 60, has("alarm"));
    daemon.wait_log("a retained request is not taken", 5);
    let (i, (_, on, _)) = wait_msg_from(&rx, 0, 10, |t, _, _| t == "poolwatch/z/zones/pool");
    assert!(on.contains("\"state\":\"on\""), "{on}");

    // Off for 5 minutes over MQTT: the alarm clears (reason off), the zone's state says so (retained).
    mqtt_publish(mqtt_port, "poolwatch/z/zones/pool/set", "off 5", false);
    let clear = daemon.wait_line("the alarm cleared", 20, has("clear"));
    assert_eq!(clear["alarms"][0]["reason"], "off", "{clear}");
    let (_, (_, off, _)) = wait_msg_from(&rx, i + 1, 10, |t, p, _| t == "poolwatch/z/zones/pool" && p.contains("\"state\":\"off\""));
    let off: serde_json::Value = serde_json::from_str(&off).unwrap();
    assert!(off["remaining_s"].as_f64().is_some_and(|r| (240.0..=300.0).contains(&r)), "{off}");
    daemon.wait_log("zone pool: switched off over MQTT", 5);
    // Quiet for longer than alarm_s, though the swimmer still does not move.
    let end = Instant::now() + Duration::from_secs_f64(2.0 * alarm);
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        if let Ok(l) = daemon.lines.recv_timeout(left) {
            assert!(!l.contains("\"alarms\""), "an alarm level changed in a zone switched off: {l}");
        }
    }
    let (_, body) = http_get(http_port, "/health", 1 << 16);
    let health = String::from_utf8_lossy(&body);
    assert!(health.contains("\"zone\":\"pool\"") && health.contains("\"state\":\"off\"") && health.contains("\"alarm\":\"clear\""), "{health}");

    // Bad requests: an unknown zone, too long, not a switch, another site, another method.
    let post = |path: &str, extra: &str| http_raw(http_port, format!("POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{http_port}\r\n{extra}\r\n").as_bytes(), 1 << 16);
    assert!(post("/zones/deep?set=on", "").starts_with("HTTP/1.1 404"));
    assert!(post("/zones/pool?set=45", "").contains("at most 30 minutes"));
    assert!(post("/zones/pool?set=maybe", "").starts_with("HTTP/1.1 400"));
    assert!(post("/zones/pool?set=on", "Origin: http://evil.example\r\n").starts_with("HTTP/1.1 403"));
    assert!(post("/health", "").starts_with("HTTP/1.1 405"));
    // Not a switch: refused (logged at a bounded rate), the zone stays off.
    mqtt_publish(mqtt_port, "poolwatch/z/zones/pool/set", "whenever", false);
    std::thread::sleep(Duration::from_millis(500));
    let (_, zones) = http_get(http_port, "/zones", 1 << 16);
    assert!(String::from_utf8_lossy(&zones).contains("\"state\":\"off\""), "{}", String::from_utf8_lossy(&zones));

    // On again over HTTP, from this machine (the page's own origin): the alarm comes back.
    let r = post("/zones/pool?set=on", &format!("Origin: http://127.0.0.1:{http_port}\r\n"));
    assert!(r.starts_with("HTTP/1.1 200") && r.contains("\"state\":\"on\""), "{r}");
    daemon.wait_line("the alarm again", 20, has("alarm"));
    let (_, zones) = http_get(http_port, "/zones", 1 << 16);
    assert!(String::from_utf8_lossy(&zones).contains("\"state\":\"on\""), "{}", String::from_utf8_lossy(&zones));
    assert_eq!(daemon.stop(), 0);
    drop(broker);
}
