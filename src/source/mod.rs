//! Frame sources: one trait, so a camera, a directory of images, a pipe or the synthetic pool are
//! interchangeable to everything downstream.

pub mod dir;
pub mod synth;

use crate::frame::Frame;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// One frame could not be decoded; the source itself goes on.
    #[error("{origin}: cannot decode the image ({reason})")]
    Decode { origin: String, reason: String },
    /// The source cannot deliver frames now (camera unplugged, directory gone).
    #[error("{0}")]
    Unavailable(String),
    #[error("{path}: {reason}")]
    Path { path: PathBuf, reason: String },
}

impl SourceError {
    /// Whether the stream can go on after this error (a bad frame, not a dead source).
    pub fn is_frame_error(&self) -> bool {
        matches!(self, SourceError::Decode { .. })
    }
}

/// Something that produces frames. `Ok(None)` is the end of a finite stream.
pub trait FrameSource: Send {
    fn next_frame(&mut self) -> Result<Option<Frame>, SourceError>;

    /// A short human description for logs.
    fn describe(&self) -> String;
}
