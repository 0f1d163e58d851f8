//! Footage with swimmers in it and no annotations (`poolwatch-train train --footage`): a robust
//! per-pixel background of the recording (its temporal median, or a mode), what departs from it by more than that
//! pixel's own usual spread (waves, flicker) taken for a swimmer, and those regions filled with the
//! background and left out of the loss and of the calibration's statistics. The motion is measured on
//! shrunk frames, measured again finer when that finds almost nothing (swimmers too small for it).

use crate::pipeline::boxes::BBox;
use image::imageops::FilterType;
use image::{GrayImage, Luma, Rgb, RgbImage};
use imageproc::distance_transform::Norm;
use imageproc::region_labelling::{Connectivity, connected_components};

/// How moving regions are found in a recording. Built by its caller, never from the app's config.
#[derive(Clone, Debug, PartialEq)]
pub struct FootageSettings {
    /// The share of the frames the background must be seen in at a pixel ([`robust_background`]).
    pub background_fraction: f32,
    /// A pixel's usual distance from the background: this quantile of its distances over the frames.
    pub spread_quantile: f32,
    /// A pixel moves in a frame when its colour distance from the background exceeds this many times
    /// its usual distance over the recording.
    pub k: f32,
    /// The smallest usual distance (0-255 RGB units): calm water still has sensor noise and JPEG.
    pub min_spread: f32,
    /// An error when the median pixel's usual distance is above this: nothing in the picture is steady.
    pub max_spread: f32,
    /// Each moving region's box grows by this fraction of its size on every side (arms and wake at the
    /// edges differ from the water too little to be caught pixel by pixel).
    pub margin: f32,
    /// Each frame also leaves out what this many frames before and after it were found to hold.
    pub neighbours: usize,
    /// Moving regions smaller than this fraction of the frame are noise, not swimmers.
    pub min_area: f32,
    /// The width the motion is measured at (the background itself is kept at the frames' size).
    pub analysis_width: u32,
    /// When the analysis at `analysis_width` finds a moving region in fewer than this fraction of the
    /// frames, the motion is measured again at `fine_width` (0 or not above `analysis_width`: never),
    /// with regions from `fine_min_area` of the frame, and that is what is left out: footage of a busy
    /// pool has swimmers in most frames, so a coarse analysis that finds almost nothing is missing
    /// swimmers too small for it (an overhead camera's), not showing an empty pool.
    pub fine_below: f32,
    /// The finer analysis' width (see `fine_below`).
    pub fine_width: u32,
    /// The finer analysis' smallest region, a fraction of the frame (see `fine_below`).
    pub fine_min_area: f32,
    /// Fewer frames than this is an error: the median needs most frames to show water at every pixel.
    pub min_frames: usize,
    /// A warning when the median frame has more than this fraction left out.
    pub warn_excluded: f32,
    /// An error when the median frame has more than this fraction left out.
    pub max_excluded: f32,
}

impl Default for FootageSettings {
    fn default() -> Self {
        FootageSettings {
            background_fraction: 0.5,
            spread_quantile: 0.5,
            k: 3.0,
            min_spread: 12.0,
            max_spread: 30.0,
            margin: 0.25,
            neighbours: 0,
            min_area: 0.002,
            analysis_width: 160,
            fine_below: 0.5,
            fine_width: 320,
            fine_min_area: 0.0005,
            min_frames: 30,
            warn_excluded: 0.2,
            max_excluded: 0.5,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FootageError {
    #[error("{n} readable frames: too few to tell the swimmers from the pool (at least {min}; record more, e.g. poolwatch record --frames 300 --every 10)")]
    TooFew { n: usize, min: usize },
    #[error("frame {index} is {got:?}, the first {first:?}: footage must come from one camera at one size")]
    Size { index: usize, got: (u32, u32), first: (u32, u32) },
    #[error(
        "half of the frames have more than {median:.0}% of the picture moving (at most {max:.0}%): too busy to learn the empty pool from; record a quieter session or a longer one (--every)"
    )]
    TooBusy { median: f32, max: f32 },
    #[error(
        "the picture never settles (a typical pixel strays {spread:.0} colour levels from its steadiest value even in its quietest frames, at most {max:.0}): not a fixed camera over a pool? record again with the camera fixed"
    )]
    Unsteady { spread: f32, max: f32 },
}

