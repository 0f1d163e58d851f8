//! Boxes: the heatmap thresholded, cleaned by morphology, split into connected components, fragments of
//! one swimmer merged, each box scored and scaled to the source image's pixel coordinates.

use crate::util::setting::{SettingError, in_range};
use crate::pipeline::heatmap::Heatmap;
use crate::pipeline::lanes::LaneMap;
use crate::pipeline::morph::{Component, Morphology};
use serde::{Deserialize, Serialize};

/// An axis-aligned box in source-image pixels, `x2`/`y2` exclusive, with a score in [0,1).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BBox {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
    pub score: f32,
}

impl BBox {
    pub fn new(x1: f32, y1: f32, x2: f32, y2: f32) -> BBox {
        BBox { x1, y1, x2, y2, score: 1.0 }
    }

    pub fn width(&self) -> f32 {
        (self.x2 - self.x1).max(0.0)
    }

    pub fn height(&self) -> f32 {
        (self.y2 - self.y1).max(0.0)
    }

    pub fn area(&self) -> f32 {
        self.width() * self.height()
    }

    pub fn center(&self) -> (f32, f32) {
        ((self.x1 + self.x2) / 2.0, (self.y1 + self.y2) / 2.0)
    }

    pub fn iou(&self, o: &BBox) -> f32 {
        let iw = (self.x2.min(o.x2) - self.x1.max(o.x1)).max(0.0);
        let ih = (self.y2.min(o.y2) - self.y1.max(o.y1)).max(0.0);
        let inter = iw * ih;
        let union = self.area() + o.area() - inter;
        if union <= 0.0 { 0.0 } else { inter / union }
    }

    /// Distance between the two boxes' edges (0 when they touch or overlap).
    pub fn gap(&self, o: &BBox) -> f32 {
        let dx = (self.x1.max(o.x1) - self.x2.min(o.x2)).max(0.0);
        let dy = (self.y1.max(o.y1) - self.y2.min(o.y2)).max(0.0);
        dx.max(dy)
    }

    pub fn union(&self, o: &BBox) -> BBox {
        BBox {
            x1: self.x1.min(o.x1),
            y1: self.y1.min(o.y1),
            x2: self.x2.max(o.x2),
            y2: self.y2.max(o.y2),
            score: self.score.max(o.score),
        }
    }
}

/// Where the box threshold comes from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Threshold {
    /// A fixed value on the heatmap's score.
    Fixed(f32),
    Named(ThresholdMode),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ThresholdMode {
    /// From the model's calibration on empty frames (falls back to adaptive without one).
    Calibrated,
    /// Per frame: mean + `adaptive_k` standard deviations of the pool's scores.
    Adaptive,
}

impl Default for Threshold {
    fn default() -> Self {
        Threshold::Named(ThresholdMode::Calibrated)
    }
}

/// The smallest box: a fraction of the frame's area, or `"auto"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MinArea {
    Fraction(f32),
    Named(MinAreaMode),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MinAreaMode {
    /// [`NOISE_AREA_FACTOR`] times the camera's noise grain measured by the calibration (the largest
    /// blob that waves and highlights make in empty frames), at least [`MIN_AREA_FALLBACK`]; the
    /// fallback alone for a model without that measurement.
    Auto,
}

impl Default for MinArea {
    fn default() -> Self {
        MinArea::Named(MinAreaMode::Auto)
    }
}

/// `min_area = "auto"`: boxes must be this much larger than the empty frames' typical largest noise blob.
/// Chosen on the ietr-pool footage and the synthetic pool (docs/accuracy.md): 1.0 lets T1's wave
/// highlights through, 1.5 starts to cut the synthetic overview camera's swimmers.
pub const NOISE_AREA_FACTOR: f32 = 1.35;

/// The smallest box without a noise measurement (and the floor of the automatic one): 0.04 % of the
/// frame, a 13x9-pixel blob in a 640x480 frame.
pub const MIN_AREA_FALLBACK: f32 = 0.0004;

/// The default [`BoxSettings::min_area_m2`]: off. 0.1 finds the far lanes' swimmers of a camera in the
/// stands (synthetic venue 2: recall 0.659 -> 0.976) but cost the demo venue a length on one of ten
/// timing seeds (docs/accuracy.md), so it is a venue's choice, not yet every venue's default.
pub const MIN_AREA_M2: f32 = 0.0;

/// Where lanes are known, boxes in one lane this close along it (metres) are one swimmer's pieces
/// (the default of [`BoxSettings::lane_gap_m`])...
pub const FRAGMENT_GAP_M: f32 = 1.5;

/// ... when together they are no longer than a swimmer (metres, arms stretched).
pub const SWIMMER_LENGTH_M: f64 = 2.5;

/// The fewest heatmap pixels a blob kept by [`BoxSettings::min_area_m2`] has, however far away.
pub const MIN_PERSPECTIVE_PX: f32 = 6.0;

/// The default [`BoxSettings::extent_cap`].
pub const EXTENT_CAP: f32 = 8.0;

