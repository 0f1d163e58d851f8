//! Frames from a byte stream (stdin): concatenated JPEGs (MJPEG, as `ffmpeg -f mjpeg -` writes, which
//! is how an IP camera's RTSP feed gets in) or raw RGB24 frames of a given size.

use super::{FrameSource, Pacer, SourceError};
use crate::pipeline::frame::Frame;
use std::io::{BufRead, BufReader, ErrorKind, Read};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamFormat {
    Mjpeg,
    /// Raw RGB24, `width * height * 3` bytes per frame.
    Rgb,
}

/// Largest JPEG accepted, so a corrupt stream cannot make us buffer without end.
const MAX_JPEG: usize = 32 << 20;

pub struct StreamSource<R: Read + Send> {
    input: BufReader<R>,
    format: StreamFormat,
    size: (u32, u32),
    seq: u64,
    name: String,
    pace: Option<Pacer>,
    /// The SOI of the next JPEG was already read (it cut the previous one short).
    pending_soi: bool,
    /// The stream ended inside a frame: that frame was reported as an error, nothing follows.
    ended: bool,
}

impl<R: Read + Send> StreamSource<R> {
    pub fn new(input: R, format: StreamFormat, size: (u32, u32), name: impl Into<String>) -> Self {
        StreamSource {
            input: BufReader::with_capacity(1 << 16, input),
            format,
            size,
            seq: 0,
            name: name.into(),
            pace: None,
            pending_soi: false,
            ended: false,
        }
    }

    /// The end of the stream inside a frame of which `bytes` were read: one bad frame (counted like
    /// any other), then the end.
    fn truncated(&mut self, bytes: usize) -> SourceError {
        self.ended = true;
        SourceError::Decode { origin: self.name.clone(), reason: format!("the stream ended inside a frame ({bytes} bytes of it); dropped") }
    }

    fn cut_short(&mut self) -> SourceError {
        self.pending_soi = true;
        SourceError::Decode { origin: self.name.clone(), reason: "JPEG cut short by the next one".into() }
    }

    /// Delivers at most `fps` frames a second (0 = as they come).
    pub fn paced(mut self, fps: f64) -> Self {
        self.pace = (fps > 0.0).then(|| Pacer::new(fps));
        self
    }

    fn byte(&mut self) -> std::io::Result<Option<u8>> {
        let buf = self.input.fill_buf()?;
        let Some(&b) = buf.first() else { return Ok(None) };
        self.input.consume(1);
        Ok(Some(b))
    }

