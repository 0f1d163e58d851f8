//! A camera frame: RGB pixels with the sequence number and time it was captured at.

use image::RgbImage;
use std::time::SystemTime;

/// One image from a frame source, as it came from the camera (source resolution, RGB8).
#[derive(Clone, Debug)]
pub struct Frame {
    pub image: RgbImage,
    /// Position in the source's stream, starting at 0.
    pub seq: u64,
    /// Capture time.
    pub ts: SystemTime,
    /// Where it came from (a file name, a device), for logs and output records.
    pub origin: String,
}

impl Frame {
    pub fn new(image: RgbImage, seq: u64, origin: impl Into<String>) -> Self {
        Frame { image, seq, ts: SystemTime::now(), origin: origin.into() }
    }

    pub fn width(&self) -> u32 {
        self.image.width()
    }

    pub fn height(&self) -> u32 {
        self.image.height()
    }

    /// Seconds since the Unix epoch, as output records carry it.
    pub fn unix_ts(&self) -> f64 {
        self.ts.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
    }
}
