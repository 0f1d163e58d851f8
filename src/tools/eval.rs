//! Accuracy metrics: box matching at an IoU threshold (recall, precision, F1, false boxes per frame,
//! average precision), pixel AUROC, AUPRO (per-region overlap up to a false-positive rate, as anomalib
//! and the DFR paper use), and image AUROC; [`evaluate`] runs a detector (and optionally the tracker)
//! over annotated frames on disk, [`write_plots`] draws the curves.

use crate::media::annotations;
use crate::media::images::{image_paths, load_rgb};
use crate::pipeline::boxes::BBox;
use crate::pipeline::detect::Detector;
use crate::pipeline::track::{TrackSettings, Tracker};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Box metrics at one IoU threshold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct BoxMetrics {
    pub recall: f64,
    pub precision: f64,
    pub f1: f64,
    pub fp_per_frame: f64,
    pub ap: f64,
}

/// Accumulates predictions and ground truth frame by frame for box metrics at one IoU threshold.
#[derive(Clone, Debug)]
pub struct BoxMatcher {
    iou: f32,
    frames: usize,
    truths: usize,
    /// (score, true positive) for every prediction.
    scored: Vec<(f32, bool)>,
}

impl BoxMatcher {
    pub fn new(iou: f32) -> Self {
        BoxMatcher { iou, frames: 0, truths: 0, scored: Vec::new() }
    }

    /// Greedy matching, best score first: a prediction is a true positive when it overlaps a not yet
    /// matched truth by at least the IoU threshold.
    pub fn add(&mut self, predicted: &[BBox], truth: &[BBox]) {
        self.frames += 1;
        self.truths += truth.len();
        let mut order: Vec<&BBox> = predicted.iter().collect();
        order.sort_by(|a, b| b.score.total_cmp(&a.score));
        let mut used = vec![false; truth.len()];
        for p in order {
            let best = truth
                .iter()
                .enumerate()
                .filter(|(i, _)| !used[*i])
                .map(|(i, t)| (i, p.iou(t)))
                .max_by(|a, b| a.1.total_cmp(&b.1));
            match best {
                Some((i, iou)) if iou >= self.iou => {
                    used[i] = true;
                    self.scored.push((p.score, true));
                }
                _ => self.scored.push((p.score, false)),
            }
        }
    }

    pub fn metrics(&self) -> BoxMetrics {
        let tp = self.scored.iter().filter(|s| s.1).count() as f64;
        let fp = self.scored.len() as f64 - tp;
        let recall = if self.truths == 0 { 0.0 } else { tp / self.truths as f64 };
        let precision = if self.scored.is_empty() { 0.0 } else { tp / self.scored.len() as f64 };
        let f1 = if recall + precision == 0.0 { 0.0 } else { 2.0 * recall * precision / (recall + precision) };
        BoxMetrics { recall, precision, f1, fp_per_frame: fp / self.frames.max(1) as f64, ap: self.average_precision() }
    }

    /// All-point interpolated average precision (VOC 2010+).
    pub fn average_precision(&self) -> f64 {
        let (recall, precision) = self.pr_curve();
        if recall.is_empty() {
            return 0.0;
        }
        let mut p = precision.clone();
        for i in (0..p.len().saturating_sub(1)).rev() {
            p[i] = p[i].max(p[i + 1]);
        }
        let mut ap = 0.0;
        let mut prev_r = 0.0;
        for (r, p) in recall.iter().zip(&p) {
            ap += (r - prev_r) * p;
            prev_r = *r;
        }
        ap
    }

    /// Recall and precision after each prediction, best score first.
    pub fn pr_curve(&self) -> (Vec<f64>, Vec<f64>) {
        let mut s = self.scored.clone();
        s.sort_by(|a, b| b.0.total_cmp(&a.0));
        let (mut tp, mut n) = (0.0, 0.0);
        let mut recall = Vec::with_capacity(s.len());
        let mut precision = Vec::with_capacity(s.len());
        for (_, hit) in s {
            n += 1.0;
            if hit {
                tp += 1.0;
            }
            recall.push(if self.truths == 0 { 0.0 } else { tp / self.truths as f64 });
            precision.push(tp / n);
        }
        (recall, precision)
    }
}