    /// Reads a marker segment's length and payload onto `out`; `false` at the end of the stream.
    fn segment(&mut self, out: &mut Vec<u8>) -> Result<bool, SourceError> {
        let mut len = [0u8; 2];
        match self.input.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(false),
            Err(e) => return Err(SourceError::Unavailable(format!("reading the stream: {e}"))),
        }
        let n = u16::from_be_bytes(len) as usize;
        if n < 2 {
            return Err(SourceError::Decode { origin: self.name.clone(), reason: "bad JPEG segment length".into() });
        }
        out.extend_from_slice(&len);
        // What was read stays on `out`, so a segment cut off by the end of the stream counts its bytes.
        let want = n - 2;
        let got = (&mut self.input).take(want as u64).read_to_end(out).map_err(|e| SourceError::Unavailable(format!("reading the stream: {e}")))?;
        Ok(got == want)
    }

    /// The next JPEG, from SOI to EOI, walking its segments (so thumbnails inside APP segments and
    /// 0xFF bytes in entropy-coded data are not mistaken for the end). `Ok(None)` at the end of the
    /// stream; a JPEG cut off by the end of the stream is an error ([`truncated`](Self::truncated)).
    fn next_jpeg(&mut self) -> Result<Option<Vec<u8>>, SourceError> {
        let io = |e: std::io::Error| SourceError::Unavailable(format!("reading the stream: {e}"));
        // Find SOI (FF D8), skipping anything between frames.
        let mut prev = 0u8;
        while !std::mem::take(&mut self.pending_soi) {
            match self.byte().map_err(io)? {
                None => return Ok(None),
                Some(0xD8) if prev == 0xFF => break,
                Some(b) => prev = b,
            }
        }
        let mut out = vec![0xFF, 0xD8];
        macro_rules! next {
            () => {
                match self.byte().map_err(io)? {
                    Some(b) => b,
                    None => return Err(self.truncated(out.len())),
                }
            };
        }
        loop {
            if out.len() > MAX_JPEG {
                return Err(SourceError::Decode { origin: self.name.clone(), reason: "JPEG larger than 32 MB".into() });
            }
            // At a marker: FF (fill FFs allowed), then its code.
            let b = next!();
            if b != 0xFF {
                return Err(SourceError::Decode { origin: self.name.clone(), reason: format!("expected a marker, found {b:#04x}") });
            }
            let mut code = next!();
            while code == 0xFF {
                code = next!();
            }
            out.extend_from_slice(&[0xFF, code]);
            match code {
                0xD9 => return Ok(Some(out)),
                0xD8 => return Err(self.cut_short()),
                0x01 | 0xD0..=0xD7 => continue,
                _ => {}
            }
            if !self.segment(&mut out)? {
                return Err(self.truncated(out.len()));
            }
            if code == 0xDA {
                // Entropy-coded data up to the next marker that is not a stuffed byte or a restart.
                loop {
                    let b = next!();
                    if b != 0xFF {
                        out.push(b);
                        continue;
                    }
                    let mut c = next!();
                    while c == 0xFF {
                        c = next!();
                    }
                    if c == 0x00 || (0xD0..=0xD7).contains(&c) {
                        out.extend_from_slice(&[0xFF, c]);
                        continue;
                    }
                    out.extend_from_slice(&[0xFF, c]);
                    if c == 0xD9 {
                        return Ok(Some(out));
                    }
                    if c == 0xD8 {
                        return Err(self.cut_short());
                    }
                    // Another marker after the scan (progressive JPEGs have several scans).
                    if !self.segment(&mut out)? {
                        return Err(self.truncated(out.len()));
                    }
                    if c != 0xDA {
                        // A table between scans; the next byte must start a marker again.
                        break;
                    }
                }
            }
        }
    }
}

impl<R: Read + Send> FrameSource for StreamSource<R> {
    fn next_frame(&mut self) -> Result<Option<Frame>, SourceError> {
        if let Some(p) = &mut self.pace {
            p.wait();
        }
        if self.ended {
            return Ok(None);
        }
        let seq = self.seq;
        let origin = format!("{}#{seq}", self.name);
        let img = match self.format {
            StreamFormat::Mjpeg => {
                let jpeg = match self.next_jpeg() {
                    Ok(Some(j)) => j,
                    Ok(None) => return Ok(None),
                    Err(e) => {
                        self.seq += 1;
                        return Err(e);
                    }
                };
                self.seq += 1;
                crate::media::images::decode_rgb(&jpeg).map_err(|reason| SourceError::Decode { origin: origin.clone(), reason })?
            }
            StreamFormat::Rgb => {
                let (w, h) = self.size;
                let mut buf = vec![0u8; (w * h * 3) as usize];
                let mut filled = 0;
                while filled < buf.len() {
                    match self.input.read(&mut buf[filled..]) {
                        Ok(0) if filled == 0 => return Ok(None),
                        Ok(0) => {
                            self.seq += 1;
                            return Err(self.truncated(filled));
                        }
                        Ok(n) => filled += n,
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(e) => return Err(SourceError::Unavailable(format!("reading the stream: {e}"))),
                    }
                }
                self.seq += 1;
                image::RgbImage::from_raw(w, h, buf).ok_or_else(|| SourceError::Decode { origin: origin.clone(), reason: "size".into() })?
            }
        };
        Ok(Some(Frame::new(img, seq, origin)))
    }

