//! The ONNX writer: builds the autoencoder graph from named weight tensors and writes a standard ONNX
//! file (opset 13) that tract and onnxruntime both run. The trainer exports through it. A resize
//! decoder layer is written in its sub-pixel form (`subpixel.rs`).

use crate::pipeline::model::arch::{Activation, Arch, LayerKind};
use crate::pipeline::model::contract::{INPUT_NAME, ModelError, ModelMeta, OUTPUT_NAME};
use super::subpixel::{from_subpixel, subpixel_kernel, to_subpixel};
use tract_onnx::pb::tensor_proto::DataType;
use prost::Message;
use std::path::Path;
use tract_onnx::pb;

pub const OPSET: i64 = 13;

pub use super::weights::{WeightTensor, Weights};

/// Helper that accumulates nodes and initializers of one graph.
#[derive(Default)]
pub struct GraphBuilder {
    pub nodes: Vec<pb::NodeProto>,
    pub initializers: Vec<pb::TensorProto>,
}

impl GraphBuilder {
    pub fn node(&mut self, op: &str, name: &str, inputs: &[&str], output: &str, attrs: Vec<pb::AttributeProto>) {
        self.nodes.push(pb::NodeProto {
            op_type: op.into(),
            name: name.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            attribute: attrs,
            ..Default::default()
        });
    }

    pub fn f32_tensor(&mut self, name: &str, shape: &[usize], data: &[f32]) {
        self.raw_tensor(name, shape, pb::tensor_proto::DataType::Float, data.iter().flat_map(|v| v.to_le_bytes()).collect());
    }

    pub fn has_tensor(&self, name: &str) -> bool {
        self.initializers.iter().any(|t| t.name == name)
    }

    pub fn raw_tensor(&mut self, name: &str, shape: &[usize], ty: pb::tensor_proto::DataType, raw: Vec<u8>) {
        self.initializers.push(pb::TensorProto {
            name: name.into(),
            dims: shape.iter().map(|&d| d as i64).collect(),
            data_type: ty as i32,
            raw_data: raw,
            ..Default::default()
        });
    }

    /// The finished model: one `image` input and one `reconstruction` output of `[1,3,h,w]`.
    pub fn finish(self, meta: &ModelMeta, producer: &str) -> pb::ModelProto {
        let io = |name: &str| pb::ValueInfoProto {
            name: name.into(),
            r#type: Some(pb::TypeProto {
                value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                    elem_type: pb::tensor_proto::DataType::Float as i32,
                    shape: Some(pb::TensorShapeProto {
                        dim: [1, 3, meta.height as i64, meta.width as i64]
                            .iter()
                            .map(|&v| pb::tensor_shape_proto::Dimension {
                                value: Some(pb::tensor_shape_proto::dimension::Value::DimValue(v)),
                                ..Default::default()
                            })
                            .collect(),
                    }),
                })),
                ..Default::default()
            }),
            ..Default::default()
        };
        pb::ModelProto {
            ir_version: 8,
            producer_name: producer.into(),
            producer_version: env!("CARGO_PKG_VERSION").into(),
            opset_import: vec![pb::OperatorSetIdProto { domain: String::new(), version: OPSET }],
            metadata_props: meta.to_props(),
            graph: Some(pb::GraphProto {
                name: "poolwatch_autoencoder".into(),
                node: self.nodes,
                initializer: self.initializers,
                input: vec![io(INPUT_NAME)],
                output: vec![io(OUTPUT_NAME)],
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

pub fn attr_ints(name: &str, v: &[i64]) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: pb::attribute_proto::AttributeType::Ints as i32,
        ints: v.to_vec(),
        ..Default::default()
    }
}

pub fn attr_int(name: &str, v: i64) -> pb::AttributeProto {
    pb::AttributeProto { name: name.into(), r#type: pb::attribute_proto::AttributeType::Int as i32, i: v, ..Default::default() }
}

/// The initializer name of a resize-decoder weight or bias in its sub-pixel form.
pub fn subpixel_name(name: &str) -> String {
    format!("{name}_subpixel")
}

pub fn attr_str(name: &str, v: &str) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: pb::attribute_proto::AttributeType::String as i32,
        s: v.as_bytes().to_vec(),
        ..Default::default()
    }
}