/// Which of a blob's pixels above its extent cut (`peak_fraction`, `extent_cap`) make its box.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cores {
    /// All of them, however many pieces they are in.
    #[default]
    Joined,
    /// The pieces that reach `peak_fraction` of the peak, each down to the capped cut: the cap
    /// extends a body's pieces to its limbs but adds no piece of its own (a bubble cloud or a patch of
    /// surface that only the lower cut joins). The same as `"joined"` where the cap does not bind.
    Strong,
    /// The piece that holds the blob's peak, with the pieces within `part_gap` of it: a bubble cloud,
    /// a wake or a patch of stirred surface that the smoothing joined to the body's blob, but that the
    /// cut separates from it, is left out.
    Main,
}

/// The default [`BoxSettings::part_gap`].
pub const PART_GAP: f32 = 0.01;

/// How boxes are cut out of a heatmap.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BoxSettings {
    pub threshold: Threshold,
    /// Multiplies the calibrated threshold (above 1: fewer false alarms, below: more recall). The
    /// calibration sees a few dozen held-out empty frames, whose highest peak underestimates the tail of
    /// a live stream: with the heatmap's default brightness weight, 4 takes T1's false boxes from 0.44
    /// to 0.23-0.38 a frame against 3 (three training seeds) and keeps recall >= 0.95 on the synthetic
    /// pool (docs/accuracy.md).
    pub threshold_scale: f32,
    /// Standard deviations above the mean for the adaptive threshold.
    pub adaptive_k: f32,
    /// Opening radius in model pixels: removes specks.
    pub open_radius: u8,
    /// Closing radius in model pixels: joins nearby fragments.
    pub close_radius: u8,
    /// Smallest box, as a fraction of the frame's area, or "auto" (from the calibration's noise grain).
    pub min_area: MinArea,
    /// Where the pool's lanes are known: a blob smaller than `min_area` is still a box when it covers
    /// at least this many square metres of the pool's surface (0, the default: off; 0.1 for a camera
    /// whose far lanes' swimmers are smaller than the noise grain). The smallest box is a size in
    /// pixels, the camera's noise grain, the same all over the picture; a swimmer in the far lanes of a
    /// camera in the stands is smaller than that (about 25 x 7 pixels in an 8-lane, 50 m pool).
    /// Never fewer than [`MIN_PERSPECTIVE_PX`] heatmap pixels.
    pub min_area_m2: f32,
    /// Where lanes are known: boxes in one lane this many metres apart along it, or closer, are one
    /// swimmer's pieces and merge, as long as together they are at most a swimmer's length
    /// ([`SWIMMER_LENGTH_M`]); a dark suit over a dark floor line can leave the cap and the feet
    /// more than a metre apart.
    pub lane_gap_m: f32,
    /// Boxes closer than this fraction of the frame width are merged.
    pub merge_gap: f32,
    pub max_boxes: usize,
    /// A box spans the pixels of its blob scoring at least this fraction of the blob's peak (0: the
    /// whole blob). The heatmap's smoothing spreads every blob by a halo as wide as the blur; cutting
    /// at a fraction of the peak drops the halo (0.3: docs/accuracy.md).
    pub peak_fraction: f32,
    /// The cut of `peak_fraction` is at most this many times the box threshold (0: no cap). A swimmer
    /// close to the camera peaks at 30-60 times the threshold, and 30 % of that keeps only the body's
    /// brightest core (the torso, the foam above it) and leaves out its limbs; a far one peaks at 4-18
    /// times, where the fraction of the peak is what drops the smoothing's halo. 8 takes the close
    /// video V1 from F1 0.467 to 0.697 at IoU 0.5 over three training seeds and leaves the far ones
    /// and the synthetic pool as they were (docs/accuracy.md).
    pub extent_cap: f32,
    /// Which pieces above the extent cut make the blob's box. `"strong"` takes V1 to F1 0.721 at IoU
    /// 0.5 but costs synthetic underwater venue 1 0.047 there; `"main"` (with `[heatmap] white_weight
    /// = 0.2`) helped the close underwater cameras of the ietr-pool footage before the smoothing was
    /// capped, no longer beats the defaults there, and costs a synthetic underwater venue the far one
    /// of two swimmers seen one behind the other; so `"joined"` stays the default (docs/accuracy.md,
    /// session 18).
    pub cores: Cores,
    /// With `cores = "main"`: pieces closer than this fraction of the frame width are one piece (a
    /// limb the cut separates from the torso).
    pub part_gap: f32,
}

impl Default for BoxSettings {
    fn default() -> Self {
        BoxSettings {
            threshold: Threshold::default(),
            threshold_scale: 4.0,
            adaptive_k: 4.0,
            open_radius: 1,
            close_radius: 2,
            min_area: MinArea::default(),
            min_area_m2: MIN_AREA_M2,
            lane_gap_m: FRAGMENT_GAP_M,
            merge_gap: 0.01,
            max_boxes: 32,
            peak_fraction: 0.3,
            extent_cap: EXTENT_CAP,
            cores: Cores::default(),
            part_gap: PART_GAP,
        }
    }
}

