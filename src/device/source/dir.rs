//! Images from files and directories, in name order, as a frame source.

use super::{FrameSource, SourceError};
use crate::media::images::{image_paths, load_rgb};
use crate::media::times;
use crate::pipeline::frame::Frame;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

/// Frames from a list of image files, optionally looping and paced at a frame rate.
///
/// A folder with a `times.csv` ([`times`], written by `record` and `synth`) is replayed on its own
/// clock: the first frame is stamped when it is read, and each next one of the same folder the
/// recording's interval later, so alarms and lap times count the recording's seconds, not how fast
/// the files are read. Where the recording's clock does not say (a frame without a time, the next
/// folder, a time earlier than the last) the step is the time between the two reads. Stamps never go
/// back. Looping sources stamp every frame when it is read.
pub struct DirSource {
    paths: Vec<PathBuf>,
    next: usize,
    seq: u64,
    looping: bool,
    pace: Option<super::Pacer>,
    /// Each path's recorded time, with the index of the folder whose `times.csv` gave it (looked up
    /// once, at start).
    recorded: Vec<Option<(usize, f64)>>,
    /// The last frame's recorded time (and folder), its stamp, and when it was read.
    last: Option<Stamped>,
}

#[derive(Clone, Copy)]
struct Stamped {
    recorded: Option<(usize, f64)>,
    stamp: SystemTime,
    read: Instant,
}

impl DirSource {
    pub fn new(inputs: &[PathBuf], looping: bool) -> Result<DirSource, SourceError> {
        let paths = image_paths(inputs)?;
        if paths.is_empty() {
            return Err(SourceError::Unavailable(format!("no images in {}", inputs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))));
        }
        let mut by_path = HashMap::new();
        for (folder, dir) in inputs.iter().filter(|p| p.is_dir()).enumerate() {
            match times::read(dir) {
                Ok(Some(t)) if looping => log::info!("{}: not used while looping; frames are stamped when read ({} times)", dir.join(times::FILE_NAME).display(), t.len()),
                Ok(Some(t)) => by_path.extend(t.into_iter().map(|(name, s)| (dir.join(name), (folder, s)))),
                Ok(None) => {}
                Err(e) => log::warn!("{e}; frames are stamped when they are read"),
            }
        }
        let recorded = paths.iter().map(|p| by_path.get(p).copied()).collect();
        Ok(DirSource { paths, next: 0, seq: 0, looping, pace: None, recorded, last: None })
    }

    /// The stamp of the frame of path `i`, read now: the last stamp plus the recording's interval where
    /// both frames have a time from the same folder and it runs forward, else plus the time since the
    /// last read; the first frame's is now.
    fn stamp(&mut self, i: usize) -> SystemTime {
        let read = Instant::now();
        let recorded = self.recorded[i];
        let stamp = match self.last {
            None => SystemTime::now(),
            Some(last) => {
                let step = match (last.recorded, recorded) {
                    (Some((f0, t0)), Some((f1, t1))) if f0 == f1 && t1 >= t0 => Duration::try_from_secs_f64(t1 - t0).unwrap_or_default(),
                    _ => read.duration_since(last.read),
                };
                // A step past what a clock can hold (a damaged time) keeps the last stamp.
                last.stamp.checked_add(step).unwrap_or(last.stamp)
            }
        };
        self.last = Some(Stamped { recorded, stamp, read });
        stamp
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
        let i = self.next;
        self.next += 1;
        let seq = self.seq;
        self.seq += 1;
        let img = load_rgb(&self.paths[i])?;
        let ts = self.stamp(i);
        Ok(Some(Frame { ts, ..Frame::new(img, seq, self.paths[i].display().to_string()) }))
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
        let (one, two) = (d.path().join("one"), d.path().join("two"));
        let img = image::RgbImage::from_pixel(4, 3, image::Rgb([1, 2, 3]));
        for (dir, names) in [(&one, ["a.png", "b.png", "c.png", "d.png", "e.png"]), (&two, ["f.png", "g.png", "h.png", "i.png", "j.png"])] {
            std::fs::create_dir(dir).unwrap();
            names.iter().for_each(|n| img.save(dir.join(n)).unwrap());
        }
        // Taken 2 s apart; c has no time; e's is older than d's (a clock set back). The second folder
        // starts again at 0 (another recording), and i's time would overflow any clock.
        std::fs::write(one.join(times::FILE_NAME), "frame,seconds\na.png,1000\nb.png,1002\nd.png,1004\ne.png,1001\n").unwrap();
        std::fs::write(two.join(times::FILE_NAME), "f.png,0\ng.png,0.5\nh.png,1\ni.png,1e19\nj.png,1e19\n").unwrap();
        let mut src = DirSource::new(&[one.clone(), two.clone()], false).unwrap();
        let ts: Vec<SystemTime> = (0..10).map(|_| src.next_frame().unwrap().unwrap().ts).collect();
        let step = |i: usize| ts[i].duration_since(ts[i - 1]).unwrap().as_secs_f64();
        // Read in a moment, stamped on the recording's clock; the first is now.
        assert!(SystemTime::now().duration_since(ts[0]).unwrap() < Duration::from_secs(60));
        assert_eq!(step(1), 2.0);
        // Where the recording does not say (no time, a time gone back, the next folder), the step
        // is the time between the reads: small here, never back; then the next folder's own clock.
        for i in [2, 3, 4, 5] {
            assert!(step(i) < 1.0, "step {i}: {ts:?}");
        }
        assert_eq!((step(6), step(7)), (0.5, 0.5));
        // A time no clock holds: no panic, the stamp stays.
        assert_eq!(step(8), 0.0);
        assert_eq!(step(9), 0.0);
        // A damaged times.csv: the frames are still read, stamped when read.
        std::fs::write(one.join(times::FILE_NAME), "a.png,yesterday\n").unwrap();
        let mut src = DirSource::new(std::slice::from_ref(&one), false).unwrap();
        let (t0, t1) = (src.next_frame().unwrap().unwrap().ts, src.next_frame().unwrap().unwrap().ts);
        assert!(t1.duration_since(t0).unwrap() < Duration::from_secs(1));
        // Looping: stamped when read.
        std::fs::write(one.join(times::FILE_NAME), "a.png,0\nb.png,100\n").unwrap();
        let mut src = DirSource::new(&[one], true).unwrap();
        let (t0, t1) = (src.next_frame().unwrap().unwrap().ts, src.next_frame().unwrap().unwrap().ts);
        assert!(t1.duration_since(t0).unwrap() < Duration::from_secs(1));
    }
}
