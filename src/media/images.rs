//! Image files: listing them (files, directories, globs, in name order) and decoding them to RGB.

use std::path::{Path, PathBuf};

/// An image file that cannot be listed or read. The messages are those of the device's frame
/// sources, which take these errors over as their own.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The file is there but is not a whole image.
    #[error("{origin}: cannot decode the image ({reason})")]
    Decode { origin: String, reason: String },
    /// The file went away between listing and reading.
    #[error("{0}")]
    Gone(String),
    #[error("{path}: {reason}")]
    Path { path: PathBuf, reason: String },
}

const IMAGE_EXTENSIONS: [&str; 6] = ["jpg", "jpeg", "png", "bmp", "ppm", "pgm"];

pub fn is_image(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Expands files and directories into the list of image files, each directory's images sorted by name.
/// A path that does not exist is an error; a file given explicitly is kept whatever its extension.
pub fn image_paths(inputs: &[PathBuf]) -> Result<Vec<PathBuf>, ImageError> {
    let mut out = Vec::new();
    for input in inputs {
        let text = input.to_string_lossy();
        if !input.exists() && text.contains(['*', '?', '[']) {
            // A glob: every matching image, in name order.
            let matches = glob::glob(&text).map_err(|e| ImageError::Path { path: input.clone(), reason: format!("bad pattern: {e}") })?;
            let mut files: Vec<PathBuf> = matches.filter_map(Result::ok).filter(|p| p.is_file() && is_image(p)).collect();
            files.sort();
            out.extend(files);
        } else if input.is_dir() {
            let rd = std::fs::read_dir(input)
                .map_err(|e| ImageError::Path { path: input.clone(), reason: e.to_string() })?;
            let mut files: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file() && is_image(p)).collect();
            files.sort();
            out.extend(files);
        } else if input.is_file() {
            out.push(input.clone());
        } else {
            return Err(ImageError::Path { path: input.clone(), reason: "no such file or directory".into() });
        }
    }
    Ok(out)
}

/// Decodes one image file to RGB.
pub fn load_rgb(path: &Path) -> Result<image::RgbImage, ImageError> {
    let bytes = std::fs::read(path).map_err(|e| match e.kind() {
        // The file went away: the directory changed under us, which the source reopens for.
        std::io::ErrorKind::NotFound => ImageError::Gone(format!("{}: gone", path.display())),
        _ => ImageError::Decode { origin: path.display().to_string(), reason: e.to_string() },
    })?;
    decode_rgb(&bytes).map_err(|reason| ImageError::Decode { origin: path.display().to_string(), reason })
}

/// The largest frame decoded by default, in pixels: 4 MP (2560x1600 fits). A frame costs about 28
/// bytes a pixel on its way through the daemon (decoded, queued, drawn), so this keeps a frame near
/// 120 MB, within the systemd unit's `MemoryMax` (an 8000x6000 JPEG peaked at 1.2-1.5 GB).
pub const DEFAULT_MAX_PIXELS: u64 = 4 * 1024 * 1024;

static MAX_PIXELS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(DEFAULT_MAX_PIXELS);

/// Sets the largest frame [`decode_rgb`] decodes, for the whole process (`[pipeline] max_pixels`).
pub fn set_max_pixels(pixels: u64) {
    MAX_PIXELS.store(pixels, std::sync::atomic::Ordering::Relaxed);
}

/// The largest frame decoded now, in pixels.
pub fn max_pixels() -> u64 {
    MAX_PIXELS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Decodes an encoded image (JPEG, PNG, ...) to RGB. A JPEG cut short is refused: decoders fill the
/// missing part with grey, which would look like a real frame to the detector. So is an image larger
/// than [`max_pixels`], from its header, before anything is allocated for it.
pub fn decode_rgb(bytes: &[u8]) -> Result<image::RgbImage, String> {
    decode_rgb_within(bytes, max_pixels())
}

/// [`decode_rgb`] with a limit of its own.
pub fn decode_rgb_within(bytes: &[u8], max_pixels: u64) -> Result<image::RgbImage, String> {
    decode(bytes, max_pixels).map_err(|e| crate::util::setting::cut(&e, 200))
}

/// The decoders' messages can run over several lines (zune-jpeg's do): [`decode_rgb_within`] keeps
/// them to one.
fn decode(bytes: &[u8], max_pixels: u64) -> Result<image::RgbImage, String> {
    let format = image::guess_format(bytes).map_err(|e| e.to_string())?;
    if format == image::ImageFormat::Jpeg {
        let tail = &bytes[bytes.len().saturating_sub(64)..];
        if !tail.windows(2).any(|w| w == [0xFF, 0xD9]) {
            return Err("truncated JPEG (no end-of-image marker)".into());
        }
    }
    let reader = image::ImageReader::with_format(std::io::Cursor::new(bytes), format);
    let (w, h) = reader.into_dimensions().map_err(|e| e.to_string())?;
    if w as u64 * h as u64 > max_pixels {
        return Err(format!("{w}x{h} is larger than the {max_pixels} pixels a frame may have (pipeline.max_pixels)"));
    }
    Ok(image::load_from_memory_with_format(bytes, format).map_err(|e| e.to_string())?.into_rgb8())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_over_the_pixel_limit_are_refused_from_their_header() {
        let img = image::RgbImage::from_pixel(40, 30, image::Rgb([1, 2, 3]));
        for format in [image::ImageFormat::Jpeg, image::ImageFormat::Png] {
            let mut bytes = Vec::new();
            img.write_to(&mut std::io::Cursor::new(&mut bytes), format).unwrap();
            assert_eq!(decode_rgb_within(&bytes, 1200).unwrap().dimensions(), (40, 30));
            let e = decode_rgb_within(&bytes, 1199).unwrap_err();
            assert!(e.contains("40x30") && e.contains("max_pixels"), "{e}");
        }
        assert_eq!(max_pixels(), DEFAULT_MAX_PIXELS);
    }
}
