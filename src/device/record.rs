//! Recording raw frames from the configured source to files: what a venue trains its model on.

use crate::device::source::{FrameSource, Reopening, SourceError, SourceSettings};
use crate::media::times::{self, TimesWriter};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// How frames are saved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageFormat {
    /// JPEG at quality 95.
    Jpeg,
    Png,
}

impl ImageFormat {
    /// `jpg` or `png`.
    pub fn parse(s: &str) -> Option<ImageFormat> {
        match s {
            "jpg" => Some(ImageFormat::Jpeg),
            "png" => Some(ImageFormat::Png),
            _ => None,
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "jpg",
            ImageFormat::Png => "png",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("cannot write {path}: {reason}")]
    Write { path: PathBuf, reason: String },
}

/// Saves `frames` frames (one in `every` of those the source delivers) into `out` as
/// `frame-000000.EXT`, ... with their capture times in `times.csv`, until the source ends or `stop` is
/// set. A frame that cannot be read is skipped; a camera that goes away is reopened. Returns how many
/// were saved.
pub fn record(source: SourceSettings, out: &Path, frames: u64, every: u64, format: ImageFormat, stop: Arc<AtomicBool>) -> Result<u64, RecordError> {
    let mut source = Reopening::start(source, stop, Box::new(|_| {}))?;
    // When each frame was taken, so a replay of the folder keeps the recording's clock.
    let times_err = |e: std::io::Error| RecordError::Write { path: out.join(times::FILE_NAME), reason: e.to_string() };
    let mut times = TimesWriter::create(out).map_err(times_err)?;
    let every = every.max(1);
    let (mut saved, mut seen) = (0u64, 0u64);
    while saved < frames {
        match source.next_frame() {
            Ok(Some(f)) => {
                seen += 1;
                if (seen - 1) % every != 0 {
                    continue;
                }
                let name = format!("frame-{:06}.{}", saved, format.extension());
                let path = out.join(&name);
                save(&f.image, &path, format).map_err(|reason| RecordError::Write { path, reason })?;
                times.add(&name, f.unix_ts()).map_err(times_err)?;
                saved += 1;
            }
            Ok(None) => break,
            Err(e) => log::warn!("skipping a frame: {e}"),
        }
    }
    Ok(saved)
}

fn save(img: &image::RgbImage, path: &Path, format: ImageFormat) -> Result<(), String> {
    match format {
        ImageFormat::Jpeg => {
            let mut bytes = Vec::new();
            let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 95);
            img.write_with_encoder(enc).map_err(|e| e.to_string())?;
            std::fs::write(path, &bytes).map_err(|e| e.to_string())
        }
        ImageFormat::Png => img.save(path).map_err(|e| e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_one_frame_in_every_k_in_order() {
        let src = tempfile::tempdir().unwrap();
        for i in 0..6u8 {
            image::RgbImage::from_pixel(8, 8, image::Rgb([i * 40, 0, 0])).save(src.path().join(format!("{i}.png"))).unwrap();
        }
        let out = tempfile::tempdir().unwrap();
        let settings = SourceSettings::Dir { path: vec![src.path().display().to_string()], fps: 0.0, looping: false };
        let n = record(settings, out.path(), 10, 2, ImageFormat::Png, Arc::default()).unwrap();
        assert_eq!(n, 3);
        let red: Vec<u8> = (0..3).map(|i| image::open(out.path().join(format!("frame-{i:06}.png"))).unwrap().to_rgb8().get_pixel(0, 0)[0]).collect();
        assert_eq!(red, [0, 80, 160]);
        // Each saved frame with the time it was taken, in order.
        let t = times::read(out.path()).unwrap().unwrap();
        let at: Vec<f64> = (0..3).map(|i| t[&format!("frame-{i:06}.png")]).collect();
        assert!(at[0] > 1.7e9 && at[0] <= at[1] && at[1] <= at[2], "{at:?}");
        assert!(ImageFormat::parse("gif").is_none());
    }
}
