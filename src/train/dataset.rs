//! Training data: empty-pool frames from directories (split into training and held-out frames), frames
//! with swimmers whose annotated boxes are inpainted out, footage with swimmers and no annotations (what
//! moves filled with the recording's background and left out of the mask), and each frame's pool mask.

use crate::media::annotations;
use crate::train::footage::{self, FootageSettings};
use crate::train::inpaint::inpaint_boxes;
use crate::pipeline::pool::MaskSpec;
use crate::media::images::{image_paths, load_rgb};
use image::{GrayImage, RgbImage};
use crate::pipeline::boxes::BBox;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("{dir}: {reason}")]
    Dir { dir: PathBuf, reason: String },
    #[error("{path}: pool mask: {reason}")]
    Mask { path: PathBuf, reason: String },
}

/// One training frame with its pool mask, both at the working resolution.
#[derive(Clone, Debug)]
pub struct Sample {
    pub image: RgbImage,
    pub mask: GrayImage,
    pub origin: PathBuf,
    /// True when swimmers were inpainted out of it.
    pub inpainted: bool,
    /// The fraction of the frame left out as moving (footage only; its mask is 0 there).
    pub excluded: f32,
}

/// What `--footage` left out of one directory, for the training report.
#[derive(Clone, Debug)]
pub struct FootageDir {
    pub dir: PathBuf,
    /// Per frame (training and held-out), its path and the fraction left out.
    pub frames: Vec<(PathBuf, f32)>,
    pub median_fraction: f32,
    /// The frames' size (all of a directory's frames have one).
    pub size: (u32, u32),
    /// How many of its frames had boxes an earlier round's model found left out too.
    pub found_frames: usize,
    /// The width its motion was measured at ([`footage::Analysis::width`]).
    pub analysis_width: u32,
    /// A few frames with what was left out tinted, at the working size.
    pub previews: Vec<(PathBuf, RgbImage)>,
}

/// What to load.
#[derive(Clone, Debug)]
pub struct DatasetSpec {
    pub normal: Vec<PathBuf>,
    pub inpaint: Vec<PathBuf>,
    /// Recordings with swimmers and no annotations, split like the normal directories.
    pub footage: Vec<PathBuf>,
    pub footage_settings: FootageSettings,
    /// Per footage frame (by path), boxes in its own pixels that an earlier round's model found
    /// (the self-training round, `selftrain.rs`): left out too, like what moves.
    pub footage_found: HashMap<PathBuf, Vec<BBox>>,
    pub mask: MaskSpec,
    /// Fraction of each normal and footage directory (its last frames, as frames are consecutive) held out.
    pub val_fraction: f32,
    /// Training frames larger than this are downscaled on load (keeps memory and augmentation cheap).
    /// Held-out frames keep their size: they calibrate the model, so they must reach it exactly as
    /// the camera's frames will.
    pub max_size: (u32, u32),
}

/// Training and held-out frames.
#[derive(Clone, Debug, Default)]
pub struct Dataset {
    pub train: Vec<Sample>,
    pub val: Vec<Sample>,
    pub footage: Vec<FootageDir>,
}

fn fit(img: RgbImage, max: (u32, u32)) -> RgbImage {
    let (w, h) = img.dimensions();
    if w <= max.0 && h <= max.1 {
        return img;
    }
    let s = (max.0 as f32 / w as f32).min(max.1 as f32 / h as f32);
    let (nw, nh) = (((w as f32 * s).round() as u32).max(1), ((h as f32 * s).round() as u32).max(1));
    image::imageops::resize(&img, nw, nh, image::imageops::FilterType::Triangle)
}

fn load_dir(dir: &Path) -> Result<Vec<PathBuf>, DatasetError> {
    if !dir.is_dir() {
        return Err(DatasetError::Dir { dir: dir.to_path_buf(), reason: "not a directory".into() });
    }
    let paths = image_paths(&[dir.to_path_buf()]).map_err(|e| DatasetError::Dir { dir: dir.to_path_buf(), reason: e.to_string() })?;
    if paths.is_empty() {
        return Err(DatasetError::Dir { dir: dir.to_path_buf(), reason: "no images (jpg, png, bmp, ppm) in it".into() });
    }
    Ok(paths)
}

fn sample(path: &Path, img: RgbImage, spec: &DatasetSpec, inpainted: bool) -> Result<Sample, DatasetError> {
    let mask = spec.mask.build(&img).map_err(|e| DatasetError::Mask { path: path.to_path_buf(), reason: e.to_string() })?;
    Ok(Sample { image: img, mask, origin: path.to_path_buf(), inpainted, excluded: 0.0 })
}