/// Area under the ROC curve of scores for positives and negatives (Mann-Whitney, ties counted half).
pub fn auroc(positives: &[f32], negatives: &[f32]) -> Option<f64> {
    if positives.is_empty() || negatives.is_empty() {
        return None;
    }
    let mut all: Vec<(f32, bool)> = positives.iter().map(|&s| (s, true)).chain(negatives.iter().map(|&s| (s, false))).collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Sum of positive ranks with average ranks for ties.
    let mut rank_sum = 0.0f64;
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j + 1 < all.len() && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += avg * all[i..=j].iter().filter(|x| x.1).count() as f64;
        i = j + 1;
    }
    let (np, nn) = (positives.len() as f64, negatives.len() as f64);
    Some((rank_sum - np * (np + 1.0) / 2.0) / (np * nn))
}

/// Pixel-level accumulator for pixel AUROC and AUPRO. Heatmaps and truth regions are given at the
/// heatmap's resolution; pixels outside the pool are left out by the caller.
#[derive(Clone, Debug, Default)]
pub struct PixelScores {
    negatives: Vec<f32>,
    positives: Vec<f32>,
    /// Scores of each annotated region's pixels, sorted later.
    regions: Vec<Vec<f32>>,
}

impl PixelScores {
    /// Adds one frame: `score` row-major `w` x `h`, `regions` the truth boxes in heatmap pixels,
    /// `valid` the pixels that count (the pool).
    pub fn add(&mut self, score: &[f32], w: usize, h: usize, regions: &[BBox], valid: &[f32]) {
        let mut inside = vec![false; w * h];
        for r in regions {
            let (x1, y1) = (r.x1.floor().max(0.0) as usize, r.y1.floor().max(0.0) as usize);
            let (x2, y2) = ((r.x2.ceil() as usize).min(w), (r.y2.ceil() as usize).min(h));
            let mut px = Vec::new();
            for y in y1..y2 {
                for x in x1..x2 {
                    inside[y * w + x] = true;
                    px.push(score[y * w + x]);
                }
            }
            if !px.is_empty() {
                self.regions.push(px);
            }
        }
        for i in 0..w * h {
            if valid.get(i).copied().unwrap_or(1.0) <= 0.0 {
                continue;
            }
            if inside[i] { self.positives.push(score[i]) } else { self.negatives.push(score[i]) }
        }
    }

    pub fn pixel_auroc(&self) -> Option<f64> {
        // Subsample very large sets evenly to bound the sort.
        let thin = |v: &[f32]| -> Vec<f32> {
            let step = (v.len() / 2_000_000).max(1);
            v.iter().step_by(step).copied().collect()
        };
        auroc(&thin(&self.positives), &thin(&self.negatives))
    }

    /// The per-region-overlap curve: (false-positive rate, mean overlap) at thresholds from high to low.
    pub fn pro_curve(&self, steps: usize) -> Vec<(f64, f64)> {
        if self.regions.is_empty() || self.negatives.is_empty() {
            return Vec::new();
        }
        let mut neg = self.negatives.clone();
        neg.sort_by(f32::total_cmp);
        let regions: Vec<Vec<f32>> = self
            .regions
            .iter()
            .map(|r| {
                let mut r = r.clone();
                r.sort_by(f32::total_cmp);
                r
            })
            .collect();
        let above = |v: &[f32], t: f32| (v.len() - v.partition_point(|&x| x <= t)) as f64 / v.len() as f64;
        // Thresholds: quantiles of the negatives (fine control of the false-positive rate) plus the
        // region pixels' range.
        let mut thresholds: Vec<f32> = (0..=steps).map(|i| neg[((neg.len() - 1) * i) / steps]).collect();
        thresholds.extend(regions.iter().flat_map(|r| [r[0], r[r.len() / 2]]));
        thresholds.push(f32::MAX);
        thresholds.sort_by(|a, b| b.total_cmp(a));
        thresholds.dedup();
        thresholds
            .iter()
            .map(|&t| (above(&neg, t), regions.iter().map(|r| above(r, t)).sum::<f64>() / regions.len() as f64))
            .collect()
    }

