//! The TOML config: any text is a config or a one-line error naming what is wrong, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match poolwatch::device::config::Config::parse(text) {
        // A config that parses validates, and gives the pipeline its settings.
        Ok(cfg) => {
            assert!(cfg.validate().is_ok());
            let _ = cfg.detector();
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(!msg.contains('\n'), "a message of more than one line: {msg}");
            assert!(msg.len() < 1200, "a message of {} bytes", msg.len());
        }
    }
});