impl BoxSettings {
    /// Every key in its range (keys as the `[boxes]` section names them).
    pub fn validate(&self) -> Result<(), SettingError> {
        if let Threshold::Fixed(t) = self.threshold
            && !(t.is_finite() && t > 0.0)
        {
            return Err(SettingError::new("threshold", format!("{t} must be a positive number, \"calibrated\" or \"adaptive\"")));
        }
        if !self.threshold_scale.is_finite() || self.threshold_scale <= 0.0 {
            return Err(SettingError::new("threshold_scale", format!("{} must be a positive number", self.threshold_scale)));
        }
        if let MinArea::Fraction(f) = self.min_area {
            in_range("min_area", f, 0.0..1.0).map_err(|e| SettingError::new(e.key, format!("{} (a fraction of the frame) or \"auto\"", e.message)))?;
        }
        in_range("min_area_m2", self.min_area_m2, 0.0..=100.0)?;
        in_range("lane_gap_m", self.lane_gap_m, 0.0..=SWIMMER_LENGTH_M as f32)?;
        in_range("merge_gap", self.merge_gap, 0.0..1.0)?;
        if self.max_boxes == 0 {
            return Err(SettingError::new("max_boxes", "must be at least 1"));
        }
        in_range("extent_cap", self.extent_cap, 0.0..=1000.0)?;
        in_range("part_gap", self.part_gap, 0.0..1.0)?;
        in_range("peak_fraction", self.peak_fraction, 0.0..1.0)
    }
}

/// Cuts boxes out of heatmaps; holds the threshold in force and scratch images.
#[derive(Clone, Debug)]
pub struct BoxExtractor {
    settings: BoxSettings,
    /// The threshold from calibration, if the model has one (already scaled).
    calibrated: Option<f32>,
    /// The smallest box in force, a fraction of the frame.
    min_area: f32,
    /// The pool's lanes, for [`merge_along_lanes`] and [`BoxSettings::min_area_m2`].
    lanes: Option<LaneMap>,
    /// The thresholded heatmap, 0/1 per model pixel.
    binary: Vec<u8>,
    morph: Morphology,
    /// Scratch for the blobs of a frame and the parts of one.
    comps: Vec<Component>,
    parts: Vec<Component>,
}

impl BoxExtractor {
    pub fn new(settings: BoxSettings, calibrated: Option<f32>) -> BoxExtractor {
        let calibrated = calibrated.map(|t| t * settings.threshold_scale);
        let min_area = resolve_min_area(&settings.min_area, None);
        BoxExtractor { settings, calibrated, min_area, lanes: None, binary: Vec::new(), morph: Morphology::new(), comps: Vec::new(), parts: Vec::new() }
    }

    /// Gives `min_area = "auto"` the calibration's noise grain (see [`MinAreaMode::Auto`]).
    pub fn with_noise_area(mut self, noise_area: Option<f32>) -> BoxExtractor {
        self.min_area = resolve_min_area(&self.settings.min_area, noise_area);
        self
    }

    /// The pool's lanes (in the source frame's pixels): a swimmer's pieces along a lane merge
    /// ([`merge_along_lanes`]), and [`BoxSettings::min_area_m2`] applies.
    pub fn with_lanes(mut self, lanes: Option<LaneMap>) -> BoxExtractor {
        self.lanes = lanes;
        self
    }

    /// Whether a blob too small for `min_area` covers [`BoxSettings::min_area_m2`] of the pool
    /// (`scale`: source pixels per heatmap pixel, across and down).
    fn covers_enough_pool(&self, c: &Component, scale: (f32, f32)) -> bool {
        let (Some(lanes), m2) = (&self.lanes, self.settings.min_area_m2) else {
            return false;
        };
        if m2 <= 0.0 {
            return false;
        }
        let (cx, cy) = ((c.x1 + c.x2) as f32 / 2.0 * scale.0, (c.y1 + c.y2) as f32 / 2.0 * scale.1);
        let Some(per_m2) = lanes.pixels_per_m2(cx as f64, cy as f64) else {
            return false;
        };
        let need = (m2 as f64 * per_m2 / (scale.0 * scale.1) as f64) as f32;
        c.pixels as f32 >= need.max(MIN_PERSPECTIVE_PX)
    }

    /// The smallest box in force, as a fraction of the frame.
    pub fn min_area(&self) -> f32 {
        self.min_area
    }

    pub fn settings(&self) -> &BoxSettings {
        &self.settings
    }

    /// The threshold this heatmap is cut at.
    pub fn threshold_for(&self, hm: &Heatmap) -> f32 {
        match (&self.settings.threshold, self.calibrated) {
            (Threshold::Fixed(t), _) => *t,
            (Threshold::Named(ThresholdMode::Calibrated), Some(t)) => t,
            _ => {
                let vals: Vec<f32> = hm.score.iter().copied().filter(|v| *v > 0.0).collect();
                if vals.is_empty() {
                    return f32::INFINITY;
                }
                let n = vals.len() as f32;
                let mean = vals.iter().sum::<f32>() / n;
                let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / n;
                (mean + self.settings.adaptive_k * var.sqrt()).max(1e-6)
            }
        }
    }

    /// Boxes in source coordinates for a heatmap of a `src_w` x `src_h` frame, best score first.
    pub fn extract(&mut self, hm: &Heatmap, src_w: u32, src_h: u32) -> (Vec<BBox>, f32) {
        crate::pipeline::simd::avx2_or!(self.extract_avx2(hm, src_w, src_h), self.extract_plain(hm, src_w, src_h))
    }

