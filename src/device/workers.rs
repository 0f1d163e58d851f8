//! Detection on several threads: each worker takes the next frame from the capture queue and runs it
//! through a detector of its own (its own model state; the optimised plan is shared), and the results
//! come back in the order the frames were taken, whatever order they finish in. More workers give more
//! frames a second on a board with more cores; each frame still takes one core's time.

use crate::pipeline::detect::{DetectError, Detection, Detector};
use crate::pipeline::frame::Frame;
use crate::pipeline::heatmap::Heatmap;
use crate::device::queue::{LatestQueue, Pop};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, channel, sync_channel};
use crate::util::sync::lock;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// One frame after detection, with what outputs that draw need.
#[derive(Debug)]
pub struct Detected {
    pub frame: Frame,
    pub result: Result<Detection, DetectError>,
    /// The frame's heatmap (hand it back with [`Workers::recycle`] when it is not kept).
    pub heatmap: Heatmap,
    /// The pool mask at the heatmap's resolution (empty: the whole frame is watched).
    pub mask: Arc<[f32]>,
}

/// What [`Workers::next`] found.
#[derive(Debug)]
pub enum Next {
    /// The next frame in capture order.
    Ready(Box<Detected>),
    /// Nothing within the timeout.
    Waiting,
    /// Every worker has stopped (the queue closed, or stop was set and it ran dry) and every result
    /// has been handed out.
    Finished,
}

/// How long a worker waits for a frame before it looks at the stop flag and for a reload again.
const POLL: Duration = Duration::from_millis(100);

struct Shared {
    queue: Arc<LatestQueue<Frame>>,
    /// Held while taking a frame and numbering it, so that the numbers follow the queue's order.
    ticket: Mutex<u64>,
    /// Set: the workers stop once the queue has nothing more for them.
    stop: Arc<AtomicBool>,
    /// A reload's detectors, one per worker; each worker takes one before its next frame.
    fresh: Mutex<Vec<Detector>>,
    generation: AtomicU64,
    /// Heatmap buffers handed back, reused instead of allocated.
    spares: Mutex<Vec<Heatmap>>,
}

/// Detection workers over one frame queue.
pub struct Workers {
    shared: Arc<Shared>,
    results: Receiver<(u64, Detected)>,
    handles: Vec<JoinHandle<()>>,
    /// Results that finished before an earlier frame's.
    pending: BTreeMap<u64, Detected>,
    next: u64,
}

impl Workers {
    /// Starts one worker thread per detector, taking frames from `queue` until it closes, or until
    /// `stop` is set and it is empty.
    pub fn start(detectors: Vec<Detector>, queue: Arc<LatestQueue<Frame>>, stop: Arc<AtomicBool>) -> std::io::Result<Workers> {
        let shared = Arc::new(Shared {
            queue,
            ticket: Mutex::new(0),
            stop,
            fresh: Mutex::new(Vec::new()),
            generation: AtomicU64::new(0),
            spares: Mutex::new(Vec::new()),
        });
        // Bounded: when the main thread falls behind (its outputs are full), the workers wait, the
        // capture queue fills and the camera's oldest frames are dropped, as with one thread.
        let (tx, results) = sync_channel(detectors.len().max(1));
        let mut workers = Workers { shared, results, handles: Vec::new(), pending: BTreeMap::new(), next: 0 };
        for (i, det) in detectors.into_iter().enumerate() {
            let (shared, tx) = (Arc::clone(&workers.shared), tx.clone());
            match std::thread::Builder::new().name(format!("detect-{i}")).spawn(move || work(det, &shared, &tx)) {
                Ok(h) => workers.handles.push(h),
                Err(e) => {
                    workers.shutdown();
                    return Err(e);
                }
            }
        }
        Ok(workers)
    }

    pub fn threads(&self) -> usize {
        self.handles.len()
    }

