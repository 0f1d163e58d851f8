//! Inference through tract: the model is loaded and checked once, its optimised plan built once, and
//! every frame runs through the same plan and state (one state per detection thread: [`Autoencoder::fork`]);
//! on the CPU, or on an NVIDIA GPU through tract's CUDA runtime when built with the `cuda` feature and a
//! GPU is there (else the CPU, said in the log).

use super::contract::{ModelError, ModelMeta};
use prost::Message;
use std::path::{Path, PathBuf};
use tract_onnx::pb;
use tract_onnx::prelude::*;
use std::sync::Arc;
use tract_onnx::tract_core::runtime::{Runnable, State};

/// The shipped model's bytes.
pub const EMBEDDED_MODEL: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/models/poolwatch.onnx"));

/// A loaded autoencoder, ready to reconstruct frames of its input size.
pub struct Autoencoder {
    meta: ModelMeta,
    path: PathBuf,
    /// The optimised plan, shared by the forks; each has a state of its own.
    plan: Arc<dyn Runnable>,
    state: Box<dyn State>,
    /// Which tract runtime runs the model: "cpu" or "cuda".
    runtime: &'static str,
    /// The last reconstruction of each network in use, the first's first.
    outputs: Vec<Vec<f32>>,
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

/// Decodes a model file's bytes; `path` names it in messages.
pub fn decode_proto(path: &Path, bytes: &[u8]) -> Result<pb::ModelProto, ModelError> {
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
        let proto = read_proto(path)?;
        Self::from_proto(path, &proto)
    }

    /// Loads a model from memory; `label` names it in messages.
    pub fn from_bytes(label: &Path, bytes: &[u8]) -> Result<Autoencoder, ModelError> {
        Self::from_proto(label, &decode_proto(label, bytes)?)
    }

    /// The model shipped inside the binary (`models/poolwatch.onnx`, trained on the synthetic demo
    /// venue), used when no model is configured.
    pub fn embedded() -> Result<Autoencoder, ModelError> {
        let label = Path::new("<embedded models/poolwatch.onnx>");
        Self::from_proto(label, &decode_proto(label, EMBEDDED_MODEL)?)
    }

    /// The model at `path`, or the embedded one when there is none.
    pub fn load_or_embedded(path: Option<&Path>) -> Result<Autoencoder, ModelError> {
        Self::load_or_embedded_with(path, None)
    }

    /// The model at `path` (or the embedded one) running only its first `networks` networks (all of
    /// them with `None`, or when the file holds fewer): a file of two networks run as one costs one
    /// network's time a frame.
    pub fn load_or_embedded_with(path: Option<&Path>, networks: Option<usize>) -> Result<Autoencoder, ModelError> {
        match path {
            Some(p) => Self::from_proto_with(p, &read_proto(p)?, networks),
            None => {
                let label = Path::new("<embedded models/poolwatch.onnx>");
                Self::from_proto_with(label, &decode_proto(label, EMBEDDED_MODEL)?, networks)
            }
        }
    }

    /// Builds from an already decoded model; `path` is only used in messages.
    pub fn from_proto(path: &Path, proto: &pb::ModelProto) -> Result<Autoencoder, ModelError> {
        Self::from_proto_with(path, proto, None)
    }

    /// [`from_proto`](Self::from_proto) running only the first `networks` of the file's networks.
    pub fn from_proto_with(path: &Path, proto: &pb::ModelProto, networks: Option<usize>) -> Result<Autoencoder, ModelError> {
        let mut meta = ModelMeta::from_proto(path, proto)?;
        if let Some(n) = networks {
            meta.members.truncate(n.max(1) - 1);
        }
        let tract_err = |e: TractError| ModelError::Tract { path: path.to_path_buf(), reason: format!("{e:#}") };
        let (plan, runtime) = build_plan(proto, meta.width, meta.height, &meta.outputs()).map_err(tract_err)?;
        let state = plan.spawn().map_err(tract_err)?;
        let n = 3 * (meta.width * meta.height) as usize;
        let (w, h) = (meta.width, meta.height);
        let outputs = vec![vec![0.0; n]; meta.networks()];
        let mut model = Autoencoder { meta, path: path.to_path_buf(), plan, state, runtime, outputs };
        // One frame now: a graph whose output is not the image it was given fails here, once, not
        // on every frame after a model swap.
        model.reconstruct(&vec![0.5; n]).map_err(|e| ModelError::Contract {
            path: path.to_path_buf(),
            reason: format!("it does not reconstruct a 3x{h}x{w} image: {e}"),
        })?;
        Ok(model)
    }

