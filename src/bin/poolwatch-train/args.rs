//! Arguments several subcommands share: the pool mask, the heatmap smoothing and brightness weight.

use anyhow::{Result, anyhow};
use poolwatch::pipeline::heatmap::{BLUR_SIGMA_RANGE, BRIGHTNESS_WEIGHT_RANGE};
use poolwatch::pipeline::pool::{MaskSpec, PoolSettings};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct MaskArgs {
    /// Pool mask: none (whole frame), auto (water colour), poly:X,Y;X,Y;X,Y... (source pixels), or a
    /// mask image file.
    #[arg(long, default_value = "none")]
    pub mask: String,
}

impl MaskArgs {
    pub fn pool(&self) -> Result<PoolSettings> {
        let mask = match self.mask.as_str() {
            "none" => MaskSpec::None,
            "auto" => MaskSpec::Auto,
            s if s.starts_with("poly:") => MaskSpec::Polygon(parse_polygon(&s[5..]).map_err(|e| anyhow!("--mask: {e}"))?),
            file => {
                if !Path::new(file).is_file() {
                    anyhow::bail!("--mask: '{file}' is not none, auto, poly:X,Y;X,Y;... or an existing mask image");
                }
                MaskSpec::Image(PathBuf::from(file))
            }
        };
        Ok(PoolSettings { mask, ..PoolSettings::default() })
    }
}

/// Parses `X,Y;X,Y;X,Y...` (at least three points).
fn parse_polygon(s: &str) -> Result<Vec<[f64; 2]>, String> {
    let pts = s
        .split(';')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            let (x, y) = p.split_once(',').ok_or_else(|| format!("'{p}' is not X,Y"))?;
            let n = |v: &str| v.trim().parse::<f64>().map_err(|_| format!("'{v}' is not a number"));
            Ok([n(x)?, n(y)?])
        })
        .collect::<Result<Vec<_>, String>>()?;
    if pts.len() < 3 {
        return Err(format!("a polygon needs at least 3 points, got {}", pts.len()));
    }
    Ok(pts)
}

/// Parses `LO,HI` with 0 <= LO < HI <= 1.
pub fn parse_pair(s: &str) -> Result<[f32; 2], String> {
    let (a, b) = s.split_once(',').ok_or_else(|| format!("'{s}' is not LO,HI"))?;
    let a: f32 = a.trim().parse().map_err(|_| format!("'{a}' is not a number"))?;
    let b: f32 = b.trim().parse().map_err(|_| format!("'{b}' is not a number"))?;
    if !(0.0 <= a && a < b && b <= 1.0) {
        return Err(format!("need 0 <= LO < HI <= 1, got {a},{b}"));
    }
    Ok([a, b])
}

/// `--blur-sigma`: `auto` (None) or a smoothing in model pixels.
#[derive(Clone, Copy, Debug)]
pub struct BlurArg(pub Option<f32>);

pub fn parse_brightness_weight(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(v) if BRIGHTNESS_WEIGHT_RANGE.contains(&v) => Ok(v),
        _ => Err(format!("'{s}' is not a weight in [{}, {}]", BRIGHTNESS_WEIGHT_RANGE.start(), BRIGHTNESS_WEIGHT_RANGE.end())),
    }
}

pub fn parse_blur(s: &str) -> Result<BlurArg, String> {
    if s == "auto" {
        return Ok(BlurArg(None));
    }
    match s.parse::<f32>() {
        Ok(v) if BLUR_SIGMA_RANGE.contains(&v) => Ok(BlurArg(Some(v))),
        _ => Err(format!("'{s}' is neither auto nor a smoothing in [{}, {}] model pixels", BLUR_SIGMA_RANGE.start(), BLUR_SIGMA_RANGE.end())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polygon_masks_parse_and_bad_ones_are_refused() {
        assert_eq!(parse_polygon("0,0; 10,0;10,5").unwrap(), vec![[0.0, 0.0], [10.0, 0.0], [10.0, 5.0]]);
        assert!(parse_polygon("0,0;1,1").unwrap_err().contains("at least 3"));
        assert!(parse_polygon("0,0;1;2,2").unwrap_err().contains("not X,Y"));
        let m = MaskArgs { mask: "poly:0,0;10,0;10,5".into() }.pool().unwrap();
        assert!(matches!(m.mask, MaskSpec::Polygon(ref p) if p.len() == 3));
        assert!(MaskArgs { mask: "/no/such/mask.png".into() }.pool().unwrap_err().to_string().contains("--mask"));
    }
}
