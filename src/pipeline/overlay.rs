//! Overlay: draws boxes, scores, the heatmap and a status line onto RGB images with embedded-graphics
//! (a `DrawTarget` over an image buffer). Used by `--annotate`, snapshots and the preview.

use crate::pipeline::boxes::BBox;
use crate::pipeline::heatmap::Heatmap;
use embedded_graphics::mono_font::{MonoTextStyle, ascii::FONT_6X10};
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{PrimitiveStyle, Rectangle};
use embedded_graphics::text::{Baseline, Text};
use image::RgbImage;

/// An `RgbImage` as an embedded-graphics drawing surface; pixels outside are clipped.
pub struct Canvas<'a>(pub &'a mut RgbImage);

impl OriginDimensions for Canvas<'_> {
    fn size(&self) -> Size {
        Size::new(self.0.width(), self.0.height())
    }
}

impl DrawTarget for Canvas<'_> {
    type Color = Rgb888;
    type Error = std::convert::Infallible;

    fn draw_iter<I: IntoIterator<Item = Pixel<Rgb888>>>(&mut self, pixels: I) -> Result<(), Self::Error> {
        let (w, h) = self.0.dimensions();
        for Pixel(p, c) in pixels {
            if p.x >= 0 && p.y >= 0 && (p.x as u32) < w && (p.y as u32) < h {
                self.0.put_pixel(p.x as u32, p.y as u32, image::Rgb([c.r(), c.g(), c.b()]));
            }
        }
        Ok(())
    }
}

/// A perceptual-ish colour ramp (black, purple, red, yellow, white) for t in [0,1].
pub fn colormap(t: f32) -> [u8; 3] {
    const STOPS: [[f32; 3]; 5] =
        [[0.0, 0.0, 0.0], [90.0, 20.0, 140.0], [220.0, 40.0, 60.0], [250.0, 200.0, 40.0], [255.0, 255.0, 255.0]];
    let t = t.clamp(0.0, 1.0) * 4.0;
    let i = (t.floor() as usize).min(3);
    let f = t - i as f32;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    [0, 1, 2].map(|c| (a[c] + (b[c] - a[c]) * f) as u8)
}

/// Blends the heatmap over the image: scores from `threshold/4` up show, full colour at twice the
/// threshold.
pub fn blend_heatmap(img: &mut RgbImage, hm: &Heatmap, threshold: f32, alpha: f32) {
    if hm.width == 0 || hm.height == 0 || !threshold.is_finite() || threshold <= 0.0 {
        return;
    }
    let (w, h) = img.dimensions();
    for y in 0..h {
        let hy = (y as u64 * hm.height as u64 / h as u64) as u32;
        for x in 0..w {
            let hx = (x as u64 * hm.width as u64 / w as u64) as u32;
            let t = hm.at(hx, hy) / (2.0 * threshold);
            if t < 0.125 {
                continue;
            }
            let c = colormap(t);
            let a = alpha * (t * 2.0).min(1.0);
            let p = img.get_pixel_mut(x, y);
            for k in 0..3 {
                p[k] = (p[k] as f32 * (1.0 - a) + c[k] as f32 * a) as u8;
            }
        }
    }
}

/// A side-by-side-able false-colour picture of the heatmap alone.
pub fn heatmap_image(hm: &Heatmap, threshold: f32, width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        let hx = (x as u64 * hm.width as u64 / width as u64) as u32;
        let hy = (y as u64 * hm.height as u64 / height as u64) as u32;
        image::Rgb(colormap(hm.at(hx, hy) / (2.0 * threshold.max(1e-9))))
    })
}

/// Box outlines with their scores.
pub fn draw_boxes(img: &mut RgbImage, boxes: &[BBox], color: [u8; 3]) {
    let mut canvas = Canvas(img);
    let c = Rgb888::new(color[0], color[1], color[2]);
    let text = MonoTextStyle::new(&FONT_6X10, c);
    for b in boxes {
        let (x, y) = (b.x1.round() as i32, b.y1.round() as i32);
        let size = Size::new(b.width().round().max(1.0) as u32, b.height().round().max(1.0) as u32);
        let _ = Rectangle::new(Point::new(x, y), size).into_styled(PrimitiveStyle::with_stroke(c, 2)).draw(&mut canvas);
        let label = format!("{:.2}", b.score);
        let _ = Text::with_baseline(&label, Point::new(x, (y - 11).max(0)), text, Baseline::Top).draw(&mut canvas);
    }
}

