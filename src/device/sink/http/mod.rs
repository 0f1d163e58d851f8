//! The local preview server (127.0.0.1 by default) for installers and monitoring: `/` a page with the
//! live view, `/health`, `/metrics` (Prometheus text), `/snapshot.jpg` and `/stream.mjpeg` (the
//! annotated frames with heatmap, pool mask, lanes, zones and swimmer IDs), and `/zones` (the alarm
//! zones; `POST /zones/NAME?set=off|on|MINUTES` switches one). Served by [`server`], which no client
//! can make allocate, wait or spawn without bound; with `token` set, every request must carry it, and
//! without one only this machine may switch zones.

pub mod server;

use crate::util::setting::{AboveUpTo, SettingError, in_range};
use crate::device::report::{FrameReport, Health, Metrics, PictureDemand};
use crate::device::sink::Sink;
use crate::device::setup::SetupState;
use crate::device::zones::{Switch, ZoneControl};
use crate::util::sync::lock;
use serde::{Deserialize, Serialize};
use server::{Handler, Limits, Reply, Request, Server};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// Address to listen on; keep it on loopback unless the network is trusted or `token` is set.
    pub listen: String,
    /// When set, every request must carry it: `Authorization: Bearer TOKEN`, the password of basic
    /// authentication, or `?token=TOKEN` (the page then keeps it in a cookie for its own requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Frames per second of `/stream.mjpeg`.
    pub stream_fps: f64,
    /// Concurrent streams allowed.
    pub max_streams: u32,
    pub quality: u8,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings { listen: "127.0.0.1:8080".into(), token: None, stream_fps: 10.0, max_streams: 4, quality: 80 }
    }
}

