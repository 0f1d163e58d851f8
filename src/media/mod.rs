//! Frames and ground truth on disk: image files ([`images`]) and swimmer annotations in the formats
//! poolwatch reads and writes ([`annotations`]). Used by the device's file source, the trainer and
//! the tools alike.

pub mod annotations;
pub mod images;