    /// Area under the PRO curve up to `fpr_limit`, normalised by it (1 is perfect).
    pub fn aupro(&self, fpr_limit: f64) -> Option<f64> {
        let curve = self.pro_curve(2000);
        if curve.is_empty() {
            return None;
        }
        let mut area = 0.0;
        let (mut px, mut py) = (0.0, curve[0].1);
        for &(x, y) in &curve {
            if x > fpr_limit {
                // Interpolate to the limit and stop.
                if x > px {
                    let yl = py + (y - py) * (fpr_limit - px) / (x - px);
                    area += (fpr_limit - px) * (py + yl) / 2.0;
                }
                px = fpr_limit;
                break;
            }
            area += (x - px) * (py + y) / 2.0;
            px = x;
            py = y;
        }
        if px < fpr_limit {
            area += (fpr_limit - px) * py;
        }
        Some(area / fpr_limit)
    }
}

/// Everything `poolwatch eval` reports.
#[derive(Clone, Debug, Default, Serialize)]
pub struct EvalReport {
    pub frames: usize,
    /// Box metrics by IoU threshold ("0.3", "0.5").
    pub box_metrics: std::collections::BTreeMap<String, BoxMetrics>,
    pub pixel_auroc: Option<f64>,
    pub aupro: Option<f64>,
    pub image_auroc: Option<f64>,
    /// Frames skipped (unreadable, or without an annotation).
    pub skipped: usize,
}

/// The IoU thresholds boxes are matched at.
pub const IOUS: [f32; 2] = [0.3, 0.5];

/// Runs a detector over annotated frames (and optionally empty ones) and measures it.
pub struct Evaluator {
    pub matchers: Vec<BoxMatcher>,
    pub pixels: PixelScores,
    positive_images: Vec<f32>,
    negative_images: Vec<f32>,
    frames: usize,
    skipped: usize,
}

impl Default for Evaluator {
    fn default() -> Self {
        Evaluator {
            matchers: IOUS.iter().map(|&i| BoxMatcher::new(i)).collect(),
            pixels: PixelScores::default(),
            positive_images: Vec::new(),
            negative_images: Vec::new(),
            frames: 0,
            skipped: 0,
        }
    }
}

impl Evaluator {
    /// One annotated test frame: its detected boxes, its heatmap and pool mask, and its truth (source
    /// pixels).
    pub fn add_test(&mut self, boxes: &[BBox], hm: &crate::pipeline::heatmap::Heatmap, mask: &[f32], truth: &[BBox], src: (u32, u32)) {
        self.frames += 1;
        for m in &mut self.matchers {
            m.add(boxes, truth);
        }
        let (sx, sy) = (hm.width as f32 / src.0 as f32, hm.height as f32 / src.1 as f32);
        let regions: Vec<BBox> = truth.iter().map(|t| BBox { x1: t.x1 * sx, y1: t.y1 * sy, x2: t.x2 * sx, y2: t.y2 * sy, score: 1.0 }).collect();
        self.pixels.add(&hm.score, hm.width as usize, hm.height as usize, &regions, mask);
        let image_score = boxes.iter().map(|b| b.score).fold(0.0, f32::max);
        if truth.is_empty() { self.negative_images.push(image_score) } else { self.positive_images.push(image_score) }
    }

    /// One frame of the empty pool (image-level negatives, and false boxes).
    pub fn add_normal(&mut self, boxes: &[BBox]) {
        self.negative_images.push(boxes.iter().map(|b| b.score).fold(0.0, f32::max));
    }

    pub fn skip(&mut self) {
        self.skipped += 1;
    }

