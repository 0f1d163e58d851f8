//! Inference through tract: the model is loaded and checked once, its optimised plan built once, and
//! every frame runs through the same plan and state; on the CPU, or on an NVIDIA GPU through tract's
//! CUDA runtime when built with the `cuda` feature and a GPU is there (else the CPU, said in the log).

use super::contract::{ModelError, ModelMeta};
use prost::Message;
use std::path::{Path, PathBuf};
use tract_onnx::pb;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::runtime::State;

/// The shipped model's bytes.
pub const EMBEDDED_MODEL: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/models/poolwatch.onnx"));

/// A loaded autoencoder, ready to reconstruct frames of its input size.
pub struct Autoencoder {
    meta: ModelMeta,
    path: PathBuf,
    state: Box<dyn State>,
    /// Which tract runtime runs the model: "cpu" or "cuda".
    runtime: &'static str,
    output: Vec<f32>,
}

impl std::fmt::Debug for Autoencoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Autoencoder").field("path", &self.path).field("runtime", &self.runtime).field("meta", &self.meta).finish()
    }
}

/// Reads and decodes an ONNX file, with errors that name the file.
pub fn read_proto(path: &Path) -> Result<pb::ModelProto, ModelError> {
    let bytes = std::fs::read(path).map_err(|cause| ModelError::Read { path: path.to_path_buf(), cause })?;
    decode_proto(path, &bytes)
}

fn decode_proto(path: &Path, bytes: &[u8]) -> Result<pb::ModelProto, ModelError> {
    let not_onnx = |reason: String| ModelError::NotOnnx { path: path.to_path_buf(), reason };
    if bytes.is_empty() {
        return Err(not_onnx("the file is empty".into()));
    }
    let proto = pb::ModelProto::decode(bytes).map_err(|e| not_onnx(format!("protobuf decoding failed: {e}")))?;
    if proto.graph.is_none() || proto.opset_import.is_empty() {
        return Err(not_onnx("no graph or operator set; is it truncated?".into()));
    }
    Ok(proto)
}

impl Autoencoder {
    /// Loads, checks and optimises the model at `path`.
    pub fn load(path: &Path) -> Result<Autoencoder, ModelError> {
        Self::load_with_threads(path, 1)
    }

    /// As [`Autoencoder::load`], running each frame on `threads` threads (tract's executor).
    pub fn load_with_threads(path: &Path, threads: usize) -> Result<Autoencoder, ModelError> {
        let proto = read_proto(path)?;
        Self::from_proto_with_threads(path, &proto, threads)
    }

    /// Loads a model from memory; `label` names it in messages.
    pub fn from_bytes(label: &Path, bytes: &[u8]) -> Result<Autoencoder, ModelError> {
        Self::from_proto(label, &decode_proto(label, bytes)?)
    }

    /// The model shipped inside the binary (`models/poolwatch.onnx`, trained on the synthetic demo
    /// venue), used when no model is configured.
    pub fn embedded() -> Result<Autoencoder, ModelError> {
        Self::embedded_with_threads(1)
    }

    pub fn embedded_with_threads(threads: usize) -> Result<Autoencoder, ModelError> {
        let label = Path::new("<embedded models/poolwatch.onnx>");
        Self::from_proto_with_threads(label, &decode_proto(label, EMBEDDED_MODEL)?, threads)
    }

    /// Builds from an already decoded model; `path` is only used in messages.
    pub fn from_proto(path: &Path, proto: &pb::ModelProto) -> Result<Autoencoder, ModelError> {
        Self::from_proto_with_threads(path, proto, 1)
    }

    pub fn from_proto_with_threads(path: &Path, proto: &pb::ModelProto, threads: usize) -> Result<Autoencoder, ModelError> {
        let meta = ModelMeta::from_proto(path, proto)?;
        let (state, runtime) = build_state(proto, meta.width, meta.height, threads)
            .map_err(|e| ModelError::Tract { path: path.to_path_buf(), reason: format!("{e:#}") })?;
        let n = 3 * (meta.width * meta.height) as usize;
        Ok(Autoencoder { meta, path: path.to_path_buf(), state, runtime, output: vec![0.0; n] })
    }

