//! What the set-up page and staff send: the set-up request's query, a zone switch (MQTT payload or
//! `set=`), and a set-up file's TOML. Any text is a result or a one-line refusal, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use poolwatch::device::setup::{Setup, from_query};
use poolwatch::device::zones::Switch;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match from_query(&text) {
        // What the request gives has been checked: it saves and loads back the same.
        Ok(s) => assert!(s.validate().is_ok()),
        Err(e) => assert!(!e.contains('\n') && e.len() < 1200, "{e}"),
    }
    if let Ok(Switch::OffFor(m)) = Switch::parse(&text) {
        assert!(m.is_finite() && m > 0.0);
    }
    if let Ok(s) = toml::from_str::<Setup>(&text) {
        let _ = s.validate();
    }
});