    /// [`extract_plain`](Self::extract_plain) compiled for AVX2 ([`crate::pipeline::simd`]).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn extract_avx2(&mut self, hm: &Heatmap, src_w: u32, src_h: u32) -> (Vec<BBox>, f32) {
        self.extract_plain(hm, src_w, src_h)
    }

    #[inline(always)]
    fn extract_plain(&mut self, hm: &Heatmap, src_w: u32, src_h: u32) -> (Vec<BBox>, f32) {
        let thr = self.threshold_for(hm);
        let (w, h) = (hm.width, hm.height);
        self.binary.clear();
        self.binary.extend(hm.score.iter().map(|&s| u8::from(s > thr)));
        let s = &self.settings;
        let (wu, hu) = (w as usize, h as usize);
        self.morph.open(&mut self.binary, wu, hu, s.open_radius as usize);
        self.morph.close(&mut self.binary, wu, hu, s.close_radius as usize);
        self.morph.components(&self.binary, &hm.score, wu, hu);
        let mut comps = std::mem::take(&mut self.comps);
        comps.clear();
        comps.extend_from_slice(self.morph.last_components());
        let (sx, sy) = (src_w as f32 / w as f32, src_h as f32 / h as f32);
        let min_px = self.min_area * (w * h) as f32;
        let (frac, cap) = (s.peak_fraction, if s.extent_cap > 0.0 { s.extent_cap * thr } else { f32::INFINITY });
        let cores = s.cores;
        let mut boxes: Vec<BBox> = Vec::with_capacity(comps.len());
        for (i, c) in comps.iter().enumerate() {
            if !(c.pixels as f32 >= min_px.max(1.0) || self.covers_enough_pool(c, (sx, sy))) {
                continue;
            }
            let mut push = |(x1, y1, x2, y2): (u32, u32, u32, u32), peak: f32| {
                let score = peak / (peak + thr);
                boxes.push(BBox { x1: x1 as f32 * sx, y1: y1 as f32 * sy, x2: x2 as f32 * sx, y2: y2 as f32 * sy, score })
            };
            if frac <= 0.0 {
                push((c.x1, c.y1, c.x2, c.y2), c.peak);
                continue;
            }
            let level = (c.peak * frac).min(cap);
            match cores {
                Cores::Strong if level < c.peak * frac => {
                    self.morph.core_parts(i, &hm.score, wu, level, &mut self.parts);
                    let strong = self.parts.iter().filter(|p| p.peak >= c.peak * frac);
                    let b = strong.fold((u32::MAX, u32::MAX, 0, 0), |b, p| (b.0.min(p.x1), b.1.min(p.y1), b.2.max(p.x2), b.3.max(p.y2)));
                    // The piece holding the peak reaches it, so `b` is empty only for scores that do not
                    // compare (NaN): then the blob's own bounds.
                    push(if b.2 == 0 { (c.x1, c.y1, c.x2, c.y2) } else { b }, c.peak);
                }
                Cores::Joined | Cores::Strong => push(self.morph.core_bounds(i, &hm.score, wu, level), c.peak),
                Cores::Main => {
                    self.morph.core_parts(i, &hm.score, wu, level, &mut self.parts);
                    let p = main_group(&mut self.parts, s.part_gap * w as f32).unwrap_or(*c);
                    push((p.x1, p.y1, p.x2, p.y2), c.peak);
                }
            }
        }
        self.comps = comps;
        boxes = merge(boxes, s.merge_gap * src_w as f32);
        if let Some(lanes) = &self.lanes {
            boxes = merge_along_lanes(boxes, lanes, s.lane_gap_m as f64);
        }
        boxes.sort_by(|a, b| b.score.total_cmp(&a.score));
        boxes.truncate(s.max_boxes);
        (boxes, thr)
    }
}

/// Groups `parts` whose bounds lie within `gap` pixels of each other, repeatedly, and returns the
/// group holding the highest peak; `None` without parts.
fn main_group(parts: &mut Vec<Component>, gap: f32) -> Option<Component> {
    let apart = |p: &Component, q: &Component| {
        let dx = p.x1.max(q.x1) as f32 - p.x2.min(q.x2) as f32;
        let dy = p.y1.max(q.y1) as f32 - p.y2.min(q.y2) as f32;
        dx.max(dy)
    };
    let union = |p: &Component, q: &Component| Component {
        x1: p.x1.min(q.x1),
        y1: p.y1.min(q.y1),
        x2: p.x2.max(q.x2),
        y2: p.y2.max(q.y2),
        pixels: p.pixels + q.pixels,
        peak: p.peak.max(q.peak),
    };
    merge_while(parts, |p, q| apart(p, q) <= gap, union);
    parts.iter().copied().max_by(|p, q| p.peak.total_cmp(&q.peak))
}

fn resolve_min_area(setting: &MinArea, noise_area: Option<f32>) -> f32 {
    match setting {
        MinArea::Fraction(f) => *f,
        MinArea::Named(MinAreaMode::Auto) => {
            noise_area.map_or(MIN_AREA_FALLBACK, |a| (a * NOISE_AREA_FACTOR).max(MIN_AREA_FALLBACK))
        }
    }
}