    pub fn report(&self) -> EvalReport {
        EvalReport {
            frames: self.frames,
            box_metrics: IOUS.iter().zip(&self.matchers).map(|(i, m)| (format!("{i}"), m.metrics())).collect(),
            pixel_auroc: self.pixels.pixel_auroc(),
            aupro: self.pixels.aupro(0.3),
            image_auroc: auroc(&self.positive_images, &self.negative_images),
            skipped: self.skipped,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error(transparent)]
    Images(#[from] crate::media::images::ImageError),
    #[error("cannot write {path}: {reason}")]
    Write { path: PathBuf, reason: String },
}

/// Runs `det` over the annotated frames of `tests` (files, directories, globs) and the empty frames of
/// `normal`, and measures it. With `tracking`, each directory of `tests` is a video (frames in name
/// order) run through a tracker of those settings, and only its confirmed swimmers count, as the
/// daemon reports them. A frame that cannot be read or has no annotation is skipped (and logged).
pub fn evaluate(det: &mut Detector, tests: &[PathBuf], normal: &[PathBuf], tracking: Option<&TrackSettings>) -> Result<Evaluator, EvalError> {
    let tests = image_paths(tests)?;
    let normals = image_paths(normal)?;
    let mut ev = Evaluator::default();
    // One tracker per directory (a video), fed every frame in order.
    let mut tracker: Option<(Option<PathBuf>, Tracker)> = None;
    for (seq, path) in tests.iter().enumerate() {
        let result = (|| -> Result<(), String> {
            let img = load_rgb(path).map_err(|e| e.to_string())?;
            let ann = annotations::find_for(path).ok_or_else(|| format!("{}: no annotation beside it", path.display()))?;
            let truth = annotations::read(&ann, img.width(), img.height()).map_err(|e| e.to_string())?;
            let d = det.detect(&img).map_err(|e| e.to_string())?;
            let boxes = match tracking {
                Some(settings) => {
                    let video = path.parent().map(Path::to_path_buf);
                    if tracker.as_ref().is_none_or(|(v, _)| *v != video) {
                        tracker = Some((video, Tracker::new(settings.clone())));
                    }
                    let Some((_, t)) = &mut tracker else { unreachable!("set just above") };
                    t.update(seq as u64, &d.boxes, img.dimensions());
                    t.tracks().map(|t| t.as_bbox()).collect()
                }
                None => d.boxes,
            };
            ev.add_test(&boxes, det.heatmap(), &det.mask(), &truth, img.dimensions());
            Ok(())
        })();
        if let Err(e) = result {
            log::warn!("skipping {e}");
            ev.skip();
        }
    }
    for path in &normals {
        match load_rgb(path).map_err(|e| e.to_string()).and_then(|img| det.detect(&img).map_err(|e| e.to_string())) {
            Ok(d) => ev.add_normal(&d.boxes),
            Err(e) => {
                log::warn!("skipping {e}");
                ev.skip();
            }
        }
    }
    Ok(ev)
}

/// Writes the precision-recall curves of the boxes (`pr.png`) and the per-region overlap curve
/// (`pro.png`) into `dir`.
pub fn write_plots(dir: &Path, ev: &Evaluator) -> Result<(), EvalError> {
    use crate::tools::chart::{Series, line_chart};
    let write_err = |path: &Path, e: &dyn std::fmt::Display| EvalError::Write { path: path.to_path_buf(), reason: e.to_string() };
    std::fs::create_dir_all(dir).map_err(|e| write_err(dir, &e))?;
    let colors = [[220, 40, 40], [40, 80, 220]];
    let labels: Vec<String> = IOUS.iter().map(|i| format!("IoU {i}")).collect();
    let series: Vec<Series> = ev
        .matchers
        .iter()
        .zip(&labels)
        .zip(colors)
        .map(|((m, label), color)| {
            let (r, p) = m.pr_curve();
            Series { label, color, points: r.into_iter().zip(p).collect() }
        })
        .collect();
    let pr = dir.join("pr.png");
    line_chart("precision-recall of boxes", "recall", "precision", 1.0, &series).save(&pr).map_err(|e| write_err(&pr, &e))?;
    let pro: Vec<(f64, f64)> = ev.pixels.pro_curve(400).into_iter().filter(|p| p.0 <= 0.3).collect();
    let path = dir.join("pro.png");
    line_chart("per-region overlap (AUPRO up to FPR 0.3)", "false-positive rate", "PRO", 0.3, &[Series { label: "PRO", color: [220, 40, 40], points: pro }])
        .save(&path)
        .map_err(|e| write_err(&path, &e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(x1: f32, y1: f32, x2: f32, y2: f32, score: f32) -> BBox {
        BBox { x1, y1, x2, y2, score }
    }

    #[test]
    fn box_matching_counts_hits_misses_and_duplicates() {
        let mut m = BoxMatcher::new(0.5);
        let truth = [b(0.0, 0.0, 10.0, 10.0, 1.0), b(20.0, 20.0, 30.0, 30.0, 1.0)];
        // One exact hit, a duplicate of it (false), one far-off box (false); the second truth missed.
        m.add(&[b(0.0, 0.0, 10.0, 10.0, 0.9), b(1.0, 0.0, 10.0, 10.0, 0.8), b(50.0, 50.0, 60.0, 60.0, 0.7)], &truth);
        // An empty frame with one false box.
        m.add(&[b(0.0, 0.0, 5.0, 5.0, 0.95)], &[]);
        let r = m.metrics();
        assert_eq!(r.recall, 0.5);
        assert_eq!(r.precision, 0.25);
        assert!((r.f1 - 2.0 * 0.5 * 0.25 / 0.75).abs() < 1e-12);
        assert_eq!(r.fp_per_frame, 1.5);
        // Ranked: 0.95 false, 0.9 true (P 1/2, R 1/2), then false, false -> AP = 0.5 * 0.5.
        assert!((r.ap - 0.25).abs() < 1e-12, "{}", r.ap);
    }

    #[test]
    fn perfect_detection_has_ap_one() {
        let mut m = BoxMatcher::new(0.3);
        m.add(&[b(0.0, 0.0, 10.0, 10.0, 0.9)], &[b(1.0, 1.0, 10.0, 10.0, 1.0)]);
        m.add(&[b(5.0, 5.0, 9.0, 9.0, 0.8)], &[b(5.0, 5.0, 9.0, 9.0, 1.0)]);
        let r = m.metrics();
        assert_eq!((r.recall, r.precision, r.f1, r.fp_per_frame, r.ap), (1.0, 1.0, 1.0, 0.0, 1.0));
    }

    #[test]
    fn auroc_known_values() {
        assert_eq!(auroc(&[3.0, 4.0], &[1.0, 2.0]), Some(1.0));
        assert_eq!(auroc(&[1.0, 2.0], &[3.0, 4.0]), Some(0.0));
        assert_eq!(auroc(&[1.0], &[1.0]), Some(0.5));
        // Positives 2, 4 against negatives 1, 3: pairs won 1+2 of 4 -> 0.75.
        assert_eq!(auroc(&[2.0, 4.0], &[1.0, 3.0]), Some(0.75));
        assert_eq!(auroc(&[], &[1.0]), None);
    }

    #[test]
    fn pixel_metrics_on_a_hand_made_heatmap() {
        // 10x10: the annotated 4x4 region scores 1.0, everything else 0.1 except 4 noisy pixels at 0.5.
        let (w, h) = (10, 10);
        let mut score = vec![0.1f32; w * h];
        for y in 2..6 {
            for x in 2..6 {
                score[y * w + x] = 1.0;
            }
        }
        for i in [90, 91, 92, 93] {
            score[i] = 0.5;
        }
        let mut p = PixelScores::default();
        p.add(&score, w, h, &[b(2.0, 2.0, 6.0, 6.0, 1.0)], &vec![1.0; w * h]);
        assert_eq!(p.pixel_auroc(), Some(1.0));
        let a = p.aupro(0.3).unwrap();
        assert!((a - 1.0).abs() < 1e-9, "perfectly separated: {a}");
        // A region that scores like the background is not found before the false-positive rate jumps to
        // 1: the mean overlap is 1/2 all the way to the limit.
        let mut q = PixelScores::default();
        q.add(&score, w, h, &[b(2.0, 2.0, 6.0, 6.0, 1.0), b(7.0, 0.0, 9.0, 2.0, 1.0)], &vec![1.0; w * h]);
        let a = q.aupro(0.3).unwrap();
        assert!((a - 0.5).abs() < 1e-9, "{a}");
    }
}
