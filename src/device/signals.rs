//! The signals a running command answers: SIGTERM and SIGINT stop it cleanly, SIGHUP reloads.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// Flags the signal handlers set; the command polls them.
pub struct Signals {
    /// SIGTERM or SIGINT arrived: finish what is in hand and stop.
    pub stop: Arc<AtomicBool>,
    /// SIGHUP arrived: reload the config and the model.
    pub reload: Arc<AtomicBool>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot install signal handlers: {0}")]
pub struct SignalError(std::io::Error);

impl Signals {
    pub fn install() -> Result<Signals, SignalError> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let s = Signals { stop: Arc::default(), reload: Arc::default() };
        for sig in [SIGTERM, SIGINT] {
            signal_hook::flag::register(sig, Arc::clone(&s.stop)).map_err(SignalError)?;
        }
        signal_hook::flag::register(SIGHUP, Arc::clone(&s.reload)).map_err(SignalError)?;
        Ok(s)
    }
}
