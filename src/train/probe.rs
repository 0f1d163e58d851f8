//! A model's self-check without labels: synthetic bodies pasted into the venue's held-out empty frames
//! and looked for by the device's own detector, as it will run (calibration, pool mask, box stage).
//!
//! A network that has learned to reconstruct nearly anything (a training run gone wrong) finds few of
//! them: the trainer trains one candidate more than the networks it keeps and leaves out the one that
//! finds the fewest (`poolwatch-train train --models 2`), and every report says how many it found.

use crate::pipeline::boxes::BBox;
use crate::pipeline::detect::{DetectError, Detector, DetectorSettings};
use crate::pipeline::model::Autoencoder;
use crate::util::rng::Rng;
use image::RgbImage;
use serde::{Deserialize, Serialize};

/// How many bodies, how often.
#[derive(Clone, Debug)]
pub struct ProbeSettings {
    /// Bodies pasted into each copy of a frame.
    pub bodies: usize,
    /// Copies of each frame, each with other bodies.
    pub copies: usize,
    pub seed: u64,
    /// A found body: a box overlapping it by at least this (IoU).
    pub iou: f32,
}

impl Default for ProbeSettings {
    fn default() -> Self {
        ProbeSettings { bodies: 2, copies: 3, seed: 7, iou: 0.3 }
    }
}

/// What the detector made of the pasted bodies.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProbeResult {
    pub frames: usize,
    pub bodies: usize,
    pub found: usize,
    /// Boxes that match no body.
    pub false_boxes: usize,
    pub recall: f32,
    pub false_boxes_per_frame: f32,
    /// Of recall and precision.
    pub f1: f32,
}

/// Which of the candidates' self-checks (their F1) to keep, `keep` of them: all but those that found
/// the fewest (of equals, the earlier stays), in the candidates' order. The check tells a network gone
/// wrong from the others, not the better of two good ones, so it does not reorder them.
pub fn choose(f1: &[f32], keep: usize) -> Vec<usize> {
    let v = |i: usize| if f1[i].is_nan() { f32::NEG_INFINITY } else { f1[i] };
    let mut order: Vec<usize> = (0..f1.len()).collect();
    order.sort_by(|&a, &b| v(b).total_cmp(&v(a)));
    order.truncate(keep);
    order.sort_unstable();
    order
}

/// A body as the probe draws it: an ellipse of skin or of a dark suit, with the texture of noise and a
/// soft edge, partly transparent as a body under moving water is.
struct Body {
    cx: f32,
    cy: f32,
    rx: f32,
    ry: f32,
    colour: [f32; 3],
    opacity: f32,
}

impl Body {
    fn random(rng: &mut Rng, w: f32, h: f32) -> Body {
        let mut len = rng.range(0.08, 0.2) * w;
        let mut thick = len * rng.range(0.2, 0.35);
        if rng.f32() < 0.3 {
            // Seen end-on.
            std::mem::swap(&mut len, &mut thick);
        }
        let x = rng.range(0.05 * w, (0.95 * w - len).max(0.05 * w));
        let y = rng.range(0.1 * h, (0.95 * h - thick).max(0.1 * h));
        let colour = if rng.f32() < 0.6 {
            [rng.range(170.0, 230.0), rng.range(110.0, 160.0), rng.range(80.0, 130.0)]
        } else {
            let v = rng.range(10.0, 60.0);
            [v + rng.range(0.0, 30.0), v + rng.range(0.0, 30.0), v + rng.range(0.0, 30.0)]
        };
        Body { cx: x + len / 2.0, cy: y + thick / 2.0, rx: len / 2.0, ry: thick / 2.0, colour, opacity: rng.range(0.67, 0.92) }
    }

    fn truth(&self) -> BBox {
        BBox::new(self.cx - self.rx, self.cy - self.ry, self.cx + self.rx, self.cy + self.ry)
    }

    fn paste(&self, img: &mut RgbImage, rng: &mut Rng) {
        const FEATHER: f32 = 2.0;
        let (w, h) = img.dimensions();
        let x0 = (self.cx - self.rx - FEATHER).floor().max(0.0) as u32;
        let y0 = (self.cy - self.ry - FEATHER).floor().max(0.0) as u32;
        let x1 = ((self.cx + self.rx + FEATHER).ceil() as u32).min(w);
        let y1 = ((self.cy + self.ry + FEATHER).ceil() as u32).min(h);
        let r = self.rx.min(self.ry).max(1.0);
        for y in y0..y1 {
            for x in x0..x1 {
                let (dx, dy) = ((x as f32 + 0.5 - self.cx) / self.rx, (y as f32 + 0.5 - self.cy) / self.ry);
                let d = (dx * dx + dy * dy).sqrt();
                let a = self.opacity * ((1.0 - d) * r / FEATHER + 0.5).clamp(0.0, 1.0);
                if a <= 0.0 {
                    continue;
                }
                let p = img.get_pixel_mut(x, y);
                for (c, base) in p.0.iter_mut().zip(self.colour) {
                    let v = base + 12.0 * rng.normal();
                    *c = (*c as f32 * (1.0 - a) + v.clamp(0.0, 255.0) * a).round() as u8;
                }
            }
        }
    }
}