/// What was taken for swimmers in one frame: boxes in the frame's coordinates.
#[derive(Clone, Debug, PartialEq)]
pub struct Exclusion {
    pub boxes: Vec<BBox>,
    /// The fraction of the frame the boxes cover.
    pub fraction: f32,
}

/// A recording's background and, per frame, what was left out.
#[derive(Clone, Debug)]
pub struct Analysis {
    pub background: RgbImage,
    pub exclusions: Vec<Exclusion>,
    /// The median over frames of the fraction left out.
    pub median_fraction: f32,
    /// The width the motion was measured at (`analysis_width`, or `fine_width` for small swimmers).
    pub width: u32,
}

/// The per-pixel, per-channel background of `frames` (all the same size, at least one): below one half,
/// the mode as the middle of the narrowest range of values that `fraction` of the frames fall in (the
/// "shorth"), which shows the water where a swimmer stayed over more than half of the recording as long
/// as the water there is seen in `fraction` of it and is steadier than the swimmer; from one half, the
/// median.
pub fn robust_background(frames: &[RgbImage], fraction: f32) -> RgbImage {
    let (w, h) = frames[0].dimensions();
    let n = frames.len();
    let span = ((n as f32 * fraction).ceil() as usize).clamp(1, n);
    let mut out = RgbImage::new(w, h);
    let mut col = vec![0u8; n];
    let raws: Vec<&[u8]> = frames.iter().map(|f| f.as_raw().as_slice()).collect();
    for (i, o) in out.iter_mut().enumerate() {
        for (c, r) in col.iter_mut().zip(&raws) {
            *c = r[i];
        }
        if fraction >= 0.5 {
            *o = *col.select_nth_unstable(n / 2).1;
            continue;
        }
        col.sort_unstable();
        let (mut best, mut at) = (u8::MAX, 0usize);
        for (j, win) in col.windows(span).enumerate() {
            let width = win[span - 1] - win[0];
            // Among equally narrow ranges, the one nearest the middle of the values.
            if width < best || (width == best && j.abs_diff((n - span) / 2) < at.abs_diff((n - span) / 2)) {
                (best, at) = (width, j);
            }
        }
        *o = ((col[at] as u16 + col[at + span - 1] as u16) / 2) as u8;
    }
    out
}

fn distance(a: &Rgb<u8>, b: &Rgb<u8>) -> f32 {
    let d = |i: usize| a[i] as f32 - b[i] as f32;
    (d(0) * d(0) + d(1) * d(1) + d(2) * d(2)).sqrt()
}

/// Finds, in every frame of a recording from one fixed camera, the regions that depart from the
/// recording's background.
pub fn analyse(frames: &[RgbImage], s: &FootageSettings) -> Result<Analysis, FootageError> {
    if frames.len() < s.min_frames.max(3) {
        return Err(FootageError::TooFew { n: frames.len(), min: s.min_frames.max(3) });
    }
    let first = frames[0].dimensions();
    if let Some((index, f)) = frames.iter().enumerate().find(|(_, f)| f.dimensions() != first) {
        return Err(FootageError::Size { index, got: f.dimensions(), first });
    }
    let background = robust_background(frames, s.background_fraction);
    let (mut found, typical, mut width) = moving(frames, s, s.analysis_width, s.min_area);
    if typical > s.max_spread {
        return Err(FootageError::Unsteady { spread: typical, max: s.max_spread });
    }
    let seen = |found: &[Vec<BBox>]| found.iter().filter(|f| !f.is_empty()).count() as f32 / found.len() as f32;
    let coarse_seen = seen(&found);
    if s.fine_width > s.analysis_width && coarse_seen < s.fine_below {
        // Swimmers in most frames, and the coarse analysis finds something in few of them: they are
        // too small for it (an overhead camera's swimmer is 15 x 2 pixels at 160 wide, which the
        // opening erases). Small regions at the finer scale are then the swimmers.
        let (fine, _, fine_width) = moving(frames, s, s.fine_width, s.fine_min_area);
        log::info!(
            "moving regions in {:.0} % of the frames at {width} pixels wide: measured again at {fine_width} wide for swimmers too small for that (regions in {:.0} % of the frames)",
            coarse_seen * 100.0,
            seen(&fine) * 100.0
        );
        (found, width) = (fine, fine_width);
    }
    let (w, h) = first;
    let mut exclusions = Vec::with_capacity(frames.len());
    // A swimmer's part that matched the water in one frame seldom does in the next ones: each frame
    // also leaves out what its neighbours in time found.
    for t in 0..found.len() {
        let near = t.saturating_sub(s.neighbours)..(t + s.neighbours + 1).min(found.len());
        let boxes: Vec<BBox> = found[near].iter().flatten().copied().collect();
        let fraction = left_out(w, h, &boxes);
        exclusions.push(Exclusion { boxes, fraction });
    }
    let mut fractions: Vec<f32> = exclusions.iter().map(|e| e.fraction).collect();
    let median_fraction = crate::util::stats::median_f32(&mut fractions).unwrap_or(0.0);
    if median_fraction > s.max_excluded {
        return Err(FootageError::TooBusy { median: median_fraction * 100.0, max: s.max_excluded * 100.0 });
    }
    Ok(Analysis { background, exclusions, median_fraction, width })
}

