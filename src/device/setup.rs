//! The set-up file: the lanes and alarm zones drawn on the preview's set-up page, kept in a file of
//! their own (`setup_file`, in a directory the daemon may write) and read after the config, whose
//! `[lanes]` and `[zones]` they replace. The config itself is never rewritten (it stays as its
//! author wrote it, comments and all, and may sit on a read-only `/etc`).

use crate::device::zones::{ZoneSettings, valid_name};
use crate::pipeline::lanes::LaneSettings;
use crate::util::setting::SettingError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// What the set-up page sets.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Setup {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lanes: Option<LaneSettings>,
    /// Every zone (none: the config's; an empty table: no zones at all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zones: Option<BTreeMap<String, ZoneSettings>>,
}

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("cannot read {path}: {cause}")]
    Read { path: String, cause: std::io::Error },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    #[error("cannot write {path}: {cause}")]
    Write { path: String, cause: std::io::Error },
}

impl Setup {
    /// Every section checked; the error names the key (`zones.steps.polygon`).
    pub fn validate(&self) -> Result<(), SettingError> {
        if let Some(l) = &self.lanes {
            l.validate().map_err(|e| e.in_section("lanes"))?;
        }
        let zones = self.zones.as_ref().map_or(0, |z| z.len());
        if zones > 32 {
            return Err(SettingError::new("zones", format!("at most 32 zones, not {zones}")));
        }
        for (name, z) in self.zones.iter().flatten() {
            if !valid_name(name) {
                return Err(SettingError::new(format!("zones.{}", crate::util::setting::cut(name, 32)), "a zone's name is 1-32 letters, digits, '-' or '_'"));
            }
            z.validate().map_err(|e| e.in_section(&format!("zones.{name}")))?;
        }
        Ok(())
    }

    /// The file at `path`, or `None` when there is none yet.
    pub fn load(path: &Path) -> Result<Option<Setup>, SetupError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(cause) => return Err(SetupError::Read { path: path.display().to_string(), cause }),
        };
        let invalid = |message: String| SetupError::Invalid { path: path.display().to_string(), message };
        let setup: Setup = toml::from_str(&text).map_err(|e| invalid(crate::util::setting::cut(&e.message().replace('\n', " "), 300)))?;
        setup.validate().map_err(|e| invalid(e.to_string()))?;
        Ok(Some(setup))
    }

    /// Writes the file whole (a temporary file renamed over it, so a reader never sees half of it).
    pub fn save(&self, path: &Path) -> Result<(), SetupError> {
        let write = |cause| SetupError::Write { path: path.display().to_string(), cause };
        let body = toml::to_string(self).map_err(|e| write(std::io::Error::other(e.to_string())))?;
        let text = format!("# Written by poolwatch's set-up page (/setup); read after the config, whose [lanes] and\n# [zones] it replaces. Edit it there, or here with the daemon reloaded.\n\n{body}");
        let tmp = path.with_extension("toml.part");
        std::fs::write(&tmp, text).and_then(|_| std::fs::rename(&tmp, path)).map_err(write)
    }
}

/// What the set-up page edits, shared by the daemon (which keeps it current) and the preview server
/// (which saves to it): the file, the lanes and zones in effect, and the daemon's reload switch.
pub struct SetupState {
    file: std::sync::Mutex<Option<std::path::PathBuf>>,
    current: std::sync::Mutex<Setup>,
    reload: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Default for SetupState {
    fn default() -> Self {
        SetupState::new(Default::default())
    }
}

impl SetupState {
    /// Saving sets `reload` (the daemon's SIGHUP flag).
    pub fn new(reload: std::sync::Arc<std::sync::atomic::AtomicBool>) -> SetupState {
        SetupState { file: Default::default(), current: Default::default(), reload }
    }

    /// The running config's file, lanes and zones.
    pub fn set(&self, file: Option<&Path>, lanes: Option<&LaneSettings>, zones: &BTreeMap<String, ZoneSettings>) {
        *crate::util::sync::lock(&self.file) = file.map(Path::to_path_buf);
        *crate::util::sync::lock(&self.current) = Setup { lanes: lanes.cloned(), zones: Some(zones.clone()) };
    }

    /// What is in effect now, and where the page saves (`None`: nowhere).
    pub fn current(&self) -> (Setup, Option<std::path::PathBuf>) {
        (crate::util::sync::lock(&self.current).clone(), crate::util::sync::lock(&self.file).clone())
    }

