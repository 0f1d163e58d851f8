//! Training data: empty-pool frames from directories (split into training and held-out frames), frames
//! with swimmers whose annotated boxes are inpainted out, and each frame's pool mask.

use crate::media::annotations;
use crate::train::inpaint::inpaint_boxes;
use crate::pipeline::pool::MaskSpec;
use crate::media::images::{image_paths, load_rgb};
use image::{GrayImage, RgbImage};
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
}

/// What to load.
#[derive(Clone, Debug)]
pub struct DatasetSpec {
    pub normal: Vec<PathBuf>,
    pub inpaint: Vec<PathBuf>,
    pub mask: MaskSpec,
    /// Fraction of each normal directory (its last frames, as frames are consecutive) held out.
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
    Ok(Sample { image: img, mask, origin: path.to_path_buf(), inpainted })
}

impl Dataset {
    pub fn load(spec: &DatasetSpec) -> Result<Dataset, DatasetError> {
        let mut ds = Dataset::default();
        if spec.normal.is_empty() {
            return Err(DatasetError::Dir { dir: PathBuf::from("--normal"), reason: "at least one directory of empty-pool frames is needed".into() });
        }
        for dir in &spec.normal {
            let paths = load_dir(dir)?;
            let mut loaded = Vec::new();
            for p in &paths {
                match load_rgb(p) {
                    Ok(img) => loaded.push((p, img)),
                    Err(e) => log::warn!("skipping {e}"),
                }
            }
            if loaded.is_empty() {
                return Err(DatasetError::Dir { dir: dir.clone(), reason: "none of its images could be read".into() });
            }
            let n_val = if loaded.len() >= 2 { ((loaded.len() as f32 * spec.val_fraction).round() as usize).clamp(1, loaded.len() - 1) } else { 0 };
            let val = loaded.split_off(loaded.len() - n_val);
            for (p, img) in loaded {
                ds.train.push(sample(p, fit(img, spec.max_size), spec, false)?);
            }
            for (p, img) in val {
                ds.val.push(sample(p, img, spec, false)?);
            }
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
        DatasetSpec { normal, inpaint, mask: MaskSpec::None, val_fraction: 0.25, max_size: (64, 48) }
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
