//! The running detector: capture, detection and outputs on their own threads with bounded queues.
//! Capture drops the oldest frame when detection is behind; `pipeline.threads` detection workers
//! ([`crate::device::workers`]) take frames in turn; the main thread tracks swimmers and maps lanes in frame
//! order; outputs fan each report out to the sinks. SIGHUP reloads config and model without touching the
//! camera; systemd hears readiness and a watchdog fed only while frames are processed.

mod capture;
mod notify;
mod outputs;
mod stage;

use crate::device::config::Config;
use crate::device::queue::{LatestQueue, Pop};
use crate::pipeline::frame::Frame;
use crate::device::source::Reopening;
use crate::device::workers::{Next, Workers};
use crate::pipeline::detect::Detector;
use crate::pipeline::model::Autoencoder;
use crate::pipeline::track::Tracker;
use notify::notify;
use outputs::{OutMsg, Outputs, Shared};
use stage::Stage;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    // Both say everything themselves: not sources of this error, or a chain printed with `{:#}`
    // would say it twice.
    #[error("{0}")]
    Model(crate::pipeline::model::ModelError),
    #[error("source: {0}")]
    Source(crate::device::source::SourceError),
    #[error(transparent)]
    Http(#[from] crate::device::sink::http::HttpError),
    #[error(transparent)]
    Mqtt(#[from] crate::device::sink::mqtt::MqttError),
    /// The config validates, but a frame through it fails (a mask image that is not there, ...).
    #[error("config: {0}")]
    Preflight(String),
    #[error("cannot start a thread: {0}; the system is out of threads or memory")]
    Thread(std::io::Error),
}

impl From<crate::pipeline::model::ModelError> for DaemonError {
    fn from(e: crate::pipeline::model::ModelError) -> Self {
        DaemonError::Model(e)
    }
}

impl From<crate::device::source::SourceError> for DaemonError {
    fn from(e: crate::device::source::SourceError) -> Self {
        DaemonError::Source(e)
    }
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
    pub source: Option<crate::device::source::SourceSettings>,
}

/// Counters of a finished run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunStats {
    pub processed: u64,
    pub bad_frames: u64,
    pub dropped: u64,
    pub reloads: u64,
}

/// The config with the source's own lanes (the synthetic camera's) when it has none.
fn with_source_lanes(mut cfg: Config) -> Config {
    if cfg.lanes.is_none() {
        cfg.lanes = cfg.source.known_lanes();
        if let Some(l) = &cfg.lanes {
            let c = l.corners.map(|p| [p[0].round(), p[1].round()]);
            log::info!("lanes: the synthetic camera's own, {} lanes of {} m, corners {c:?} (a [lanes] section replaces them)", l.count, l.length_m);
        }
    }
    cfg
}

/// Loads the model a config names (or the shipped one).
pub fn load_model(cfg: &Config, opts: &RunOptions) -> Result<Autoencoder, crate::pipeline::model::ModelError> {
    Autoencoder::load_or_embedded_with(opts.model.as_deref().or(cfg.model.as_deref()), cfg.pipeline.networks)
}

/// `threads` detectors for `model`, one per detection worker; they share its optimised plan.
fn detectors(cfg: &Config, model: Autoencoder, threads: usize) -> Result<Vec<Detector>, crate::pipeline::model::ModelError> {
    Detector::new(model, &cfg.detector()).with_forks(threads)
}

/// Re-reads the config file and the model and makes the new detectors (with the model's path, for
/// the log); `Err` leaves everything as it was. Settings that only a restart applies are kept, with a
/// warning.
fn reload(opts: &RunOptions, running: &Config, threads: usize) -> Result<(Config, Vec<Detector>, String), String> {
    let mut cfg = match &opts.config_path {
        Some(p) => Config::load(p).map_err(|e| e.to_string())?,
        None => running.clone(),
    };
    if let Some(s) = &opts.source {
        cfg.source = s.clone();
    }
    let cfg = with_source_lanes(cfg);
    let model = load_model(&cfg, opts).map_err(|e| e.to_string())?;
    crate::device::preflight::preflight(&cfg, &model, false)?;
    if cfg.source != running.source {
        log::warn!("reload: [source] changed; the camera stays as it is until a restart");
    }
    if cfg.pipeline.queue != running.pipeline.queue {
        log::warn!("reload: pipeline.queue changes after a restart");
    }
    if cfg.pipeline.threads != threads {
        log::warn!("reload: pipeline.threads changes after a restart; keeping {threads}");
    }
    let path = model.path().display().to_string();
    let dets = detectors(&cfg, model, threads).map_err(|e| e.to_string())?;
    Ok((cfg, dets, path))
}

