//! int8 export: static post-training quantisation of a float model into operators tract executes in
//! integers. Every convolution but the first and the last becomes a `QLinearConv` (u8 activations, i8
//! per-channel weights, i32 bias); the ReLU after it is folded into the output's quantisation (zero
//! point 0 clamps negatives). Activation ranges are measured by running the float model on calibration
//! frames.

use crate::pipeline::model::arch::{Activation, LayerKind};
use crate::pipeline::model::contract::{INPUT_NAME, ModelError, ModelMeta, OUTPUT_NAME};
use crate::pipeline::model::infer::read_proto;
use super::onnx::{GraphBuilder, Weights, attr_ints, check_weights, depth_to_space, float_conv, read_weights, upsample, use_subpixel};
use super::subpixel::to_subpixel;
use crate::util::stats::quantile_f32;
use std::path::Path;
use tract_onnx::pb;
use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::prelude::*;

/// The quantile of each conv output's values taken as its range (robust to a few outliers).
const RANGE_QUANTILE: f32 = 0.9999;

/// Range (min, max) of every convolution's output over the calibration inputs (CHW, model size).
pub fn measure_ranges(proto: &pb::ModelProto, meta: &ModelMeta, inputs: &[Vec<f32>]) -> Result<Vec<(f32, f32)>, String> {
    let arch = meta.arch.as_ref().ok_or("the model has no architecture metadata")?;
    let names: Vec<String> = arch.layers().iter().map(|l| format!("{}_conv", l.name)).collect();
    let (w, h) = (meta.width as usize, meta.height as usize);
    crate::pipeline::model::infer::avoid_faulty_kernels();
    let plan = tract_onnx::onnx()
        .model_for_proto_model(proto)
        .and_then(|m| m.with_input_fact(0, f32::fact([1, 3, h, w]).into()))
        .and_then(|mut m| {
            m.select_outputs_by_name(names.iter().map(|s| s.as_str()))?;
            Ok(m)
        })
        .and_then(|m| m.into_optimized())
        .and_then(|m| m.into_runnable())
        .map_err(|e| format!("{e:#}"))?;
    let mut samples: Vec<Vec<f32>> = vec![Vec::new(); names.len()];
    for x in inputs {
        let t = Tensor::from_shape(&[1, 3, h, w], x).map_err(|e| e.to_string())?;
        let outs = plan.run(tvec![t.into()]).map_err(|e| format!("{e:#}"))?;
        for (i, o) in outs.iter().enumerate() {
            let v = o.to_plain_array_view::<f32>().map_err(|e| e.to_string())?;
            // A strided subsample keeps memory bounded on large calibration sets.
            let step = (v.len() / 20_000).max(1);
            samples[i].extend(v.iter().step_by(step).copied());
        }
    }
    Ok(samples
        .into_iter()
        .map(|mut s| {
            let (Some(lo), Some(hi)) = (quantile_f32(&mut s, 1.0 - RANGE_QUANTILE), quantile_f32(&mut s, RANGE_QUANTILE)) else {
                return (0.0, 1.0);
            };
            (lo.min(0.0), hi.max(1e-6))
        })
        .collect())
}

fn scalar_f32(g: &mut GraphBuilder, name: &str, v: f32) {
    g.f32_tensor(name, &[], &[v]);
}

fn scalar_u8(g: &mut GraphBuilder, name: &str, v: u8) {
    g.raw_tensor(name, &[], DataType::Uint8, vec![v]);
}