/// Checks that `weights` holds every tensor the architecture needs, with the right shapes.
pub fn check_weights(arch: &Arch, weights: &Weights) -> Result<(), String> {
    for l in arch.layers() {
        let expect = [(l.weight_name(), l.weight_shape().to_vec()), (l.bias_name(), vec![l.cout])];
        for (name, shape) in expect {
            let t = weights.get(&name).ok_or_else(|| format!("weight '{name}' is missing"))?;
            if t.shape != shape {
                return Err(format!("weight '{name}' has shape {:?}, the architecture needs {shape:?}", t.shape));
            }
            if t.data.len() != shape.iter().product::<usize>() {
                return Err(format!("weight '{name}' has {} values for shape {shape:?}", t.data.len()));
            }
        }
    }
    Ok(())
}

/// The float autoencoder graph for `meta.arch` with these weights.
pub fn build_model(meta: &ModelMeta, weights: &Weights) -> Result<pb::ModelProto, String> {
    build_model_as(meta, weights, true)
}

/// [`build_model`], with `subpixel = false` for the graph form of earlier versions (every resize
/// decoder layer as `Resize` then `Conv`).
pub fn build_model_as(meta: &ModelMeta, weights: &Weights, subpixel: bool) -> Result<pb::ModelProto, String> {
    let arch = meta.arch.as_ref().ok_or("the model description has no architecture")?;
    arch.validate()?;
    check_weights(arch, weights)?;
    let m = arch.size_multiple();
    if !meta.width.is_multiple_of(m) || !meta.height.is_multiple_of(m) {
        return Err(format!("input size {}x{} must be a multiple of {m} for {} layers", meta.width, meta.height, arch.channels.len()));
    }
    let mut g = GraphBuilder::default();
    let mut x = INPUT_NAME.to_string();
    let layers = arch.layers();
    for (idx, l) in layers.iter().enumerate() {
        let conv_out = float_conv(&mut g, l, weights, &x, subpixel);
        let out = if idx + 1 == layers.len() { OUTPUT_NAME.to_string() } else { format!("{}_act", l.name) };
        let op = match l.activation {
            Activation::Relu => "Relu",
            Activation::Sigmoid => "Sigmoid",
        };
        g.node(op, &format!("{}_{}", l.name, op.to_lowercase()), &[&conv_out], &out, vec![]);
        x = out;
    }
    Ok(g.finish(meta, "poolwatch"))
}

/// Writes layer `l`'s float convolution (with its upsampling, or in its sub-pixel form when `subpixel`
/// and the kernel shrinks) on input `x`, without the activation; returns the output's name,
/// `{name}_conv`, the layer's full-resolution pre-activation output.
pub fn float_conv(g: &mut GraphBuilder, l: &crate::pipeline::model::arch::Layer, weights: &Weights, x: &str, subpixel: bool) -> String {
    let (w, b) = (l.weight_name(), l.bias_name());
    let k = l.kernel as i64;
    let p = k / 2;
    let conv_out = format!("{}_conv", l.name);
    if subpixel && use_subpixel(l) {
        // Upsample-then-convolve, written as the equivalent sub-pixel convolution (2-3x fewer
        // multiply-adds).
        let (ws, bs) = to_subpixel(&weights[&w], &weights[&b].data);
        let (wn, bn) = (subpixel_name(&w), subpixel_name(&b));
        g.f32_tensor(&wn, &ws.shape, &ws.data);
        g.f32_tensor(&bn, &[bs.len()], &bs);
        let k2 = ws.shape[2] as i64;
        let low = format!("{}_subpixel", l.name);
        conv_node(g, "Conv", l.name.as_str(), x, &wn, &bn, &low, k2, 1, k2 / 2, None);
        depth_to_space(g, l, &low, &conv_out);
        return conv_out;
    }
    g.f32_tensor(&w, &l.weight_shape(), &weights[&w].data);
    g.f32_tensor(&b, &[l.cout], &weights[&b].data);
    match l.kind {
        LayerKind::Down => conv_node(g, "Conv", l.name.as_str(), x, &w, &b, &conv_out, k, 2, p, None),
        LayerKind::UpTranspose => conv_node(g, "ConvTranspose", l.name.as_str(), x, &w, &b, &conv_out, k, 2, (k - 1) / 2, Some(1)),
        LayerKind::UpResize => {
            let up = format!("{}_up", l.name);
            upsample(g, x, &up);
            conv_node(g, "Conv", l.name.as_str(), &up, &w, &b, &conv_out, k, 1, p, None)
        }
    }
    conv_out
}

