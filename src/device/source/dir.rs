//! Images from files and directories, in name order, as a frame source.

use super::{FrameSource, SourceError};
use crate::media::images::{image_paths, load_rgb};
use crate::pipeline::frame::Frame;
use std::path::PathBuf;

/// Frames from a list of image files, optionally looping and paced at a frame rate.
pub struct DirSource {
    paths: Vec<PathBuf>,
    next: usize,
    seq: u64,
    looping: bool,
    pace: Option<super::Pacer>,
}

impl DirSource {
    pub fn new(inputs: &[PathBuf], looping: bool) -> Result<DirSource, SourceError> {
        let paths = image_paths(inputs)?;
        if paths.is_empty() {
            return Err(SourceError::Unavailable(format!("no images in {}", inputs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))));
        }
        Ok(DirSource { paths, next: 0, seq: 0, looping, pace: None })
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
        let path = &self.paths[self.next];
        self.next += 1;
        let seq = self.seq;
        self.seq += 1;
        let img = load_rgb(path)?;
        Ok(Some(Frame::new(img, seq, path.display().to_string())))
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
}
