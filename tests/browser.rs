//! The preview's set-up page in a real browser: Debian's Chromium, driven by Playwright
//! (`tests/browser/setup.mjs`), clicks the pool's corners on the live image of a running daemon, sets
//! lanes and length, draws a zone and saves; the saved file, the daemon's reloaded lanes (in its own
//! JSON lines) and its zones (on `/health`) are checked here. `scripts/setup.sh` installs Chromium, Node
//! and playwright-core.

mod common;

use std::io::{BufRead, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn http_get(port: u16, path: &str) -> (u16, String) {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return (0, String::new()) };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let code = out.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, out)
}

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn lines_of(child: &mut Child) -> Receiver<String> {
    let out = child.stdout.take().unwrap();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    rx
}

fn need(path: &str, what: &str) {
    assert!(Path::new(path).exists(), "{path} is missing: {what} (scripts/setup.sh installs it; .ci/run runs that)");
}

#[test]
fn the_set_up_page_saves_lanes_and_a_zone_clicked_in_a_browser_and_the_daemon_draws_them() {
    need("/usr/bin/chromium", "Debian's chromium");
    need("tests/browser/node_modules/playwright-core", "playwright-core (npm ci --prefix tests/browser)");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = dir.path().join("poolwatch.toml");
    std::fs::write(
        &cfg,
        format!("setup_file = \"setup.toml\"\n[source]\nkind = \"synth\"\nfps = 10.0\n[http]\nlisten = \"127.0.0.1:{port}\"\n[alarm]\nwarn_s = 5.0\n"),
    )
    .unwrap();
    let log = std::fs::File::create(dir.path().join("daemon.log")).unwrap();
    let mut child = common::poolwatch().args(["run", "--config", cfg.to_str().unwrap()]).env("RUST_LOG", "info").stdin(Stdio::null()).stdout(Stdio::piped()).stderr(log).spawn().unwrap();
    let lines = lines_of(&mut child);
    let _daemon = Daemon(child);
    let daemon_log = || std::fs::read_to_string(dir.path().join("daemon.log")).unwrap_or_default();
    let end = Instant::now() + common::deadline(60.0);
    while http_get(port, "/health").0 != 200 {
        assert!(Instant::now() < end, "never healthy; log:\n{}", daemon_log());
        std::thread::sleep(Duration::from_millis(200));
    }
    // Before: the demo venue's own lanes (6 of them).
    let lanes_in = |l: &str| serde_json::from_str::<serde_json::Value>(l).ok().and_then(|v| v["lanes"].as_array().map(|a| a.len()));
    assert_eq!(lanes_in(&lines.recv_timeout(common::deadline(30.0)).unwrap()), Some(6));

    let shot = dir.path().join("setup.png");
    let out = std::process::Command::new("node").args(["tests/browser/setup.mjs", &format!("http://127.0.0.1:{port}"), shot.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "the browser run failed: {}\n{}\nlog:\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr), daemon_log());
    let run: serde_json::Value = serde_json::from_slice(out.stdout.trim_ascii()).unwrap();
    assert!(run["status"].as_str().unwrap().starts_with("saved to"), "{run}");
    assert_eq!(run["errors"].as_array().map(|e| e.len()), Some(0), "{run}");
    assert!(image::open(&shot).is_ok_and(|i| i.width() >= 640));
    if let Ok(keep) = std::env::var("POOLWATCH_SETUP_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }

    // The saved file: the corners clicked (to a pixel), 5 lanes over 33 m, the zone.
    let saved: toml::Value = toml::from_str(&std::fs::read_to_string(dir.path().join("setup.toml")).unwrap()).unwrap();
    let corners: Vec<Vec<f64>> = saved["lanes"]["corners"].as_array().unwrap().iter().map(|p| p.as_array().unwrap().iter().map(|v| v.as_float().unwrap()).collect()).collect();
    for (got, want) in corners.iter().zip(run["corners"].as_array().unwrap()) {
        for k in 0..2 {
            assert!((got[k] - want[k].as_f64().unwrap()).abs() <= 1.0, "{corners:?} {run}");
        }
    }
    assert_eq!((saved["lanes"]["count"].as_integer(), saved["lanes"]["length_m"].as_float()), (Some(5), Some(33.0)));
    assert_eq!(saved["zones"]["steps"]["polygon"].as_array().map(|p| p.len()), Some(4), "{saved}");

    // Live: the daemon reloaded; its frames have 5 lanes, /health has the zone.
    let end = Instant::now() + common::deadline(30.0);
    loop {
        let l = lines.recv_timeout(common::deadline(30.0)).expect("frames stopped");
        if lanes_in(&l) == Some(5) {
            break;
        }
        assert!(Instant::now() < end, "the lanes never changed to 5; log:\n{}", daemon_log());
    }
    let (_, health) = http_get(port, "/health");
    assert!(health.contains("\"zone\":\"steps\""), "{health}");
    assert!(daemon_log().contains("set-up page: lanes and zones saved"), "{}", daemon_log());
    // Refused: a request from another site, and a bad one (with the reason).
    let raw = |q: &str, extra: &str| {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(s, "POST /setup?{q} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}\r\n").unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    };
    assert!(raw("zones=", "Origin: http://evil.example\r\n").starts_with("HTTP/1.1 403"));
    let bad = raw("corners=1,1;2,2&count=4&length_m=25", "");
    assert!(bad.starts_with("HTTP/1.1 400") && bad.contains("4 points"), "{bad}");
}
