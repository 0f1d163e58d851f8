//! The pool mask: which pixels belong to the pool. Pixels outside never raise an alarm. The mask comes
//! from a polygon, a mask image, or automatic detection (blue water colour, with lane lines and ropes
//! closed over and the pool's outline made convex, as the seed's script did).

use crate::util::setting::SettingError;
use crate::pipeline::geometry::point_in_polygon;
use image::{GrayImage, Luma, RgbImage};
use imageproc::distance_transform::Norm;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where the pool mask comes from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MaskSpec {
    /// The whole frame is pool (an underwater camera, or a camera aimed only at water).
    #[default]
    None,
    /// Detected from the first frame's colours.
    Auto,
    /// A polygon in source-image pixel coordinates.
    Polygon(Vec<[f64; 2]>),
    /// A mask image: non-zero pixels are pool. Scaled to the frame when sizes differ.
    Image(PathBuf),
}

/// The pool section of the config: where the mask comes from and how much of its edge to ignore.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PoolSettings {
    /// `"none"` (whole frame), `"auto"`, `{ polygon = [[x,y], ...] }` (source pixels) or
    /// `{ image = "mask.png" }`.
    pub mask: MaskSpec,
    /// Model pixels shaved off the mask's edge: the pool's border reconstructs worst and a mask that
    /// shifts a little between frames must not raise alarms there.
    pub erode: u8,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings { mask: MaskSpec::None, erode: 2 }
    }
}

impl PoolSettings {
    /// The mask is one that can be built (keys as the `[pool]` section names them).
    pub fn validate(&self) -> Result<(), SettingError> {
        if let MaskSpec::Polygon(p) = &self.mask
            && p.len() < 3
        {
            return Err(SettingError::new("mask.polygon", format!("needs at least 3 points, got {}", p.len())));
        }
        Ok(())
    }

    /// The mask for this frame at model resolution `w` x `h`, as {0,1} weights.
    pub fn model_mask(&self, frame: &RgbImage, w: u32, h: u32) -> Result<Vec<f32>, MaskError> {
        Ok(resample_mask(&self.mask.build(frame)?, w, h, self.edge()))
    }

    /// The erosion in force: none for the whole-frame mask, whose edge is the frame's.
    pub fn edge(&self) -> u8 {
        if self.mask == MaskSpec::None { 0 } else { self.erode }
    }
}

/// A source-resolution mask at `w` x `h` as {0,1} weights (a cell is pool when most of it is), its
/// edge eroded by `erode` pixels.
pub fn resample_mask(mask: &GrayImage, w: u32, h: u32, erode: u8) -> Vec<f32> {
    let mut small = image::imageops::resize(mask, w, h, image::imageops::FilterType::Triangle);
    for p in small.pixels_mut() {
        p[0] = if p[0] >= 128 { 255 } else { 0 };
    }
    if erode > 0 {
        small = imageproc::morphology::erode(&small, Norm::LInf, erode);
    }
    small.pixels().map(|p| if p[0] > 0 { 1.0 } else { 0.0 }).collect()
}

#[derive(Debug, thiserror::Error)]
pub enum MaskError {
    #[error("pool mask image {path}: {reason}")]
    Image { path: PathBuf, reason: String },
    #[error("pool mask polygon needs at least 3 points, got {0}")]
    Polygon(usize),
    #[error("automatic pool detection found no water-coloured region; give a polygon or a mask image")]
    NotFound,
}

impl MaskSpec {
    /// The mask at the source frame's resolution, for this frame.
    pub fn build(&self, frame: &RgbImage) -> Result<GrayImage, MaskError> {
        let (w, h) = frame.dimensions();
        match self {
            MaskSpec::None => Ok(GrayImage::from_pixel(w, h, Luma([255]))),
            MaskSpec::Auto => detect(frame),
            MaskSpec::Polygon(pts) => {
                if pts.len() < 3 {
                    return Err(MaskError::Polygon(pts.len()));
                }
                Ok(polygon_mask(w, h, pts))
            }
            MaskSpec::Image(path) => load_mask(path, w, h),
        }
    }
}

/// Fills a polygon (pixel centres inside are pool).
pub fn polygon_mask(w: u32, h: u32, pts: &[[f64; 2]]) -> GrayImage {
    GrayImage::from_fn(w, h, |x, y| {
        Luma([if point_in_polygon(x as f64 + 0.5, y as f64 + 0.5, pts) { 255 } else { 0 }])
    })
}

