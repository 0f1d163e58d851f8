//! The outputs of one config (stdout, serial, MQTT, snapshots, the HTTP preview), rebuilt piecewise
//! on reload, and the thread that feeds them.

use super::{DaemonError, notify};
use crate::device::config::Config;
use crate::device::report::{FrameReport, Health, Metrics, PictureDemand, RateMeter};
use crate::device::sink::Sink;
use crate::device::sink::http::{PreviewServer, PreviewSink};
use crate::device::sink::jsonl::JsonLines;
use crate::device::sink::mqtt::MqttSink;
use crate::device::sink::serial::SerialSink;
use crate::device::sink::snapshot::SnapshotSink;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// What the outputs share with the rest of the daemon.
#[derive(Clone, Default)]
pub struct Shared {
    pub metrics: Arc<Metrics>,
    /// Which frames the drawing outputs want drawn.
    pub pictures: Arc<PictureDemand>,
    /// Set when stdout's reader went away: the daemon stops.
    pub stdout_closed: Arc<AtomicBool>,
    /// The alarm zones and which are off (switched over MQTT and HTTP, read by the stage).
    pub zones: Arc<crate::device::zones::ZoneControl>,
    /// What the preview's set-up page edits and where it saves.
    pub setup: Arc<crate::device::setup::SetupState>,
}

/// The outputs of one config; rebuilt piecewise when a reload changes a section.
pub struct Outputs {
    cfg: Config,
    stdout: Option<JsonLines<std::io::Stdout>>,
    serial: Option<SerialSink>,
    mqtt: Option<MqttSink>,
    snapshots: Option<SnapshotSink>,
    http: Option<(PreviewServer, PreviewSink)>,
}

impl Outputs {
    /// The outputs of `cfg`, keeping those of `prev` whose settings did not change. Outputs that
    /// cannot start are left out and their errors returned.
    pub fn build(cfg: &Config, prev: Option<Outputs>, shared: &Shared) -> (Outputs, Vec<DaemonError>) {
        let Shared { metrics, pictures, stdout_closed, zones, setup } = shared;
        let mut prev = prev;
        let mut errors = Vec::new();
        let old = prev.as_ref().map(|p| p.cfg.clone());
        // Whether a section is the same in the running config: its output then keeps its connection.
        let same = |f: &dyn Fn(&Config) -> bool| old.as_ref().is_some_and(f);
        let lanes_count = cfg.lanes.as_ref().map(|l| l.count).unwrap_or(0);
        let stdout = match prev.as_mut().and_then(|p| p.stdout.take()) {
            Some(s) if cfg.stdout.enabled => Some(s),
            _ if cfg.stdout.enabled => Some(JsonLines::new(std::io::stdout(), "stdout", Arc::clone(stdout_closed))),
            _ => None,
        };
        let serial = match prev.as_mut().and_then(|p| p.serial.take()) {
            Some(s) if same(&|c| c.serial == cfg.serial) => Some(s),
            _ => cfg.serial.clone().map(|s| SerialSink::start(s, Arc::clone(metrics))),
        };
        // The broker's topics and discovery depend on the camera's name and lane count too.
        let lane_count = |c: &Config| c.lanes.as_ref().map(|l| l.count);
        let mqtt = match prev.as_mut().and_then(|p| p.mqtt.take()) {
            Some(m) if same(&|c| c.mqtt == cfg.mqtt && c.name == cfg.name && lane_count(c) == lane_count(cfg)) => Some(m),
            old_sink => {
                drop(old_sink); // says goodbye before the new client connects
                match &cfg.mqtt {
                    Some(m) => MqttSink::start(m.clone(), &cfg.name, lanes_count, Arc::clone(metrics), Arc::clone(zones)).map_err(|e| errors.push(e.into())).ok(),
                    None => None,
                }
            }
        };
        let snapshots = match prev.as_mut().and_then(|p| p.snapshots.take()) {
            Some(s) if same(&|c| c.snapshots == cfg.snapshots) => Some(s),
            _ => cfg.snapshots.clone().map(SnapshotSink::new),
        };
        pictures.set_on_events(snapshots.is_some());
        let http = match prev.as_mut().and_then(|p| p.http.take()) {
            Some(h) if same(&|c| c.http == cfg.http) => Some(h),
            old_server => {
                drop(old_server); // frees the port
                match &cfg.http {
                    Some(h) => PreviewServer::start(h, Arc::clone(metrics), Arc::clone(pictures), Arc::clone(zones), Arc::clone(setup)).map_err(|e| errors.push(e.into())).ok(),
                    None => None,
                }
            }
        };
        (Outputs { cfg: cfg.clone(), stdout, serial, mqtt, snapshots, http }, errors)
    }

    pub fn sinks(&mut self) -> Vec<&mut dyn Sink> {
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

    pub fn close(&mut self) {
        for s in self.sinks() {
            s.close();
        }
        if let Some((server, _)) = &mut self.http {
            server.stop();
        }
    }
}

pub enum OutMsg {
    Frame(Box<FrameReport>),
    /// A reload's outputs, built on the inference thread so that a failure can refuse the reload.
    Replace(Box<dyn FnOnce(Outputs) -> Outputs + Send>),
}

/// The outputs thread: each report to every sink, ticks ten times a second (heartbeats, stats, the
/// watchdog, systemd's status line), reloads' replacements; closes the sinks when the channel closes.
pub fn outputs_loop(mut outputs: Outputs, rx: Receiver<OutMsg>, metrics: Arc<Metrics>) {
    let mut rate = RateMeter::default();
    let watchdog = sd_notify::watchdog_enabled();
    let mut last_ping = Instant::now() - Duration::from_secs(3600);
    let mut last_tick = Instant::now() - Duration::from_secs(1);
    let mut last_status = Instant::now();
    let mut sink_warn = crate::device::throttle::Throttle::new(Duration::from_secs(10));
    loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(OutMsg::Frame(r)) => {
                for s in outputs.sinks() {
                    // A sink that panics on one report loses that report, not the daemon.
                    if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| s.frame(&r)))
                        && let Some(more) = sink_warn.allow()
                    {
                        log::error!("{}: frame {} not sent: {}{more}", s.name(), r.seq, crate::device::workers::panic_message(&panic));
                    }
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
                && stats.state != Health::Failing
                && metrics.since_last_frame().is_some_and(|a| a < wd.as_secs_f64() / 2.0)
            {
                notify::notify(&[sd_notify::NotifyState::Watchdog]);
                last_ping = Instant::now();
            }
            if last_status.elapsed() >= Duration::from_secs(5) {
                last_status = Instant::now();
                let line = stats.status_line();
                notify::notify(&[sd_notify::NotifyState::Status(&line)]);
            }
        }
    }
    outputs.close();
}
