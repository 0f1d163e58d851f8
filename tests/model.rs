//! The ONNX writer and tract round trip: written models load, match an independent reference
//! computation, carry their metadata, and bad files fail with clear errors.

mod common;

use common::{T, blur_model, reference_forward};
use poolwatch::pipeline::heatmap::HeatmapSettings;
use poolwatch::train::onnx::random_weights;
use poolwatch::pipeline::model::{Arch, Autoencoder, Calibration, ModelMeta};
use poolwatch::train::onnx::write_model;

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn round_trip(arch_name: &str, w: u32, h: u32) {
    let arch = Arch::by_name(arch_name).unwrap();
    let weights = random_weights(&arch, 42);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.onnx");
    write_model(&path, &ModelMeta::new(w, h, arch.clone()), &weights).unwrap();
    let mut model = Autoencoder::load(&path).unwrap();
    assert_eq!(model.size(), (w, h));
    let mut rng = poolwatch::util::rng::Rng::new(5);
    let input: Vec<f32> = (0..3 * w * h).map(|_| rng.f32()).collect();
    let got = model.reconstruct(&input).unwrap().to_vec();
    let want = reference_forward(&arch, &weights, T { c: 3, h: h as usize, w: w as usize, d: input.clone() });
    assert_eq!((want.c, want.h, want.w), (3, h as usize, w as usize));
    let diff = max_diff(&got, &want.d);
    assert!(diff < 1e-4, "{arch_name}: tract and the reference differ by {diff}");
    // The output is not trivial (not all 0.5 from a dead network).
    let spread = want.d.iter().fold(0.0f32, |m, v| m.max((v - 0.5).abs()));
    assert!(spread > 1e-3, "{arch_name}: degenerate output");
    // The plan is reused: a second frame gives its own answer.
    let input2: Vec<f32> = input.iter().map(|v| 1.0 - v).collect();
    let got2 = model.reconstruct(&input2).unwrap().to_vec();
    let want2 = reference_forward(&arch, &weights, T { c: 3, h: h as usize, w: w as usize, d: input2 });
    assert!(max_diff(&got2, &want2.d) < 1e-4);
}

#[test]
fn resize_decoder_matches_reference() {
    round_trip("4,8:3,5:resize", 16, 8);
}

#[test]
fn convtranspose_decoder_matches_reference() {
    round_trip("4,8:3,5:convtranspose", 16, 8);
}

#[test]
fn three_layer_models_match_reference() {
    round_trip("3,5,6:3,5,7:resize", 24, 16);
    round_trip("3,5,6:3,5,7:convtranspose", 24, 16);
    round_trip("4,6:9,5:resize", 16, 8);
}

#[test]
fn upgrade_rewrites_an_earlier_resize_graph_as_the_same_function() {
    use poolwatch::train::onnx::{build_model_as, upgrade_file, write_proto};
    let arch = Arch::by_name("4,8,8:3,5,7:resize").unwrap();
    let weights = random_weights(&arch, 7);
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (dir.path().join("old.onnx"), dir.path().join("new.onnx"));
    let mut meta = ModelMeta::new(32, 16, arch.clone());
    meta.calibration = Some(Calibration {
        width: 32,
        height: 16,
        mean: vec![0.01; 32 * 16],
        std: vec![0.02; 32 * 16],
        heatmap: HeatmapSettings::default(),
        threshold: 4.5,
        raw_threshold: 0.1,
        quantile: 1.0,
        frames: 10,
        pool: None,
        noise_area: Some(0.001),
    });
    write_proto(&old, &build_model_as(&meta, &weights, false).unwrap()).unwrap();
    assert!(upgrade_file(&old, &new).unwrap(), "the resize graph was not rewritten");
    let ops = |p: &std::path::Path| -> Vec<String> {
        poolwatch::pipeline::model::infer::read_proto(p).unwrap().graph.unwrap().node.iter().map(|n| n.op_type.clone()).collect()
    };
    // dec0 (k 7) and dec1 (k 5) become sub-pixel convolutions; dec2 (k 3) gains nothing and stays.
    assert_eq!(ops(&old).iter().filter(|o| *o == "Resize").count(), 3);
    assert_eq!(ops(&new).iter().filter(|o| *o == "Resize").count(), 1);
    assert_eq!(ops(&new).iter().filter(|o| *o == "DepthToSpace").count(), 2);
    let (mut a, mut b) = (Autoencoder::load(&old).unwrap(), Autoencoder::load(&new).unwrap());
    assert_eq!(b.meta(), a.meta(), "metadata and calibration carry over");
    let mut rng = poolwatch::util::rng::Rng::new(3);
    let input: Vec<f32> = (0..3 * 32 * 16).map(|_| rng.f32()).collect();
    let diff = max_diff(a.reconstruct(&input).unwrap(), b.reconstruct(&input).unwrap());
    assert!(diff < 1e-5, "the upgraded model differs by {diff}");
    // Upgrading again changes nothing, not even by rounding.
    let before = std::fs::read(&new).unwrap();
    assert!(!upgrade_file(&new, &new).unwrap());
    assert_eq!(std::fs::read(&new).unwrap(), before);
}