/// Repeatedly merges boxes in the same lane that lie within `gap_m` metres of each other along it
/// and together span at most [`SWIMMER_LENGTH_M`]: the pieces a swimmer far from the camera breaks
/// into (head and feet, a few pixels apart there) are one box, while two swimmers one behind the
/// other, or side by side in two lanes, stay two.
pub fn merge_along_lanes(mut boxes: Vec<BBox>, lanes: &LaneMap, gap_m: f64) -> Vec<BBox> {
    let place = |b: &BBox| {
        let r = [b.x1, b.y1, b.x2, b.y2];
        lanes.locate_box(&r).map(|p| (p.lane, lanes.span_along(&r)))
    };
    let together = |a: &BBox, b: &BBox| match (place(a), place(b)) {
        (Some((lane, (lo, hi))), Some((lane_b, (lo_b, hi_b)))) => {
            lane == lane_b && lo.max(lo_b) - hi.min(hi_b) <= gap_m && hi.max(hi_b) - lo.min(lo_b) <= SWIMMER_LENGTH_M
        }
        _ => false,
    };
    merge_while(&mut boxes, together, BBox::union);
    boxes
}

/// Repeatedly merges boxes that overlap or lie within `gap` pixels of each other.
pub fn merge(mut boxes: Vec<BBox>, gap: f32) -> Vec<BBox> {
    merge_while(&mut boxes, |a, b| a.gap(b) <= gap, BBox::union);
    boxes
}