impl HttpSettings {
    /// Every key in its range (keys as the `[http]` section names them).
    pub fn validate(&self) -> Result<(), SettingError> {
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(SettingError::new("listen", format!("{:?} is not an address like \"127.0.0.1:8080\"", self.listen)));
        }
        if let Some(t) = &self.token
            && !(8..=256).contains(&t.len())
        {
            return Err(SettingError::new("token", "must be 8 to 256 characters"));
        }
        if self.token.as_deref().is_some_and(|t| !t.bytes().all(|b| b.is_ascii_graphic() && !b"\\\";,".contains(&b))) {
            return Err(SettingError::new("token", "must be printable ASCII without spaces, quotes, ';', ',' or '\\'"));
        }
        in_range("stream_fps", self.stream_fps, AboveUpTo(0.0, 60.0))?;
        in_range("max_streams", self.max_streams, 1..=64)?;
        in_range("quality", self.quality, 1..=100)
    }

    /// Whether anyone beyond this machine can reach the server without a token (`check-config` warns).
    pub fn open_beyond_loopback(&self) -> bool {
        self.token.is_none() && self.listen.parse::<std::net::SocketAddr>().is_ok_and(|a| !a.ip().is_loopback())
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

/// Whether the pipeline is healthy, from the counters: `ok`, or `starting`, `no_source`, `stalled`,
/// `failing` (with the reason, `error`).
pub fn health(m: &Metrics, zones: &ZoneControl) -> (bool, serde_json::Value) {
    let s = m.snapshot();
    let age = m.since_last_frame();
    let mut body = serde_json::json!({
        "status": s.state.as_str(),
        "last_frame_age_s": age.map(|a| (a * 1000.0).round() / 1000.0),
    });
    if let Some(e) = &s.error {
        body["error"] = e.clone().into();
    }
    // The motionless-swimmer state: not the pipeline's health (the status code does not change), but
    // what a lifeguard's screen shows first.
    body["alarm"] = s.alarm.as_str().into();
    if !s.alarms.is_empty() {
        body["alarms"] = serde_json::to_value(&s.alarms).unwrap_or_default();
    }
    if !zones.is_empty() {
        body["zones"] = serde_json::to_value(zones.states(zones.now())).unwrap_or_default();
    }
    let ok = s.state == Health::Ok;
    body["stats"] = serde_json::to_value(&s).unwrap_or_default();
    (ok, body)
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
    metric("frames_bad_total", "counter", "Frames that failed: unreadable, or an error in a stage.", s.bad_frames as f64);
    metric("source_errors_total", "counter", "Times the source failed and was reopened.", s.source_errors as f64);
    metric("output_dropped_total", "counter", "Output messages dropped by slow or absent outputs.", s.output_dropped as f64);
    metric("events_dropped_total", "counter", "Of those, MQTT events and lane messages (QoS 1).", s.events_dropped as f64);
    metric("failing", "gauge", "1 while every frame fails (see /health for why).", if s.state == Health::Failing { 1.0 } else { 0.0 });
    metric("fps", "gauge", "Processed frames per second.", s.fps);
    metric("latency_seconds", "gauge", "Pipeline time of the last frame.", s.latency_ms / 1000.0);
    metric("swimmers", "gauge", "Swimmers in the last frame.", s.swimmers as f64);
    metric("source_up", "gauge", "1 when the source delivers frames.", if s.source_ok { 1.0 } else { 0.0 });
    metric("uptime_seconds", "gauge", "Seconds since start.", s.uptime_s);
    metric("alarm", "gauge", "Motionless swimmer: 0 none, 1 warning, 2 alarm.", s.alarm as u8 as f64);
    out
}

const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>poolwatch</title>
<style>body{font-family:sans-serif;background:#111;color:#ddd;margin:1em}img{max-width:100%;border:1px solid #444}
pre{background:#222;padding:.5em}a{color:#8cf}
#alarm{display:none;padding:.6em;font-size:1.4em;font-weight:bold;color:#fff}
#alarm.warning{display:block;background:#c70}#alarm.alarm{display:block;background:#c00}
.zone.off{color:#aaa;font-weight:bold}button{margin-left:.5em}</style></head>
<body><h1>poolwatch</h1>
<div id="alarm" role="alert"></div>
<div id="zones"></div>
<p>Live view: heatmap, pool mask (dimmed outside), lanes, boxes and swimmer IDs.
<a href="/snapshot.jpg">snapshot</a> · <a href="/metrics">metrics</a> · <a href="/health">health</a> · <a href="/setup">set up lanes and zones</a></p>
<img src="/stream.mjpeg" alt="live stream">
<pre id="h"></pre>
<script>
function where(a){return a.lane!=null&&a.distance_m!=null?'lane '+a.lane+' at '+Math.round(a.distance_m)+' m':'at x '+Math.round((a.box[0]+a.box[2])/2)+', y '+Math.round((a.box[1]+a.box[3])/2)}
async function tick(){try{const r=await fetch('/health');const h=await r.json();document.getElementById('h').textContent=JSON.stringify(h,null,1);
const el=document.getElementById('alarm');el.className=h.alarm||'';
el.textContent=(h.alarms||[]).map(a=>a.state.toUpperCase()+': swimmer not moving for '+Math.round(a.still_s)+' s, '+where(a)).join(' · ');
zones(h.zones||[])}catch(e){}}
function zones(zs){const d=document.getElementById('zones');d.textContent='';for(const z of zs){const p=document.createElement('p');
p.className='zone '+z.state;p.textContent='Zone '+z.zone+': '+(z.state=='off'?'alarm OFF, back on in '+Math.ceil(z.remaining_s/60)+' min ':'watched ');
const b=document.createElement('button');b.textContent=z.state=='off'?'switch on now':'switch off 10 min';
b.onclick=async()=>{await fetch('/zones/'+encodeURIComponent(z.zone)+'?set='+(z.state=='off'?'on':'10'),{method:'POST'});tick()};p.appendChild(b);d.appendChild(p)}}
setInterval(tick,1000);tick();
</script></body></html>
"#;

/// The set-up page: click the pool's corners on the live image, give the lanes and the length, draw
/// zones; the lanes are drawn as you go, and Save writes them to the config's `setup_file` (the daemon
/// reloads and draws them on its frames).
const SETUP_PAGE: &str = include_str!("setup.html");

/// A preview stream counted from the moment it is granted until it ends (or is never started: a HEAD
/// request, a client gone before the headers), so two clients at once cannot both take the last slot.
struct StreamSlot(Arc<PictureDemand>);

impl StreamSlot {
    /// A slot, if fewer than `max` streams are open.
    fn take(pictures: &Arc<PictureDemand>, max: u64) -> Option<StreamSlot> {
        pictures.try_open_stream(max).then(|| StreamSlot(Arc::clone(pictures)))
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.stream_closed();
    }
}

/// The multipart JPEG stream of one client, written until the client goes away, stops reading (a
/// write times out) or the server stops; counts itself as a preview client while it lives.
struct MjpegStream {
    latest: Arc<Latest>,
    _slot: StreamSlot,
    stop: Arc<AtomicBool>,
    interval: Duration,
    quality: u8,
}

impl MjpegStream {
    fn run(self, w: &mut dyn Write) {
        let mut last_seq = None;
        let mut next_at = Instant::now();
        'frames: while !self.stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            if next_at > now {
                std::thread::sleep(next_at - now);
            }
            next_at = Instant::now() + self.interval;
            loop {
                if self.stop.load(Ordering::Relaxed) {
                    break 'frames;
                }
                if let Some(r) = self.latest.wait_picture(last_seq, Duration::from_millis(500))
                    && let Some(jpeg) = r.annotated_jpeg(self.quality)
                {
                    last_seq = Some(r.seq);
                    let head = format!("--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n", jpeg.len());
                    if w.write_all(head.as_bytes()).and_then(|_| w.write_all(&jpeg)).and_then(|_| w.write_all(b"\r\n")).is_err() {
                        break 'frames; // the client went away or stopped reading
                    }
                    break;
                }
            }
        }
    }
}

pub struct PreviewServer {
    server: Server,
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
    pub fn start(
        settings: &HttpSettings,
        metrics: Arc<Metrics>,
        pictures: Arc<PictureDemand>,
        zones: Arc<ZoneControl>,
        setup: Arc<SetupState>,
    ) -> Result<(PreviewServer, PreviewSink), HttpError> {
        let latest = Arc::new(Latest::default());
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Handler = {
            let (latest, stop, s) = (Arc::clone(&latest), Arc::clone(&stop), settings.clone());
            let shared = Served { metrics, pictures, zones, setup };
            Arc::new(move |req: &Request| answer(req, &latest, &shared, &stop, &s))
        };
        // Streams hold a connection each; the page, health checks and scrapers need a few more.
        let limits = Limits { max_connections: settings.max_streams as usize + 8, ..Limits::default() };
        let server = Server::start(&settings.listen, limits, handler, stop).map_err(|e| HttpError { addr: settings.listen.clone(), cause: e.to_string() })?;
        let addr = server.addr.to_string();
        log::info!("preview on http://{addr}/");
        if settings.open_beyond_loopback() {
            log::warn!("http: listening on {addr} without a token: anyone who reaches it sees the pool; set http.token");
        }
        Ok((PreviewServer { server, addr }, PreviewSink { latest }))
    }

    pub fn stop(&mut self) {
        self.server.stop();
    }
}

/// Whether `req` carries `token` (as a bearer token, a basic-auth password, the query or the cookie).
fn authorised(req: &Request, token: &str) -> bool {
    use base64::Engine;
    let bearer = req.header("authorization").and_then(|v| v.strip_prefix("Bearer ")).is_some_and(|t| t.trim() == token);
    let basic = req
        .header("authorization")
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .is_some_and(|up| up.split_once(':').is_some_and(|(_, p)| p == token));
    let query = req.query_value("token") == Some(token);
    let cookie = req.header("cookie").is_some_and(|c| c.split(';').any(|kv| kv.trim() == format!("poolwatch_token={token}")));
    bearer || basic || query || cookie
}

/// What the handler reads and switches.
struct Served {
    metrics: Arc<Metrics>,
    pictures: Arc<PictureDemand>,
    zones: Arc<ZoneControl>,
    setup: Arc<SetupState>,
}

/// Whether a request may change something: with a token configured, any authorised client (checked
/// before); without one, only this machine. A browser's cross-site request (an `Origin` other than this
/// server) never.
fn may_write(req: &Request, s: &HttpSettings) -> Result<(), Reply> {
    if s.token.is_none() && !req.loopback {
        return Err(Reply::text(403, "changing anything needs http.token, or a request from this machine\n"));
    }
    if let Some(origin) = req.header("origin")
        && req.header("host").is_none_or(|h| origin != format!("http://{h}") && origin != format!("https://{h}"))
    {
        return Err(Reply::text(403, "a request from another site may not change anything\n"));
    }
    Ok(())
}

/// `POST /setup?corners=...&count=..&length_m=..&zones=...`: the set-up page's lanes and zones,
/// saved to the config's `setup_file`; the daemon reloads and draws them.
fn save_setup(req: &Request, setup: &SetupState, s: &HttpSettings) -> Reply {
    if let Err(r) = may_write(req, s) {
        return r;
    }
    let new = match crate::device::setup::from_query(&req.query) {
        Ok(n) => n,
        Err(e) => return Reply::text(400, &format!("{e}\n")),
    };
    match setup.save(&new) {
        Ok(file) => {
            log::warn!("set-up page: lanes and zones saved to {}; reloading", file.display());
            Reply::new(200, "application/json", serde_json::json!({"saved": file.display().to_string()}).to_string())
        }
        Err(e) => Reply::text(409, &format!("{e}\n")),
    }
}

/// `POST /zones/NAME?set=off|on|MINUTES`.
fn switch_zone(req: &Request, zones: &ZoneControl, s: &HttpSettings) -> Reply {
    if let Err(r) = may_write(req, s) {
        return r;
    }
    let Some(zone) = req.path.strip_prefix("/zones/").filter(|z| crate::device::zones::valid_name(z)) else {
        return Reply::text(404, "no such zone: POST /zones/NAME?set=off|on|MINUTES\n");
    };
    let what = match req.query_value("set").map(Switch::parse) {
        Some(Ok(w)) => w,
        Some(Err(e)) => return Reply::text(400, &format!("set: {e}\n")),
        None => return Reply::text(400, "set=off, set=on or set=MINUTES is needed\n"),
    };
    match zones.switch(zone, what, zones.now()) {
        Ok(z) => {
            log::warn!("zone {zone}: switched {} over HTTP{}", z.state, z.remaining_s.map(|r| format!(" for {:.0} min", r / 60.0)).unwrap_or_default());
            Reply::new(200, "application/json", serde_json::to_string(&z).unwrap_or_default())
        }
        Err(e @ crate::device::zones::ZoneError::Unknown(_)) => Reply::text(404, &format!("{e}\n")),
        Err(e) => Reply::text(400, &format!("{e}\n")),
    }
}

fn answer(req: &Request, latest: &Arc<Latest>, served: &Served, stop: &Arc<AtomicBool>, s: &HttpSettings) -> Reply {
    let Served { metrics, pictures, zones, setup } = served;
    if let Some(token) = &s.token
        && !authorised(req, token)
    {
        return Reply::text(401, "a token is needed: Authorization: Bearer TOKEN, or ?token=TOKEN\n")
            .with_header("WWW-Authenticate", "Basic realm=\"poolwatch\"".to_string());
    }
    if req.post {
        return match req.path.as_str() {
            p if p.starts_with("/zones/") => switch_zone(req, zones, s),
            "/setup" => save_setup(req, setup, s),
            _ => Reply::text(405, "only POST /zones/NAME and /setup change anything\n").with_header("Allow", "GET, HEAD".to_string()),
        };
    }
    let reply = match req.path.as_str() {
        "/" | "/index.html" => Reply::new(200, "text/html; charset=utf-8", PAGE),
        "/zones" => Reply::new(200, "application/json", serde_json::to_string(&zones.states(zones.now())).unwrap_or_default()),
        "/setup" => Reply::new(200, "text/html; charset=utf-8", SETUP_PAGE),
        // Browsers ask for it; a water drop rather than a 404 in their consoles.
        "/favicon.ico" => Reply::new(200, "image/svg+xml", r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><circle cx="8" cy="9" r="6" fill="#3ad"/></svg>"##),
        "/setup.json" => {
            let (current, file) = setup.current();
            let body = serde_json::json!({"file": file.map(|f| f.display().to_string()), "lanes": current.lanes, "zones": current.zones.unwrap_or_default()});
            Reply::new(200, "application/json", body.to_string())
        }
        "/health" => {
            let (ok, body) = health(metrics, zones);
            Reply::new(if ok { 200 } else { 503 }, "application/json", body.to_string())
        }
        "/metrics" => Reply::new(200, "text/plain; version=0.0.4", prometheus(metrics)),
        "/snapshot.jpg" => {
            pictures.request_one();
            let after = latest.get().map(|r| r.seq);
            let r = latest.wait_picture(after, Duration::from_secs(2)).or_else(|| latest.get().filter(|r| r.picture.is_some()));
            match r.and_then(|r| r.annotated_jpeg(s.quality)) {
                Some(jpeg) => Reply::new(200, "image/jpeg", jpeg).with_header("Cache-Control", "no-store".to_string()),
                None => Reply::text(503, "no frame yet\n"),
            }
        }
        "/stream.mjpeg" => match StreamSlot::take(pictures, s.max_streams as u64) {
            None => Reply::text(503, "too many streams\n"),
            Some(slot) => {
                let stream = MjpegStream {
                    latest: Arc::clone(latest),
                    _slot: slot,
                    stop: Arc::clone(stop),
                    interval: Duration::from_secs_f64(1.0 / s.stream_fps),
                    quality: s.quality,
                };
                Reply::Stream { content_type: "multipart/x-mixed-replace; boundary=frame", write: Box::new(move |w| stream.run(w)) }
            }
        },
        _ => Reply::text(404, "not found\n"),
    };
    // A token given in the query is kept as a cookie, so the page's own requests carry it.
    match (&s.token, req.query_value("token")) {
        (Some(t), Some(q)) if q == t => reply.with_header("Set-Cookie", format!("poolwatch_token={t}; HttpOnly; SameSite=Strict; Path=/")),
        _ => reply,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)], query: &str) -> Request {
        Request { head: false, post: false, loopback: true, path: "/".into(), query: query.into(), headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect() }
    }

    #[test]
    fn a_token_is_taken_from_bearer_basic_query_or_cookie() {
        let t = "s3cret-token";
        assert!(authorised(&req(&[("authorization", "Bearer s3cret-token")], ""), t));
        // "user:s3cret-token" in base64.
        assert!(authorised(&req(&[("authorization", "Basic dXNlcjpzM2NyZXQtdG9rZW4=")], ""), t));
        assert!(authorised(&req(&[], "a=1&token=s3cret-token"), t));
        assert!(authorised(&req(&[("cookie", "x=1; poolwatch_token=s3cret-token")], ""), t));
        assert!(!authorised(&req(&[("authorization", "Bearer wrong")], "token=s3cret"), t));
        assert!(!authorised(&req(&[], ""), t));
        let open = HttpSettings { listen: "0.0.0.0:8080".into(), ..HttpSettings::default() };
        assert!(open.open_beyond_loopback());
        assert!(!HttpSettings { token: Some(t.into()), ..open.clone() }.open_beyond_loopback());
        assert!(!HttpSettings::default().open_beyond_loopback());
        assert!(HttpSettings { token: Some("short".into()), ..HttpSettings::default() }.validate().is_err());
        assert!(HttpSettings { token: Some("has space in it".into()), ..HttpSettings::default() }.validate().is_err());
    }
}