/// Per output channel symmetric i8 weights of `w` (`cout` rows), their scales, and the biases in i32
/// at the accumulator's scale (`x_scale * w_scale`).
fn quantize_weights(w: &[f32], b: &[f32], x_scale: f32) -> (Vec<u8>, Vec<f32>, Vec<u8>) {
    let cout = b.len();
    let per = w.len() / cout;
    let mut w_scale = vec![0.0f32; cout];
    let mut wq = vec![0u8; w.len()];
    let mut bq = Vec::with_capacity(cout * 4);
    for o in 0..cout {
        let chunk = &w[o * per..(o + 1) * per];
        let m = chunk.iter().fold(0.0f32, |a, v| a.max(v.abs())).max(1e-12);
        w_scale[o] = m / 127.0;
        for (k, v) in chunk.iter().enumerate() {
            wq[o * per + k] = ((v / w_scale[o]).round().clamp(-127.0, 127.0) as i8) as u8;
        }
        let bias = (b[o] / (x_scale * w_scale[o])).round().clamp(i32::MIN as f32, i32::MAX as f32) as i32;
        bq.extend_from_slice(&bias.to_le_bytes());
    }
    (wq, w_scale, bq)
}

/// The int8 graph of a float model, given the conv output ranges.
///
/// The first and the last layer stay float: the first sees three input channels and the last writes
/// three, matrix products too thin for integer kernels to pay (in tract 0.23 they were 17 of the 42 ms
/// of the all-integer graph, against 0.9 ms in float), and they are where quantisation error shows
/// most. Every layer between them is a `QLinearConv`; resize-decoder layers take the same sub-pixel form
/// as in the float graph (a convolution at the low resolution to four times the channels, then
/// `DepthToSpace`, which moves bytes), so no upsampling runs on integers.
pub fn build_int8(meta: &ModelMeta, weights: &Weights, ranges: &[(f32, f32)]) -> Result<pb::ModelProto, String> {
    let arch = meta.arch.as_ref().ok_or("the model has no architecture metadata")?;
    check_weights(arch, weights)?;
    let layers = arch.layers();
    if layers.iter().any(|l| l.kind == LayerKind::UpTranspose) {
        return Err(format!(
            "architecture '{}' decodes with ConvTranspose, which has no integer operator in ONNX; int8 needs a resize decoder",
            arch.name
        ));
    }
    if ranges.len() != layers.len() {
        return Err(format!("{} ranges for {} layers", ranges.len(), layers.len()));
    }
    if layers.len() < 3 {
        return Err(format!("{} layers: int8 keeps the first and last float and needs one between", layers.len()));
    }
    let (first, last) = (&layers[0], &layers[layers.len() - 1]);
    if first.activation != Activation::Relu || last.activation != Activation::Sigmoid {
        return Err("int8 expects ReLU layers and a sigmoid output".into());
    }
    let mut g = GraphBuilder::default();
    // The first layer in float; its ReLU is the quantisation to [0, max] with zero point 0.
    let conv = float_conv(&mut g, first, weights, INPUT_NAME, true);
    let mut x_scale = ranges[0].1 / 255.0;
    let mut x_names = (format!("{}.y_scale", first.name), format!("{}.y_zp", first.name));
    scalar_f32(&mut g, &x_names.0, x_scale);
    scalar_u8(&mut g, &x_names.1, 0);
    let mut x = format!("{}_q", first.name);
    g.node("QuantizeLinear", &format!("{}_quantize", first.name), &[&conv, &x_names.0, &x_names.1], &x, vec![]);
    for (idx, l) in layers.iter().enumerate().take(layers.len() - 1).skip(1) {
        if l.activation != Activation::Relu {
            return Err("int8 expects ReLU layers and a sigmoid output".into());
        }
        let n = &l.name;
        let sub = use_subpixel(l);
        let (w, b) = (&weights[&l.weight_name()], &weights[&l.bias_name()]);
        let (w, b) = if sub { to_subpixel(w, &b.data) } else { (w.clone(), b.data.clone()) };
        if l.kind == LayerKind::UpResize && !sub {
            // A 3x3 resize layer: tract's nearest upsampling is fast on f32 and slow on u8, so it
            // round-trips through f32 (exact: the values stay on the same quantisation grid).
            let (deq, up, req) = (format!("{n}_deq"), format!("{n}_up"), format!("{n}_upq"));
            g.node("DequantizeLinear", &deq, &[&x, &x_names.0, &x_names.1], &deq, vec![]);
            upsample(&mut g, &deq, &up);
            g.node("QuantizeLinear", &req, &[&up, &x_names.0, &x_names.1], &req, vec![]);
            x = req;
        }
        let cout = b.len();
        let (wq, w_scale, bq) = quantize_weights(&w.data, &b, x_scale);
        g.raw_tensor(&format!("{n}.wq"), &w.shape, DataType::Int8, wq);
        g.f32_tensor(&format!("{n}.w_scale"), &[cout], &w_scale);
        g.raw_tensor(&format!("{n}.w_zp"), &[cout], DataType::Int8, vec![0u8; cout]);
        g.raw_tensor(&format!("{n}.bq"), &[cout], DataType::Int32, bq);
        // Output quantisation [0, max] with zero point 0, which is the ReLU itself.
        let y_scale = ranges[idx].1 / 255.0;
        scalar_f32(&mut g, &format!("{n}.y_scale"), y_scale);
        scalar_u8(&mut g, &format!("{n}.y_zp"), 0);
        let k = w.shape[2] as i64;
        let stride = if l.kind == LayerKind::Down { 2 } else { 1 };
        let out = format!("{n}_q");
        let conv_out = if sub { format!("{n}_subpixel_q") } else { out.clone() };
        let inputs = [
            x.clone(),
            x_names.0.clone(),
            x_names.1.clone(),
            format!("{n}.wq"),
            format!("{n}.w_scale"),
            format!("{n}.w_zp"),
            format!("{n}.y_scale"),
            format!("{n}.y_zp"),
            format!("{n}.bq"),
        ];
        let refs: Vec<&str> = inputs.iter().map(|s| s.as_str()).collect();
        g.node("QLinearConv", n, &refs, &conv_out, vec![
            attr_ints("kernel_shape", &[k, k]),
            attr_ints("strides", &[stride, stride]),
            attr_ints("pads", &[k / 2; 4]),
        ]);
        if sub {
            depth_to_space(&mut g, l, &conv_out, &out);
        }
        x = out;
        x_scale = y_scale;
        x_names = (format!("{n}.y_scale"), format!("{n}.y_zp"));
    }
    // The last layer in float, as in the float graph.
    let deq = format!("{}_input", last.name);
    g.node("DequantizeLinear", &format!("{}_dequantize", last.name), &[&x, &x_names.0, &x_names.1], &deq, vec![]);
    let conv = float_conv(&mut g, last, weights, &deq, true);
    g.node("Sigmoid", "output_sigmoid", &[&conv], OUTPUT_NAME, vec![]);
    let mut meta = meta.clone();
    meta.quantization = "int8".into();
    meta.calibration = None;
    Ok(g.finish(&meta, "poolwatch"))
}

/// Quantises the float model at `float` into `out`, measuring activation ranges on `inputs` (model
/// inputs, CHW). The result has no calibration yet: calibrate it on held-out frames.
pub fn quantize_file(float: &Path, out: &Path, inputs: &[Vec<f32>]) -> Result<(), ModelError> {
    let proto = read_proto(float)?;
    let meta = ModelMeta::from_proto(float, &proto)?;
    let bad = |reason: String| ModelError::Contract { path: float.to_path_buf(), reason };
    if meta.quantization != "float" {
        return Err(bad(format!("it is already {}", meta.quantization)));
    }
    if inputs.is_empty() {
        return Err(bad("no calibration frames to measure activation ranges on".into()));
    }
    let arch = meta.arch.as_ref().ok_or_else(|| bad("the model has no architecture metadata".into()))?;
    let weights = read_weights(&proto, arch).map_err(bad)?;
    let ranges = measure_ranges(&proto, &meta, inputs).map_err(bad)?;
    let q = build_int8(&meta, &weights, &ranges).map_err(bad)?;
    super::onnx::write_proto(out, &q)
}