/// Each frame's moving regions measured at `width` (or the frames' own, if narrower): boxes in the
/// frames' coordinates, grown by the margin; the median pixel's usual distance from the background;
/// and the width used.
fn moving(frames: &[RgbImage], s: &FootageSettings, width: u32, min_area: f32) -> (Vec<Vec<BBox>>, f32, u32) {
    let (w, h) = frames[0].dimensions();
    let aw = width.clamp(8, w.max(8)).min(w);
    let ah = ((h as f32 * aw as f32 / w as f32).round() as u32).max(1);
    let small: Vec<RgbImage> = frames.iter().map(|f| image::imageops::resize(f, aw, ah, FilterType::Triangle)).collect();
    let small_bg = robust_background(&small, s.background_fraction);
    let plane = (aw * ah) as usize;
    // Each frame's distance from the background, and each pixel's usual distance.
    let dist: Vec<Vec<f32>> = small.iter().map(|f| f.pixels().zip(small_bg.pixels()).map(|(a, b)| distance(a, b)).collect()).collect();
    let mut col = vec![0.0f32; dist.len()];
    let threshold: Vec<f32> = (0..plane)
        .map(|i| {
            for (c, d) in col.iter_mut().zip(&dist) {
                *c = d[i];
            }
            let at = ((col.len() as f32 * s.spread_quantile) as usize).min(col.len() - 1);
            let usual = *col.select_nth_unstable_by(at, f32::total_cmp).1;
            s.k * usual.max(s.min_spread)
        })
        .collect();
    let mut usual: Vec<f32> = threshold.iter().map(|t| t / s.k).collect();
    let typical = crate::util::stats::median_f32(&mut usual).unwrap_or(0.0);
    let (sx, sy) = (w as f32 / aw as f32, h as f32 / ah as f32);
    let min_px = (min_area * plane as f32).max(2.0) as usize;
    let mut found: Vec<Vec<BBox>> = Vec::with_capacity(frames.len());
    for d in &dist {
        let mut binary = GrayImage::from_fn(aw, ah, |x, y| {
            let i = (y * aw + x) as usize;
            Luma([if d[i] > threshold[i] { 255 } else { 0 }])
        });
        // A closing joins a swimmer's pieces (arms, legs, the body's gaps), an opening drops specks.
        binary = imageproc::morphology::close(&binary, Norm::LInf, 1);
        binary = imageproc::morphology::open(&binary, Norm::LInf, 1);
        let labels = connected_components(&binary, Connectivity::Eight, Luma([0u8]));
        let mut extents: Vec<Option<(u32, u32, u32, u32, usize)>> = Vec::new();
        for (x, y, l) in labels.enumerate_pixels().map(|(x, y, l)| (x, y, l[0] as usize)).filter(|(_, _, l)| *l > 0) {
            if extents.len() < l {
                extents.resize(l, None);
            }
            let e = extents[l - 1].get_or_insert((x, y, x, y, 0));
            *e = (e.0.min(x), e.1.min(y), e.2.max(x), e.3.max(y), e.4 + 1);
        }
        let boxes: Vec<BBox> = extents
            .into_iter()
            .flatten()
            .filter(|e| e.4 >= min_px)
            .map(|(x1, y1, x2, y2, _)| {
                let b = BBox::new(x1 as f32 * sx, y1 as f32 * sy, (x2 + 1) as f32 * sx, (y2 + 1) as f32 * sy);
                let (mx, my) = (b.width() * s.margin + sx, b.height() * s.margin + sy);
                BBox::new((b.x1 - mx).max(0.0), (b.y1 - my).max(0.0), (b.x2 + mx).min(w as f32), (b.y2 + my).min(h as f32))
            })
            .collect();
        found.push(boxes);
    }
    (found, typical, aw)
}

