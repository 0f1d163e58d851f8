//! A model file's container, contract and metadata (what is checked before tract sees the graph):
//! any bytes are a model description or a one-line error.
#![no_main]
use libfuzzer_sys::fuzz_target;
use poolwatch::pipeline::model::ModelMeta;
use poolwatch::pipeline::model::infer::decode_proto;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.onnx");
    let proto = match decode_proto(path, data) {
        Ok(p) => p,
        Err(e) => {
            assert!(!e.to_string().contains('\n'));
            return;
        }
    };
    match ModelMeta::from_proto(path, &proto) {
        Ok(meta) => {
            assert!(meta.width > 0 && meta.height > 0);
            if let Some(cal) = &meta.calibration {
                assert!(cal.check().is_ok());
                assert_eq!(cal.mean.len(), (meta.width * meta.height) as usize);
            }
        }
        Err(e) => assert!(!e.to_string().contains('\n'), "{e}"),
    }
});