/// Loads a mask image and scales it to `w` x `h`.
pub fn load_mask(path: &Path, w: u32, h: u32) -> Result<GrayImage, MaskError> {
    let img = image::open(path)
        .map_err(|e| MaskError::Image { path: path.to_path_buf(), reason: e.to_string() })?
        .to_luma8();
    let img = if img.dimensions() != (w, h) {
        image::imageops::resize(&img, w, h, image::imageops::FilterType::Nearest)
    } else {
        img
    };
    let img = GrayImage::from_fn(w, h, |x, y| Luma([if img.get_pixel(x, y)[0] > 127 { 255 } else { 0 }]));
    if img.pixels().all(|p| p[0] == 0) {
        return Err(MaskError::Image { path: path.to_path_buf(), reason: "it marks no pixel as pool".into() });
    }
    Ok(img)
}

/// Whether a colour looks like pool water: a blue to cyan hue, some saturation, not too dark.
fn is_water(r: u8, g: u8, b: u8) -> bool {
    let (r, g, b) = (r as f32, g as f32, b as f32);
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    if max < 40.0 || max - min < 0.15 * max {
        return false;
    }
    let hue = if max == r {
        60.0 * (((g - b) / (max - min)).rem_euclid(6.0))
    } else if max == g {
        60.0 * ((b - r) / (max - min) + 2.0)
    } else {
        60.0 * ((r - g) / (max - min) + 4.0)
    };
    (160.0..=250.0).contains(&hue)
}

/// Automatic pool detection: water colour, closed over lane ropes and lines, the largest region, its
/// convex outline filled.
pub fn detect(frame: &RgbImage) -> Result<GrayImage, MaskError> {
    let (w, h) = frame.dimensions();
    // imageproc's labelling asserts on images this small (a 1x1 frame panicked it); no pool is
    // found in them anyway.
    if w < 3 || h < 3 {
        return Err(MaskError::NotFound);
    }
    let water = GrayImage::from_fn(w, h, |x, y| {
        let p = frame.get_pixel(x, y);
        Luma([if is_water(p[0], p[1], p[2]) { 255 } else { 0 }])
    });
    let radius = ((w.min(h) as f32) * 0.02).round().max(1.0) as u8;
    let closed = imageproc::morphology::close(&water, Norm::LInf, radius);
    let opened = imageproc::morphology::open(&closed, Norm::LInf, radius);
    let labels = imageproc::region_labelling::connected_components(
        &opened,
        imageproc::region_labelling::Connectivity::Eight,
        Luma([0u8]),
    );
    let mut counts = std::collections::HashMap::<u32, usize>::new();
    for p in labels.pixels() {
        if p[0] != 0 {
            *counts.entry(p[0]).or_default() += 1;
        }
    }
    let (&best, &count) = counts.iter().max_by_key(|&(label, n)| (*n, std::cmp::Reverse(*label))).ok_or(MaskError::NotFound)?;
    if count < (w * h / 50) as usize {
        return Err(MaskError::NotFound);
    }
    // Row extremes of the region, then their convex hull.
    let mut pts = Vec::new();
    for y in 0..h {
        let row: Vec<u32> = (0..w).filter(|&x| labels.get_pixel(x, y)[0] == best).collect();
        if let (Some(&a), Some(&b)) = (row.first(), row.last()) {
            pts.push([a as f64, y as f64]);
            pts.push([b as f64 + 1.0, y as f64]);
            pts.push([a as f64, y as f64 + 1.0]);
            pts.push([b as f64 + 1.0, y as f64 + 1.0]);
        }
    }
    Ok(polygon_mask(w, h, &convex_hull(pts)))
}

/// Andrew's monotone chain.
fn convex_hull(mut pts: Vec<[f64; 2]>) -> Vec<[f64; 2]> {
    pts.sort_by(|a, b| a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1])));
    pts.dedup();
    if pts.len() < 3 {
        return pts;
    }
    let cross = |o: [f64; 2], a: [f64; 2], b: [f64; 2]| (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
    let mut hull: Vec<[f64; 2]> = Vec::with_capacity(pts.len() * 2);
    for pass in 0..2 {
        let start = hull.len();
        let iter: Box<dyn Iterator<Item = &[f64; 2]>> =
            if pass == 0 { Box::new(pts.iter()) } else { Box::new(pts.iter().rev()) };
        for &p in iter {
            while hull.len() >= start + 2 && cross(hull[hull.len() - 2], hull[hull.len() - 1], p) <= 0.0 {
                hull.pop();
            }
            hull.push(p);
        }
        hull.pop();
    }
    hull
}

