//! The local preview server (tiny_http, 127.0.0.1 by default) for installers and monitoring:
//! `/` a page with the live view, `/health`, `/metrics` (Prometheus text), `/snapshot.jpg` and
//! `/stream.mjpeg` (the annotated frames with heatmap, pool mask, lanes and swimmer IDs).

use crate::util::setting::{AboveUpTo, SettingError, in_range};
use crate::device::report::{FrameReport, Metrics, PictureDemand};
use crate::device::sink::Sink;
use crate::util::sync::lock;
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// Address to listen on; keep it on loopback unless the network is trusted (no authentication).
    pub listen: String,
    /// Frames per second of `/stream.mjpeg`.
    pub stream_fps: f64,
    /// Concurrent streams allowed.
    pub max_streams: u32,
    pub quality: u8,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings { listen: "127.0.0.1:8080".into(), stream_fps: 10.0, max_streams: 4, quality: 80 }
    }
}

impl HttpSettings {
    /// Every key in its range (keys as the `[http]` section names them).
    pub fn validate(&self) -> Result<(), SettingError> {
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(SettingError::new("listen", format!("{:?} is not an address like \"127.0.0.1:8080\"", self.listen)));
        }
        in_range("stream_fps", self.stream_fps, AboveUpTo(0.0, 60.0))?;
        in_range("max_streams", self.max_streams, 1..=64)?;
        in_range("quality", self.quality, 1..=100)
    }
}

/// The latest report, shared between the outputs thread and the server's threads.
#[derive(Default)]
pub struct Latest {
    report: Mutex<Option<Arc<FrameReport>>>,
    changed: Condvar,
}

impl Latest {
    fn get(&self) -> Option<Arc<FrameReport>> {
        lock(&self.report).clone()
    }

    /// Waits up to `timeout` for a report newer than `after` that carries a picture.
    fn wait_picture(&self, after: Option<u64>, timeout: Duration) -> Option<Arc<FrameReport>> {
        let g = lock(&self.report);
        let fresh = |r: &Option<Arc<FrameReport>>| {
            r.as_ref().is_some_and(|r| r.picture.is_some() && after.is_none_or(|a| r.seq > a))
        };
        let (g, _) = self.changed.wait_timeout_while(g, timeout, |r| !fresh(r)).unwrap_or_else(|p| p.into_inner());
        g.clone().filter(|r| r.picture.is_some() && after.is_none_or(|a| r.seq > a))
    }
}

/// Feeds the server from the outputs thread.
pub struct PreviewSink {
    latest: Arc<Latest>,
}

impl Sink for PreviewSink {
    fn name(&self) -> String {
        "preview".into()
    }

    fn frame(&mut self, r: &FrameReport) {
        let mut g = lock(&self.latest.report);
        // Keep the last picture while frames without one go by, so `/snapshot.jpg` has something.
        let keep_old = r.picture.is_none() && g.as_ref().is_some_and(|o| o.picture.is_some());
        if !keep_old || r.seq.is_multiple_of(25) {
            *g = Some(Arc::new(r.clone()));
        }
        drop(g);
        self.latest.changed.notify_all();
    }
}

/// Whether the pipeline is healthy, from the counters.
pub fn health(m: &Metrics) -> (bool, serde_json::Value) {
    let s = m.snapshot();
    let age = m.since_last_frame();
    let status = match age {
        None => "starting",
        Some(a) if a > 5.0 => "stalled",
        Some(_) if !s.source_ok => "no_source",
        Some(_) => "ok",
    };
    let body = serde_json::json!({
        "status": status,
        "last_frame_age_s": age.map(|a| (a * 1000.0).round() / 1000.0),
        "stats": s,
    });
    (status == "ok", body)
}

