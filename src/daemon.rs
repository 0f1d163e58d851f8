//! The running detector: capture, detection and outputs on their own threads with bounded queues.
//! Capture drops the oldest frame when detection is behind; `pipeline.threads` detection workers
//! ([`crate::workers`]) take frames in turn; the main thread tracks swimmers and maps lanes in frame
//! order; outputs fan each report out to the sinks. SIGHUP reloads config and model without touching the
//! camera; systemd hears readiness and a watchdog fed only while frames are processed.

use crate::config::Config;
use crate::detect::{DetectError, Detector};
use crate::frame::Frame;
use crate::http::PreviewServer;
use crate::lanes::LaneMap;
use crate::model::Autoencoder;
use crate::queue::{LatestQueue, Pop};
use crate::workers::{Detected, Next, Workers};
use crate::report::{Event, FrameReport, Metrics, Picture, RateMeter, Swimmer};
use crate::sink::Sink;
use crate::sink::jsonl::JsonLines;
use crate::sink::mqtt::MqttSink;
use crate::sink::serial::SerialSink;
use crate::sink::snapshot::SnapshotSink;
use crate::source::{FrameSource, Reopening};
use crate::track::Tracker;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("model: {0}")]
    Model(#[from] crate::model::ModelError),
    #[error("source: {0}")]
    Source(#[from] crate::source::SourceError),
    #[error(transparent)]
    Http(#[from] crate::http::HttpError),
    #[error(transparent)]
    Mqtt(#[from] crate::sink::mqtt::MqttError),
    #[error("cannot start a thread: {0}; the system is out of threads or memory")]
    Thread(std::io::Error),
}

/// How the daemon was started, beyond the config.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// The config file, re-read on SIGHUP (none: SIGHUP reloads the model only).
    pub config_path: Option<PathBuf>,
    /// `--model`, which wins over the config's `model` (also after a reload).
    pub model: Option<PathBuf>,
    /// Stop after this many processed frames.
    pub max_frames: Option<u64>,
    /// `--input`/`--stdin`/`--fps`: the source given on the command line, which also wins after a reload.
    pub source: Option<crate::source::SourceSettings>,
}

/// Counters of a finished run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunStats {
    pub processed: u64,
    pub bad_frames: u64,
    pub dropped: u64,
    pub reloads: u64,
}

/// Loads the model a config names (or the shipped one).
pub fn load_model(cfg: &Config, opts: &RunOptions) -> Result<Autoencoder, crate::model::ModelError> {
    match opts.model.as_ref().or(cfg.model.as_ref()) {
        Some(p) => Autoencoder::load(p),
        None => Autoencoder::embedded(),
    }
}

/// `threads` detectors for `model`, one per detection worker; they share its optimised plan.
fn detectors(cfg: &Config, model: Autoencoder, threads: usize) -> Result<Vec<Detector>, crate::model::ModelError> {
    Detector::new(model, cfg).with_forks(threads)
}

/// Tells systemd (when it started us with NOTIFY_SOCKET) how we are, as `sd_notify::notify` does but
/// without ever blocking: a datagram socket whose reader has fallen behind makes a blocking sender wait,
/// and that would stall the outputs thread and with it the whole pipeline. A message that does not fit
/// is dropped (the next watchdog ping or status goes out a second later).
fn notify(states: &[sd_notify::NotifyState]) {
    use std::fmt::Write as _;
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else { return };
    let mut msg = String::new();
    for s in states {
        let _ = writeln!(msg, "{s}");
    }
    let sent = (|| {
        let sock = std::os::unix::net::UnixDatagram::unbound()?;
        sock.set_nonblocking(true)?;
        sock.connect(&path)?;
        sock.send(msg.as_bytes())
    })();
    match sent {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => log::debug!("sd_notify: the service manager is not reading; dropped {:?}", msg.trim_end()),
        Err(e) => log::debug!("sd_notify: {e}"),
    }
}

/// The outputs of one config; rebuilt piecewise when a reload changes a section.
struct Outputs {
    cfg: Config,
    stdout: Option<JsonLines<std::io::Stdout>>,
    serial: Option<SerialSink>,
    mqtt: Option<MqttSink>,
    snapshots: Option<SnapshotSink>,
    http: Option<(PreviewServer, crate::http::PreviewSink)>,
}

impl Outputs {
    /// The outputs of `cfg`, keeping those of `prev` whose settings did not change. Outputs that
    /// cannot start are left out and their errors returned.
    fn build(cfg: &Config, prev: Option<Outputs>, metrics: &Arc<Metrics>, stdout_closed: &Arc<AtomicBool>) -> (Outputs, Vec<DaemonError>) {
        let mut prev = prev;
        let mut errors = Vec::new();
        let old = prev.as_ref().map(|p| p.cfg.clone());
        let same = |f: &dyn Fn(&Config) -> String| old.as_ref().is_some_and(|o| f(o) == f(cfg));
        let lanes_count = cfg.lanes.as_ref().map(|l| l.count).unwrap_or(0);
        let stdout = match prev.as_mut().and_then(|p| p.stdout.take()) {
            Some(s) if cfg.stdout.enabled => Some(s),
            _ if cfg.stdout.enabled => Some(JsonLines::new(std::io::stdout(), "stdout", Arc::clone(stdout_closed))),
            _ => None,
        };
        let serial = match prev.as_mut().and_then(|p| p.serial.take()) {
            Some(s) if same(&|c| format!("{:?}", c.serial)) => Some(s),
            _ => cfg.serial.clone().map(|s| SerialSink::start(s, Arc::clone(metrics))),
        };
        let mqtt_key = |c: &Config| format!("{:?} {} {:?}", c.mqtt, c.name, c.lanes.as_ref().map(|l| l.count));
        let mqtt = match prev.as_mut().and_then(|p| p.mqtt.take()) {
            Some(m) if same(&mqtt_key) => Some(m),
            old_sink => {
                drop(old_sink); // says goodbye before the new client connects
                match &cfg.mqtt {
                    Some(m) => MqttSink::start(m.clone(), &cfg.name, lanes_count, Arc::clone(metrics)).map_err(|e| errors.push(e.into())).ok(),
                    None => None,
                }
            }
        };
        let snapshots = match prev.as_mut().and_then(|p| p.snapshots.take()) {
            Some(s) if same(&|c| format!("{:?}", c.snapshots)) => Some(s),
            _ => cfg.snapshots.clone().map(SnapshotSink::new),
        };
        metrics.pictures_on_events.store(snapshots.is_some(), Ordering::Relaxed);
        let http = match prev.as_mut().and_then(|p| p.http.take()) {
            Some(h) if same(&|c| format!("{:?}", c.http)) => Some(h),
            old_server => {
                drop(old_server); // frees the port
                match &cfg.http {
                    Some(h) => PreviewServer::start(h, Arc::clone(metrics)).map_err(|e| errors.push(e.into())).ok(),
                    None => None,
                }
            }
        };
        (Outputs { cfg: cfg.clone(), stdout, serial, mqtt, snapshots, http }, errors)
    }

    fn sinks(&mut self) -> Vec<&mut dyn Sink> {
        let mut v: Vec<&mut dyn Sink> = Vec::new();
        if let Some(s) = &mut self.stdout {
            v.push(s);
        }
        if let Some(s) = &mut self.serial {
            v.push(s);
        }
        if let Some(s) = &mut self.mqtt {
            v.push(s);
        }
        if let Some(s) = &mut self.snapshots {
            v.push(s);
        }
        if let Some((_, s)) = &mut self.http {
            v.push(s);
        }
        v
    }

    fn close(&mut self) {
        for s in self.sinks() {
            s.close();
        }
        if let Some((server, _)) = &mut self.http {
            server.stop();
        }
    }
}

enum OutMsg {
    Frame(Box<FrameReport>),
    /// A reload's outputs, built on the inference thread so that a failure can refuse the reload.
    Replace(Box<dyn FnOnce(Outputs) -> Outputs + Send>),
}

fn outputs_loop(mut outputs: Outputs, rx: Receiver<OutMsg>, metrics: Arc<Metrics>) {
    let mut rate = RateMeter::default();
    let watchdog = sd_notify::watchdog_enabled();
    let mut last_ping = Instant::now() - Duration::from_secs(3600);
    let mut last_tick = Instant::now() - Duration::from_secs(1);
    let mut last_status = Instant::now();
    loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(OutMsg::Frame(r)) => {
                for s in outputs.sinks() {
                    s.frame(&r);
                }
            }
            Ok(OutMsg::Replace(f)) => outputs = f(outputs),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if last_tick.elapsed() >= Duration::from_millis(100) {
            last_tick = Instant::now();
            let fps = rate.update(metrics.processed.load(Ordering::Relaxed));
            metrics.fps_milli.store((fps * 1000.0) as u64, Ordering::Relaxed);
            let stats = metrics.snapshot();
            for s in outputs.sinks() {
                s.tick(&stats);
            }
            // The watchdog is fed only while frames really flow: a stuck camera or a hung model lets
            // systemd restart us.
            if let Some(wd) = watchdog
                && last_ping.elapsed() >= wd / 3
                && metrics.since_last_frame().is_some_and(|a| a < wd.as_secs_f64() / 2.0)
            {
                notify(&[sd_notify::NotifyState::Watchdog]);
                last_ping = Instant::now();
            }
            if last_status.elapsed() >= Duration::from_secs(5) {
                last_status = Instant::now();
                let line = format!("{:.1} fps, {} swimmers, {} dropped", stats.fps, stats.swimmers, stats.dropped);
                notify(&[sd_notify::NotifyState::Status(&line)]);
            }
        }
    }
    outputs.close();
}

