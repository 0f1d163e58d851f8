//! Raw RGB24 frames on stdin (`run --stdin rgb --size WxH`): whole frames come out, a partial last
//! one is one error, then the end.
#![no_main]
use libfuzzer_sys::fuzz_target;
use poolwatch::device::source::FrameSource;
use poolwatch::device::source::stream::{StreamFormat, StreamSource};

fuzz_target!(|data: &[u8]| {
    let [w, h, rest @ ..] = data else { return };
    let (w, h) = (u32::from(*w % 32) + 1, u32::from(*h % 32) + 1);
    let frame = (w * h * 3) as usize;
    let mut src = StreamSource::new(std::io::Cursor::new(rest.to_vec()), StreamFormat::Rgb, (w, h), "fuzz");
    let (mut frames, mut errors) = (0, 0);
    loop {
        match src.next_frame() {
            Ok(Some(f)) => {
                assert_eq!((f.image.width(), f.image.height()), (w, h));
                frames += 1;
            }
            Ok(None) => break,
            Err(_) => errors += 1,
        }
        assert!(frames + errors <= rest.len() / frame + 1, "more frames than bytes");
    }
    assert_eq!(frames, rest.len() / frame);
    assert_eq!(errors, usize::from(rest.len() % frame != 0));
});
