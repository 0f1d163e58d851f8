//! The MJPEG stream on stdin (`run --stdin mjpeg`): any bytes give frames, frame errors and an end,
//! never a panic or a hang.
#![no_main]
use libfuzzer_sys::fuzz_target;
use poolwatch::device::source::FrameSource;
use poolwatch::device::source::stream::{StreamFormat, StreamSource};

fuzz_target!(|data: &[u8]| {
    // Frames larger than this are refused before they are decoded (as `[pipeline] max_pixels` does).
    poolwatch::media::images::set_max_pixels(1 << 20);
    let mut src = StreamSource::new(std::io::Cursor::new(data.to_vec()), StreamFormat::Mjpeg, (0, 0), "fuzz");
    // Every call consumes input or ends the stream: the bytes bound the calls.
    for _ in 0..=data.len() + 1 {
        match src.next_frame() {
            Ok(Some(f)) => assert!(f.image.width() > 0 && f.image.height() > 0),
            Ok(None) => return,
            Err(e) => assert!(!e.to_string().contains('\n')),
        }
    }
    panic!("the stream did not end");
});
