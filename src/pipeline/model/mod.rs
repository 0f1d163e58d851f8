//! The autoencoder as the device runs it: its architecture, the ONNX contract every model file follows
//! (input, output, metadata and calibration), and inference through tract. Writing model files is the
//! trainer's (`train::onnx`).

pub mod arch;
pub mod contract;
pub mod infer;

pub use arch::{Arch, Upsample};
pub use contract::{Calibration, ModelError, ModelMeta, Preprocess};
pub use infer::Autoencoder;
