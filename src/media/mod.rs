//! Frames and ground truth on disk: image files ([`images`]), swimmer annotations in the formats
//! poolwatch reads and writes ([`annotations`]) and the times the frames were taken at ([`times`]).
//! Used by the device's file source, the trainer and the tools alike.

pub mod annotations;
pub mod images;
pub mod times;