/// Runs until a finite source ends, `max_frames` are processed, `stop` is set (SIGTERM/SIGINT) or
/// stdout's reader goes away. `reload` (SIGHUP) re-reads the config and model between frames.
pub fn run(cfg: Config, opts: &RunOptions, stop: Arc<AtomicBool>, reload_flag: Arc<AtomicBool>) -> Result<RunStats, DaemonError> {
    let cfg = with_source_lanes(cfg);
    let model = load_model(&cfg, opts)?;
    crate::device::preflight::preflight(&cfg, &model, false).map_err(DaemonError::Preflight)?;
    crate::media::images::set_max_pixels(cfg.pipeline.max_pixels);
    let shared = Shared { setup: Arc::new(crate::device::setup::SetupState::new(Arc::clone(&reload_flag))), ..Shared::default() };
    shared.zones.set_zones(&cfg.zones);
    shared.setup.set(cfg.setup_file.as_deref(), cfg.lanes.as_ref(), &cfg.zones);
    let metrics = Arc::clone(&shared.metrics);
    let capture_stop = Arc::new(AtomicBool::new(false));
    let on_state = {
        let m = Arc::clone(&metrics);
        Box::new(move |ok: bool| {
            if !ok {
                m.source_errors.fetch_add(1, Ordering::Relaxed);
            }
            m.source_ok.store(ok, Ordering::Relaxed);
        })
    };
    let source = Reopening::start(cfg.source.clone(), Arc::clone(&capture_stop), on_state)?;
    metrics.source_ok.store(source.is_open(), Ordering::Relaxed);
    let (outputs, mut errors) = Outputs::build(&cfg, None, &shared);
    if !errors.is_empty() {
        return Err(errors.remove(0));
    }
    let threads = cfg.pipeline.threads;
    let model_path = model.path().display().to_string();
    let dets = detectors(&cfg, model, threads)?;
    let mut stage = Stage::new(&cfg, None, Arc::clone(&shared.zones));

    // Capture thread.
    let queue = Arc::new(LatestQueue::<Frame>::new(cfg.pipeline.queue));
    let every_nth = Arc::new(AtomicU32::new(cfg.pipeline.every_nth));
    let (done_tx, capture_done) = std::sync::mpsc::channel::<()>();
    let c = capture::Capture { queue: Arc::clone(&queue), every_nth: Arc::clone(&every_nth), stop: Arc::clone(&capture_stop), metrics: Arc::clone(&metrics) };
    let capture = capture::spawn(source, &c, cfg.source.is_finite(), done_tx).map_err(DaemonError::Thread)?;

    // Outputs thread.
    let (tx, rx): (SyncSender<OutMsg>, Receiver<OutMsg>) = sync_channel(8);
    let out_thread = {
        let metrics = Arc::clone(&metrics);
        std::thread::Builder::new().name("outputs".into()).spawn(move || outputs::outputs_loop(outputs, rx, metrics)).map_err(DaemonError::Thread)?
    };

    // Detection workers.
    let mut workers = Workers::start(dets, Arc::clone(&queue), Arc::clone(&capture_stop)).map_err(DaemonError::Thread)?;

    notify(&[sd_notify::NotifyState::Ready, sd_notify::NotifyState::Status("running")]);
    log::info!("running: model {model_path}, {threads} detection thread(s)");

    let mut running = cfg;
    let mut stats = RunStats::default();
    let mut stopping = false;
    let mut frame_warn = crate::device::throttle::Throttle::new(Duration::from_secs(10));
    loop {
        if !stopping && (stop.load(Ordering::Relaxed) || shared.stdout_closed.load(Ordering::Relaxed)) {
            // Stop capturing, then drain what is queued so nothing captured is lost.
            stopping = true;
            capture_stop.store(true, Ordering::Relaxed);
        }
        if reload_flag.swap(false, Ordering::Relaxed) {
            notify(&[sd_notify::NotifyState::Reloading]);
            match reload(opts, &running, threads) {
                Ok((new_cfg, dets, path)) => {
                    let (sh, c) = (shared.clone(), new_cfg.clone());
                    // Outputs are rebuilt on their own thread; one that cannot start is logged there and
                    // the others keep going.
                    let replace = Box::new(move |old: Outputs| {
                        let (outputs, errors) = Outputs::build(&c, Some(old), &sh);
                        for e in errors {
                            log::error!("reload: {e}; continuing without that output");
                        }
                        outputs
                    });
                    let _ = tx.send(OutMsg::Replace(replace));
                    every_nth.store(new_cfg.pipeline.every_nth, Ordering::Relaxed);
                    crate::media::images::set_max_pixels(new_cfg.pipeline.max_pixels);
                    workers.replace(dets);
                    shared.zones.set_zones(&new_cfg.zones);
                    shared.setup.set(new_cfg.setup_file.as_deref(), new_cfg.lanes.as_ref(), &new_cfg.zones);
                    let old = std::mem::replace(&mut stage, Stage::new(&new_cfg, None, Arc::clone(&shared.zones)));
                    stage = Stage::new(&new_cfg, Some(old), Arc::clone(&shared.zones));
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
        // A panic in tracking is this frame's failure too; the tracker it may have left half-updated
        // starts afresh.
        let finished = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| stage.finish(*detected, &shared.pictures, &workers)))
            .unwrap_or_else(|panic| {
                stage.tracker = Tracker::new(running.tracking.clone());
                Err(crate::pipeline::detect::DetectError::Crashed(format!("tracking: {}", crate::device::workers::panic_message(&panic))))
            });
        match finished {
            Ok(report) => {
                metrics.frame_done(report.ms / 1000.0, report.swimmers.len());
                metrics.set_alarms(&report.alarm_active);
                stats.processed += 1;
                if tx.send(OutMsg::Frame(Box::new(report))).is_err() {
                    break;
                }
            }
            Err(e) => {
                if let Some(more) = frame_warn.allow() {
                    log::warn!("frame skipped: {e}{more}");
                }
                metrics.frame_failed(&e);
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