/// `Resize` by 2, nearest (the decoder's upsampling), of `x` into `out`; the scales tensor is written
/// once per graph.
pub fn upsample(g: &mut GraphBuilder, x: &str, out: &str) {
    if !g.has_tensor(UP_SCALES) {
        g.f32_tensor(UP_SCALES, &[4], &[1.0, 1.0, 2.0, 2.0]);
    }
    g.node("Resize", out, &[x, "", UP_SCALES], out, vec![
        attr_str("mode", "nearest"),
        attr_str("coordinate_transformation_mode", "asymmetric"),
        attr_str("nearest_mode", "floor"),
    ]);
}

/// The sub-pixel convolution's `4 * cout` channels at low resolution, `low`, rearranged into `cout`
/// channels at twice the size, `out` (channel `4 * co + 2 * py + px`: `to_subpixel`'s order).
pub fn depth_to_space(g: &mut GraphBuilder, l: &crate::pipeline::model::arch::Layer, low: &str, out: &str) {
    g.node("DepthToSpace", &format!("{}_d2s", l.name), &[low], out, vec![attr_int("blocksize", 2), attr_str("mode", "CRD")]);
}

/// The name of the decoder's upsampling scales tensor.
const UP_SCALES: &str = "up_scales";

/// Whether a decoder layer is written as a sub-pixel convolution: resize layers whose kernel shrinks
/// (k >= 5; a 3x3 one has as many multiply-adds either way, and the upsample-then-convolve form runs
/// faster in tract than the extra `DepthToSpace`).
pub fn use_subpixel(l: &crate::pipeline::model::arch::Layer) -> bool {
    l.kind == LayerKind::UpResize && subpixel_kernel(l.kernel) < l.kernel
}

#[allow(clippy::too_many_arguments)]
fn conv_node(
    g: &mut GraphBuilder,
    op: &str,
    name: &str,
    x: &str,
    w: &str,
    b: &str,
    out: &str,
    k: i64,
    stride: i64,
    pad: i64,
    output_padding: Option<i64>,
) {
    let mut attrs =
        vec![attr_ints("kernel_shape", &[k, k]), attr_ints("strides", &[stride, stride]), attr_ints("pads", &[pad; 4])];
    if let Some(op) = output_padding {
        attrs.push(attr_ints("output_padding", &[op, op]));
    }
    g.node(op, name, &[x, w, b], out, attrs);
}