/// What the main thread keeps across frames, in frame order: the tracker and the lane map.
struct Stage {
    tracker: Tracker,
    lanes: Option<LaneMap>,
    lane_corners: Option<([[f64; 2]; 4], u32)>,
}

impl Stage {
    fn new(cfg: &Config, tracker: Option<Tracker>) -> Stage {
        let lanes = cfg.lanes.as_ref().and_then(|l| LaneMap::new(l).ok());
        let mut tracker = tracker.unwrap_or_else(|| Tracker::new(cfg.tracking.clone()));
        tracker.set_settings(cfg.tracking.clone());
        Stage { tracker, lanes, lane_corners: cfg.lanes.as_ref().map(|l| (l.corners, l.count)) }
    }

    /// Tracks a detected frame's swimmers and makes its report; the heatmap goes into the report when
    /// an output draws this frame, else back to the workers.
    fn finish(&mut self, detected: Detected, metrics: &Metrics, workers: &Workers) -> Result<FrameReport, DetectError> {
        let Detected { frame, result, heatmap, mask } = detected;
        let d = match result {
            Ok(d) => d,
            Err(e) => {
                workers.recycle(heatmap);
                return Err(e);
            }
        };
        let t0 = Instant::now();
        let events = self.tracker.update(frame.seq, &d.boxes);
        let ts = (frame.unix_ts() * 1000.0).round() / 1000.0;
        let locate = |b: &[f32; 4]| self.lanes.as_ref().and_then(|m| m.locate_box(b));
        let swimmers: Vec<Swimmer> = self.tracker.tracks().map(|t| Swimmer::new(t.clone(), locate(&t.bbox))).collect();
        let events: Vec<Event> = events
            .into_iter()
            .map(|e| Event { event: e.kind, frame: frame.seq, ts, swimmer: Swimmer::new(e.track.clone(), locate(&e.track.bbox)) })
            .collect();
        let lanes = match &self.lanes {
            Some(m) => {
                let mut counts = vec![0u32; m.count() as usize];
                for s in &swimmers {
                    if let Some(l) = s.lane {
                        counts[l as usize - 1] += 1;
                    }
                }
                counts
            }
            None => Vec::new(),
        };
        let want_picture = metrics.preview_clients.load(Ordering::Relaxed) > 0
            || metrics.picture_requested.swap(false, Ordering::Relaxed)
            || (metrics.pictures_on_events.load(Ordering::Relaxed) && !events.is_empty());
        let picture = if want_picture {
            Some(Arc::new(Picture { heatmap, mask, lanes: self.lane_corners, image: frame.image }))
        } else {
            workers.recycle(heatmap);
            None
        };
        // The frame's own work: its detection (on a worker) and its tracking here.
        let ms = d.timings.total + t0.elapsed().as_secs_f64() * 1000.0;
        Ok(FrameReport {
            seq: frame.seq,
            ts,
            origin: frame.origin,
            width: d.width,
            height: d.height,
            boxes: d.boxes,
            swimmers,
            events,
            lanes,
            ms: (ms * 100.0).round() / 100.0,
            threshold: d.threshold,
            picture,
        })
    }
}

