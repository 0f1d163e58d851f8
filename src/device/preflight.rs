//! Everything a config names, opened and tried before the daemon commits to it: at `check-config`,
//! at start and at every SIGHUP reload. A config that validates but would make every frame fail (a
//! mask image that is not there, a `dir` source with no images, a model that cannot handle the
//! frames) is refused here, with the reason, instead of failing frame after frame.

use crate::device::config::Config;
use crate::device::source::SourceSettings;
use crate::media::images::{image_paths, load_rgb};
use crate::pipeline::detect::Detector;
use crate::pipeline::model::Autoencoder;

/// Opens what `cfg` names and runs one frame through a detector of `model` built from it: with
/// `source`, the first image of a `dir` source (which must have one); otherwise, and for other
/// sources, a synthetic pool frame of the source's size. The daemon passes `source = false`: it opens
/// its source itself (a camera or a looping directory may be away for a while), and a reload keeps
/// the source it has. The detector is a throwaway (its own model state and pool mask), so the
/// running ones are not touched.
pub fn preflight(cfg: &Config, model: &Autoencoder, source: bool) -> Result<(), String> {
    let frame = match &cfg.source {
        SourceSettings::Dir { path, .. } if source => {
            let inputs: Vec<_> = path.iter().map(std::path::PathBuf::from).collect();
            let paths = image_paths(&inputs).map_err(|e| format!("source: {e}"))?;
            let first = paths.first().ok_or_else(|| format!("source: no images in {}", path.join(", ")))?;
            load_rgb(first).map_err(|e| format!("source: {e}"))?
        }
        other => {
            let (w, h) = other.frame_size().unwrap_or((640, 480));
            crate::synth::Scene::new(1, w, h, (0, 0)).render(0.0, 0).0
        }
    };
    let model = model.fork().map_err(|e| e.to_string())?;
    let mut detector = Detector::new(model, &cfg.detector());
    detector.detect(&frame).map(|_| ()).map_err(|e| format!("a test frame through the detector failed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_config_names_must_exist_and_work() {
        let model = Autoencoder::embedded().unwrap();
        assert_eq!(preflight(&Config::default(), &model, true), Ok(()));
        let missing_mask = Config::parse("[pool]\nmask = { image = \"/nonexistent/mask.png\" }\n").unwrap();
        let e = preflight(&missing_mask, &model, false).unwrap_err();
        assert!(e.contains("mask.png"), "{e}");
        let empty = tempfile::tempdir().unwrap();
        let dir = Config::parse(&format!("[source]\nkind = \"dir\"\npath = [{:?}]\n", empty.path().display().to_string())).unwrap();
        assert!(preflight(&dir, &model, true).unwrap_err().contains("no images"));
        let gone = Config::parse("[source]\nkind = \"dir\"\npath = [\"/nonexistent/frames\"]\n").unwrap();
        assert!(preflight(&gone, &model, true).unwrap_err().contains("/nonexistent/frames"));
        // The daemon opens its source itself: only the detector is tried then.
        assert_eq!(preflight(&gone, &model, false), Ok(()));
    }
}