    /// The tract runtime the model runs on: "cpu", or "cuda" (feature `cuda`, with a GPU).
    pub fn runtime(&self) -> &'static str {
        self.runtime
    }

    pub fn meta(&self) -> &ModelMeta {
        &self.meta
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Model input size (width, height).
    pub fn size(&self) -> (u32, u32) {
        (self.meta.width, self.meta.height)
    }

    /// Runs the model on a CHW input of the model's size (values in [0,1]) and returns the
    /// reconstruction, CHW, in a buffer owned by the model and reused for the next frame.
    pub fn reconstruct(&mut self, input: &[f32]) -> Result<&[f32], ModelError> {
        let (w, h) = (self.meta.width as usize, self.meta.height as usize);
        if input.len() != 3 * w * h {
            return Err(ModelError::Run(format!("input has {} values, the model takes 3x{h}x{w}", input.len())));
        }
        let tensor = Tensor::from_shape(&[1, 3, h, w], input).map_err(|e| ModelError::Run(e.to_string()))?;
        let out = self.state.run(tvec![tensor.into()]).map_err(|e| ModelError::Run(format!("{e:#}")));
        clear_upper_vector_state();
        let out = out?;
        let view = out[0].to_plain_array_view::<f32>().map_err(|e| ModelError::Run(e.to_string()))?;
        let view = view.as_slice().ok_or_else(|| ModelError::Run("output is not contiguous".into()))?;
        if view.len() != self.output.len() {
            return Err(ModelError::Run(format!("output has {} values, expected {}", view.len(), self.output.len())));
        }
        self.output.copy_from_slice(view);
        Ok(&self.output)
    }
}

/// Clears the upper halves of the AVX registers (`vzeroupper`) that tract's AVX-512 kernels leave dirty
/// when they run on this thread. Until then every SSE instruction after them (all of this crate's own
/// per-frame code, built for baseline x86-64) is slowed by the dirty-upper-state penalty: the heatmap
/// and pre-processing stages measured 3-4x slower after single-threaded inference.
#[inline]
fn clear_upper_vector_state() {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: `vzeroupper` only needs the AVX instruction set, checked just above; it touches no
        // memory and no register whose value live Rust code holds (the upper halves are not used by
        // code compiled without AVX, which this function is).
        unsafe { std::arch::x86_64::_mm256_zeroupper() }
    }
}

/// The model's state, ready to run, and the name of the runtime it runs on.
fn build_state(proto: &pb::ModelProto, width: u32, height: u32, threads: usize) -> TractResult<(Box<dyn State>, &'static str)> {
    use tract_onnx::tract_core::runtime::RunOptions;
    use tract_onnx::tract_core::tract_linalg::multithread::Executor;
    let model = tract_onnx::onnx()
        .model_for_proto_model(proto)?
        .with_input_fact(0, f32::fact([1, 3, height as usize, width as usize]).into())?;
    #[cfg(feature = "cuda")]
    let model = {
        let typed = model.into_typed()?.into_decluttered()?;
        if let Some(state) = cuda_state(&typed) {
            return Ok((state, "cuda"));
        }
        typed
    };
    let options = RunOptions { executor: (threads > 1).then(|| Executor::multithread(threads)), ..Default::default() };
    let plan = model.into_optimized()?.into_runnable_with_options(&options)?;
    Ok((Box::new(plan.spawn()?), "cpu"))
}

/// The model on tract's CUDA runtime, or `None` (with the reason in the log) when there is no usable
/// GPU, driver or CUDA library, or the runtime cannot take this model.
#[cfg(feature = "cuda")]
fn cuda_state(model: &TypedModel) -> Option<Box<dyn State>> {
    use tract_onnx::tract_core::runtime::runtime_for_name;
    // Naming the crate links it, and with it the runtime it registers under "cuda".
    let _ = tract_cuda::CudaTransform;
    let runtime = match runtime_for_name("cuda") {
        Ok(Some(rt)) => rt,
        Ok(None) => {
            log::warn!("no CUDA runtime in this build; running the model on the CPU");
            return None;
        }
        Err(e) => {
            log::warn!("no usable NVIDIA GPU ({e:#}); running the model on the CPU");
            return None;
        }
    };
    match runtime.prepare(model.clone()).and_then(|r| r.spawn()) {
        Ok(state) => {
            log::info!("running the model on the GPU (tract CUDA runtime)");
            Some(state)
        }
        Err(e) => {
            log::warn!("the CUDA runtime cannot run this model ({e:#}); running it on the CPU");
            None
        }
    }
}