/// Re-reads the config file and the model; `Err` leaves everything as it was.
fn reload(opts: &RunOptions, running: &Config) -> Result<(Config, Autoencoder), String> {
    let mut cfg = match &opts.config_path {
        Some(p) => Config::load(p).map_err(|e| e.to_string())?,
        None => running.clone(),
    };
    if let Some(s) = &opts.source {
        cfg.source = s.clone();
    }
    let model = load_model(&cfg, opts).map_err(|e| e.to_string())?;
    Ok((cfg, model))
}

/// Runs until a finite source ends, `max_frames` are processed, `stop` is set (SIGTERM/SIGINT) or
/// stdout's reader goes away. `reload` (SIGHUP) re-reads the config and model between frames.
pub fn run(cfg: Config, opts: &RunOptions, stop: Arc<AtomicBool>, reload_flag: Arc<AtomicBool>) -> Result<RunStats, DaemonError> {
    let model = load_model(&cfg, opts)?;
    let metrics = Arc::new(Metrics::default());
    let stdout_closed = Arc::new(AtomicBool::new(false));
    // A source that ends by itself (files, a pipe) must open now: a typo in a path is a usage error.
    // A camera may be unplugged at start; it is retried like any outage.
    let first = if cfg.source.is_finite() {
        Some(cfg.source.open(0)?)
    } else {
        match cfg.source.open(0) {
            Ok(s) => Some(s),
            Err(e) => {
                log::warn!("source: {e}; will keep trying");
                None
            }
        }
    };
    let (outputs, mut errors) = Outputs::build(&cfg, None, &metrics, &stdout_closed);
    if !errors.is_empty() {
        return Err(errors.remove(0));
    }
    let threads = cfg.pipeline.threads;
    let model_path = model.path().display().to_string();
    let dets = detectors(&cfg, model, threads)?;
    let mut stage = Stage::new(&cfg, None);

    // Capture thread.
    let queue = Arc::new(LatestQueue::<Frame>::new(cfg.pipeline.queue));
    let every_nth = Arc::new(AtomicU32::new(cfg.pipeline.every_nth));
    let capture_stop = Arc::new(AtomicBool::new(false));
    // Dropped when the capture thread ends, so shutdown can wait for it with a time limit.
    let (done_tx, capture_done) = std::sync::mpsc::channel::<()>();
    let capture = {
        let (queue, metrics, every_nth, cstop) = (Arc::clone(&queue), Arc::clone(&metrics), Arc::clone(&every_nth), Arc::clone(&capture_stop));
        let m2 = Arc::clone(&metrics);
        let on_state = Box::new(move |ok: bool| {
            if !ok {
                m2.source_errors.fetch_add(1, Ordering::Relaxed);
            }
            m2.source_ok.store(ok, Ordering::Relaxed);
        });
        // Files and pipes wait for inference (every frame counts); live sources drop the oldest.
        let lossless = cfg.source.is_finite();
        let mut source = Reopening::new(cfg.source.clone(), Arc::clone(&capture_stop), on_state);
        if let Some(s) = first {
            source = source.with_opened(s);
            metrics.source_ok.store(true, Ordering::Relaxed);
        }
        std::thread::Builder::new()
            .name("capture".into())
            .spawn(move || {
                let _done = done_tx;
                let mut n: u64 = 0;
                while !cstop.load(Ordering::Relaxed) {
                    match source.next_frame() {
                        Ok(Some(frame)) => {
                            metrics.captured.fetch_add(1, Ordering::Relaxed);
                            let nth = every_nth.load(Ordering::Relaxed).max(1) as u64;
                            n += 1;
                            if !(n - 1).is_multiple_of(nth) {
                                metrics.skipped.fetch_add(1, Ordering::Relaxed);
                                continue;
                            }
                            if lossless {
                                if !queue.push_wait(frame, &cstop) {
                                    break;
                                }
                            } else if queue.push(frame) {
                                metrics.dropped.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Ok(None) => break,
                        Err(e) => {
                            log::warn!("skipping a frame: {e}");
                            metrics.bad_frames.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                queue.close();
            })
            .map_err(DaemonError::Thread)?
    };

    // Outputs thread.
    let (tx, rx): (SyncSender<OutMsg>, Receiver<OutMsg>) = sync_channel(8);
    let out_thread = {
        let metrics = Arc::clone(&metrics);
        std::thread::Builder::new().name("outputs".into()).spawn(move || outputs_loop(outputs, rx, metrics)).map_err(DaemonError::Thread)?
    };

    // Detection workers.
    let mut workers = Workers::start(dets, Arc::clone(&queue), Arc::clone(&capture_stop)).map_err(DaemonError::Thread)?;

    notify(&[sd_notify::NotifyState::Ready, sd_notify::NotifyState::Status("running")]);
    log::info!("running: model {model_path}, {threads} detection thread(s)");

    let mut running = cfg;
    let mut stats = RunStats::default();
    let mut stopping = false;
    loop {
        if !stopping && (stop.load(Ordering::Relaxed) || stdout_closed.load(Ordering::Relaxed)) {
            // Stop capturing, then drain what is queued so nothing captured is lost.
            stopping = true;
            capture_stop.store(true, Ordering::Relaxed);
        }
        if reload_flag.swap(false, Ordering::Relaxed) {
            notify(&[sd_notify::NotifyState::Reloading]);
            match reload(opts, &running) {
                Ok((new_cfg, model)) => {
                    if new_cfg.source != running.source {
                        log::warn!("reload: [source] changed; the camera stays as it is until a restart");
                    }
                    if new_cfg.pipeline.queue != running.pipeline.queue {
                        log::warn!("reload: pipeline.queue changes after a restart");
                    }
                    if new_cfg.pipeline.threads != threads {
                        log::warn!("reload: pipeline.threads changes after a restart; keeping {threads}");
                    }
                    let path = model.path().display().to_string();
                    let dets = match detectors(&new_cfg, model, threads) {
                        Ok(d) => d,
                        Err(e) => {
                            log::error!("reload refused, keeping the running config: {e}");
                            notify(&[sd_notify::NotifyState::Ready]);
                            continue;
                        }
                    };
                    let (m, closed, c) = (Arc::clone(&metrics), Arc::clone(&stdout_closed), new_cfg.clone());
                    // Outputs are rebuilt on their own thread; one that cannot start is logged there and
                    // the others keep going.
                    let replace = Box::new(move |old: Outputs| {
                        let (outputs, errors) = Outputs::build(&c, Some(old), &m, &closed);
                        for e in errors {
                            log::error!("reload: {e}; continuing without that output");
                        }
                        outputs
                    });
                    let _ = tx.send(OutMsg::Replace(replace));
                    every_nth.store(new_cfg.pipeline.every_nth, Ordering::Relaxed);
                    workers.replace(dets);
                    let tracker = std::mem::replace(&mut stage.tracker, Tracker::new(new_cfg.tracking.clone()));
                    stage = Stage::new(&new_cfg, Some(tracker));
                    running = new_cfg;
                    stats.reloads += 1;
                    log::info!("reloaded: model {path}");
                }
                Err(e) => log::error!("reload refused, keeping the running config: {e}"),
            }
            notify(&[sd_notify::NotifyState::Ready]);
        }
        // The workers end once stopping and the queue is drained, even if the capture thread is
        // stuck in a read, or when the source has ended.
        let detected = match workers.next(Duration::from_millis(100)) {
            Next::Ready(d) => d,
            Next::Waiting => continue,
            Next::Finished => break,
        };
        match stage.finish(*detected, &metrics, &workers) {
            Ok(report) => {
                metrics.frame_done(report.ms / 1000.0, report.swimmers.len());
                stats.processed += 1;
                if tx.send(OutMsg::Frame(Box::new(report))).is_err() {
                    break;
                }
            }
            Err(e) => {
                log::warn!("frame skipped: {e}");
                metrics.bad_frames.fetch_add(1, Ordering::Relaxed);
            }
        }
        if opts.max_frames.is_some_and(|m| stats.processed >= m) {
            capture_stop.store(true, Ordering::Relaxed);
            // Frames already queued beyond the limit are not wanted.
            while let Pop::Item(_) = queue.pop(Duration::ZERO) {}
            break;
        }
    }
    notify(&[sd_notify::NotifyState::Stopping]);
    capture_stop.store(true, Ordering::Relaxed);
    workers.shutdown();
    drop(tx);
    let _ = out_thread.join();
    // The capture thread may sit in a read: a camera's ends within its timeout, but a pipe that went
    // quiet never returns. Wait a little, then leave it to the process exit.
    match capture_done.recv_timeout(Duration::from_secs(3)) {
        Err(RecvTimeoutError::Timeout) => log::info!("the source is still blocked in a read; not waiting for it"),
        _ => {
            let _ = capture.join();
        }
    }
    let s = metrics.snapshot();
    stats.bad_frames = s.bad_frames;
    stats.dropped = s.dropped;
    log::info!("stopped after {} frames ({} unreadable, {} dropped behind the camera)", stats.processed, stats.bad_frames, stats.dropped);
    Ok(stats)
}
