//! Camera pixel formats to RGB: packed YUYV (YUV 4:2:2, BT.601 limited range) and MJPEG.

use image::RgbImage;

/// BT.601 limited-range YUV to RGB, in integer arithmetic.
#[inline]
fn yuv_to_rgb(y: u8, u: u8, v: u8) -> [u8; 3] {
    let c = (y as i32 - 16).max(0) * 298;
    let d = u as i32 - 128;
    let e = v as i32 - 128;
    let clamp = |x: i32| ((x + 128) >> 8).clamp(0, 255) as u8;
    [clamp(c + 409 * e), clamp(c - 100 * d - 208 * e), clamp(c + 516 * d)]
}

/// Converts a YUYV frame (`stride` bytes per row, at least `2 * width`) to RGB.
pub fn yuyv_to_rgb(data: &[u8], width: u32, height: u32, stride: usize) -> Result<RgbImage, String> {
    let (w, h) = (width as usize, height as usize);
    if w % 2 != 0 {
        return Err(format!("YUYV width {w} is odd"));
    }
    let stride = if stride == 0 { 2 * w } else { stride };
    if h == 0 || stride < 2 * w || data.len() < stride * (h - 1) + 2 * w {
        return Err(format!("YUYV frame has {} bytes, {w}x{h} needs {}", data.len(), stride * h));
    }
    let mut out = vec![0u8; w * h * 3];
    for y in 0..h {
        let row = &data[y * stride..y * stride + 2 * w];
        let dst = &mut out[y * w * 3..(y + 1) * w * 3];
        for (src, d) in row.chunks_exact(4).zip(dst.chunks_exact_mut(6)) {
            let [y0, u, y1, v] = [src[0], src[1], src[2], src[3]];
            d[..3].copy_from_slice(&yuv_to_rgb(y0, u, v));
            d[3..].copy_from_slice(&yuv_to_rgb(y1, u, v));
        }
    }
    RgbImage::from_raw(width, height, out).ok_or_else(|| "YUYV conversion size mismatch".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuyv_known_colours() {
        // Black, white, and the BT.601 codes of pure red and blue.
        let data = [16, 128, 235, 128, 81, 90, 81, 240, 41, 240, 41, 110];
        let img = yuyv_to_rgb(&data, 6, 1, 0).unwrap();
        let px: Vec<[u8; 3]> = img.pixels().map(|p| p.0).collect();
        assert_eq!(px[0], [0, 0, 0]);
        assert_eq!(px[1], [255, 255, 255]);
        assert!(px[2][0] > 240 && px[2][1] < 10 && px[2][2] < 10, "red {:?}", px[2]);
        assert!(px[4][2] > 240 && px[4][0] < 10 && px[4][1] < 10, "blue {:?}", px[4]);
    }

    #[test]
    fn stride_padding_is_skipped_and_short_frames_refused() {
        // 2x2 with 8 bytes per row (4 of padding).
        let data = [235, 128, 235, 128, 9, 9, 9, 9, 16, 128, 16, 128, 9, 9, 9, 9];
        let img = yuyv_to_rgb(&data, 2, 2, 8).unwrap();
        assert_eq!(img.get_pixel(1, 0).0, [255, 255, 255]);
        assert_eq!(img.get_pixel(0, 1).0, [0, 0, 0]);
        assert!(yuyv_to_rgb(&data[..10], 2, 2, 8).is_err());
        assert!(yuyv_to_rgb(&data, 3, 2, 8).is_err());
    }
}
