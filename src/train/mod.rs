//! The trainer (cargo feature `train`, libtorch through tch): the autoencoder as tch tensors, the
//! training loop with augmentation, validation, checkpoints and resume, then export through the same
//! ONNX writer the device reads, verification in tract, calibration and a report.

pub mod int8;
pub mod net;
pub mod report;
pub mod run;

pub use run::{DeviceChoice, NonPoolTarget, TrainError, TrainSettings, TrainSummary, train};
