//! What the preview server reads from a client: any bytes are an incomplete head, a request, or a
//! refusal with a status the server can send.
#![no_main]
use libfuzzer_sys::fuzz_target;
use poolwatch::device::sink::http::server::parse_request;

fuzz_target!(|data: &[u8]| {
    match parse_request(data) {
        None => {}
        Some(Ok(r)) => {
            assert!(r.path.starts_with('/'));
            for (k, _) in &r.headers {
                assert!(!k.is_empty() && k.chars().all(|c| !c.is_ascii_uppercase()));
            }
        }
        Some(Err(code)) => assert!([400, 405, 431, 505].contains(&code), "status {code}"),
    }
});
