//! Images from files and directories, in name order, as a frame source.

use super::{FrameSource, SourceError};
use crate::media::images::{image_paths, load_rgb};
use crate::media::times;
use crate::pipeline::frame::Frame;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

/// Frames from a list of image files, optionally looping and paced at a frame rate.
///
/// A folder with a `times.csv` ([`times`], written by `record` and `synth`) is replayed on its own
/// clock: each frame is stamped with the time its recording took it at, moved so the first frame
/// read is now, so alarms and lap times count the recording's seconds, not how fast the files are read.
/// Without one (or when looping) a frame is stamped when it is read.
pub struct DirSource {
    paths: Vec<PathBuf>,
    next: usize,
    seq: u64,
    looping: bool,
    pace: Option<super::Pacer>,
    /// Recorded times by path, from the folders' `times.csv`.
    recorded: HashMap<PathBuf, f64>,
    /// The first recorded time read and when it was read: the replay's clock.
    clock: Option<(f64, SystemTime)>,
    /// The last stamp given: stamps never go back.
    last: Option<SystemTime>,
}

impl DirSource {
    pub fn new(inputs: &[PathBuf], looping: bool) -> Result<DirSource, SourceError> {
        let paths = image_paths(inputs)?;
        if paths.is_empty() {
            return Err(SourceError::Unavailable(format!("no images in {}", inputs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))));
        }
        let mut recorded = HashMap::new();
        for dir in inputs.iter().filter(|p| p.is_dir()) {
            match times::read(dir) {
                Ok(Some(t)) if looping => log::info!("{}: not used while looping; frames are stamped when read ({} times)", dir.join(times::FILE_NAME).display(), t.len()),
                Ok(Some(t)) => recorded.extend(t.into_iter().map(|(name, s)| (dir.join(name), s))),
                Ok(None) => {}
                Err(e) => log::warn!("{e}; frames are stamped when they are read"),
            }
        }
        Ok(DirSource { paths, next: 0, seq: 0, looping, pace: None, recorded, clock: None, last: None })
    }

    /// The stamp of the frame at `path`: on the recording's clock where it has a recorded time, else
    /// now; never before the last.
    fn stamp(&mut self, path: &PathBuf) -> SystemTime {
        let now = SystemTime::now();
        let ts = match self.recorded.get(path) {
            Some(&t) => {
                let (t0, at) = *self.clock.get_or_insert((t, now));
                at + Duration::try_from_secs_f64(t - t0).unwrap_or_default()
            }
            None => now,
        };
        let ts = self.last.map_or(ts, |l| l.max(ts));
        self.last = Some(ts);
        ts
    }

    /// Delivers at most `fps` frames a second (0 = as fast as they decode).
    pub fn paced(mut self, fps: f64) -> Self {
        self.pace = (fps > 0.0).then(|| super::Pacer::new(fps));
        self
    }

    /// Continues where an earlier instance stopped (after a reopen): the sequence numbers, and the
    /// position in the file list, so no file is delivered twice.
    pub fn starting_at(mut self, seq: u64) -> Self {
        self.seq = seq;
        let n = self.paths.len() as u64;
        self.next = if self.looping { (seq % n) as usize } else { seq.min(n) as usize };
        self
    }
}

impl FrameSource for DirSource {
    fn next_frame(&mut self) -> Result<Option<Frame>, SourceError> {
        if self.next >= self.paths.len() {
            if !self.looping {
                return Ok(None);
            }
            self.next = 0;
        }
        if let Some(p) = &mut self.pace {
            p.wait();
        }
        let path = self.paths[self.next].clone();
        self.next += 1;
        let seq = self.seq;
        self.seq += 1;
        let img = load_rgb(&path)?;
        let ts = self.stamp(&path);
        Ok(Some(Frame { ts, ..Frame::new(img, seq, path.display().to_string()) }))
    }

    fn describe(&self) -> String {
        format!("{} images", self.paths.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::images::decode_rgb;

    #[test]
    fn lists_images_sorted_and_skips_bad_frames() {
        let d = tempfile::tempdir().unwrap();
        let img = image::RgbImage::from_pixel(4, 3, image::Rgb([1, 2, 3]));
        img.save(d.path().join("b.png")).unwrap();
        img.save(d.path().join("a.png")).unwrap();
        std::fs::write(d.path().join("c.jpg"), b"not a jpeg").unwrap();
        std::fs::write(d.path().join("notes.txt"), b"hi").unwrap();
        // A real JPEG cut in half is refused, the whole one accepted.
        let mut jpeg = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut jpeg), image::ImageFormat::Jpeg).unwrap();
        assert!(decode_rgb(&jpeg).is_ok());
        assert!(decode_rgb(&jpeg[..jpeg.len() / 2]).unwrap_err().contains("truncated"));
        let paths = image_paths(&[d.path().to_path_buf()]).unwrap();
        let names: Vec<_> = paths.iter().map(|p| p.file_name().unwrap().to_str().unwrap().to_string()).collect();
        assert_eq!(names, ["a.png", "b.png", "c.jpg"]);
        let mut src = DirSource::new(&[d.path().to_path_buf()], false).unwrap();
        assert_eq!(src.next_frame().unwrap().unwrap().image.dimensions(), (4, 3));
        assert_eq!(src.next_frame().unwrap().unwrap().seq, 1);
        let e = src.next_frame().unwrap_err();
        assert!(e.is_frame_error() && e.to_string().contains("c.jpg"));
        assert!(src.next_frame().unwrap().is_none());
        assert!(image_paths(&[d.path().join("missing")]).is_err());
    }

    #[test]
    fn a_folder_with_times_is_replayed_on_its_own_clock() {
        let d = tempfile::tempdir().unwrap();
        let img = image::RgbImage::from_pixel(4, 3, image::Rgb([1, 2, 3]));
        for name in ["a.png", "b.png", "c.png", "d.png"] {
            img.save(d.path().join(name)).unwrap();
        }
        // Taken 2 s apart (c went missing from the list, d's time is older than b's: a clock set back).
        std::fs::write(d.path().join(times::FILE_NAME), "frame,seconds\na.png,1000\nb.png,1002\nd.png,1001\n").unwrap();
        let mut src = DirSource::new(&[d.path().to_path_buf()], false).unwrap();
        let ts: Vec<SystemTime> = (0..4).map(|_| src.next_frame().unwrap().unwrap().ts).collect();
        let after = |i: usize| ts[i].duration_since(ts[0]).unwrap().as_secs_f64();
        // Read in a moment, stamped 2 s apart; the first is now.
        assert!((after(1) - 2.0).abs() < 1e-6, "{ts:?}");
        assert!(SystemTime::now().duration_since(ts[0]).unwrap() < Duration::from_secs(60));
        // Without a time: now, never before the last stamp; an older time neither.
        assert!(after(2) >= 2.0 && after(3) >= after(2), "{ts:?}");
        // A damaged times.csv: the frames are still read, stamped when read.
        std::fs::write(d.path().join(times::FILE_NAME), "a.png,yesterday\n").unwrap();
        let mut src = DirSource::new(&[d.path().to_path_buf()], false).unwrap();
        let (t0, t1) = (src.next_frame().unwrap().unwrap().ts, src.next_frame().unwrap().unwrap().ts);
        assert!(t1.duration_since(t0).unwrap() < Duration::from_secs(1));
    }
}