/// Prometheus text exposition of the counters.
pub fn prometheus(m: &Metrics) -> String {
    let s = m.snapshot();
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, v: f64| {
        out.push_str(&format!("# HELP poolwatch_{name} {help}\n# TYPE poolwatch_{name} {kind}\npoolwatch_{name} {v}\n"));
    };
    metric("frames_captured_total", "counter", "Frames delivered by the source.", s.captured as f64);
    metric("frames_processed_total", "counter", "Frames run through the detector.", s.processed as f64);
    metric("frames_dropped_total", "counter", "Frames dropped because inference was behind the camera.", s.dropped as f64);
    metric("frames_skipped_total", "counter", "Frames skipped by every_nth.", s.skipped as f64);
    metric("frames_bad_total", "counter", "Frames that could not be decoded.", s.bad_frames as f64);
    metric("source_errors_total", "counter", "Times the source failed and was reopened.", s.source_errors as f64);
    metric("output_dropped_total", "counter", "Output messages dropped by slow or absent outputs.", s.output_dropped as f64);
    metric("fps", "gauge", "Processed frames per second.", s.fps);
    metric("latency_seconds", "gauge", "Pipeline time of the last frame.", s.latency_ms / 1000.0);
    metric("swimmers", "gauge", "Swimmers in the last frame.", s.swimmers as f64);
    metric("source_up", "gauge", "1 when the source delivers frames.", if s.source_ok { 1.0 } else { 0.0 });
    metric("uptime_seconds", "gauge", "Seconds since start.", s.uptime_s);
    out
}

const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>poolwatch</title>
<style>body{font-family:sans-serif;background:#111;color:#ddd;margin:1em}img{max-width:100%;border:1px solid #444}
pre{background:#222;padding:.5em}a{color:#8cf}</style></head>
<body><h1>poolwatch</h1>
<p>Live view: heatmap, pool mask (dimmed outside), lanes, boxes and swimmer IDs.
<a href="/snapshot.jpg">snapshot</a> · <a href="/metrics">metrics</a> · <a href="/health">health</a></p>
<img src="/stream.mjpeg" alt="live stream">
<pre id="h"></pre>
<script>
async function tick(){try{const r=await fetch('/health');document.getElementById('h').textContent=JSON.stringify(await r.json(),null,1)}catch(e){}}
setInterval(tick,1000);tick();
</script></body></html>
"#;

/// A multipart JPEG stream as a `Read` for tiny_http; counts itself as a preview client while alive.
struct MjpegStream {
    latest: Arc<Latest>,
    pictures: Arc<PictureDemand>,
    stop: Arc<AtomicBool>,
    buf: Vec<u8>,
    pos: usize,
    last_seq: Option<u64>,
    interval: Duration,
    next_at: Instant,
    quality: u8,
}

impl MjpegStream {
    fn refill(&mut self) -> bool {
        let now = Instant::now();
        if self.next_at > now {
            std::thread::sleep(self.next_at - now);
        }
        self.next_at = Instant::now() + self.interval;
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return false;
            }
            if let Some(r) = self.latest.wait_picture(self.last_seq, Duration::from_millis(500))
                && let Some(jpeg) = r.annotated_jpeg(self.quality)
            {
                self.last_seq = Some(r.seq);
                self.buf.clear();
                self.buf.extend_from_slice(
                    format!("--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n", jpeg.len()).as_bytes(),
                );
                self.buf.extend_from_slice(&jpeg);
                self.buf.extend_from_slice(b"\r\n");
                self.pos = 0;
                return true;
            }
        }
    }
}

