//! The capture thread: frames from the source into the queue, one in `every_nth`, dropping the
//! oldest behind a live source and waiting for detection behind a finite one.

use crate::device::queue::LatestQueue;
use crate::device::report::Metrics;
use crate::device::source::{FrameSource, Reopening};
use crate::device::throttle::Throttle;
use crate::pipeline::frame::Frame;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// What the capture thread shares with the run loop.
pub struct Capture {
    pub queue: Arc<LatestQueue<Frame>>,
    pub every_nth: Arc<AtomicU32>,
    /// Set to stop capturing (and, once the queue is drained, the workers).
    pub stop: Arc<AtomicBool>,
    pub metrics: Arc<Metrics>,
}

/// Starts the thread. `lossless`: files and pipes wait for detection (every frame counts); live
/// sources drop the oldest frame. `done` is dropped when the thread ends, so shutdown can wait for it
/// with a time limit.
pub fn spawn(mut source: Reopening, c: &Capture, lossless: bool, done: std::sync::mpsc::Sender<()>) -> std::io::Result<JoinHandle<()>> {
    let (queue, every_nth, stop, metrics) = (Arc::clone(&c.queue), Arc::clone(&c.every_nth), Arc::clone(&c.stop), Arc::clone(&c.metrics));
    std::thread::Builder::new().name("capture".into()).spawn(move || {
        let _done = done;
        let mut n: u64 = 0;
        let mut warn = Throttle::new(Duration::from_secs(10));
        while !stop.load(Ordering::Relaxed) {
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
                        if !queue.push_wait(frame, &stop) {
                            break;
                        }
                    } else if queue.push(frame) {
                        metrics.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    if let Some(more) = warn.allow() {
                        log::warn!("skipping a frame: {e}{more}");
                    }
                    metrics.frame_failed(&e);
                }
            }
        }
        queue.close();
    })
}