/// A `w` x `h` mask: 255 where the pixel is kept, 0 inside any of `boxes`.
pub fn keep_mask(w: u32, h: u32, boxes: &[BBox]) -> GrayImage {
    let mut m = GrayImage::from_pixel(w, h, Luma([255]));
    for b in boxes {
        let (x1, y1) = (b.x1.floor().max(0.0) as u32, b.y1.floor().max(0.0) as u32);
        let (x2, y2) = ((b.x2.ceil().max(0.0) as u32).min(w), (b.y2.ceil().max(0.0) as u32).min(h));
        for y in y1..y2 {
            for x in x1..x2 {
                m.put_pixel(x, y, Luma([0]));
            }
        }
    }
    m
}

/// The fraction of a `w` x `h` frame that `boxes` cover (overlaps counted once).
pub fn left_out(w: u32, h: u32, boxes: &[BBox]) -> f32 {
    let keep = keep_mask(w, h, boxes);
    keep.pixels().filter(|p| p[0] == 0).count() as f32 / (w * h).max(1) as f32
}

/// `boxes` given for a `from`-sized frame, in the coordinates of a `to`-sized one.
pub fn scale_boxes(boxes: &[BBox], from: (u32, u32), to: (u32, u32)) -> Vec<BBox> {
    let (sx, sy) = (to.0 as f32 / from.0 as f32, to.1 as f32 / from.1 as f32);
    boxes.iter().map(|b| BBox::new(b.x1 * sx, b.y1 * sy, b.x2 * sx, b.y2 * sy)).collect()
}

/// The frame with its left-out pixels replaced by the background's (same size).
pub fn fill(frame: &RgbImage, background: &RgbImage, keep: &GrayImage) -> RgbImage {
    let mut out = frame.clone();
    for ((o, b), k) in out.pixels_mut().zip(background.pixels()).zip(keep.pixels()) {
        if k[0] == 0 {
            *o = *b;
        }
    }
    out
}