impl Read for MjpegStream {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.buf.len() && !self.refill() {
            return Ok(0);
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Drop for MjpegStream {
    fn drop(&mut self) {
        self.pictures.stream_closed();
    }
}

pub struct PreviewServer {
    server: Arc<tiny_http::Server>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub addr: String,
}

#[derive(Debug, thiserror::Error)]
#[error("http: cannot listen on {addr}: {cause}")]
pub struct HttpError {
    addr: String,
    cause: String,
}

impl PreviewServer {
    /// Binds and starts serving; returns the server and the sink that feeds it.
    pub fn start(settings: &HttpSettings, metrics: Arc<Metrics>, pictures: Arc<PictureDemand>) -> Result<(PreviewServer, PreviewSink), HttpError> {
        let server = tiny_http::Server::http(&settings.listen)
            .map_err(|e| HttpError { addr: settings.listen.clone(), cause: e.to_string() })?;
        let addr = server.server_addr().to_ip().map(|a| a.to_string()).unwrap_or_else(|| settings.listen.clone());
        let server = Arc::new(server);
        let latest = Arc::new(Latest::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (srv, lat, st, set) = (Arc::clone(&server), Arc::clone(&latest), Arc::clone(&stop), settings.clone());
        let thread = std::thread::Builder::new()
            .name("http".into())
            .spawn(move || serve(&srv, &lat, &metrics, &pictures, &st, &set))
            .map_err(|e| HttpError { addr: settings.listen.clone(), cause: e.to_string() })?;
        log::info!("preview on http://{addr}/");
        Ok((PreviewServer { server, stop, thread: Some(thread), addr }, PreviewSink { latest }))
    }

    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for PreviewServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn header(k: &str, v: &str) -> tiny_http::Header {
    // Both are ASCII constants of ours, which tiny_http always accepts.
    tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()).expect("ASCII header")
}

fn serve(server: &tiny_http::Server, latest: &Arc<Latest>, metrics: &Arc<Metrics>, pictures: &Arc<PictureDemand>, stop: &Arc<AtomicBool>, s: &HttpSettings) {
    use tiny_http::{Method, Response};
    while !stop.load(Ordering::Relaxed) {
        let req = match server.recv() {
            Ok(r) => r,
            Err(e) => {
                if !stop.load(Ordering::Relaxed) {
                    log::warn!("http: {e}");
                }
                continue;
            }
        };
        if stop.load(Ordering::Relaxed) {
            break;
        }
        if *req.method() != Method::Get && *req.method() != Method::Head {
            let _ = req.respond(Response::from_string("only GET\n").with_status_code(405));
            continue;
        }
        let path = req.url().split('?').next().unwrap_or("/").to_string();
        let result = match path.as_str() {
            "/" | "/index.html" => req.respond(Response::from_string(PAGE).with_header(header("Content-Type", "text/html; charset=utf-8"))),
            "/health" => {
                let (ok, body) = health(metrics);
                req.respond(
                    Response::from_string(body.to_string())
                        .with_status_code(if ok { 200 } else { 503 })
                        .with_header(header("Content-Type", "application/json")),
                )
            }
            "/metrics" => req.respond(
                Response::from_string(prometheus(metrics)).with_header(header("Content-Type", "text/plain; version=0.0.4")),
            ),
            "/snapshot.jpg" => {
                pictures.request_one();
                let after = latest.get().map(|r| r.seq);
                let r = latest.wait_picture(after, Duration::from_secs(2)).or_else(|| latest.get().filter(|r| r.picture.is_some()));
                match r.and_then(|r| r.annotated_jpeg(s.quality)) {
                    Some(jpeg) => req.respond(
                        Response::from_data(jpeg)
                            .with_chunked_threshold(usize::MAX)
                            .with_header(header("Content-Type", "image/jpeg"))
                            .with_header(header("Cache-Control", "no-store")),
                    ),
                    None => req.respond(Response::from_string("no frame yet\n").with_status_code(503)),
                }
            }
            "/stream.mjpeg" => {
                if pictures.streams() >= s.max_streams as u64 {
                    req.respond(Response::from_string("too many streams\n").with_status_code(503))
                } else {
                    pictures.stream_opened();
                    let stream = MjpegStream {
                        latest: Arc::clone(latest),
                        pictures: Arc::clone(pictures),
                        stop: Arc::clone(stop),
                        buf: Vec::new(),
                        pos: 0,
                        last_seq: None,
                        interval: Duration::from_secs_f64(1.0 / s.stream_fps),
                        next_at: Instant::now(),
                        quality: s.quality,
                    };
                    let spawned = std::thread::Builder::new().name("http-stream".into()).spawn(move || {
                        let resp = Response::new(
                            200.into(),
                            vec![
                                header("Content-Type", "multipart/x-mixed-replace; boundary=frame"),
                                header("Cache-Control", "no-store"),
                            ],
                            stream,
                            None,
                            None,
                        );
                        let _ = req.respond(resp); // ends when the client goes away or we stop
                    });
                    if let Err(e) = spawned {
                        log::warn!("http: cannot start a stream thread: {e}");
                    }
                    Ok(())
                }
            }
            _ => req.respond(Response::from_string("not found\n").with_status_code(404)),
        };
        if let Err(e) = result {
            log::debug!("http {path}: {e}");
        }
    }
}