/// Pastes bodies into copies of `frames` (empty ones the model has not trained on) and runs the
/// detector of `model` on each, with its defaults and the pool mask the model was calibrated with, as
/// a device without a config does; deterministic for a seed.
pub fn probe(model: Autoencoder, frames: &[&RgbImage], s: &ProbeSettings) -> Result<ProbeResult, DetectError> {
    let mut det = Detector::new(model, &DetectorSettings::default());
    let (mw, mh) = det.model().size();
    let mut rng = Rng::new(s.seed);
    let mut r = ProbeResult::default();
    for copy in 0..s.copies {
        for (i, frame) in frames.iter().enumerate() {
            let mut img = (*frame).clone();
            det.prepare(&img)?;
            let mask = det.mask();
            let (w, h) = (img.width() as f32, img.height() as f32);
            // A body in the pool: its centre on a pool pixel (a few tries, then where it fell).
            let in_pool = |b: &Body| {
                if mask.is_empty() {
                    return true;
                }
                let (x, y) = (((b.cx / w * mw as f32) as u32).min(mw - 1), ((b.cy / h * mh as f32) as u32).min(mh - 1));
                mask[(y * mw + x) as usize] > 0.0
            };
            let mut truths = Vec::with_capacity(s.bodies);
            let mut paint = Rng::fork(s.seed, (copy * frames.len() + i) as u64);
            for _ in 0..s.bodies {
                let mut b = Body::random(&mut rng, w, h);
                for _ in 0..20 {
                    if in_pool(&b) {
                        break;
                    }
                    b = Body::random(&mut rng, w, h);
                }
                b.paste(&mut img, &mut paint);
                truths.push(b.truth());
            }
            let boxes = det.detect(&img)?.boxes;
            let mut used = vec![false; boxes.len()];
            for t in &truths {
                let best = boxes.iter().enumerate().filter(|(k, _)| !used[*k]).map(|(k, b)| (k, b.iou(t))).max_by(|a, b| a.1.total_cmp(&b.1));
                if let Some((k, iou)) = best
                    && iou >= s.iou
                {
                    used[k] = true;
                    r.found += 1;
                }
            }
            r.false_boxes += used.iter().filter(|u| !**u).count();
            r.bodies += truths.len();
            r.frames += 1;
        }
    }
    r.recall = r.found as f32 / r.bodies.max(1) as f32;
    r.false_boxes_per_frame = r.false_boxes as f32 / r.frames.max(1) as f32;
    let precision = r.found as f32 / (r.found + r.false_boxes).max(1) as f32;
    r.f1 = if r.recall + precision > 0.0 { 2.0 * r.recall * precision / (r.recall + precision) } else { 0.0 };
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_model_finds_bodies_pasted_into_its_venue_and_an_untrained_one_does_not() {
        let scene = crate::synth::Scene::new(1, 640, 480, (0, 0));
        let frames: Vec<RgbImage> = (0..4).map(|i| scene.render(900.0 + i as f32 * 3.0, 5000 + i).0).collect();
        let refs: Vec<&RgbImage> = frames.iter().collect();
        let s = ProbeSettings::default();
        let good = probe(Autoencoder::embedded().unwrap(), &refs, &s).unwrap();
        assert_eq!((good.frames, good.bodies), (12, 24));
        assert!(good.recall >= 0.7, "{good:?}");
        // Deterministic.
        assert_eq!(probe(Autoencoder::embedded().unwrap(), &refs, &s).unwrap(), good);
        // The same network reconstructing the bodies as well as the water would find none: here, a
        // network of random weights with the shipped calibration sees noise everywhere or nothing.
        let arch = crate::pipeline::model::Arch::by_name("fast").unwrap();
        let mut meta = Autoencoder::embedded().unwrap().meta().clone();
        meta.arch = Some(arch.clone());
        let proto = crate::train::onnx::build_model(&meta, &crate::train::onnx::random_weights(&arch, 9)).unwrap();
        let bad = probe(Autoencoder::from_proto(std::path::Path::new("r"), &proto).unwrap(), &refs, &s).unwrap();
        assert!(bad.f1 < good.f1 - 0.3, "random {bad:?} against shipped {good:?}");
    }

    #[test]
    fn the_candidates_that_found_the_fewest_are_left_out_the_others_keep_their_order() {
        assert_eq!(choose(&[0.51, 0.58, 0.59], 2), [1, 2]);
        assert_eq!(choose(&[0.54, 0.48, 0.56], 2), [0, 2]);
        assert_eq!(choose(&[0.79, 0.60, 0.79], 2), [0, 2]);
        assert_eq!(choose(&[0.6, 0.6, 0.6], 2), [0, 1], "of equals, the earlier");
        assert_eq!(choose(&[0.3, 0.9], 1), [1]);
        assert_eq!(choose(&[0.3, f32::NAN, 0.5], 2), [0, 2], "a check that measured nothing counts as the worst");
    }

    #[test]
    fn a_body_is_pasted_where_its_box_says() {
        let mut img = RgbImage::from_pixel(100, 80, image::Rgb([0, 0, 255]));
        let b = Body { cx: 50.0, cy: 40.0, rx: 20.0, ry: 6.0, colour: [220.0, 140.0, 100.0], opacity: 0.9 };
        b.paste(&mut img, &mut Rng::new(1));
        assert!(img.get_pixel(50, 40)[0] > 150, "the centre takes the body's colour");
        assert_eq!(img.get_pixel(50, 50).0, [0, 0, 255], "below the body the water stays");
        assert_eq!(img.get_pixel(75, 40).0, [0, 0, 255], "beyond its end too");
        let t = b.truth();
        assert_eq!((t.x1, t.y1, t.x2, t.y2), (30.0, 34.0, 70.0, 46.0));
    }
}