    fn describe(&self) -> String {
        match self.format {
            StreamFormat::Mjpeg => format!("MJPEG on {}", self.name),
            StreamFormat::Rgb => format!("raw RGB {}x{} on {}", self.size.0, self.size.1, self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(v: u8) -> Vec<u8> {
        // Busy texture so that most of the file is entropy-coded data.
        let img = image::RgbImage::from_fn(160, 120, |x, y| image::Rgb([v, ((x * 37) ^ (y * 91)) as u8, (x * y) as u8]));
        let mut out = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Jpeg).unwrap();
        out
    }

    #[test]
    fn mjpeg_frames_are_split_and_a_corrupt_one_is_skipped() {
        let mut data = b"junk before".to_vec();
        data.extend(jpeg(10));
        // A frame cut short in its scan data, then straight into the next one (a camera glitch).
        let bad = jpeg(20);
        data.extend(&bad[..bad.len() * 3 / 4]);
        data.extend(jpeg(200));
        data.extend(jpeg(120));
        // The last JPEG is cut off by the end of the stream.
        data.extend(&jpeg(90)[..100]);
        let mut src = StreamSource::new(std::io::Cursor::new(data), StreamFormat::Mjpeg, (0, 0), "stdin");
        let red = |f: &Frame| f.image.pixels().map(|p| p[0] as f64).sum::<f64>() / (160.0 * 120.0);
        let f0 = src.next_frame().unwrap().unwrap();
        assert_eq!((f0.seq, f0.image.dimensions()), (0, (160, 120)));
        assert!((red(&f0) - 10.0).abs() < 8.0, "{}", red(&f0));
        let e = src.next_frame().unwrap_err();
        assert!(e.is_frame_error(), "{e}");
        let f2 = src.next_frame().unwrap().unwrap();
        assert!((red(&f2) - 200.0).abs() < 8.0, "{}", red(&f2));
        assert_eq!(src.next_frame().unwrap().unwrap().seq, 3);
        // The cut-off last JPEG is one bad frame, counted, then the end.
        let e = src.next_frame().unwrap_err();
        assert!(e.is_frame_error() && e.to_string().contains("ended inside a frame (100 bytes"), "{e}");
        assert!(src.next_frame().unwrap().is_none());
        assert!(src.next_frame().unwrap().is_none());
        // Garbage where a marker should be.
        let mut data = jpeg(10)[..30].to_vec();
        data.extend([0x12; 300]);
        data.extend(jpeg(50));
        let mut src = StreamSource::new(std::io::Cursor::new(data), StreamFormat::Mjpeg, (0, 0), "stdin");
        let mut got = Vec::new();
        while let Some(r) = src.next_frame().transpose() {
            got.push(r.is_ok());
        }
        assert_eq!(got.last(), Some(&true), "{got:?}");
    }

    #[test]
    fn every_error_of_a_damaged_stream_is_one_line() {
        // What the MJPEG fuzz target found: a decoder message of two lines.
        let bytes = include_bytes!("../../../fuzz/seeds/mjpeg/regression-two-line-error.mjpeg");
        let mut src = StreamSource::new(&bytes[..], StreamFormat::Mjpeg, (0, 0), "stdin");
        let mut errors = 0;
        for _ in 0..100 {
            match src.next_frame() {
                Ok(None) => break,
                Ok(Some(_)) => {}
                Err(e) => {
                    errors += 1;
                    let m = e.to_string();
                    assert!(!m.contains('\n') && m.len() < 300, "{m:?}");
                }
            }
        }
        assert!(errors >= 1);
    }

    #[test]
    fn raw_rgb_frames() {
        let mut data = vec![7u8; 4 * 2 * 3];
        data.extend(vec![9u8; 4 * 2 * 3]);
        data.extend(vec![1u8; 5]);
        let mut src = StreamSource::new(std::io::Cursor::new(data), StreamFormat::Rgb, (4, 2), "stdin");
        assert_eq!(src.next_frame().unwrap().unwrap().image.get_pixel(3, 1).0, [7, 7, 7]);
        assert_eq!(src.next_frame().unwrap().unwrap().image.get_pixel(0, 0).0, [9, 9, 9]);
        // A partial last frame is one bad frame, then the end; a stream that ends between frames just ends.
        let e = src.next_frame().unwrap_err();
        assert!(e.is_frame_error() && e.to_string().contains("(5 bytes of it)"), "{e}");
        assert!(src.next_frame().unwrap().is_none());
        let mut src = StreamSource::new(std::io::Cursor::new(vec![3u8; 4 * 2 * 3]), StreamFormat::Rgb, (4, 2), "stdin");
        assert!(src.next_frame().unwrap().is_some());
        assert!(src.next_frame().unwrap().is_none());
    }
}