#[test]
fn metadata_round_trips() {
    let (arch, weights) = blur_model("6,12:3,3:resize");
    let mut meta = ModelMeta::new(32, 16, arch);
    meta.training = serde_json::json!({"epochs": 3, "loss": 0.01});
    meta.preprocess.range = Some([0.1, 0.9]);
    meta.calibration = Some(Calibration {
        width: 32,
        height: 16,
        mean: vec![0.25; 512],
        std: vec![0.5; 512],
        heatmap: HeatmapSettings { exponent: 2.0, ..Default::default() },
        threshold: 3.5,
        raw_threshold: 0.2,
        quantile: 0.999,
        frames: 10,
        pool: None,
        noise_area: Some(0.0025),
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.onnx");
    write_model(&path, &meta, &weights).unwrap();
    let model = Autoencoder::load(&path).unwrap();
    assert_eq!(model.meta(), &meta);
}

#[test]
fn blur_model_reconstructs_flat_images_and_not_sharp_spots() {
    let (arch, weights) = blur_model("6,12:3,3:resize");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.onnx");
    write_model(&path, &ModelMeta::new(32, 32, arch), &weights).unwrap();
    let mut model = Autoencoder::load(&path).unwrap();
    let mut input = vec![0.5f32; 3 * 32 * 32];
    let flat = model.reconstruct(&input).unwrap().to_vec();
    // Away from the zero-padded border, flat grey comes back as it went in.
    for c in 0..3 {
        for y in 8..24 {
            for x in 8..24 {
                let i = c * 1024 + y * 32 + x;
                assert!((flat[i] - 0.5).abs() < 0.01, "flat grey at ({x},{y}) became {}", flat[i]);
            }
        }
    }
    for c in 0..3 {
        input[c * 1024 + 16 * 32 + 16] = 1.0;
    }
    let spot = model.reconstruct(&input).unwrap().to_vec();
    assert!((spot[16 * 32 + 16] - 1.0).abs() > 0.3, "a sharp spot is not reconstructed");
}

#[test]
fn metadata_out_of_range_is_refused_on_load() {
    // Each of these loaded before: a smoothing of 1e6 took minutes a frame, a spread of 0 or NaN or a
    // threshold <= 0 made every frame one whole-frame box, an unknown contract was taken as ours.
    let dir = tempfile::tempdir().unwrap();
    let (arch, weights) = blur_model("6,12:3,3:resize");
    let (w, h) = (32u32, 16u32);
    let n = (w * h) as usize;
    let good = Calibration {
        width: w,
        height: h,
        mean: vec![0.01; n],
        std: vec![0.005; n],
        heatmap: HeatmapSettings::default(),
        threshold: 3.0,
        raw_threshold: 0.02,
        quantile: 1.0,
        frames: 10,
        pool: None,
        noise_area: Some(0.001),
    };
    let write = |name: &str, cal: Calibration, contract: Option<&str>| {
        let path = dir.path().join(name);
        let mut meta = ModelMeta::new(w, h, arch.clone());
        meta.calibration = Some(cal);
        write_model(&path, &meta, &weights).unwrap();
        if let Some(c) = contract {
            let mut proto = poolwatch::pipeline::model::infer::read_proto(&path).unwrap();
            proto.metadata_props.iter_mut().filter(|p| p.key == "poolwatch.contract").for_each(|p| p.value = c.into());
            poolwatch::train::onnx::write_proto(&path, &proto).unwrap();
        }
        path
    };
    assert!(Autoencoder::load(&write("good.onnx", good.clone(), None)).is_ok());
    let mut nan_std = good.clone();
    nan_std.std[7] = f32::NAN;
    let cases = [
        ("blur.onnx", Calibration { heatmap: HeatmapSettings { blur_sigma: 1e6, ..HeatmapSettings::default() }, ..good.clone() }, None, "blur_sigma"),
        ("thr.onnx", Calibration { threshold: 0.0, ..good.clone() }, None, "threshold"),
        ("nan.onnx", nan_std, None, "statistics"),
        ("contract.onnx", good.clone(), Some("99"), "contract version"),
    ];
    for (name, cal, contract, what) in cases {
        let e = Autoencoder::load(&write(name, cal, contract)).unwrap_err().to_string();
        assert!(e.contains(name) && e.contains(what) && !e.contains('\n'), "{name}: {e}");
    }
}

#[test]
fn bad_model_files_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.onnx");
    let e = Autoencoder::load(&missing).unwrap_err().to_string();
    assert!(e.contains("missing.onnx") && e.contains("cannot read"), "{e}");

    let text = dir.path().join("text.onnx");
    std::fs::write(&text, "this is not a model\n").unwrap();
    let e = Autoencoder::load(&text).unwrap_err().to_string();
    assert!(e.contains("text.onnx") && e.contains("not an ONNX model"), "{e}");

    let (arch, weights) = blur_model("6,12:3,3:resize");
    let good = dir.path().join("good.onnx");
    write_model(&good, &ModelMeta::new(32, 16, arch.clone()), &weights).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let cut = dir.path().join("cut.onnx");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let e = Autoencoder::load(&cut).unwrap_err().to_string();
    assert!(e.contains("cut.onnx") && !e.contains('\n'), "{e}");

    // What the model fuzz target found: a calibration key with a line break, quoted by the JSON error.
    let e = Autoencoder::from_bytes(std::path::Path::new("fuzz.onnx"), include_bytes!("../fuzz/seeds/model/regression-line-break-in-key.onnx"))
        .err()
        .expect("refused")
        .to_string();
    assert!(e.contains("fuzz.onnx") && !e.contains('\n') && e.len() < 500, "{e:?}");

    let empty = dir.path().join("empty.onnx");
    std::fs::write(&empty, b"").unwrap();
    assert!(Autoencoder::load(&empty).unwrap_err().to_string().contains("empty"));

    // Sizes the architecture cannot take are refused by the writer.
    let e = write_model(&dir.path().join("odd.onnx"), &ModelMeta::new(30, 16, arch), &weights).unwrap_err().to_string();
    assert!(e.contains("multiple of 4"), "{e}");
    // Missing weights are named.
    let mut partial = weights.clone();
    partial.remove("dec1.bias");
    let (arch, _) = blur_model("6,12:3,3:resize");
    let e = write_model(&dir.path().join("p.onnx"), &ModelMeta::new(32, 16, arch), &partial).unwrap_err().to_string();
    assert!(e.contains("dec1.bias"), "{e}");
}

#[test]
fn the_integrity_hash_catches_a_flipped_weight_bit_and_a_model_without_one_only_warns() {
    // Flipped bytes in the weights loaded and ran, silently.
    let arch = Arch::by_name("4,8:3,3:resize").unwrap();
    let weights = random_weights(&arch, 11);
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.onnx");
    write_model(&good, &ModelMeta::new(32, 16, arch), &weights).unwrap();
    assert!(Autoencoder::load(&good).is_ok());
    let bytes = std::fs::read(&good).unwrap();
    // The lowest bit of one encoder weight, found by its stored little-endian bytes.
    let needle: Vec<u8> = weights["enc0.weight"].data[..4].iter().flat_map(|v| v.to_le_bytes()).collect();
    let at = bytes.windows(needle.len()).position(|x| x == needle.as_slice()).expect("the weights are stored as little-endian floats");
    let mut flipped = bytes.clone();
    flipped[at] ^= 1;
    let path = dir.path().join("flipped.onnx");
    std::fs::write(&path, &flipped).unwrap();
    let e = Autoencoder::load(&path).unwrap_err().to_string();
    assert!(e.contains("flipped.onnx") && e.contains("integrity hash does not match") && !e.contains('\n'), "{e}");
    let out = common::poolwatch().args(["info", path.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));

    // A model from before the hash (the entry cut out of the file): it loads, with a warning.
    let key = b"poolwatch.integrity";
    let i = bytes.windows(key.len()).position(|x| x == key).unwrap();
    // The entry: field 14 (0x72) of 94 bytes, the key (0x0a, 19 bytes), the value (0x12, "sha256:" and 64 hex digits).
    assert_eq!(&bytes[i - 4..i], &[0x72, 94, 0x0a, 19]);
    let old: Vec<u8> = [&bytes[..i - 4], &bytes[i + key.len() + 2 + 71..]].concat();
    let path = dir.path().join("old.onnx");
    std::fs::write(&path, &old).unwrap();
    assert!(Autoencoder::load(&path).is_ok());
    let out = common::poolwatch().args(["info", path.to_str().unwrap()]).output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && log.contains("no integrity hash") && log.contains("poolwatch-train upgrade"), "{log}");
    // Writing it again (upgrade, calibrate, quantise all write through write_proto) seals it.
    poolwatch::train::onnx::upgrade_file(&path, &path).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

#[test]
fn int8_export_runs_in_tract_with_integer_convolutions() {
    use poolwatch::train::onnx::read_weights;
    use poolwatch::train::quant::{build_int8, quantize_file};
    let (arch, weights) = blur_model("6,12,12:3,5,5:resize");
    let dir = tempfile::tempdir().unwrap();
    let float = dir.path().join("f.onnx");
    write_model(&float, &ModelMeta::new(64, 48, arch.clone()), &weights).unwrap();
    let proto = poolwatch::pipeline::model::infer::read_proto(&float).unwrap();
    // The weights read back from the file are the ones written (the decoder's are stored in their
    // sub-pixel form and converted back, exactly up to float rounding).
    let back = read_weights(&proto, &arch).unwrap();
    assert_eq!(back.keys().collect::<Vec<_>>(), weights.keys().collect::<Vec<_>>());
    for (name, t) in &weights {
        assert_eq!(back[name].shape, t.shape, "{name}");
        for (a, b) in back[name].data.iter().zip(&t.data) {
            assert!((a - b).abs() < 1e-5, "{name}: {a} vs {b}");
        }
    }

    // Calibration inputs: smooth random images.
    let scene = poolwatch::synth::Scene::new(4, 64, 48, (0, 0));
    let inputs: Vec<Vec<f32>> = (0..6)
        .map(|i| {
            let (img, _) = scene.render(i as f32, i);
            poolwatch::pipeline::preprocess::Preprocessor::new(64, 48, Default::default()).run(&img).to_vec()
        })
        .collect();
    let q = dir.path().join("q.onnx");
    quantize_file(&float, &q, &inputs).unwrap();
    let qproto = poolwatch::pipeline::model::infer::read_proto(&q).unwrap();
    let ops: Vec<&str> = qproto.graph.as_ref().unwrap().node.iter().map(|n| n.op_type.as_str()).collect();
    // Six layers: the first and the last stay float, the four between are integer convolutions, the
    // two 5x5 decoder layers in their sub-pixel form.
    assert_eq!(ops.iter().filter(|o| **o == "QLinearConv").count(), 4, "{ops:?}");
    assert_eq!(ops.iter().filter(|o| **o == "Conv").count(), 2, "{ops:?}");
    assert_eq!(ops.iter().filter(|o| **o == "DepthToSpace").count(), 2, "{ops:?}");
    let mut fm = Autoencoder::load(&float).unwrap();
    let mut qm = Autoencoder::load(&q).unwrap();
    assert_eq!(qm.meta().quantization, "int8");
    let a = fm.reconstruct(&inputs[0]).unwrap().to_vec();
    let b = qm.reconstruct(&inputs[0]).unwrap().to_vec();
    let mean = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).sum::<f32>() / a.len() as f32;
    assert!(mean < 0.02, "int8 reconstruction differs from float by {mean} on average");

    // Quantising twice, or a transposed-convolution decoder, is refused clearly.
    let e = quantize_file(&q, &dir.path().join("qq.onnx"), &inputs).unwrap_err().to_string();
    assert!(e.contains("already int8"), "{e}");
    let ct = Arch::by_name("6,12:3,5:convtranspose").unwrap();
    let e = build_int8(&ModelMeta::new(64, 48, ct.clone()), &random_weights(&ct, 1), &[(0.0, 1.0); 4]).unwrap_err();
    assert!(e.contains("ConvTranspose"), "{e}");
}

#[test]
fn shipped_int8_model_runs_and_stays_close_to_the_float_one() {
    // On Intel CPUs with AMX, tract 0.23.9's AMX int8 kernel read past its buffer and this crashed the
    // process (SIGSEGV); poolwatch keeps tract off those kernels (model::infer::avoid_faulty_kernels).
    let mut fm = Autoencoder::load(std::path::Path::new("models/poolwatch.onnx")).unwrap();
    let mut qm = Autoencoder::load(std::path::Path::new("models/poolwatch.int8.onnx")).unwrap();
    assert_eq!(qm.meta().quantization, "int8");
    assert_eq!(fm.size(), qm.size());
    let (w, h) = fm.size();
    let scene = poolwatch::synth::Scene::new(2, 640, 480, (1, 0));
    let (img, _) = scene.render(3.0, 3);
    let input = poolwatch::pipeline::preprocess::Preprocessor::new(w, h, Default::default()).run(&img).to_vec();
    let a = fm.reconstruct(&input).unwrap().to_vec();
    let b = qm.reconstruct(&input).unwrap().to_vec();
    let mean = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).sum::<f32>() / a.len() as f32;
    assert!(mean < 0.02, "the int8 reconstruction differs from the float one by {mean} on average");
}
