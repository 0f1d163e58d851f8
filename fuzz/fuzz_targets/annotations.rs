//! Annotation files in every format `eval` reads (YOLO text, our JSON, COCO-like and per-object JSON):
//! boxes with a positive area and finite corners, or an error.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [flag, rest @ ..] = data else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    if let Ok(boxes) = poolwatch::media::annotations::parse(text, flag & 1 == 1, 640, 480) {
        for b in boxes {
            assert!(b.area() > 0.0, "{b:?}");
            assert!(b.x1 < b.x2 && b.y1 < b.y2, "{b:?}");
            assert!([b.x1, b.y1, b.x2, b.y2].iter().all(|v| v.is_finite()), "{b:?}");
        }
    }
});