    /// The next result in capture order, waiting up to `timeout` for it.
    pub fn next(&mut self, timeout: Duration) -> Next {
        loop {
            if let Some(d) = self.pending.remove(&self.next) {
                self.next += 1;
                return Next::Ready(Box::new(d));
            }
            match self.results.recv_timeout(timeout) {
                Ok((ticket, d)) => {
                    self.pending.insert(ticket, d);
                }
                Err(RecvTimeoutError::Timeout) => return Next::Waiting,
                Err(RecvTimeoutError::Disconnected) => {
                    // Every worker has ended. A number can only be missing if a worker died between
                    // taking a frame and reporting it; what is left goes out in order regardless.
                    return match self.pending.pop_first() {
                        Some((ticket, d)) => {
                            self.next = ticket + 1;
                            Next::Ready(Box::new(d))
                        }
                        None => Next::Finished,
                    };
                }
            }
        }
    }

    /// Gives the workers new detectors (a reload), one each; each switches before its next frame, so
    /// frames already taken finish on the old one.
    pub fn replace(&self, detectors: Vec<Detector>) {
        *lock(&self.shared.fresh) = detectors;
        self.shared.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Hands a heatmap buffer back for the workers to reuse.
    pub fn recycle(&self, heatmap: Heatmap) {
        let mut spares = lock(&self.shared.spares);
        if spares.len() < 2 * self.handles.len() {
            spares.push(heatmap);
        }
    }

    /// Stops the workers and waits for them: each finishes the frame it is on and takes no other.
    pub fn shutdown(mut self) {
        self.shutdown_in_place();
    }

    fn shutdown_in_place(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        // Dropping the receiver makes a worker's report fail (also one waiting for room), which ends it.
        let (_, dead) = channel();
        drop(std::mem::replace(&mut self.results, dead));
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.shutdown_in_place();
    }
}

/// One worker: the next frame, through its detector, back to the collector.
fn work(mut det: Detector, shared: &Shared, tx: &SyncSender<(u64, Detected)>) {
    let mut generation = 0;
    loop {
        let (ticket, frame) = {
            let mut ticket = lock(&shared.ticket);
            let frame = match shared.queue.pop(POLL) {
                Pop::Item(frame) => frame,
                Pop::Empty if shared.stop.load(Ordering::Relaxed) => return,
                Pop::Empty => continue,
                Pop::Closed => return,
            };
            // After taking the frame: a frame queued after a reload never runs on the old model.
            let g = shared.generation.load(Ordering::Acquire);
            if g != generation {
                if let Some(fresh) = lock(&shared.fresh).pop() {
                    det = fresh;
                }
                generation = g;
            }
            // Still in frame order: an automatic pool mask comes from the first frame, as with one
            // thread. An error here comes back from `detect` below.
            // A panic there would take the lock and the numbering with it: caught like detect's.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| det.prepare(&frame.image)));
            *ticket += 1;
            (*ticket - 1, frame)
        };
        // A bug in a stage must not leave a hole in the numbering (the frames after it would wait
        // for it forever): it becomes this frame's error.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| det.detect(&frame.image)))
            .unwrap_or_else(|panic| Err(DetectError::Crashed(panic_message(&panic))));
        let spare = lock(&shared.spares).pop().unwrap_or_default();
        let heatmap = det.swap_heatmap(spare);
        let mask = det.mask();
        if tx.send((ticket, Detected { frame, result, heatmap, mask })).is_err() {
            return;
        }
    }
}

pub(crate) fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::detect::DetectorSettings;
    use crate::pipeline::model::Autoencoder;
    use crate::synth::Scene;

    fn detectors(n: usize) -> Vec<Detector> {
        Detector::new(Autoencoder::embedded().expect("embedded model"), &DetectorSettings::default()).with_forks(n).expect("forks")
    }

    fn frames(n: u64) -> Vec<Frame> {
        let scene = Scene::new(3, 320, 240, (1, 3));
        (0..n).map(|i| Frame::new(scene.render(i as f32 * 0.2, i).0, i, format!("synthetic:{i}"))).collect()
    }