/// The frame as the training report shows it: what was left out tinted red, outlined red where it
/// moved, yellow where a first round's model found it (the self-training round, `selftrain.rs`).
pub fn preview(frame: &RgbImage, moving: &[BBox], found: &[BBox]) -> RgbImage {
    let all: Vec<BBox> = moving.iter().chain(found).copied().collect();
    let keep = keep_mask(frame.width(), frame.height(), &all);
    let mut out = frame.clone();
    for (o, k) in out.pixels_mut().zip(keep.pixels()) {
        if k[0] == 0 {
            *o = Rgb([((o[0] as u16 + 255) / 2) as u8, o[1] / 2, o[2] / 2]);
        }
    }
    for (boxes, colour) in [(moving, Rgb([255, 40, 40])), (found, Rgb([255, 230, 0]))] {
        for b in boxes {
            let (x1, y1) = (b.x1.max(0.0) as i32, b.y1.max(0.0) as i32);
            let (bw, bh) = ((b.width().round() as u32).max(1), (b.height().round() as u32).max(1));
            imageproc::drawing::draw_hollow_rect_mut(&mut out, imageproc::rect::Rect::at(x1, y1).of_size(bw, bh), colour);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::rng::Rng;

    /// Water with noise and a band of stronger ripple at the top; a dark 12x8 swimmer crossing.
    fn recording(n: usize, swimmer: bool) -> Vec<RgbImage> {
        let mut rng = Rng::new(3);
        (0..n)
            .map(|t| {
                let mut f = RgbImage::from_fn(160, 120, |_, y| {
                    let ripple = if y < 20 { 30.0 } else { 4.0 };
                    let n = (rng.f32() - 0.5) * ripple;
                    Rgb([40, (150.0 + n) as u8, (200.0 + n) as u8])
                });
                if swimmer {
                    let x0 = 5 + (t as u32 * 4) % 140;
                    for y in 60..68 {
                        for x in x0..x0 + 12 {
                            f.put_pixel(x, y, Rgb([120, 90, 70]));
                        }
                    }
                }
                f
            })
            .collect()
    }

    #[test]
    fn finds_the_swimmer_and_not_the_ripple() {
        let frames = recording(40, true);
        let a = analyse(&frames, &FootageSettings::default()).unwrap();
        assert_eq!(a.width, 160, "a swimmer the coarse analysis finds keeps it");
        assert_eq!(a.background.get_pixel(50, 64)[0], 40, "the background is water where the swimmer passed");
        for (t, e) in a.exclusions.iter().enumerate() {
            let x0 = (5 + (t as u32 * 4) % 140) as f32;
            // Its own box and its neighbours' in time (the swimmer 4 px earlier and later).
            assert!((1..=3).contains(&e.boxes.len()), "frame {t}: {:?}", e.boxes);
            assert!(e.boxes.iter().any(|b| b.x1 <= x0 && b.x2 >= x0 + 12.0 && b.y1 <= 60.0 && b.y2 >= 68.0), "frame {t}: {:?} covers the swimmer", e.boxes);
            assert!(e.boxes.iter().all(|b| b.y1 > 20.0), "frame {t}: the rippling band is not taken for a swimmer: {:?}", e.boxes);
            assert!(e.fraction < 0.06, "frame {t}: {}", e.fraction);
        }
        let keep = keep_mask(160, 120, &a.exclusions[0].boxes);
        let filled = fill(&frames[0], &a.background, &keep);
        assert_eq!(filled.get_pixel(10, 64)[0], 40, "the swimmer is replaced by water");
        assert_eq!(filled.get_pixel(100, 100), frames[0].get_pixel(100, 100), "the rest is untouched");
    }

    /// A 640 x 480 recording whose swimmer, a dark 40 x 6 body crossing, is an overhead camera's:
    /// 10 x 1.5 pixels at the coarse analysis' 160 wide, which its opening erases.
    fn small_swimmer_recording(n: usize) -> (Vec<RgbImage>, Vec<BBox>) {
        let mut rng = Rng::new(5);
        let mut truth = Vec::with_capacity(n);
        let frames = (0..n)
            .map(|t| {
                let mut f = RgbImage::from_fn(640, 480, |_, _| {
                    let n = (rng.f32() - 0.5) * 6.0;
                    Rgb([40, (150.0 + n) as u8, (200.0 + n) as u8])
                });
                let (x0, y0) = (20 + (t as u32 * 13) % 540, 200 + (t as u32 % 3) * 40);
                for y in y0..y0 + 6 {
                    for x in x0..x0 + 40 {
                        f.put_pixel(x, y, Rgb([120, 90, 70]));
                    }
                }
                truth.push(BBox::new(x0 as f32, y0 as f32, (x0 + 40) as f32, (y0 + 6) as f32));
                f
            })
            .collect();
        (frames, truth)
    }

    fn covered(a: &Analysis, truth: &[BBox]) -> usize {
        a.exclusions.iter().zip(truth).filter(|(e, g)| e.boxes.iter().any(|b| b.x1 <= g.x1 && b.x2 >= g.x2 && b.y1 <= g.y1 && b.y2 >= g.y2)).count()
    }

    #[test]
    fn swimmers_too_small_for_the_coarse_analysis_are_measured_again_finer() {
        let (frames, truth) = small_swimmer_recording(40);
        let coarse = analyse(&frames, &FootageSettings { fine_below: 0.0, ..FootageSettings::default() }).unwrap();
        assert_eq!(coarse.width, 160);
        assert!(covered(&coarse, &truth) < 4, "160 wide misses the small swimmer: {} of 40", covered(&coarse, &truth));
        let a = analyse(&frames, &FootageSettings::default()).unwrap();
        assert_eq!(a.width, 320, "measured again at the finer width");
        assert!(covered(&a, &truth) >= 38, "the swimmer left out in {} of 40 frames", covered(&a, &truth));
        assert!(a.median_fraction < 0.01, "only the swimmer: {}", a.median_fraction);
    }

    #[test]
    fn where_a_swimmer_stays_over_most_of_the_recording_the_background_is_still_water() {
        // The swimmer rests at x 40..52 in 24 of 40 frames (60 %), and crosses elsewhere in the rest.
        let mut frames = recording(40, false);
        for (t, f) in frames.iter_mut().enumerate() {
            let x0 = if t < 24 { 40 } else { 80 + (t as u32 - 24) * 4 };
            let shade = 60 + (t as u32 * 37 % 90) as u8; // a moving body: its pixels change
            for y in 60..68 {
                for x in x0..x0 + 12 {
                    f.put_pixel(x, y, Rgb([shade + 60, shade, shade / 2]));
                }
            }
        }
        // The default (the median) takes the resting swimmer for the background; the mode of a quarter
        // of the frames does not. (docs/accuracy.md: the mode left out more of real recordings and
        // scored worse, so it is not the default.)
        let a = analyse(&frames, &FootageSettings::default()).unwrap();
        assert_ne!(a.background.get_pixel(45, 64)[0], 40);
        let a = analyse(&frames, &FootageSettings { background_fraction: 0.25, ..FootageSettings::default() }).unwrap();
        let bg = a.background.get_pixel(45, 64);
        assert_eq!(bg[0], 40, "water, not the resting swimmer: {bg:?}");
        // Where it crossed, it is found. (Where it rested, its usual distance is its own: a swimmer
        // who stays over most of a recording is not told from the pool. README says so.)
        for t in 26..40 {
            let x0 = (80 + (t - 24) * 4) as f32;
            let hit = a.exclusions[t].boxes.iter().any(|b| b.x1 <= x0 && b.x2 >= x0 + 12.0 && b.y1 <= 60.0 && b.y2 >= 68.0);
            assert!(hit, "frame {t}: {:?}", a.exclusions[t].boxes);
        }
    }

    #[test]
    fn an_empty_recording_leaves_almost_nothing_out() {
        let a = analyse(&recording(40, false), &FootageSettings::default()).unwrap();
        let boxes: usize = a.exclusions.iter().map(|e| e.boxes.len()).sum();
        assert!(boxes <= 2, "{boxes} boxes on an empty pool");
        assert_eq!(a.median_fraction, 0.0);
    }

    #[test]
    fn too_few_busy_or_mixed_footage_is_an_error() {
        let s = FootageSettings::default();
        assert_eq!(analyse(&recording(10, true), &s).unwrap_err(), FootageError::TooFew { n: 10, min: 30 });
        let mut mixed = recording(40, false);
        mixed[7] = RgbImage::new(80, 60);
        assert!(matches!(analyse(&mixed, &s), Err(FootageError::Size { index: 7, .. })));
        // A crowded pool: calm water, and in every frame blocks of swimmers over about 60 % of it.
        let mut rng = Rng::new(5);
        let crowded: Vec<RgbImage> = (0..40)
            .map(|_| {
                let mut f = RgbImage::from_pixel(64, 48, Rgb([40, 150, 200]));
                for by in 0..6 {
                    for bx in 0..8 {
                        if rng.f32() < 0.6 {
                            let c = Rgb([rng.int(120, 250) as u8, rng.int(40, 120) as u8, rng.int(20, 90) as u8]);
                            for y in by * 8..by * 8 + 8 {
                                for x in bx * 8..bx * 8 + 8 {
                                    f.put_pixel(x, y, c);
                                }
                            }
                        }
                    }
                }
                f
            })
            .collect();
        // Too busy (so much moves in most frames) or unsteady (swimmers over most pixels in so many
        // frames that their usual distance is the swimmers'): either way, an error.
        let e = analyse(&crowded, &s).unwrap_err();
        assert!(matches!(e, FootageError::TooBusy { .. } | FootageError::Unsteady { .. }), "{e}");
        // Noise everywhere, nothing steady to call the pool.
        let noise: Vec<RgbImage> = (0..40).map(|_| RgbImage::from_fn(64, 48, |_, _| Rgb([rng.int(0, 255) as u8, rng.int(0, 255) as u8, rng.int(0, 255) as u8]))).collect();
        let e = analyse(&noise, &s).unwrap_err();
        assert!(matches!(e, FootageError::Unsteady { .. }), "{e}");
    }

    #[test]
    fn boxes_scale_between_sizes() {
        let b = scale_boxes(&[BBox::new(10.0, 10.0, 20.0, 30.0)], (160, 120), (640, 480));
        assert_eq!(b[0], BBox::new(40.0, 40.0, 80.0, 120.0));
        let m = keep_mask(640, 480, &b);
        assert_eq!(m.get_pixel(40, 40)[0], 0);
        assert_eq!(m.get_pixel(80, 120)[0], 255);
    }
}