/// The frames of `dir` that can be read, in order (unreadable ones skipped with a warning).
fn read_dir_images(dir: &Path) -> Result<Vec<(PathBuf, RgbImage)>, DatasetError> {
    let mut loaded = Vec::new();
    for p in load_dir(dir)? {
        match load_rgb(&p) {
            Ok(img) => loaded.push((p, img)),
            Err(e) => log::warn!("skipping {e}"),
        }
    }
    if loaded.is_empty() {
        return Err(DatasetError::Dir { dir: dir.to_path_buf(), reason: "none of its images could be read".into() });
    }
    Ok(loaded)
}

fn held_out(n: usize, fraction: f32) -> usize {
    if n >= 2 { ((n as f32 * fraction).round() as usize).clamp(1, n - 1) } else { 0 }
}

/// The sample of a footage frame: what moves filled with the background and cut out of its mask.
fn footage_sample(path: &Path, img: &RgbImage, background: &RgbImage, keep: &GrayImage, fraction: f32, spec: &DatasetSpec) -> Result<Sample, DatasetError> {
    let mut s = sample(path, footage::fill(img, background, keep), spec, false)?;
    for (m, k) in s.mask.pixels_mut().zip(keep.pixels()) {
        m[0] = m[0].min(k[0]);
    }
    s.excluded = fraction;
    Ok(s)
}

/// Footage directory `dir`: analysed at the training size, its last frames held out at full size.
fn load_footage(dir: &Path, spec: &DatasetSpec, ds: &mut Dataset) -> Result<(), DatasetError> {
    let loaded = read_dir_images(dir)?;
    let work: Vec<RgbImage> = loaded.iter().map(|(_, img)| fit(img.clone(), spec.max_size)).collect();
    let a = footage::analyse(&work, &spec.footage_settings).map_err(|e| DatasetError::Dir { dir: dir.to_path_buf(), reason: e.to_string() })?;
    if a.median_fraction > spec.footage_settings.warn_excluded {
        log::warn!(
            "{}: half of the frames have more than {:.0}% of the picture left out as moving: the model learns the pool from what remains, which may be too little",
            dir.display(),
            a.median_fraction * 100.0
        );
    }
    let n_val = held_out(loaded.len(), spec.val_fraction);
    let n_train = loaded.len() - n_val;
    let work_size = work[0].dimensions();
    // What an earlier round's model found, and with what moved, in the working size's pixels.
    let found: Vec<Vec<BBox>> =
        loaded.iter().map(|(p, img)| spec.footage_found.get(p).map(|f| footage::scale_boxes(f, img.dimensions(), work_size)).unwrap_or_default()).collect();
    let found_frames = found.iter().filter(|f| !f.is_empty()).count();
    let boxes: Vec<Vec<BBox>> = a.exclusions.iter().zip(&found).map(|(ex, f)| ex.boxes.iter().chain(f).copied().collect()).collect();
    let fractions: Vec<f32> = boxes.iter().map(|b| footage::left_out(work_size.0, work_size.1, b)).collect();
    let mut full_bg: Option<RgbImage> = None;
    for (i, ((p, img), small)) in loaded.iter().zip(&work).enumerate() {
        if i < n_train {
            let keep = footage::keep_mask(work_size.0, work_size.1, &boxes[i]);
            ds.train.push(footage_sample(p, small, &a.background, &keep, fractions[i], spec)?);
        } else {
            let size = img.dimensions();
            let bg = full_bg.get_or_insert_with(|| image::imageops::resize(&a.background, size.0, size.1, image::imageops::FilterType::Triangle));
            if bg.dimensions() != size {
                return Err(DatasetError::Dir { dir: dir.to_path_buf(), reason: format!("{}: frames of different sizes", p.display()) });
            }
            let keep = footage::keep_mask(size.0, size.1, &footage::scale_boxes(&boxes[i], work_size, size));
            ds.val.push(footage_sample(p, img, bg, &keep, fractions[i], spec)?);
        }
    }
    let step = (loaded.len() / 6).max(1);
    let previews = (0..loaded.len())
        .step_by(step)
        .take(6)
        .map(|i| (loaded[i].0.clone(), footage::preview(&work[i], &a.exclusions[i].boxes, &found[i])))
        .collect();
    let mut sorted = fractions.clone();
    let median_fraction = crate::util::stats::median_f32(&mut sorted).unwrap_or(0.0);
    if found_frames > 0 && median_fraction > spec.footage_settings.warn_excluded && a.median_fraction <= spec.footage_settings.warn_excluded {
        log::warn!(
            "{}: with what the first model found, half of the frames have more than {:.0}% of the picture left out: the model learns the pool from what remains, which may be too little",
            dir.display(),
            median_fraction * 100.0
        );
    }
    ds.footage.push(FootageDir {
        dir: dir.to_path_buf(),
        frames: loaded.iter().zip(&fractions).map(|((p, _), f)| (p.clone(), *f)).collect(),
        median_fraction,
        size: loaded[0].1.dimensions(),
        found_frames,
        analysis_width: a.width,
        previews,
    });
    log::info!(
        "{}: {} frames, {} held out; the median frame has {:.1}% left out (largest {:.1}%){}",
        dir.display(),
        loaded.len(),
        n_val,
        median_fraction * 100.0,
        fractions.iter().copied().fold(0.0, f32::max) * 100.0,
        if spec.footage_found.is_empty() { String::new() } else { format!(", {found_frames} frames with what the first model found") }
    );
    Ok(())
}

