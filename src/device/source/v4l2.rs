//! A V4L2 camera (crate v4l, memory-mapped streaming): MJPEG or YUYV at the configured size and
//! rate, decoded to RGB; only `bytesused` of each buffer is read; a frame that does not come within
//! the timeout is an error, which makes [`super::Reopening`] reopen the device.

use super::convert::yuyv_to_rgb;
use super::{FrameSource, PixelFormat, SourceError};
use crate::pipeline::frame::Frame;
use std::time::Duration;
use v4l::buffer::Type;
use v4l::io::mmap::Stream;
use v4l::io::traits::CaptureStream;
use v4l::video::Capture;
use v4l::{Device, FourCC};

pub struct CameraSource {
    // The stream maps the device's buffers through its own handle on the device, so it does not
    // borrow `_device`; `'static` is the lifetime of that handle.
    stream: Stream<'static>,
    _device: Device,
    path: String,
    fourcc: FourCC,
    width: u32,
    height: u32,
    stride: usize,
    seq: u64,
}

fn unavailable(path: &str, what: &str, e: std::io::Error) -> SourceError {
    SourceError::Unavailable(format!("camera {path}: {what}: {e}"))
}

impl CameraSource {
    pub fn open(path: &str, size: (u32, u32), fps: f64, format: PixelFormat, timeout: Duration, first_seq: u64) -> Result<CameraSource, SourceError> {
        let dev = Device::with_path(path).map_err(|e| unavailable(path, "cannot open", e))?;
        let offered: Vec<FourCC> = dev
            .enum_formats()
            .map_err(|e| unavailable(path, "cannot list formats", e))?
            .into_iter()
            .map(|d| d.fourcc)
            .collect();
        let mjpg = FourCC::new(b"MJPG");
        let yuyv = FourCC::new(b"YUYV");
        let wanted = match format {
            PixelFormat::Mjpeg => vec![mjpg],
            PixelFormat::Yuyv => vec![yuyv],
            PixelFormat::Auto => vec![mjpg, yuyv],
        };
        let Some(fourcc) = wanted.iter().copied().find(|f| offered.contains(f)) else {
            let names: Vec<String> = offered.iter().map(|f| f.to_string()).collect();
            return Err(SourceError::Unavailable(format!(
                "camera {path}: offers {} but we need {}",
                names.join(", "),
                wanted.iter().map(|f| f.to_string()).collect::<Vec<_>>().join(" or ")
            )));
        };
        let mut fmt = dev.format().map_err(|e| unavailable(path, "cannot read the format", e))?;
        fmt.width = size.0;
        fmt.height = size.1;
        fmt.fourcc = fourcc;
        let fmt = dev.set_format(&fmt).map_err(|e| unavailable(path, "cannot set the format", e))?;
        if fmt.fourcc != fourcc {
            return Err(SourceError::Unavailable(format!("camera {path}: refused {fourcc}, gave {}", fmt.fourcc)));
        }
        if (fmt.width, fmt.height) != size {
            log::warn!("camera {path}: asked for {}x{}, got {}x{}", size.0, size.1, fmt.width, fmt.height);
        }
        let rate = fps.round().max(1.0) as u32;
        match dev.set_params(&v4l::video::capture::Parameters::with_fps(rate)) {
            Ok(p) => log::info!("camera {path}: {}x{} {} at {}", fmt.width, fmt.height, fmt.fourcc, p.interval),
            Err(e) => log::warn!("camera {path}: cannot set {rate} fps ({e}); using its default"),
        }
        let mut stream = Stream::with_buffers(&dev, Type::VideoCapture, 4).map_err(|e| unavailable(path, "cannot map buffers", e))?;
        stream.set_timeout(timeout);
        Ok(CameraSource {
            stream,
            _device: dev,
            path: path.to_string(),
            fourcc,
            width: fmt.width,
            height: fmt.height,
            stride: fmt.stride as usize,
            seq: first_seq,
        })
    }
}

impl FrameSource for CameraSource {
    fn next_frame(&mut self) -> Result<Option<Frame>, SourceError> {
        let (buf, meta) = self.stream.next().map_err(|e| unavailable(&self.path, "no frame", e))?;
        let seq = self.seq;
        self.seq += 1;
        let origin = format!("{}#{seq}", self.path);
        let used = (meta.bytesused as usize).min(buf.len());
        let data = &buf[..used];
        if meta.flags.contains(v4l::buffer::Flags::ERROR) {
            return Err(SourceError::Decode { origin, reason: "the driver flagged the buffer as corrupt".into() });
        }
        let img = if self.fourcc == FourCC::new(b"MJPG") {
            crate::media::images::decode_rgb(data)
        } else {
            yuyv_to_rgb(data, self.width, self.height, self.stride)
        }
        .map_err(|reason| SourceError::Decode { origin: origin.clone(), reason })?;
        Ok(Some(Frame::new(img, seq, origin)))
    }

    fn describe(&self) -> String {
        format!("camera {} {}x{} {}", self.path, self.width, self.height, self.fourcc)
    }
}