    /// The same model with a state of its own, for another detection thread: the optimised plan and
    /// its weights are shared, not loaded again.
    pub fn fork(&self) -> Result<Autoencoder, ModelError> {
        let state = self.plan.spawn().map_err(|e| ModelError::Tract { path: self.path.clone(), reason: format!("{e:#}") })?;
        Ok(Autoencoder {
            meta: self.meta.clone(),
            path: self.path.clone(),
            plan: Arc::clone(&self.plan),
            state,
            runtime: self.runtime,
            outputs: self.outputs.iter().map(|o| vec![0.0; o.len()]).collect(),
        })
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

    /// Runs the model on a CHW input of the model's size (values in [0,1]) and returns the first
    /// network's reconstruction, CHW, in a buffer owned by the model and reused for the next frame (the
    /// other networks' are in [`outputs`](Self::outputs)).
    pub fn reconstruct(&mut self, input: &[f32]) -> Result<&[f32], ModelError> {
        self.run(input)?;
        Ok(&self.outputs[0])
    }

    /// The last frame's reconstruction of each network in use, the first's first.
    pub fn outputs(&self) -> &[Vec<f32>] {
        &self.outputs
    }

    /// How many networks run a frame.
    pub fn networks(&self) -> usize {
        self.outputs.len()
    }

    /// Runs every network in use on a CHW input; the reconstructions land in [`outputs`](Self::outputs).
    pub fn run(&mut self, input: &[f32]) -> Result<(), ModelError> {
        let (w, h) = (self.meta.width as usize, self.meta.height as usize);
        if input.len() != 3 * w * h {
            return Err(ModelError::Run(format!("input has {} values, the model takes 3x{h}x{w}", input.len())));
        }
        let tensor = Tensor::from_shape(&[1, 3, h, w], input).map_err(|e| ModelError::Run(e.to_string()))?;
        let out = self.state.run(tvec![tensor.into()]).map_err(|e| ModelError::Run(format!("{e:#}")));
        clear_upper_vector_state();
        let out = out?;
        if out.len() != self.outputs.len() {
            return Err(ModelError::Run(format!("{} outputs, expected {}", out.len(), self.outputs.len())));
        }
        for (t, buf) in out.iter().zip(&mut self.outputs) {
            let view = t.to_plain_array_view::<f32>().map_err(|e| ModelError::Run(e.to_string()))?;
            let view = view.as_slice().ok_or_else(|| ModelError::Run("output is not contiguous".into()))?;
            if view.len() != buf.len() {
                return Err(ModelError::Run(format!("output has {} values, expected {}", view.len(), buf.len())));
            }
            buf.copy_from_slice(view);
        }
        Ok(())
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

/// Keeps tract from picking kernels known to be faulty on this machine; called before any model is
/// optimised (tract probes the CPU once, on first use).
///
/// tract 0.23.9's Intel AMX int8 matrix kernel (`avx512amx_mmm_i32_16x16`, chosen for `QLinearConv` on
/// Sapphire Rapids and later Xeons) reads whole 64-deep tiles of its packed right-hand input, which is
/// only padded to a multiple of 4: with a depth that is not a multiple of 64 it reads past the end of
/// the buffer, and the int8 model crashed (SIGSEGV) at its first frame on such a CPU. The AMX kernels are
/// taken out of tract's pool (knob `TRACT_CPU_ISA=-amx-int8`, below the environment: setting
/// `TRACT_CPU_ISA` yourself replaces this); int8 then runs on the AVX-512 VNNI kernels.
pub fn avoid_faulty_kernels() {
    #[cfg(target_arch = "x86_64")]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            if let Err(e) = tract_onnx::tract_core::knobs::set_config_global("TRACT_CPU_ISA", "-amx-int8") {
                log::warn!("could not keep tract off its AMX int8 kernels ({e:#}); int8 models may crash on AMX CPUs");
            }
        });
    }
}

/// The model's optimised plan, ready to spawn states, and the name of the runtime it runs on. Each
/// frame runs on the calling thread: tract's multithreaded executor did not speed these models up
/// (docs/speed.md); more frames a second come from more detection threads (`pipeline.threads`).
///
/// `outputs` are the networks' outputs to compute, in that order; the graph of a network left out is
/// pruned when the plan is optimised.
fn build_plan(proto: &pb::ModelProto, width: u32, height: u32, outputs: &[String]) -> TractResult<(Arc<dyn Runnable>, &'static str)> {
    avoid_faulty_kernels();
    let mut model = tract_onnx::onnx().model_for_proto_model(proto)?;
    model.select_outputs_by_name(outputs.iter().map(String::as_str))?;
    let model = model.with_input_fact(0, f32::fact([1, 3, height as usize, width as usize]).into())?;
    #[cfg(feature = "cuda")]
    let model = {
        let typed = model.into_typed()?.into_decluttered()?;
        if let Some(plan) = cuda_plan(&typed) {
            return Ok((plan, "cuda"));
        }
        typed
    };
    let plan: Arc<dyn Runnable> = Arc::new(model.into_optimized()?.into_runnable()?);
    Ok((plan, "cpu"))
}

/// The model on tract's CUDA runtime, or `None` (with the reason in the log) when there is no usable
/// GPU, driver or CUDA library, or the runtime cannot take this model.
#[cfg(feature = "cuda")]
fn cuda_plan(model: &TypedModel) -> Option<Arc<dyn Runnable>> {
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
    // A state is spawned here too, so that a runtime that cannot run the model falls back now.
    match runtime.prepare(model.clone()).and_then(|r| r.spawn().map(|_| r)) {
        Ok(plan) => {
            log::info!("running the model on the GPU (tract CUDA runtime)");
            Some(Arc::from(plan))
        }
        Err(e) => {
            log::warn!("the CUDA runtime cannot run this model ({e:#}); running it on the CPU");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn amx_int8_kernels_are_out_of_tracts_pool() {
        use tract_onnx::tract_core::tract_linalg::{isa::{Isa, native}, knobs::TRACT_CPU_ISA};
        super::avoid_faulty_kernels();
        if std::env::var_os("TRACT_CPU_ISA").is_none() {
            // The probe reads CPUID; on a CPU with AMX the edit must have taken the feature out.
            assert!(!native().has(Isa::X86_64AmxInt8), "tract still counts AMX int8 among this CPU's features");
            assert_eq!(TRACT_CPU_ISA.get().as_deref(), Some("-amx-int8"));
        }
    }
}
