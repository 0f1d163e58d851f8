//! `times.csv` beside recorded frames: when each frame was taken, so that a replay of the folder keeps
//! the recording's own clock (a motionless swimmer's seconds, a lap's time) whatever speed it is read at.
//!
//! The format: a header line `frame,seconds`, then one line per frame, its file name and the time it was
//! taken in seconds (`poolwatch record`: Unix time; `poolwatch synth`: the synthetic clock). Only the
//! differences between frames are used, so the origin does not matter.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

/// The file's name inside a folder of frames.
pub const FILE_NAME: &str = "times.csv";

const HEADER: &str = "frame,seconds";

/// Writes a folder's `times.csv` line by line, each line flushed as it is added, so a recording cut
/// short keeps the times of every frame it saved.
pub struct TimesWriter {
    out: BufWriter<File>,
}

impl TimesWriter {
    /// Creates (or truncates) `dir/times.csv` and writes its header.
    pub fn create(dir: &Path) -> std::io::Result<TimesWriter> {
        let mut out = BufWriter::new(File::create(dir.join(FILE_NAME))?);
        writeln!(out, "{HEADER}")?;
        Ok(TimesWriter { out })
    }

    /// Adds the frame file `name` (a name in the folder, no path), taken at `seconds`.
    pub fn add(&mut self, name: &str, seconds: f64) -> std::io::Result<()> {
        writeln!(self.out, "{name},{seconds:.3}")?;
        self.out.flush()
    }
}

/// The times in `dir/times.csv` by frame file name; `Ok(None)` when the folder has none. A line that is
/// not `name,seconds` (a finite number) is an error naming the file and the line.
pub fn read(dir: &Path) -> Result<Option<HashMap<String, f64>>, String> {
    let path = dir.join(FILE_NAME);
    match std::fs::read_to_string(&path) {
        Ok(text) => parse(&text).map(Some).map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// A `times.csv`'s text: the times by frame file name, or the first bad line's number and a bounded
/// quote of it.
pub fn parse(text: &str) -> Result<HashMap<String, f64>, String> {
    let mut times = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || (n == 0 && line == HEADER) {
            continue;
        }
        // Quoted escaped, then cut: one line of bounded length whatever the file holds.
        let bad = || format!("line {}: expected `frame,seconds`, found '{}'", n + 1, line.escape_debug().take(60).collect::<String>());
        let (name, secs) = line.rsplit_once(',').ok_or_else(bad)?;
        let secs: f64 = secs.trim().parse().map_err(|_| bad())?;
        if name.is_empty() || !secs.is_finite() {
            return Err(bad());
        }
        times.insert(name.to_string(), secs);
    }
    Ok(times)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_times_read_back_and_damage_is_named() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(read(d.path()).unwrap(), None);
        let mut w = TimesWriter::create(d.path()).unwrap();
        w.add("frame-000000.jpg", 1_765_000_000.25).unwrap();
        w.add("frame-000001.jpg", 1_765_000_000.75).unwrap();
        // Flushed line by line: readable before the writer is dropped.
        let t = read(d.path()).unwrap().unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t["frame-000001.jpg"] - t["frame-000000.jpg"], 0.5);
        drop(w);
        std::fs::write(d.path().join(FILE_NAME), "frame,seconds\na.jpg,1.0\nb.jpg,soon\n").unwrap();
        let e = read(d.path()).unwrap_err();
        assert!(e.contains("line 3") && e.contains("b.jpg,soon"), "{e}");
        std::fs::write(d.path().join(FILE_NAME), "a.jpg,inf\n").unwrap();
        assert!(read(d.path()).unwrap_err().contains("line 1"));
        // Control characters are quoted escaped, and the quote stays short (the fuzz target's find:
        // sixty of them escaped to six characters each made a 400-character message).
        let e = parse(&format!(" {}", "\u{1a}".repeat(60))).unwrap_err();
        assert!(e.len() < 120 && !e.contains('\u{1a}') && e.contains("\\u{1a}"), "{e}");
    }
}
