//! Snapshots: an annotated JPEG of the frame whenever a swimmer appears or leaves, or a motionless-swimmer
//! warning or alarm is raised, into a directory that keeps only the newest files.

use crate::util::setting::{SettingError, in_range};
use super::Sink;
use crate::device::report::FrameReport;
use crate::pipeline::track::EventKind;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SnapshotSettings {
    pub dir: PathBuf,
    /// Files kept; the oldest are deleted beyond this.
    pub keep: usize,
    /// Also on `end` events (always on `new`).
    pub on_end: bool,
    /// At most one snapshot this often, in seconds.
    pub min_interval_s: f64,
    pub quality: u8,
}

impl Default for SnapshotSettings {
    fn default() -> Self {
        SnapshotSettings { dir: PathBuf::from("snapshots"), keep: 200, on_end: false, min_interval_s: 1.0, quality: 85 }
    }
}

impl SnapshotSettings {
    /// Every key in its range (keys as the `[snapshots]` section names them).
    pub fn validate(&self) -> Result<(), SettingError> {
        if self.dir.as_os_str().is_empty() {
            return Err(SettingError::new("dir", "is empty"));
        }
        in_range("keep", self.keep, 1..=1_000_000)?;
        in_range("min_interval_s", self.min_interval_s, 0.0..=86_400.0)?;
        in_range("quality", self.quality, 1..=100)
    }
}

pub struct SnapshotSink {
    settings: SnapshotSettings,
    last: Option<Instant>,
    written: Vec<PathBuf>,
}

/// Our snapshot files in `dir`, oldest first (names sort by time).
fn existing(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("snap-") && n.ends_with(".jpg"))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

impl SnapshotSink {
    pub fn new(settings: SnapshotSettings) -> SnapshotSink {
        if let Err(e) = std::fs::create_dir_all(&settings.dir) {
            log::warn!("snapshots: cannot create {}: {e}", settings.dir.display());
        }
        let written = existing(&settings.dir);
        SnapshotSink { settings, last: None, written }
    }

    fn rotate(&mut self) {
        while self.written.len() > self.settings.keep {
            let old = self.written.remove(0);
            if let Err(e) = std::fs::remove_file(&old)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                log::warn!("snapshots: cannot delete {}: {e}", old.display());
            }
        }
    }
}

impl Sink for SnapshotSink {
    fn name(&self) -> String {
        format!("snapshots {}", self.settings.dir.display())
    }

    fn frame(&mut self, r: &FrameReport) {
        // A warning or alarm raised is always pictured (never held back by `min_interval_s`).
        let raised = r.alarms.iter().filter(|a| a.state != crate::pipeline::alarm::Level::Clear).max_by_key(|a| a.state);
        let trigger = match raised {
            Some(a) => Some((a.state.as_str(), a.track)),
            None => r
                .events
                .iter()
                .find(|e| e.event == EventKind::New || (self.settings.on_end && e.event == EventKind::End))
                .map(|e| (e.event.as_str(), e.swimmer.track.id)),
        };
        let Some((kind, track)) = trigger else { return };
        if raised.is_none() && self.last.is_some_and(|t| t.elapsed().as_secs_f64() < self.settings.min_interval_s) {
            return;
        }
        let Some(jpeg) = r.annotated_jpeg(self.settings.quality) else { return };
        let secs = r.ts.floor() as u64;
        let ms = ((r.ts - r.ts.floor()) * 1000.0) as u64;
        let name = format!("snap-{secs:011}-{ms:03}-{:08}-{kind}-{track}.jpg", r.seq);
        let path = self.settings.dir.join(name);
        // Written under a temporary name and renamed, so a reader never sees half a JPEG.
        let tmp = path.with_extension("jpg.part");
        match std::fs::write(&tmp, &jpeg).and_then(|_| std::fs::rename(&tmp, &path)) {
            Ok(()) => {
                log::debug!("snapshot {}", path.display());
                self.last = Some(Instant::now());
                self.written.push(path);
                self.rotate();
            }
            Err(e) => log::warn!("snapshots: cannot write {}: {e}", path.display()),
        }
    }
}