/// The frame with the non-pool area darkened and tinted, to show what a mask covers.
pub fn preview(frame: &RgbImage, mask: &GrayImage) -> RgbImage {
    RgbImage::from_fn(frame.width(), frame.height(), |x, y| {
        let p = frame.get_pixel(x, y);
        if mask.get_pixel(x, y)[0] > 0 {
            *p
        } else {
            image::Rgb([(p[0] as u16 / 3 + 80) as u8, p[1] / 3, p[2] / 3])
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polygon_mask_fills_inside_only() {
        let m = polygon_mask(10, 10, &[[2.0, 2.0], [8.0, 2.0], [8.0, 8.0], [2.0, 8.0]]);
        assert_eq!(m.get_pixel(5, 5)[0], 255);
        assert_eq!(m.get_pixel(1, 5)[0], 0);
        assert_eq!(m.pixels().filter(|p| p[0] > 0).count(), 36);
    }

    #[test]
    fn auto_detection_finds_a_blue_pool_with_lanes() {
        // Grey deck with a blue quadrilateral pool crossed by white lane lines.
        let img = RgbImage::from_fn(200, 150, |x, y| {
            let inside = (30..170).contains(&x) && (40..120).contains(&y);
            if inside && y % 20 == 0 {
                image::Rgb([240, 240, 240])
            } else if inside {
                image::Rgb([30, 120, 200])
            } else {
                image::Rgb([150, 140, 130])
            }
        });
        let m = detect(&img).unwrap();
        assert_eq!(m.get_pixel(100, 80)[0], 255);
        assert_eq!(m.get_pixel(100, 100)[0], 255, "lane line inside the pool is pool");
        assert_eq!(m.get_pixel(10, 10)[0], 0);
        assert_eq!(m.get_pixel(100, 135)[0], 0);
        let area = m.pixels().filter(|p| p[0] > 0).count() as f64;
        assert!((area - 140.0 * 80.0).abs() / (140.0 * 80.0) < 0.05, "area {area}");
    }

    #[test]
    fn auto_detection_fails_clearly_without_water() {
        let img = RgbImage::from_pixel(50, 50, image::Rgb([120, 100, 90]));
        assert!(matches!(detect(&img), Err(MaskError::NotFound)));
        for (w, h) in [(1, 1), (2, 40), (40, 1), (3, 3)] {
            let water = RgbImage::from_pixel(w, h, image::Rgb([30, 120, 200]));
            assert!(detect(&water).is_err() || w >= 3 && h >= 3, "{w}x{h}");
        }
    }

    #[test]
    fn mask_image_is_scaled_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.png");
        GrayImage::from_fn(20, 10, |x, _| Luma([if x < 10 { 255 } else { 0 }])).save(&p).unwrap();
        let m = load_mask(&p, 40, 20).unwrap();
        assert_eq!(m.get_pixel(5, 5)[0], 255);
        assert_eq!(m.get_pixel(35, 5)[0], 0);
        let empty = dir.path().join("e.png");
        GrayImage::new(4, 4).save(&empty).unwrap();
        assert!(load_mask(&empty, 4, 4).unwrap_err().to_string().contains("no pixel"));
        let frame = RgbImage::new(40, 20);
        let s = PoolSettings { mask: MaskSpec::Image(p.clone()), erode: 0 };
        assert_eq!(s.model_mask(&frame, 4, 2).unwrap(), vec![1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
        // Erosion shaves the edge of a real mask, never the whole frame of "none".
        let s = PoolSettings { mask: MaskSpec::Image(p), erode: 1 };
        assert_eq!(s.model_mask(&frame, 8, 4).unwrap().iter().filter(|v| **v > 0.0).count(), 12, "the inner edge column goes");
        let none = PoolSettings { mask: MaskSpec::None, erode: 3 };
        assert!(none.model_mask(&frame, 8, 4).unwrap().iter().all(|v| *v == 1.0));
    }
}