/// The float weights of a model written by [`build_model`] for `arch`, as the trainer
/// names them (resize-decoder layers are stored in their sub-pixel form and converted back).
pub fn read_weights(proto: &pb::ModelProto, arch: &Arch) -> Result<Weights, String> {
    let graph = proto.graph.as_ref().ok_or("no graph")?;
    let mut stored = Weights::new();
    for t in &graph.initializer {
        if t.data_type != DataType::Float as i32 {
            continue;
        }
        let data: Vec<f32> = if !t.raw_data.is_empty() {
            t.raw_data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
        } else {
            t.float_data.clone()
        };
        stored.insert(t.name.clone(), WeightTensor { shape: t.dims.iter().map(|&d| d as usize).collect(), data });
    }
    let mut w = Weights::new();
    for l in arch.layers() {
        let (wn, bn) = (l.weight_name(), l.bias_name());
        if let (Some(ws), Some(bs)) = (stored.get(&subpixel_name(&wn)), stored.get(&subpixel_name(&bn))) {
            let (wt, b) = from_subpixel(ws, &bs.data, l.kernel)
                .ok_or_else(|| format!("'{}' has shape {:?}, which does not fit layer {}", subpixel_name(&wn), ws.shape, l.name))?;
            w.insert(wn, wt);
            w.insert(bn, WeightTensor { shape: vec![b.len()], data: b });
        } else {
            for name in [wn, bn] {
                let t = stored.remove(&name).ok_or_else(|| format!("weight '{name}' is missing"))?;
                w.insert(name, t);
            }
        }
    }
    Ok(w)
}

/// Rewrites a float model written by an earlier version with this version's writer: same weights,
/// metadata and calibration, the current graph form (the sub-pixel decoder), and the integrity hash.
/// An int8 model keeps its graph and gains the hash. Returns whether the graph changed.
pub fn upgrade_file(src: &Path, dst: &Path) -> Result<bool, ModelError> {
    let proto = crate::pipeline::model::infer::read_proto(src)?;
    let meta = ModelMeta::from_proto(src, &proto)?;
    let bad = |reason: String| ModelError::Contract { path: src.to_path_buf(), reason };
    if meta.quantization != "float" {
        // Its graph stays as it is (upgrade the float model and quantise it again for the new form);
        // the file gains the integrity hash.
        write_proto(dst, &proto)?;
        return Ok(false);
    }
    let arch = meta.arch.as_ref().ok_or_else(|| bad("it has no architecture metadata (not written by poolwatch-train)".into()))?;
    let weights = read_weights(&proto, arch).map_err(bad)?;
    let new = build_model(&meta, &weights).map_err(bad)?;
    let changed = new.graph.as_ref().map(|g| &g.node) != proto.graph.as_ref().map(|g| &g.node);
    // A file already in the current form is kept byte for byte (converting its weights back and forth
    // would only add rounding).
    write_proto(dst, if changed { &new } else { &proto })?;
    Ok(changed)
}

/// Builds the model and writes it to `path`.
pub fn write_model(path: &Path, meta: &ModelMeta, weights: &Weights) -> Result<(), ModelError> {
    let proto = build_model(meta, weights).map_err(|reason| ModelError::Contract { path: path.to_path_buf(), reason })?;
    write_proto(path, &proto)
}

/// Encodes and writes a model, through a temporary file so a crash never leaves half a model behind.
/// The file gets its integrity hash here, so every writer (export, calibration, quantisation, upgrade)
/// seals what it wrote.
pub fn write_proto(path: &Path, proto: &pb::ModelProto) -> Result<(), ModelError> {
    let mut sealed = proto.clone();
    crate::pipeline::model::contract::seal(&mut sealed);
    let bytes = sealed.encode_to_vec();
    let tmp = path.with_extension("onnx.tmp");
    let err = |cause| ModelError::Write { path: path.to_path_buf(), cause };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    std::fs::write(&tmp, bytes).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

/// Deterministic pseudo-random weights (He-style scale), for tests and as the trainer's starting point
/// when it has no other.
pub fn random_weights(arch: &Arch, seed: u64) -> Weights {
    let mut rng = crate::util::rng::Rng::new(seed);
    let mut w = Weights::new();
    for l in arch.layers() {
        let shape = l.weight_shape().to_vec();
        let fan_in = (l.cin * l.kernel * l.kernel) as f32;
        let scale = (2.0 / fan_in).sqrt();
        let n: usize = shape.iter().product();
        let data = (0..n).map(|_| rng.normal() * scale).collect();
        w.insert(l.weight_name(), WeightTensor { shape, data });
        w.insert(l.bias_name(), WeightTensor { shape: vec![l.cout], data: vec![0.0; l.cout] });
    }
    w
}
