//! The serial output to a timing system: NMEA-style sentences (or JSON lines) written by a thread of
//! its own, so a slow or dead port never blocks the pipeline; a port that goes away is reopened with
//! back-off.

use crate::util::setting::SettingError;
use super::{Sink, nmea};
use crate::device::backoff::Backoff;
use crate::device::report::{FrameReport, Metrics, Stats};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant, SystemTime};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Parity {
    #[default]
    None,
    Even,
    Odd,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LineFormat {
    /// `$PW...*XX` sentences (README: "Serial protocol").
    #[default]
    Nmea,
    /// One JSON object per frame, as on stdout.
    Json,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SerialSettings {
    /// The device, e.g. `/dev/ttyUSB0` or `/dev/serial0`.
    pub port: String,
    pub baud: u32,
    pub parity: Parity,
    pub data_bits: u8,
    pub stop_bits: u8,
    pub format: LineFormat,
    /// Seconds between `$PWHBT` heartbeats (0 = none).
    pub heartbeat_s: f64,
    /// Lines waiting for a slow port before new ones are dropped.
    pub buffer: usize,
}

impl Default for SerialSettings {
    fn default() -> Self {
        SerialSettings {
            port: String::new(),
            baud: 115_200,
            parity: Parity::None,
            data_bits: 8,
            stop_bits: 1,
            format: LineFormat::Nmea,
            heartbeat_s: 1.0,
            buffer: 256,
        }
    }
}

impl SerialSettings {
    /// Every key in its range (keys as the `[serial]` section names them).
    pub fn validate(&self) -> Result<(), SettingError> {
        let bad = |k: &str, m: String| Err(SettingError::new(k, m));
        if self.port.is_empty() {
            return bad("port", "is required (e.g. \"/dev/ttyUSB0\")".into());
        }
        if !(50..=4_000_000).contains(&self.baud) {
            return bad("baud", format!("{} must be in 50..=4000000", self.baud));
        }
        if !(5..=8).contains(&self.data_bits) {
            return bad("data_bits", format!("{} must be 5, 6, 7 or 8", self.data_bits));
        }
        if !(1..=2).contains(&self.stop_bits) {
            return bad("stop_bits", format!("{} must be 1 or 2", self.stop_bits));
        }
        if !(0.0..=3600.0).contains(&self.heartbeat_s) {
            return bad("heartbeat_s", format!("{} must be in [0, 3600]", self.heartbeat_s));
        }
        if !(1..=100_000).contains(&self.buffer) {
            return bad("buffer", format!("{} must be in 1..=100000", self.buffer));
        }
        Ok(())
    }

    fn open(&self) -> Result<Box<dyn serialport::SerialPort>, serialport::Error> {
        use serialport::{DataBits, StopBits};
        let data_bits = match self.data_bits {
            5 => DataBits::Five,
            6 => DataBits::Six,
            7 => DataBits::Seven,
            _ => DataBits::Eight,
        };
        let parity = match self.parity {
            Parity::None => serialport::Parity::None,
            Parity::Even => serialport::Parity::Even,
            Parity::Odd => serialport::Parity::Odd,
        };
        let stop_bits = if self.stop_bits == 2 { StopBits::Two } else { StopBits::One };
        serialport::new(&self.port, self.baud)
            .data_bits(data_bits)
            .parity(parity)
            .stop_bits(stop_bits)
            .flow_control(serialport::FlowControl::None)
            .timeout(Duration::from_millis(500))
            .open()
    }
}

pub struct SerialSink {
    settings: SerialSettings,
    tx: Option<SyncSender<String>>,
    writer: Option<std::thread::JoinHandle<()>>,
    metrics: Arc<Metrics>,
    last_heartbeat: Option<Instant>,
}

impl SerialSink {
    /// Starts the writer thread; the port is opened there (and reopened when it fails).
    pub fn start(settings: SerialSettings, metrics: Arc<Metrics>) -> SerialSink {
        let (tx, rx) = sync_channel(settings.buffer);
        let s = settings.clone();
        let writer = std::thread::Builder::new()
            .name("serial".into())
            .spawn(move || writer_loop(&s, rx))
            .map_err(|e| log::error!("serial {}: cannot start the writer thread: {e}", settings.port))
            .ok();
        SerialSink { settings, tx: writer.as_ref().map(|_| tx), writer, metrics, last_heartbeat: None }
    }

    fn send(&mut self, text: String) {
        let Some(tx) = &self.tx else { return };
        match tx.try_send(text) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.metrics.output_dropped.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Disconnected(_)) => self.tx = None,
        }
    }
}

