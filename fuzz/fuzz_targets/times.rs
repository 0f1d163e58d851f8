//! A replay folder's `times.csv`: finite times by frame name, or a one-line error.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match poolwatch::media::times::parse(text) {
        Ok(times) => assert!(times.iter().all(|(name, s)| !name.is_empty() && s.is_finite()), "{times:?}"),
        Err(e) => assert!(!e.contains('\n') && e.chars().count() < 150, "{e}"),
    }
});