impl Dataset {
    pub fn load(spec: &DatasetSpec) -> Result<Dataset, DatasetError> {
        let mut ds = Dataset::default();
        if spec.normal.is_empty() && spec.footage.is_empty() {
            return Err(DatasetError::Dir {
                dir: PathBuf::from("--normal"),
                reason: "at least one directory of empty-pool frames (--normal) or of recorded sessions (--footage) is needed".into(),
            });
        }
        for dir in &spec.normal {
            let mut loaded = read_dir_images(dir)?;
            let n_val = held_out(loaded.len(), spec.val_fraction);
            let val = loaded.split_off(loaded.len() - n_val);
            for (p, img) in loaded {
                ds.train.push(sample(&p, fit(img, spec.max_size), spec, false)?);
            }
            for (p, img) in val {
                ds.val.push(sample(&p, img, spec, false)?);
            }
        }
        for dir in &spec.footage {
            load_footage(dir, spec, &mut ds)?;
        }
        for dir in &spec.inpaint {
            let paths = load_dir(dir)?;
            let before = ds.train.len();
            for p in &paths {
                let img = match load_rgb(p) {
                    Ok(img) => img,
                    Err(e) => {
                        log::warn!("skipping {e}");
                        continue;
                    }
                };
                let Some(ann) = annotations::find_for(p) else {
                    log::warn!("skipping {}: no annotation beside it", p.display());
                    continue;
                };
                let boxes = match annotations::read(&ann, img.width(), img.height()) {
                    Ok(b) => b,
                    Err(e) => {
                        log::warn!("skipping {}: {e}", p.display());
                        continue;
                    }
                };
                let filled = inpaint_boxes(&img, &boxes, 0.15);
                ds.train.push(sample(p, fit(filled, spec.max_size), spec, true)?);
            }
            if ds.train.len() == before {
                return Err(DatasetError::Dir { dir: dir.clone(), reason: "no annotated image could be inpainted".into() });
            }
        }
        Ok(ds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(normal: Vec<PathBuf>, inpaint: Vec<PathBuf>) -> DatasetSpec {
        DatasetSpec { normal, inpaint, footage: vec![], footage_settings: FootageSettings::default(), footage_found: HashMap::new(), mask: MaskSpec::None, val_fraction: 0.25, max_size: (64, 48) }
    }

    #[test]
    fn splits_the_tail_of_each_directory_and_downscales() {
        let d = tempfile::tempdir().unwrap();
        for i in 0..8 {
            RgbImage::from_pixel(128, 96, image::Rgb([i * 10, 0, 0])).save(d.path().join(format!("{i}.png"))).unwrap();
        }
        std::fs::write(d.path().join("9.png"), b"broken").unwrap();
        let ds = Dataset::load(&spec(vec![d.path().into()], vec![])).unwrap();
        assert_eq!((ds.train.len(), ds.val.len()), (6, 2));
        assert_eq!(ds.val[0].image.get_pixel(0, 0)[0], 60, "held-out frames are the last ones");
        assert_eq!(ds.train[0].image.dimensions(), (64, 48));
        assert_eq!(ds.train[0].mask.dimensions(), (64, 48));
        assert_eq!(ds.val[0].image.dimensions(), (128, 96), "held-out frames keep the camera's size");
    }

    #[test]
    fn inpainted_frames_join_training_only() {
        let d = tempfile::tempdir().unwrap();
        let (n, s) = (d.path().join("n"), d.path().join("s"));
        std::fs::create_dir_all(&n).unwrap();
        std::fs::create_dir_all(&s).unwrap();
        for i in 0..4 {
            RgbImage::from_pixel(64, 48, image::Rgb([0, 0, 200])).save(n.join(format!("{i}.png"))).unwrap();
        }
        let mut img = RgbImage::from_pixel(64, 48, image::Rgb([0, 0, 200]));
        for y in 10..20 {
            for x in 10..20 {
                img.put_pixel(x, y, image::Rgb([255, 200, 150]));
            }
        }
        img.save(s.join("a.png")).unwrap();
        std::fs::write(s.join("a.json"), r#"{"boxes":[{"x1":10,"y1":10,"x2":20,"y2":20}]}"#).unwrap();
        let ds = Dataset::load(&spec(vec![n.clone()], vec![s.clone()])).unwrap();
        assert_eq!((ds.train.len(), ds.val.len()), (4, 1));
        let inp = ds.train.iter().find(|s| s.inpainted).unwrap();
        assert_eq!(inp.image.get_pixel(15, 15).0, [0, 0, 200], "the swimmer is gone");
    }

    #[test]
    fn boxes_an_earlier_model_found_are_left_out_of_footage_too() {
        // Calm water (steady noise) for 40 frames; a still 8x8 patch the motion analysis cannot see
        // (it never moves), which a first round's model "found" in frames 5 and 35 (held out).
        let d = tempfile::tempdir().unwrap();
        let mut rng = crate::util::rng::Rng::new(9);
        for i in 0..40 {
            let mut img = RgbImage::from_fn(128, 96, |_, _| image::Rgb([30, (140.0 + rng.f32() * 6.0) as u8, 200]));
            for y in 40..48 {
                for x in 60..68 {
                    img.put_pixel(x, y, image::Rgb([200, 120, 90]));
                }
            }
            img.save(d.path().join(format!("{i:02}.png"))).unwrap();
        }
        let mut sp = spec(vec![], vec![]);
        sp.footage = vec![d.path().into()];
        let plain = Dataset::load(&sp).unwrap();
        assert_eq!(plain.footage[0].found_frames, 0);
        let at = |ds: &Dataset, name: &str| {
            let s = ds.train.iter().chain(&ds.val).find(|s| s.origin.ends_with(name)).unwrap().clone();
            (s.mask.get_pixel(s.mask.width() * 64 / 128, s.mask.height() * 44 / 96)[0], s.excluded)
        };
        assert_eq!(at(&plain, "05.png"), (255, 0.0), "a still patch is not motion");
        let found = vec![BBox::new(58.0, 38.0, 70.0, 50.0)];
        sp.footage_found = HashMap::from([(d.path().join("05.png"), found.clone()), (d.path().join("35.png"), found)]);
        let ds = Dataset::load(&sp).unwrap();
        assert_eq!(ds.footage[0].found_frames, 2);
        for name in ["05.png", "35.png"] {
            let (m, excluded) = at(&ds, name);
            assert_eq!(m, 0, "{name}: left out of the mask");
            assert!((excluded - 144.0 / (128.0 * 96.0)).abs() < 0.004, "{name}: {excluded}");
        }
        assert_eq!(at(&ds, "06.png"), (255, 0.0), "other frames as they were");
        let train = ds.train.iter().find(|s| s.origin.ends_with("05.png")).unwrap();
        assert_eq!(train.image.dimensions(), (64, 48), "at the working size");
    }

    #[test]
    fn empty_or_missing_directories_are_clear_errors() {
        let d = tempfile::tempdir().unwrap();
        let e = Dataset::load(&spec(vec![d.path().into()], vec![])).unwrap_err().to_string();
        assert!(e.contains("no images"), "{e}");
        let e = Dataset::load(&spec(vec![d.path().join("nope")], vec![])).unwrap_err().to_string();
        assert!(e.contains("not a directory"), "{e}");
        std::fs::write(d.path().join("x.jpg"), b"junk").unwrap();
        let e = Dataset::load(&spec(vec![d.path().into()], vec![])).unwrap_err().to_string();
        assert!(e.contains("none of its images"), "{e}");
    }
}
