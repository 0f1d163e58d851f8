//! Models written by poolwatch are standard ONNX: onnxruntime (from the Python environment the trainer
//! tests install) computes what tract computes. Runs with `--features train`.
#![cfg(feature = "train")]

use poolwatch::train::onnx::random_weights;
use poolwatch::pipeline::model::{Arch, Autoencoder, ModelMeta};
use poolwatch::train::onnx::write_model;
use std::path::Path;
use std::process::Command;

const SCRIPT: &str = r#"
import sys, numpy as np, onnxruntime as ort
model, inp, out, h, w = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
s = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
x = np.fromfile(inp, dtype=np.float32).reshape(1, 3, h, w)
(y,) = s.run(["reconstruction"], {"image": x})
y.astype(np.float32).tofile(out)
"#;

fn onnxruntime_matches_tract(model: &Path, tolerance: f32) {
    let mut m = Autoencoder::load(model).unwrap();
    let (w, h) = m.size();
    let mut rng = poolwatch::util::rng::Rng::new(9);
    let input: Vec<f32> = (0..3 * w * h).map(|_| rng.f32()).collect();
    let want = m.reconstruct(&input).unwrap().to_vec();
    let dir = tempfile::tempdir().unwrap();
    let (inp, out) = (dir.path().join("in.f32"), dir.path().join("out.f32"));
    std::fs::write(&inp, input.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()).unwrap();
    let o = Command::new("python3")
        .args(["-c", SCRIPT, model.to_str().unwrap(), inp.to_str().unwrap(), out.to_str().unwrap(), &h.to_string(), &w.to_string()])
        .output()
        .expect("python3 with onnxruntime (scripts/torch-env.sh installs it)");
    assert!(o.status.success(), "onnxruntime failed on {}: {}", model.display(), String::from_utf8_lossy(&o.stderr));
    let bytes = std::fs::read(&out).unwrap();
    let got: Vec<f32> = bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    assert_eq!(got.len(), want.len());
    let diff = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(diff < tolerance, "{}: onnxruntime and tract differ by {diff}", model.display());
}

#[test]
fn written_models_run_in_onnxruntime() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["4,8,8:3,5,7:resize", "4,8,8:3,5,7:convtranspose"] {
        let arch = Arch::by_name(name).unwrap();
        let p = dir.path().join("m.onnx");
        write_model(&p, &ModelMeta::new(48, 32, arch.clone()), &random_weights(&arch, 1)).unwrap();
        onnxruntime_matches_tract(&p, 1e-4);
    }
}

#[test]
fn shipped_models_run_in_onnxruntime() {
    onnxruntime_matches_tract(Path::new("models/poolwatch.onnx"), 1e-4);
    // Integer rounding may differ by a quantisation step here and there between the two runtimes.
    onnxruntime_matches_tract(Path::new("models/poolwatch.int8.onnx"), 0.05);
}