    /// Saves `setup` to the file and asks the daemon to reload; where it went.
    pub fn save(&self, setup: &Setup) -> Result<std::path::PathBuf, String> {
        let file = crate::util::sync::lock(&self.file).clone().ok_or("no setup_file in the config: set one to save from this page")?;
        setup.save(&file).map_err(|e| e.to_string())?;
        self.reload.store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(file)
    }
}

/// Parses the set-up page's request: `corners=x,y;x,y;x,y;x,y`, `count`, `length_m` (the lanes; all or
/// none) and `zones=NAME:x,y;x,y;x,y|NAME:...` (URL-encoded in the query).
pub fn from_query(query: &str) -> Result<Setup, String> {
    let value = |key: &str| {
        query.split('&').filter_map(|kv| kv.split_once('=')).find(|(k, _)| *k == key).map(|(_, v)| percent_decode(v))
    };
    let points = |s: &str| -> Result<Vec<[f64; 2]>, String> {
        s.split(';')
            .filter(|p| !p.trim().is_empty())
            .map(|p| {
                let (x, y) = p.split_once(',').ok_or_else(|| format!("'{}' is not x,y", crate::util::setting::cut(p, 40)))?;
                let n = |v: &str| v.trim().parse::<f64>().ok().filter(|v| v.is_finite()).ok_or_else(|| format!("'{}' is not a number", crate::util::setting::cut(v, 40)));
                Ok([n(x)?, n(y)?])
            })
            .collect()
    };
    let lanes = match (value("corners"), value("count"), value("length_m")) {
        (None, None, None) => None,
        (Some(c), Some(n), Some(l)) => {
            let c = points(&c)?;
            let corners: [[f64; 2]; 4] = c.try_into().map_err(|c: Vec<_>| format!("corners: 4 points, not {}", c.len()))?;
            let count = n.trim().parse().map_err(|_| format!("count: '{}' is not a whole number", crate::util::setting::cut(&n, 20)))?;
            let length_m = l.trim().parse().map_err(|_| format!("length_m: '{}' is not a number", crate::util::setting::cut(&l, 20)))?;
            Some(LaneSettings { corners, count, length_m })
        }
        _ => return Err("corners, count and length_m come together".into()),
    };
    let mut zones = BTreeMap::new();
    let given = value("zones");
    if let Some(z) = &given {
        for part in z.split('|').filter(|p| !p.trim().is_empty()) {
            let (name, pts) = part.split_once(':').ok_or_else(|| "zones: NAME:x,y;x,y;x,y|...".to_string())?;
            let zone = ZoneSettings { polygon: points(pts)?, off_min: 10.0, max_off_min: 60.0 };
            if zones.insert(name.trim().to_string(), zone).is_some() {
                return Err(format!("zones: '{}' twice", crate::util::setting::cut(name, 32)));
            }
        }
    }
    let setup = Setup { lanes, zones: given.map(|_| zones) };
    setup.validate().map_err(|e| e.to_string())?;
    Ok(setup)
}

/// `%XX` and `+` decoded (what a browser's `encodeURIComponent` and forms send); a `%` not followed by
/// two hex digits stays as it is, bytes that are not UTF-8 become U+FFFD.
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pages_request_parses_into_lanes_and_zones() {
        let q = "corners=60%2C420%3B580%2C420%3B500%2C120%3B140%2C120&count=5&length_m=33&zones=steps%3A10%2C10%3B100%2C10%3B100%2C80%7Cdeep%3A1%2C1%3B2%2C1%3B2%2C2";
        let s = from_query(q).unwrap();
        let l = s.lanes.unwrap();
        assert_eq!((l.corners, l.count, l.length_m), ([[60.0, 420.0], [580.0, 420.0], [500.0, 120.0], [140.0, 120.0]], 5, 33.0));
        let z = s.zones.unwrap();
        assert_eq!(z.keys().collect::<Vec<_>>(), ["deep", "steps"]);
        assert_eq!(z["steps"].polygon, [[10.0, 10.0], [100.0, 10.0], [100.0, 80.0]]);
        // Nothing: nothing set (the config's own lanes and zones back); `zones=` alone: no zones.
        assert_eq!(from_query("").unwrap(), Setup::default());
        assert_eq!(from_query("zones=").unwrap().zones, Some(BTreeMap::new()));
    }

    #[test]
    fn a_bad_request_says_what_is_wrong() {
        for (q, says) in [
            ("corners=1,1;2,2;3,3&count=4&length_m=25", "4 points"),
            ("corners=0,0;10,0;10,10;0,10&count=4", "together"),
            ("corners=0,0;10,0;10,10;0,10&count=x&length_m=25", "count"),
            ("corners=0,0;10,0;0,10;10,10&count=4&length_m=25", "convex"),
            ("corners=0,0;10,0;10,10;0,10&count=4&length_m=-1", "length_m"),
            ("zones=a/b:0,0;1,0;1,1", "name"),
            ("zones=a:0,0;1,0", "3 to 64"),
            ("zones=a:0,0;1,0;1,1|a:0,0;1,0;1,1", "twice"),
            ("zones=a:0,0;1,zz;1,1", "number"),
        ] {
            let e = from_query(q).unwrap_err();
            assert!(e.contains(says), "{q}: {e}");
        }
    }

    #[test]
    fn saved_and_loaded_back_the_same_and_a_damaged_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("setup.toml");
        assert!(Setup::load(&p).unwrap().is_none());
        let s = from_query("corners=60,420;580,420;500,120;140,120&count=5&length_m=33&zones=steps:10,10;100,10;100,80").unwrap();
        s.save(&p).unwrap();
        assert_eq!(Setup::load(&p).unwrap(), Some(s));
        let none = from_query("zones=").unwrap();
        none.save(&p).unwrap();
        assert_eq!(Setup::load(&p).unwrap(), Some(none));
        assert!(std::fs::read_to_string(&p).unwrap().starts_with("# Written by poolwatch"));
        std::fs::write(&p, "[lanes]\ncount = 0\n").unwrap();
        let e = Setup::load(&p).unwrap_err().to_string();
        assert!(e.contains("setup.toml") && !e.contains('\n'), "{e}");
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Cb%3Bc+d%7C"), "a,b;c d|");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%C3%A9"), "é");
        assert_eq!(percent_decode("%é%"), "%é%");
    }
}