    /// Two workers give the same boxes as one detector, frame for frame and in capture order.
    #[test]
    fn results_come_back_in_capture_order_and_match_one_detector() {
        let frames = frames(12);
        let mut single = detectors(1).pop().expect("one");
        let want: Vec<_> = frames.iter().map(|f| single.detect(&f.image).expect("detect").boxes).collect();

        let queue = Arc::new(LatestQueue::new(64));
        let stop = Arc::new(AtomicBool::new(false));
        for f in frames.clone() {
            queue.push(f);
        }
        queue.close();
        let mut workers = Workers::start(detectors(2), Arc::clone(&queue), stop).expect("start");
        assert_eq!(workers.threads(), 2);
        let mut got = Vec::new();
        loop {
            match workers.next(Duration::from_secs(30)) {
                Next::Ready(d) => {
                    assert_eq!(d.heatmap.score.len(), (d.heatmap.width * d.heatmap.height) as usize);
                    got.push((d.frame.seq, d.result.expect("detect").boxes));
                    workers.recycle(d.heatmap);
                }
                Next::Waiting => panic!("no result within 30 s"),
                Next::Finished => break,
            }
        }
        let seqs: Vec<u64> = got.iter().map(|g| g.0).collect();
        assert_eq!(seqs, (0..12).collect::<Vec<_>>());
        for ((_, boxes), want) in got.iter().zip(&want) {
            assert_eq!(boxes.len(), want.len());
            for (a, b) in boxes.iter().zip(want) {
                assert_eq!((a.x1, a.y1, a.x2, a.y2, a.score), (b.x1, b.y1, b.x2, b.y2, b.score));
            }
        }
    }

    /// With stop set and nothing queued, the workers end without the queue being closed (a camera
    /// stuck in a read never closes it).
    #[test]
    fn stop_ends_the_workers_when_the_queue_runs_dry() {
        let queue = Arc::new(LatestQueue::new(4));
        let stop = Arc::new(AtomicBool::new(false));
        let mut workers = Workers::start(detectors(2), Arc::clone(&queue), Arc::clone(&stop)).expect("start");
        for f in frames(3) {
            queue.push(f);
        }
        let mut n = 0;
        while n < 3 {
            match workers.next(Duration::from_secs(30)) {
                Next::Ready(_) => n += 1,
                other => panic!("expected a result, got {other:?}"),
            }
        }
        stop.store(true, Ordering::Relaxed);
        assert!(matches!(workers.next(Duration::from_secs(5)), Next::Finished));
    }

    /// After `replace`, frames run on the new detectors: here ones that refuse every frame (a pool
    /// mask file that does not exist), so the switch shows in the results.
    #[test]
    fn replace_switches_every_worker_before_its_next_frame() {
        let queue = Arc::new(LatestQueue::new(64));
        let stop = Arc::new(AtomicBool::new(false));
        let mut workers = Workers::start(detectors(2), Arc::clone(&queue), stop).expect("start");
        for f in frames(2) {
            queue.push(f);
        }
        for _ in 0..2 {
            let Next::Ready(d) = workers.next(Duration::from_secs(30)) else { panic!("no result") };
            assert!(d.result.is_ok());
        }
        let cfg = DetectorSettings { pool: Some(toml::from_str(r#"mask = { image = "/nonexistent/poolwatch-mask.png" }"#).expect("pool settings")), ..DetectorSettings::default() };
        workers.replace(Detector::new(Autoencoder::embedded().expect("model"), &cfg).with_forks(2).expect("forks"));
        for f in frames(6) {
            queue.push(f);
        }
        queue.close();
        let mut errors = 0;
        while let Next::Ready(d) = workers.next(Duration::from_secs(30)) {
            errors += usize::from(d.result.is_err());
        }
        assert_eq!(errors, 6, "every frame after the reload runs on a new detector");
    }
}
