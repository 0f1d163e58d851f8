//! Inpainting: fills annotated rectangles (swimmers) from their surroundings, so frames with swimmers
//! become extra empty-pool training frames (as the seed did). Fast-marching in spirit: pixels are
//! filled in order of distance from the known area, each from a distance-weighted average of known
//! neighbours, then fine texture borrowed from just outside the hole is added back.

use crate::pipeline::boxes::BBox;
use image::RgbImage;

/// Fills every box (grown by `margin` of its size on each side) from the pixels around it.
pub fn inpaint_boxes(img: &RgbImage, boxes: &[BBox], margin: f32) -> RgbImage {
    let (w, h) = img.dimensions();
    let mut known = vec![true; (w * h) as usize];
    for b in boxes {
        let (mx, my) = (b.width() * margin, b.height() * margin);
        let x1 = (b.x1 - mx).floor().max(0.0) as u32;
        let y1 = (b.y1 - my).floor().max(0.0) as u32;
        let x2 = ((b.x2 + mx).ceil() as u32).min(w);
        let y2 = ((b.y2 + my).ceil() as u32).min(h);
        for y in y1..y2 {
            for x in x1..x2 {
                known[(y * w + x) as usize] = false;
            }
        }
    }
    inpaint_mask(img, &known)
}

/// Fills the pixels where `known` is false.
pub fn inpaint_mask(img: &RgbImage, known: &[bool]) -> RgbImage {
    let (w, h) = (img.width() as i64, img.height() as i64);
    let mut out = img.clone();
    let mut known = known.to_vec();
    if known.iter().all(|k| !k) {
        return out;
    }
    const R: i64 = 3;
    // Onion peeling: each pass fills the unknown pixels that touch the known area.
    loop {
        let front: Vec<(i64, i64)> = (0..h)
            .flat_map(|y| (0..w).map(move |x| (x, y)))
            .filter(|&(x, y)| {
                !known[(y * w + x) as usize]
                    && [(-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (1, 1), (-1, 1), (1, -1)].iter().any(|(dx, dy)| {
                        let (nx, ny) = (x + dx, y + dy);
                        nx >= 0 && ny >= 0 && nx < w && ny < h && known[(ny * w + nx) as usize]
                    })
            })
            .collect();
        if front.is_empty() {
            break;
        }
        let mut fills = Vec::with_capacity(front.len());
        for &(x, y) in &front {
            let (mut acc, mut wsum) = ([0.0f32; 3], 0.0f32);
            for dy in -R..=R {
                for dx in -R..=R {
                    let (nx, ny) = (x + dx, y + dy);
                    if nx < 0 || ny < 0 || nx >= w || ny >= h || !known[(ny * w + nx) as usize] || (dx == 0 && dy == 0) {
                        continue;
                    }
                    let d2 = (dx * dx + dy * dy) as f32;
                    if d2 > (R * R) as f32 + 0.5 {
                        continue;
                    }
                    let wt = 1.0 / d2;
                    // First-order extrapolation from q: I(q) + grad I(q) . (p - q), as Telea does.
                    let at = |xx: i64, yy: i64| -> Option<[f32; 3]> {
                        (xx >= 0 && yy >= 0 && xx < w && yy < h && known[(yy * w + xx) as usize]).then(|| {
                            let p = out.get_pixel(xx as u32, yy as u32);
                            [p[0] as f32, p[1] as f32, p[2] as f32]
                        })
                    };
                    let q = at(nx, ny).unwrap_or([0.0; 3]);
                    let grad = |a: Option<[f32; 3]>, b: Option<[f32; 3]>, c: usize| match (a, b) {
                        (Some(a), Some(b)) => (b[c] - a[c]) / 2.0,
                        (None, Some(b)) => b[c] - q[c],
                        (Some(a), None) => q[c] - a[c],
                        (None, None) => 0.0,
                    };
                    let (left, right, up, down) = (at(nx - 1, ny), at(nx + 1, ny), at(nx, ny - 1), at(nx, ny + 1));
                    for c in 0..3 {
                        let gx = grad(left, right, c);
                        let gy = grad(up, down, c);
                        acc[c] += (q[c] - gx * dx as f32 - gy * dy as f32) * wt;
                    }
                    wsum += wt;
                }
            }
            fills.push(acc.map(|a| (a / wsum.max(1e-6)).round().clamp(0.0, 255.0) as u8));
        }
        for (&(x, y), c) in front.iter().zip(fills) {
            out.put_pixel(x as u32, y as u32, image::Rgb(c));
            known[(y * w + x) as usize] = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_a_hole_from_a_smooth_surrounding() {
        // A horizontal gradient with a bright square "swimmer" in it.
        let mut img = RgbImage::from_fn(60, 40, |x, _| image::Rgb([(x * 4) as u8, 100, 200]));
        for y in 15..25 {
            for x in 25..35 {
                img.put_pixel(x, y, image::Rgb([255, 255, 255]));
            }
        }
        let out = inpaint_boxes(&img, &[BBox::new(25.0, 15.0, 35.0, 25.0)], 0.1);
        for y in 14..26 {
            for x in 24..36 {
                let p = out.get_pixel(x, y);
                let want = (x * 4) as i32;
                assert!((p[0] as i32 - want).abs() <= 12, "({x},{y}) red {} want ~{want}", p[0]);
                assert_eq!((p[1], p[2]), (100, 200));
            }
        }
        // Outside the grown box nothing changes.
        assert_eq!(out.get_pixel(5, 5), img.get_pixel(5, 5));
        assert_eq!(out.get_pixel(59, 39), img.get_pixel(59, 39));
    }

    #[test]
    fn box_touching_the_border_is_filled() {
        let img = RgbImage::from_pixel(20, 20, image::Rgb([10, 20, 30]));
        let mut with = img.clone();
        for y in 0..5 {
            for x in 0..5 {
                with.put_pixel(x, y, image::Rgb([255, 0, 0]));
            }
        }
        let out = inpaint_boxes(&with, &[BBox::new(0.0, 0.0, 5.0, 5.0)], 0.0);
        assert_eq!(out.as_raw(), img.as_raw());
    }
}
