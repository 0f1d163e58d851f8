//! The synthetic pool as a live frame source: one scene, rendered at the camera's frame rate.

use super::{FrameSource, SourceError};
use crate::pipeline::frame::Frame;
use crate::synth::{Scene, Truth};

pub struct SynthSource {
    scene: Scene,
    fps: f32,
    seq: u64,
    limit: Option<u64>,
    last_truth: Vec<Truth>,
    /// When set, frames are delivered no faster than `fps`, as a camera would.
    started: Option<std::time::Instant>,
}

impl SynthSource {
    pub fn new(scene: Scene, fps: f32, limit: Option<u64>) -> SynthSource {
        SynthSource { scene, fps: fps.max(0.1), seq: 0, limit, last_truth: Vec::new(), started: None }
    }

    /// Paces delivery at the frame rate, like a real camera.
    pub fn realtime(mut self) -> Self {
        self.started = Some(std::time::Instant::now());
        self
    }

    /// Continues at frame `seq` (time `seq / fps`), after a reopen.
    pub fn starting_at(mut self, seq: u64) -> Self {
        self.seq = seq;
        if let Some(start) = &mut self.started {
            *start -= std::time::Duration::from_secs_f32(seq as f32 / self.fps);
        }
        self
    }

    /// The ground truth of the last frame delivered.
    pub fn truth(&self) -> &[Truth] {
        &self.last_truth
    }

    pub fn scene(&self) -> &Scene {
        &self.scene
    }
}

impl FrameSource for SynthSource {
    fn next_frame(&mut self) -> Result<Option<Frame>, SourceError> {
        if self.limit.is_some_and(|l| self.seq >= l) {
            return Ok(None);
        }
        let t = self.seq as f32 / self.fps;
        if let Some(start) = self.started {
            let due = start + std::time::Duration::from_secs_f32(t);
            let now = std::time::Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        let (img, truth) = self.scene.render(t, self.seq);
        self.last_truth = truth;
        let frame = Frame::new(img, self.seq, "synthetic");
        self.seq += 1;
        Ok(Some(frame))
    }

    fn describe(&self) -> String {
        let (w, h) = self.scene.size();
        format!("synthetic pool {w}x{h} at {} fps", self.fps)
    }
}
