//! The detection pipeline: one frame through every stage, in the order the data flows.
//!
//! [`frame::Frame`] -> [`pool`] (mask) -> [`preprocess`] (model input) -> [`model`] (reconstruction)
//! -> [`heatmap`] -> [`boxes`] (with [`morph`]) -> [`track`] -> [`lanes`] (with [`geometry`]) -> [`timing`]
//! (laps) and [`alarm`] (motionless swimmers).
//! [`detect::Detector`] ties the per-frame stages together; [`overlay`] draws their results.
//!
//! Each stage owns its settings type and is built from it. Nothing here knows of config files, the
//! daemon, outputs or training: the device and the trainer compose these stages, never the reverse.

pub mod alarm;
pub mod boxes;
pub mod detect;
pub mod frame;
pub mod geometry;
pub mod heatmap;
pub mod lanes;
pub mod model;
pub mod morph;
pub mod overlay;
pub mod pool;
pub mod preprocess;
pub mod simd;
pub mod timing;
pub mod track;