/// Repeatedly replaces the first pair of items (in order) that `together` accepts by their `union`,
/// until no pair is left: boxes by their gap or their lane, a blob's pieces by their gap.
fn merge_while<T>(items: &mut Vec<T>, together: impl Fn(&T, &T) -> bool, union: impl Fn(&T, &T) -> T) {
    'grow: loop {
        for i in 0..items.len() {
            for j in i + 1..items.len() {
                if together(&items[i], &items[j]) {
                    let b = items.swap_remove(j);
                    items[i] = union(&items[i], &b);
                    continue 'grow;
                }
            }
        }
        return;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heatmap(w: u32, h: u32, blobs: &[(u32, u32, u32, u32, f32)]) -> Heatmap {
        let mut score = vec![0.0; (w * h) as usize];
        for &(x1, y1, x2, y2, v) in blobs {
            for y in y1..y2 {
                for x in x1..x2 {
                    score[(y * w + x) as usize] = v;
                }
            }
        }
        Heatmap { width: w, height: h, score }
    }

    fn settings() -> BoxSettings {
        BoxSettings { threshold: Threshold::Fixed(1.0), min_area: MinArea::Fraction(0.002), merge_gap: 0.0, ..Default::default() }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_and_baseline_variants_agree() {
        if !crate::pipeline::simd::both_variants_run() {
            return;
        }
        let hm = heatmap(100, 50, &[(10, 10, 20, 18, 5.0), (60, 30, 61, 31, 9.0), (22, 12, 40, 30, 3.0), (70, 5, 90, 20, 0.5)]);
        for (open_radius, close_radius) in [(0, 0), (1, 2), (2, 3)] {
            let s = BoxSettings { open_radius, close_radius, ..settings() };
            let plain = BoxExtractor::new(s.clone(), None).extract_plain(&hm, 200, 100);
            // SAFETY: this CPU has AVX2, checked above.
            let avx2 = unsafe { BoxExtractor::new(s, None).extract_avx2(&hm, 200, 100) };
            assert!(!plain.0.is_empty());
            assert_eq!(format!("{plain:?}"), format!("{avx2:?}"));
        }
    }

    #[test]
    fn finds_blobs_scaled_to_source_and_drops_specks() {
        // 100x50 heatmap of a 200x100 frame: one 10x8 blob, one single-pixel speck, one below threshold.
        let hm = heatmap(100, 50, &[(10, 10, 20, 18, 5.0), (60, 30, 61, 31, 9.0), (70, 5, 90, 20, 0.5)]);
        let mut ex = BoxExtractor::new(settings(), None);
        let (boxes, thr) = ex.extract(&hm, 200, 100);
        assert_eq!(thr, 1.0);
        assert_eq!(boxes.len(), 1, "{boxes:?}");
        let b = boxes[0];
        assert_eq!((b.x1, b.y1, b.x2, b.y2), (20.0, 20.0, 40.0, 36.0));
        assert!((b.score - 5.0 / 6.0).abs() < 1e-6);
    }

    #[test]
    fn a_strong_blob_is_cut_at_the_cap_not_at_a_fraction_of_its_peak() {
        // A body (score 20) with limbs (score 3) around it, threshold 1: 30 % of the peak (6) keeps the
        // body alone, a cap of 2 x the threshold keeps the limbs too. A weak blob (peak 5) is cut at
        // 1.5 either way.
        let hm = heatmap(100, 50, &[(10, 10, 30, 30, 3.0), (15, 15, 25, 25, 20.0), (60, 10, 80, 30, 1.2), (65, 15, 75, 25, 5.0)]);
        let no_cap = BoxSettings { peak_fraction: 0.3, extent_cap: 0.0, ..settings() };
        let mut boxes = BoxExtractor::new(no_cap.clone(), None).extract(&hm, 100, 50).0;
        boxes.sort_by(|a, b| a.x1.total_cmp(&b.x1));
        assert_eq!(boxes.iter().map(|b| (b.x1, b.x2)).collect::<Vec<_>>(), [(15.0, 25.0), (65.0, 75.0)]);
        let mut boxes = BoxExtractor::new(BoxSettings { extent_cap: 2.0, ..no_cap }, None).extract(&hm, 100, 50).0;
        boxes.sort_by(|a, b| a.x1.total_cmp(&b.x1));
        assert_eq!(boxes.iter().map(|b| (b.x1, b.x2)).collect::<Vec<_>>(), [(10.0, 30.0), (65.0, 75.0)]);
    }

    #[test]
    fn a_small_blob_far_down_the_pool_is_a_box_where_lanes_are_known() {
        // A 200x100 frame seen as a 100x50 heatmap; the pool in perspective, its far wall at the top
        // (4 lanes of 2.5 m, 25 m long). Two 4x4 blobs (16 heatmap pixels, 64 source pixels), under the
        // smallest box (0.5 % of 5000 = 25): one in the far lanes, one near the camera.
        let lanes = crate::pipeline::lanes::LaneSettings { corners: [[0.0, 100.0], [200.0, 100.0], [120.0, 0.0], [80.0, 0.0]], count: 4, length_m: 25.0 };
        let map = || Some(LaneMap::new(&lanes).unwrap());
        let hm = heatmap(100, 50, &[(48, 4, 52, 8, 5.0), (48, 40, 52, 44, 5.0)]);
        let s = BoxSettings { min_area: MinArea::Fraction(0.005), min_area_m2: 0.5, close_radius: 0, ..settings() };
        assert!(BoxExtractor::new(s.clone(), None).extract(&hm, 200, 100).0.is_empty());
        let mut ex = BoxExtractor::new(s.clone(), None).with_lanes(map());
        let boxes = ex.extract(&hm, 200, 100).0;
        assert_eq!(boxes.iter().map(|b| (b.y1, b.y2)).collect::<Vec<_>>(), [(8.0, 16.0)], "only the far blob: {boxes:?}");
        let far = map().unwrap().pixels_per_m2(100.0, 12.0).unwrap();
        let near = map().unwrap().pixels_per_m2(100.0, 84.0).unwrap();
        assert!(64.0 >= 0.5 * far && 64.0 < 0.5 * near, "{far} {near} pixels a square metre");
        // Off, or a blob outside the pool, or under the floor of pixels: no box.
        let mut off = BoxExtractor::new(BoxSettings { min_area_m2: 0.0, ..s.clone() }, None).with_lanes(map());
        assert!(off.extract(&hm, 200, 100).0.is_empty());
        let outside = heatmap(100, 50, &[(2, 4, 6, 8, 5.0)]);
        assert!(BoxExtractor::new(s.clone(), None).with_lanes(map()).extract(&outside, 200, 100).0.is_empty());
        let speck = heatmap(100, 50, &[(48, 4, 50, 6, 5.0)]);
        let tiny = BoxSettings { open_radius: 0, ..s };
        assert!(BoxExtractor::new(tiny, None).with_lanes(map()).extract(&speck, 200, 100).0.is_empty());
    }

    #[test]
    fn pieces_of_one_swimmer_along_a_lane_merge_where_lanes_are_known() {
        // Seen from above: 4 lanes of 50 pixels across, 25 m along 100 pixels (4 pixels a metre), the
        // start wall at the bottom.
        let lanes = LaneMap::new(&crate::pipeline::lanes::LaneSettings { corners: [[0.0, 100.0], [200.0, 100.0], [200.0, 0.0], [0.0, 0.0]], count: 4, length_m: 25.0 }).unwrap();
        let b = |x1: f32, y1: f32, x2: f32, y2: f32| BBox::new(x1, y1, x2, y2);
        let gap = FRAGMENT_GAP_M as f64;
        // Head and feet 0.75 m apart in lane 2: one box.
        let got = merge_along_lanes(vec![b(60.0, 40.0, 70.0, 44.0), b(62.0, 47.0, 68.0, 50.0)], &lanes, gap);
        assert_eq!(got, vec![b(60.0, 40.0, 70.0, 50.0)]);
        // Two swimmers 2 m apart in one lane, side by side in two lanes, and a merge that would be
        // longer than a swimmer: apart.
        let apart = [
            vec![b(60.0, 40.0, 70.0, 44.0), b(60.0, 52.0, 70.0, 56.0)],
            vec![b(60.0, 40.0, 70.0, 44.0), b(110.0, 40.0, 120.0, 44.0)],
            vec![b(60.0, 40.0, 70.0, 46.0), b(60.0, 48.0, 70.0, 53.0)],
        ];
        for boxes in apart {
            assert_eq!(merge_along_lanes(boxes.clone(), &lanes, gap), boxes);
        }
        // Outside the pool: left alone.
        let outside = vec![b(-30.0, 40.0, -20.0, 44.0), b(-30.0, 45.0, -20.0, 48.0)];
        assert_eq!(merge_along_lanes(outside.clone(), &lanes, gap), outside);
        // A cap and feet 1.25 m apart (a dark suit over the floor line), 2.5 m together: one box
        // from a gap of 1.25 m, two under it.
        let wide = vec![b(60.0, 40.0, 70.0, 42.0), b(61.0, 47.0, 69.0, 50.0)];
        assert_eq!(merge_along_lanes(wide.clone(), &lanes, 1.0), wide);
        assert_eq!(merge_along_lanes(wide.clone(), &lanes, 1.5), vec![b(60.0, 40.0, 70.0, 50.0)]);
    }

    #[test]
    fn fragments_of_one_swimmer_merge() {
        let hm = heatmap(100, 50, &[(10, 10, 20, 20, 3.0), (23, 10, 33, 20, 4.0)]);
        let mut ex = BoxExtractor::new(BoxSettings { close_radius: 0, ..settings() }, None);
        assert_eq!(ex.extract(&hm, 100, 50).0.len(), 2);
        let mut ex = BoxExtractor::new(BoxSettings { close_radius: 0, merge_gap: 0.05, ..settings() }, None);
        let boxes = ex.extract(&hm, 100, 50).0;
        assert_eq!(boxes.len(), 1);
        assert_eq!((boxes[0].x1, boxes[0].x2), (10.0, 33.0));
        // Closing joins them too.
        let mut ex = BoxExtractor::new(BoxSettings { close_radius: 2, ..settings() }, None);
        assert_eq!(ex.extract(&hm, 100, 50).0.len(), 1);
    }

    #[test]
    fn calibrated_and_adaptive_thresholds() {
        let hm = heatmap(50, 50, &[(0, 0, 50, 50, 0.1), (20, 20, 30, 30, 2.0)]);
        let ex = BoxExtractor::new(BoxSettings { threshold_scale: 2.0, ..BoxSettings::default() }, Some(0.5));
        assert_eq!(ex.threshold_for(&hm), 1.0);
        let ex = BoxExtractor::new(BoxSettings::default(), None);
        let t = ex.threshold_for(&hm);
        assert!(t > 0.1 && t < 2.0, "adaptive {t}");
        let mut ex = BoxExtractor::new(BoxSettings::default(), None);
        let boxes = ex.extract(&hm, 50, 50).0;
        assert_eq!(boxes.len(), 1);
        assert_eq!((boxes[0].x1, boxes[0].y1, boxes[0].x2, boxes[0].y2), (20.0, 20.0, 30.0, 30.0));
    }

    #[test]
    fn the_smallest_box_follows_the_noise_grain_when_auto() {
        // A 10x10 blob in a 100x100 map is 1 % of the frame.
        let hm = heatmap(100, 100, &[(10, 10, 20, 20, 5.0)]);
        let auto = BoxSettings { threshold: Threshold::Fixed(1.0), ..Default::default() };
        assert_eq!(auto.min_area, MinArea::Named(MinAreaMode::Auto));
        let ex = BoxExtractor::new(auto.clone(), None);
        assert_eq!(ex.min_area(), MIN_AREA_FALLBACK);
        let mut ex = ex.with_noise_area(Some(0.005));
        assert!((ex.min_area() - 0.005 * NOISE_AREA_FACTOR).abs() < 1e-9);
        assert_eq!(ex.extract(&hm, 100, 100).0.len(), 1, "1 % is above 1.35 x 0.5 %");
        let mut ex = BoxExtractor::new(auto.clone(), None).with_noise_area(Some(0.008));
        assert!(ex.extract(&hm, 100, 100).0.is_empty(), "1 % is below 1.35 x 0.8 %");
        // A calm camera never goes below the floor; a fixed fraction ignores the grain.
        assert_eq!(BoxExtractor::new(auto, None).with_noise_area(Some(0.0)).min_area(), MIN_AREA_FALLBACK);
        let fixed = BoxSettings { min_area: MinArea::Fraction(0.02), ..Default::default() };
        assert_eq!(BoxExtractor::new(fixed, None).with_noise_area(Some(0.005)).min_area(), 0.02);
    }

    #[test]
    fn boxes_span_the_blob_above_a_fraction_of_its_peak() {
        // A smoothed blob: a 10x6 core at 10 inside an 18x14 halo at 2, cut at 1.
        let hm = heatmap(60, 40, &[(10, 10, 28, 24, 2.0), (14, 14, 24, 20, 10.0)]);
        let whole = BoxSettings { peak_fraction: 0.0, ..settings() };
        let b = BoxExtractor::new(whole, None).extract(&hm, 60, 40).0[0];
        assert_eq!((b.x1, b.y1, b.x2, b.y2), (10.0, 10.0, 28.0, 24.0));
        // The halo is below 30 % of the peak: the box is the core.
        let core = BoxSettings { peak_fraction: 0.3, ..settings() };
        let b = BoxExtractor::new(core.clone(), None).extract(&hm, 60, 40).0[0];
        assert_eq!((b.x1, b.y1, b.x2, b.y2), (14.0, 14.0, 24.0, 20.0));
        assert!((b.score - 10.0 / 11.0).abs() < 1e-6, "the score is the blob's");
        // A flat blob keeps its whole extent; so does the part of another blob that only touches the
        // bounds (the core is taken per blob, not per rectangle).
        let hm = heatmap(60, 40, &[(10, 10, 20, 20, 5.0), (30, 10, 40, 20, 2.0), (34, 12, 36, 14, 9.0)]);
        let mut boxes = BoxExtractor::new(core, None).extract(&hm, 60, 40).0;
        boxes.sort_by(|a, b| a.x1.total_cmp(&b.x1));
        assert_eq!((boxes[0].x1, boxes[0].y1, boxes[0].x2, boxes[0].y2), (10.0, 10.0, 20.0, 20.0));
        assert_eq!((boxes[1].x1, boxes[1].y1, boxes[1].x2, boxes[1].y2), (34.0, 12.0, 36.0, 14.0));
    }

    #[test]
    fn a_blob_s_box_is_all_its_pieces_above_the_cut_or_the_main_one_and_its_near_neighbours() {
        // Cores at 10 (x 10..18) and 8 (x 30..40) joined by a weak bridge (2) into one blob, cut at 30 %
        // of 10; a piece at 4 just right of the first core (x 19..20, 1 pixel away).
        let hm = heatmap(60, 40, &[(10, 10, 40, 20, 2.0), (10, 10, 18, 20, 10.0), (30, 10, 40, 20, 8.0), (19, 12, 20, 15, 4.0)]);
        let at = |cores, part_gap| {
            let b = BoxExtractor::new(BoxSettings { cores, part_gap, ..settings() }, None).extract(&hm, 60, 40).0;
            assert_eq!(b.len(), 1);
            assert!((b[0].score - 10.0 / 11.0).abs() < 1e-6, "the blob's score: {b:?}");
            (b[0].x1, b[0].y1, b[0].x2, b[0].y2)
        };
        assert_eq!(at(Cores::Joined, 0.0), (10.0, 10.0, 40.0, 20.0));
        // The cut (3) is not capped: every piece reaches 30 % of the peak, as with "joined".
        assert_eq!(at(Cores::Strong, 0.0), (10.0, 10.0, 40.0, 20.0));
        assert_eq!(at(Cores::Main, 0.0), (10.0, 10.0, 18.0, 20.0));
        // 1 pixel is within 2 % of 60 pixels (1.2); the 8-core, 11 pixels away, is not.
        assert_eq!(at(Cores::Main, 0.02), (10.0, 10.0, 20.0, 20.0));
        assert_eq!(at(Cores::Main, 0.2), (10.0, 10.0, 40.0, 20.0));
    }

    #[test]
    fn the_capped_cut_extends_the_strong_pieces_and_adds_no_weak_one() {
        // A peak of 20 (cut at 30 %: 6) capped at 2 x the threshold of 1: the core (20) with a limb (3)
        // around it, and apart from it a piece at 4 that only the capped cut lets in.
        let hm = heatmap(60, 40, &[(5, 5, 50, 30, 1.5), (10, 10, 20, 20, 3.0), (12, 12, 18, 18, 20.0), (30, 10, 40, 20, 4.0)]);
        let at = |cores| {
            let b = BoxExtractor::new(BoxSettings { cores, extent_cap: 2.0, ..settings() }, None).extract(&hm, 60, 40).0;
            assert_eq!(b.len(), 1);
            (b[0].x1, b[0].y1, b[0].x2, b[0].y2)
        };
        assert_eq!(at(Cores::Joined), (10.0, 10.0, 40.0, 20.0));
        assert_eq!(at(Cores::Strong), (10.0, 10.0, 20.0, 20.0), "the limb stays, the weak piece goes");
    }

    #[test]
    fn main_group_grows_from_near_pieces_and_keeps_the_one_with_the_peak() {
        let part = |x1, x2, peak| Component { x1, y1: 0, x2, y2: 4, pixels: ((x2 - x1) * 4) as usize, peak };
        // a..b 2 apart, b..c 2 apart: a chain is one group; d far off peaks highest.
        let mut parts = vec![part(0, 4, 3.0), part(6, 8, 2.0), part(10, 12, 5.0), part(30, 32, 9.0)];
        assert_eq!(main_group(&mut parts.clone(), 2.0), Some(part(30, 32, 9.0)));
        parts[3].peak = 1.0;
        assert_eq!(main_group(&mut parts.clone(), 2.0), Some(Component { pixels: 32, ..part(0, 12, 5.0) }));
        assert_eq!(main_group(&mut parts.clone(), 1.0), Some(part(10, 12, 5.0)));
        assert_eq!(main_group(&mut Vec::new(), 1.0), None);
    }

    #[test]
    fn iou_and_gap() {
        let a = BBox::new(0.0, 0.0, 10.0, 10.0);
        let b = BBox::new(5.0, 0.0, 15.0, 10.0);
        assert!((a.iou(&b) - 1.0 / 3.0).abs() < 1e-6);
        assert_eq!(a.gap(&BBox::new(13.0, 0.0, 20.0, 5.0)), 3.0);
        assert_eq!(a.gap(&b), 0.0);
    }

    #[test]
    fn bad_settings_are_refused() {
        assert!(BoxSettings { threshold: Threshold::Fixed(-1.0), ..Default::default() }.validate().is_err());
        assert!(BoxSettings { min_area: MinArea::Fraction(2.0), ..Default::default() }.validate().is_err());
        assert!(BoxSettings { min_area_m2: -1.0, ..Default::default() }.validate().is_err());
        assert!(BoxSettings { peak_fraction: 1.0, ..Default::default() }.validate().is_err());
        assert!(BoxSettings { peak_fraction: f32::NAN, ..Default::default() }.validate().is_err());
        assert!(BoxSettings::default().validate().is_ok());
    }
}