/// A dark bar across the top with a line of text.
pub fn status_line(img: &mut RgbImage, line: &str) {
    let mut canvas = Canvas(img);
    let w = canvas.size().width;
    let _ = Rectangle::new(Point::zero(), Size::new(w, 13))
        .into_styled(PrimitiveStyle::with_fill(Rgb888::new(0, 0, 0)))
        .draw(&mut canvas);
    let style = MonoTextStyle::new(&FONT_6X10, Rgb888::WHITE);
    let _ = Text::with_baseline(line, Point::new(3, 2), style, Baseline::Top).draw(&mut canvas);
}

/// The full annotation of a frame: heatmap blended in, boxes, status line.
pub fn annotate(frame: &RgbImage, hm: &Heatmap, threshold: f32, boxes: &[BBox], status: &str) -> RgbImage {
    let mut img = frame.clone();
    blend_heatmap(&mut img, hm, threshold, 0.6);
    draw_boxes(&mut img, boxes, [40, 255, 80]);
    status_line(&mut img, status);
    img
}

/// Darkens what lies outside the pool mask (`mask` at `mw`x`mh`, weights in [0, 1]), so an installer
/// sees which part of the frame is watched.
pub fn dim_outside_mask(img: &mut RgbImage, mask: &[f32], mw: u32, mh: u32) {
    if mask.len() != (mw * mh) as usize || mw == 0 || mh == 0 {
        return;
    }
    let (w, h) = img.dimensions();
    for y in 0..h {
        let my = (y as u64 * mh as u64 / h as u64) as u32;
        for x in 0..w {
            let mx = (x as u64 * mw as u64 / w as u64) as u32;
            if mask[(my * mw + mx) as usize] < 0.5 {
                let p = img.get_pixel_mut(x, y);
                p.0 = p.0.map(|v| v / 3);
            }
        }
    }
}

/// Draws the part of the segment `a`-`b` inside the image (Liang-Barsky clipping to the frame plus a
/// few pixels): far-away corners (a pool or zone mostly out of the picture) draw what is in view, and
/// embedded-graphics' integer line arithmetic, which multiplies coordinate differences, cannot overflow.
fn segment(canvas: &mut Canvas, a: [f64; 2], b: [f64; 2], style: PrimitiveStyle<Rgb888>) {
    use embedded_graphics::primitives::Line;
    let (w, h) = (canvas.0.width() as f64, canvas.0.height() as f64);
    let (d, m) = ([b[0] - a[0], b[1] - a[1]], 4.0);
    if !(a.iter().chain(&b).all(|v| v.is_finite())) {
        return;
    }
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    for (p, q) in [(-d[0], a[0] + m), (d[0], w + m - a[0]), (-d[1], a[1] + m), (d[1], h + m - a[1])] {
        if p == 0.0 {
            if q < 0.0 {
                return;
            }
        } else {
            let r = q / p;
            if p < 0.0 {
                t0 = t0.max(r);
            } else {
                t1 = t1.min(r);
            }
        }
    }
    if t0 > t1 {
        return;
    }
    let at = |t: f64| Point::new((a[0] + d[0] * t).round() as i32, (a[1] + d[1] * t).round() as i32);
    let _ = Line::new(at(t0), at(t1)).into_styled(style).draw(canvas);
}

/// The pool outline and its lane lines, from the lane map's four corners.
pub fn draw_lanes(img: &mut RgbImage, corners: &[[f64; 2]; 4], lanes: u32) {
    let mut canvas = Canvas(img);
    let edge = PrimitiveStyle::with_stroke(Rgb888::new(80, 200, 255), 2);
    for i in 0..4 {
        segment(&mut canvas, corners[i], corners[(i + 1) % 4], edge);
    }
    let lerp = |a: [f64; 2], b: [f64; 2], t: f64| [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t];
    let thin = PrimitiveStyle::with_stroke(Rgb888::new(80, 200, 255), 1);
    for k in 1..lanes {
        let t = k as f64 / lanes as f64;
        segment(&mut canvas, lerp(corners[0], corners[1], t), lerp(corners[3], corners[2], t), thin);
    }
}

/// A closed polygon's outline (alarm zones), 2 px wide.
pub fn draw_polygon(img: &mut RgbImage, polygon: &[[f64; 2]], color: [u8; 3]) {
    let mut canvas = Canvas(img);
    let edge = PrimitiveStyle::with_stroke(Rgb888::new(color[0], color[1], color[2]), 2);
    for i in 0..polygon.len() {
        segment(&mut canvas, polygon[i], polygon[(i + 1) % polygon.len()], edge);
    }
}