/// Writes lines to the port, reopening it with back-off while it is away. A port that fails (cannot be
/// opened, or takes no more bytes: a stalled or vanished reader) is warned about once per streak, the
/// retries logged at debug, and its return at info; the back-off is reset only by a line that got through,
/// so a port that opens but stalls is retried ever more slowly, not every second.
fn writer_loop(s: &SerialSettings, rx: Receiver<String>) {
    let mut port: Option<Box<dyn serialport::SerialPort>> = None;
    let mut backoff = Backoff::new(Duration::from_secs(10));
    let mut retry_at = Instant::now();
    // Failed opens and writes since the last line that got through (0: the port works).
    let mut failures = 0u64;
    // A write that timed out may have sent part of a sentence: the next line first ends it, so the
    // receiver drops one line with a bad checksum rather than joining two.
    let mut cut_short = false;
    let fail = |what: &str, failures: &mut u64, backoff: &mut Backoff| -> Instant {
        let d = backoff.next_delay();
        if *failures == 0 {
            log::warn!("serial {}: {what}; retrying with back-off (warned once until it works again)", s.port);
        } else {
            log::debug!("serial {}: {what} (failure {}); next try in {d:?}", s.port, *failures + 1);
        }
        *failures += 1;
        Instant::now() + d
    };
    loop {
        let text = match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(t) => Some(t),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        if port.is_none() && Instant::now() >= retry_at {
            match s.open() {
                Ok(p) => {
                    if failures == 0 {
                        log::info!("serial {}: open at {} baud", s.port, s.baud);
                    } else {
                        log::debug!("serial {}: open again", s.port);
                    }
                    port = Some(p);
                }
                Err(e) => retry_at = fail(&format!("cannot open ({e})"), &mut failures, &mut backoff),
            }
        }
        // While the port is away, lines are dropped: a timing system wants the present, not a backlog.
        if let (Some(p), Some(text)) = (port.as_mut(), text) {
            let end = if cut_short { "\r\n" } else { "" };
            match p.write_all(end.as_bytes()).and_then(|_| p.write_all(text.as_bytes())).and_then(|_| p.flush()) {
                Ok(()) if failures > 0 => {
                    log::info!("serial {}: writing again (after {failures} failed attempts)", s.port);
                    failures = 0;
                    cut_short = false;
                    backoff.reset();
                }
                Ok(()) => {}
                Err(e) => {
                    port = None;
                    cut_short = true;
                    retry_at = fail(&format!("write failed ({e}), reopening"), &mut failures, &mut backoff);
                }
            }
        }
    }
    if let Some(mut p) = port {
        let _ = p.flush();
    }
}

impl Sink for SerialSink {
    fn name(&self) -> String {
        format!("serial {}", self.settings.port)
    }

    fn frame(&mut self, r: &FrameReport) {
        let text = match self.settings.format {
            LineFormat::Nmea => nmea::frame_sentences(r),
            LineFormat::Json => format!("{}\r\n", r.json()),
        };
        self.send(text);
    }

    fn tick(&mut self, stats: &Stats) {
        if self.settings.heartbeat_s <= 0.0 || self.settings.format != LineFormat::Nmea {
            return;
        }
        let due = self.last_heartbeat.is_none_or(|t| t.elapsed().as_secs_f64() >= self.settings.heartbeat_s);
        if due {
            self.last_heartbeat = Some(Instant::now());
            let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
            self.send(nmea::heartbeat(now, stats));
        }
    }

    fn close(&mut self) {
        // Dropping the sender ends the writer after it has written what is queued.
        self.tx = None;
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

impl Drop for SerialSink {
    fn drop(&mut self) {
        self.close();
    }
}
