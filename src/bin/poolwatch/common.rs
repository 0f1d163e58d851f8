//! What the subcommands share: the usage error (exit 2), one-line messages, config loading.

use anyhow::Result;
use poolwatch::device::config::Config;
use std::path::Path;

/// `println!` for a command's output. A reader that has gone (`poolwatch check-config F | head -1`) ends
/// the program quietly with exit 0, as ripgrep does, where `println!` would panic; any other write error
/// is one line and exit 1.
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout(), $($t)*) {
            $crate::common::stdout_failed(e);
        }
    }};
}

pub fn stdout_failed(e: std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("error: cannot write to standard output: {e}");
    std::process::exit(1)
}

/// An error that means bad input from the user (config, model, arguments): exit status 2.
pub struct Usage(pub anyhow::Error);

impl Usage {
    pub fn msg(m: impl std::fmt::Display) -> Usage {
        Usage(anyhow::anyhow!("{m}"))
    }
}

/// An error and its causes on one line.
pub fn one_line(e: &anyhow::Error) -> String {
    format!("{e:#}").replace('\n', " ")
}

/// The config at `path`, or the defaults without one.
pub fn load_config(path: Option<&Path>) -> Result<Config> {
    match path {
        Some(p) => Ok(Config::load(p)?),
        None => Ok(Config::default()),
    }
}

/// A usage error from anything that converts into one.
pub fn usage<E: Into<anyhow::Error>>(e: E) -> Usage {
    Usage(e.into())
}
