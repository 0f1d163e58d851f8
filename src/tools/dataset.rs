//! Synthetic datasets on disk: frames of the synthetic pool camera with their exact annotations
//! (`NNNNNN.jpg` and `NNNNNN.json` in poolwatch's own format), what `poolwatch synth` writes.

use crate::device::record::ImageFormat;
use crate::media::annotations::{AnnotationError, OwnAnnotation, OwnBox, write_own};
use crate::media::times::TimesWriter;
use crate::synth::{SynthSettings, Venue, frame_plan};
use image::RgbImage;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("cannot write {path}: {reason}")]
    Write { path: PathBuf, reason: String },
    #[error(transparent)]
    Annotation(#[from] AnnotationError),
}

/// Writes `frames` frames spread over `settings.scenes` venues, the first at time `start` seconds.
pub fn write_synthetic(out: &Path, settings: &SynthSettings, frames: u64, start: f32, format: ImageFormat) -> Result<(), DatasetError> {
    let write_err = |path: &Path, e: &dyn std::fmt::Display| DatasetError::Write { path: path.to_path_buf(), reason: e.to_string() };
    std::fs::create_dir_all(out).map_err(|e| write_err(out, &e))?;
    let (width, height) = (settings.width, settings.height);
    let mut scene: Option<(u64, Venue)> = None;
    let mut img = RgbImage::new(width, height);
    // One venue's frames are one recording: their times on the synthetic clock, for a replay's alarms.
    let times_path = out.join(crate::media::times::FILE_NAME);
    let mut times = if settings.scenes.max(1) == 1 {
        Some(TimesWriter::create(out).map_err(|e| write_err(&times_path, &e))?)
    } else {
        // Several venues are not one recording: an earlier run's clock must not be taken for theirs.
        match std::fs::remove_file(&times_path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(write_err(&times_path, &e)),
            _ => None,
        }
    };
    for i in 0..frames {
        let (scene_seed, t) = frame_plan(settings, frames, i);
        if scene.as_ref().is_none_or(|(s, _)| *s != scene_seed) {
            let mut venue = Venue::new(settings.camera, scene_seed, width, height, settings.swimmers);
            if let (Some((from, len)), Venue::Overhead(s)) = (settings.stop, &venue) {
                venue = Venue::Overhead(s.clone().with_stop(from, len).0);
            }
            scene = Some((scene_seed, venue));
        }
        let Some((_, sc)) = &scene else { unreachable!("set just above") };
        let noise_seed = settings.seed.wrapping_mul(31).wrapping_add(i).wrapping_add((start * 1000.0) as u64);
        let truth = sc.render_into(start + t, noise_seed, &mut img);
        let name = format!("{i:06}.{}", format.extension());
        let path = out.join(&name);
        img.save(&path).map_err(|e| write_err(&path, &e))?;
        let ann = OwnAnnotation {
            image: name.clone(),
            width,
            height,
            boxes: truth
                .iter()
                .map(|t| OwnBox {
                    x1: t.bbox.x1,
                    y1: t.bbox.y1,
                    x2: t.bbox.x2,
                    y2: t.bbox.y2,
                    label: "swimmer".into(),
                    lane: Some(t.lane),
                    distance_m: Some(t.distance_m),
                })
                .collect(),
            pool: sc.pool_corners().map(|c| c.to_vec()),
        };
        write_own(&out.join(format!("{i:06}.json")), &ann)?;
        if let Some(w) = &mut times {
            w.add(&name, f64::from(start) + f64::from(t)).map_err(|e| write_err(&times_path, &e))?;
        }
    }
    // One venue's frames: its lanes too, as a config section (`eval --config`, or `[lanes]` to copy).
    if let (1, Some((_, venue))) = (settings.scenes, &scene)
        && let Some(lanes) = venue.lane_settings()
    {
        #[derive(serde::Serialize)]
        struct Section<'a> {
            lanes: &'a crate::pipeline::lanes::LaneSettings,
        }
        let path = out.join("lanes.toml");
        let text = toml::to_string(&Section { lanes: &lanes }).map_err(|e| write_err(&path, &e))?;
        std::fs::write(&path, format!("# The synthetic venue's lanes (seed {}), for `poolwatch eval --config`.\n{text}", settings.seed)).map_err(|e| write_err(&path, &e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_come_with_their_annotations() {
        let d = tempfile::tempdir().unwrap();
        let settings = SynthSettings { width: 64, height: 48, swimmers: (1, 1), seed: 3, scenes: 2, interval: 0.5, ..Default::default() };
        write_synthetic(d.path(), &settings, 4, 0.0, ImageFormat::Png).unwrap();
        for i in 0..4 {
            let img = d.path().join(format!("{i:06}.png"));
            let truth = crate::media::annotations::read(&d.path().join(format!("{i:06}.json")), 64, 48).unwrap();
            assert_eq!(image::open(&img).unwrap().width(), 64);
            assert!(truth.len() <= 1);
        }
        // Two venues: no one set of lanes, nor one clock (an earlier run's is taken away).
        assert!(!d.path().join("lanes.toml").exists());
        assert!(!d.path().join(crate::media::times::FILE_NAME).exists());
        std::fs::write(d.path().join(crate::media::times::FILE_NAME), "000000.png,5\n").unwrap();
        write_synthetic(d.path(), &settings, 4, 0.0, ImageFormat::Png).unwrap();
        assert!(!d.path().join(crate::media::times::FILE_NAME).exists());
        let one = tempfile::tempdir().unwrap();
        write_synthetic(one.path(), &SynthSettings { scenes: 1, ..settings }, 3, 10.0, ImageFormat::Png).unwrap();
        // Its frames' times on the synthetic clock, `interval` apart from `start`.
        let t = crate::media::times::read(one.path()).unwrap().unwrap();
        assert_eq!((t["000000.png"], t["000001.png"], t["000002.png"]), (10.0, 10.5, 11.0));
        let cfg = crate::device::config::Config::load(&one.path().join("lanes.toml")).unwrap();
        assert_eq!(cfg.lanes, Some(crate::synth::Scene::new(3, 64, 48, (1, 1)).lane_settings()));
    }
}