/// A text label at a point (track IDs, lanes).
pub fn label(img: &mut RgbImage, x: i32, y: i32, text: &str, color: [u8; 3]) {
    let mut canvas = Canvas(img);
    let style = MonoTextStyle::new(&FONT_6X10, Rgb888::new(color[0], color[1], color[2]));
    let _ = Text::with_baseline(text, Point::new(x, y), style, Baseline::Top).draw(&mut canvas);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_polygon_is_outlined_and_its_inside_untouched() {
        let mut img = RgbImage::from_pixel(60, 40, image::Rgb([10, 20, 30]));
        draw_polygon(&mut img, &[[10.0, 10.0], [50.0, 10.0], [50.0, 30.0], [10.0, 30.0]], [200, 0, 0]);
        assert_eq!(img.get_pixel(30, 10).0, [200, 0, 0]);
        assert_eq!(img.get_pixel(10, 20).0, [200, 0, 0]);
        assert_eq!(img.get_pixel(30, 20).0, [10, 20, 30]);
        // Corners far outside the frame are drawn clipped, not a panic; so are a pool's.
        draw_polygon(&mut img, &[[-1e9, 0.0], [1e9, 0.0], [0.0, f64::NAN]], [1, 2, 3]);
        draw_polygon(&mut img, &[[-1e6, -1e6], [1e6, -1e6], [1e6, 1e6], [-1e6, 1e6]], [1, 2, 3]);
        draw_lanes(&mut img, &[[-1e12, 1e12], [1e12, 1e12], [1e12, -1e12], [-1e12, -1e12]], 8);
    }

    #[test]
    fn boxes_are_outlined_inside_and_untouched_elsewhere() {
        let mut img = RgbImage::from_pixel(60, 40, image::Rgb([10, 20, 30]));
        draw_boxes(&mut img, &[BBox { x1: 20.0, y1: 15.0, x2: 40.0, y2: 30.0, score: 0.9 }], [0, 255, 0]);
        assert_eq!(img.get_pixel(20, 20).0, [0, 255, 0], "left edge");
        assert_eq!(img.get_pixel(39, 20).0, [0, 255, 0], "right edge");
        assert_eq!(img.get_pixel(30, 15).0, [0, 255, 0], "top edge");
        assert_eq!(img.get_pixel(30, 22).0, [10, 20, 30], "interior untouched");
        assert_eq!(img.get_pixel(55, 38).0, [10, 20, 30], "outside untouched");
        // The score label is drawn above the box.
        assert!((0..60).any(|x| (4..14).any(|y| img.get_pixel(x, y).0 == [0, 255, 0])));
    }

    #[test]
    fn heatmap_is_blended_only_where_hot() {
        let mut img = RgbImage::from_pixel(4, 2, image::Rgb([0, 0, 255]));
        let hm = Heatmap { width: 2, height: 1, score: vec![0.0, 4.0] };
        blend_heatmap(&mut img, &hm, 1.0, 0.5);
        assert_eq!(img.get_pixel(0, 0).0, [0, 0, 255]);
        assert_ne!(img.get_pixel(3, 1).0, [0, 0, 255]);
        assert_eq!(colormap(0.0), [0, 0, 0]);
        assert_eq!(colormap(1.0), [255, 255, 255]);
    }

    #[test]
    fn outside_the_mask_is_dimmed_and_lanes_are_drawn() {
        let mut img = RgbImage::from_pixel(40, 20, image::Rgb([90, 90, 90]));
        // Mask at half resolution: left half is pool.
        let mask: Vec<f32> = (0..200).map(|i| if i % 20 < 10 { 1.0 } else { 0.0 }).collect();
        dim_outside_mask(&mut img, &mask, 20, 10);
        assert_eq!(img.get_pixel(5, 5).0, [90, 90, 90]);
        assert_eq!(img.get_pixel(35, 5).0, [30, 30, 30]);
        let mut img = RgbImage::new(100, 100);
        draw_lanes(&mut img, &[[10.0, 90.0], [90.0, 90.0], [90.0, 10.0], [10.0, 10.0]], 2);
        assert_eq!(img.get_pixel(50, 90).0, [80, 200, 255], "start wall");
        assert_eq!(img.get_pixel(50, 50).0, [80, 200, 255], "line between lanes 1 and 2");
        assert_eq!(img.get_pixel(30, 50).0, [0, 0, 0], "inside a lane");
    }

    #[test]
    fn status_line_darkens_the_top() {
        let mut img = RgbImage::from_pixel(100, 30, image::Rgb([200, 200, 200]));
        status_line(&mut img, "3 swimmers");
        assert_eq!(img.get_pixel(99, 0).0, [0, 0, 0]);
        assert!((0..60).any(|x| (2..12).any(|y| img.get_pixel(x, y).0 == [255, 255, 255])), "text drawn");
        assert_eq!(img.get_pixel(50, 20).0, [200, 200, 200]);
    }
}
