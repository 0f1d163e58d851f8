//! JSON lines on a writer (stdout): one object per processed frame, the shape `poolwatch detect` prints
//! plus `frame`, `ts` and the tracked swimmers.

use super::Sink;
use crate::device::report::FrameReport;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub struct JsonLines<W: Write + Send> {
    out: W,
    /// Set when the reader went away (e.g. `poolwatch run | head`): the run then stops.
    closed: Arc<AtomicBool>,
    name: String,
}

impl<W: Write + Send> JsonLines<W> {
    pub fn new(out: W, name: impl Into<String>, closed: Arc<AtomicBool>) -> Self {
        JsonLines { out, closed, name: name.into() }
    }
}

impl<W: Write + Send> Sink for JsonLines<W> {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn frame(&mut self, report: &FrameReport) {
        if self.closed.load(Ordering::Relaxed) {
            return;
        }
        if writeln!(self.out, "{}", report.json()).and_then(|_| self.out.flush()).is_err() {
            log::info!("{}: the reader went away, stopping", self.name);
            self.closed.store(true, Ordering::Relaxed);
        }
    }

    fn close(&mut self) {
        let _ = self.out.flush();
    }
}
