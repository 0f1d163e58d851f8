//! Outputs: one trait, so stdout, a serial line, MQTT, snapshots and the preview server are
//! interchangeable. Outputs never block the pipeline: a slow or dead one drops and counts.

pub mod http;
pub mod jsonl;
pub mod mqtt;
pub mod nmea;
pub mod serial;
pub mod snapshot;

use crate::device::report::{FrameReport, Stats};

pub trait Sink: Send {
    /// A short name for logs.
    fn name(&self) -> String;

    /// One processed frame.
    fn frame(&mut self, report: &FrameReport);

    /// Called about ten times a second with the current counters: heartbeats, periodic stats.
    fn tick(&mut self, _stats: &Stats) {}

    /// Clean shutdown: flush what is pending, say goodbye (MQTT `offline`).
    fn close(&mut self) {}
}
