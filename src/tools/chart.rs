//! Small line charts (PR and PRO curves) drawn with embedded-graphics onto an RGB image, so the device
//! binary needs no plotting library.

use crate::pipeline::overlay::Canvas;
use embedded_graphics::mono_font::{MonoTextStyle, ascii::FONT_6X10};
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{Line, Polyline, PrimitiveStyle};
use embedded_graphics::text::Text;
use image::RgbImage;

/// One curve: a label, a colour and its points in data units.
pub struct Series<'a> {
    pub label: &'a str,
    pub color: [u8; 3],
    pub points: Vec<(f64, f64)>,
}

/// Draws curves in the box [0, x_max] x [0, 1] with axes, a title and a legend.
pub fn line_chart(title: &str, x_label: &str, y_label: &str, x_max: f64, series: &[Series]) -> RgbImage {
    let (w, h) = (520i32, 400i32);
    let (left, right, top, bottom) = (50i32, 20i32, 30i32, 40i32);
    let mut img = RgbImage::from_pixel(w as u32, h as u32, image::Rgb([255, 255, 255]));
    let mut c = Canvas(&mut img);
    let black = MonoTextStyle::new(&FONT_6X10, Rgb888::BLACK);
    let to_px = |x: f64, y: f64| {
        let px = left as f64 + (x / x_max).clamp(0.0, 1.0) * (w - left - right) as f64;
        let py = (h - bottom) as f64 - y.clamp(0.0, 1.0) * (h - top - bottom) as f64;
        Point::new(px.round() as i32, py.round() as i32)
    };
    let grid = PrimitiveStyle::with_stroke(Rgb888::new(220, 220, 220), 1);
    for i in 0..=4 {
        let f = i as f64 / 4.0;
        let _ = Line::new(to_px(0.0, f), to_px(x_max, f)).into_styled(grid).draw(&mut c);
        let _ = Line::new(to_px(x_max * f, 0.0), to_px(x_max * f, 1.0)).into_styled(grid).draw(&mut c);
        let _ = Text::new(&format!("{f:.2}"), to_px(0.0, f) + Point::new(-40, 3), black).draw(&mut c);
        let _ = Text::new(&format!("{:.2}", x_max * f), to_px(x_max * f, 0.0) + Point::new(-12, 14), black).draw(&mut c);
    }
    let axis = PrimitiveStyle::with_stroke(Rgb888::BLACK, 1);
    let _ = Line::new(to_px(0.0, 0.0), to_px(x_max, 0.0)).into_styled(axis).draw(&mut c);
    let _ = Line::new(to_px(0.0, 0.0), to_px(0.0, 1.0)).into_styled(axis).draw(&mut c);
    let _ = Text::new(title, Point::new(left, 16), black).draw(&mut c);
    let _ = Text::new(x_label, Point::new(w / 2 - 30, h - 8), black).draw(&mut c);
    let _ = Text::new(y_label, Point::new(4, 16), black).draw(&mut c);
    for (k, s) in series.iter().enumerate() {
        let color = Rgb888::new(s.color[0], s.color[1], s.color[2]);
        let pts: Vec<Point> = s.points.iter().map(|&(x, y)| to_px(x, y)).collect();
        let _ = Polyline::new(&pts).into_styled(PrimitiveStyle::with_stroke(color, 2)).draw(&mut c);
        let ly = top + 14 + 14 * k as i32;
        let _ = Line::new(Point::new(w - 150, ly - 3), Point::new(w - 130, ly - 3)).into_styled(PrimitiveStyle::with_stroke(color, 2)).draw(&mut c);
        let _ = Text::new(s.label, Point::new(w - 125, ly), black).draw(&mut c);
    }
    img
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_the_curve_where_the_data_says() {
        let img = line_chart("t", "x", "y", 1.0, &[Series { label: "s", color: [255, 0, 0], points: vec![(0.0, 1.0), (1.0, 1.0)] }]);
        // y = 1 is the top of the plot area (row 30): the red line runs along it.
        assert_eq!(img.get_pixel(250, 30).0, [255, 0, 0]);
        assert_ne!(img.get_pixel(250, 200).0, [255, 0, 0]);
    }
}
