//! Box annotations: reads our own JSON (written by `poolwatch synth`), the ietr-pool JSON (normalised
//! `geometry.vertices`), YOLO txt and LabelMe JSON (rectangle corners in any order); writes our own.

use crate::pipeline::boxes::BBox;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum AnnotationError {
    #[error("annotation {path}: cannot read it ({cause})")]
    Read { path: PathBuf, cause: std::io::Error },
    #[error("annotation {path}: {reason}")]
    Format { path: PathBuf, reason: String },
    #[error("annotation {path}: cannot write it ({cause})")]
    Write { path: PathBuf, cause: std::io::Error },
}

/// Our own annotation file, one per image, beside it with the extension `.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OwnAnnotation {
    pub image: String,
    pub width: u32,
    pub height: u32,
    pub boxes: Vec<OwnBox>,
    /// The pool's corners in the image (near-left, near-right, far-right, far-left), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<Vec<[f64; 2]>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OwnBox {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
    #[serde(default = "swimmer")]
    pub label: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lane: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distance_m: Option<f32>,
}

fn swimmer() -> String {
    "swimmer".into()
}

/// Finds the annotation of an image: `NAME.json` or `NAME.txt` beside it, or in a sibling `labels/`
/// directory when the image is under `images/` (the YOLO layout).
pub fn find_for(image: &Path) -> Option<PathBuf> {
    let mut candidates = vec![image.with_extension("json"), image.with_extension("txt")];
    if let (Some(dir), Some(stem)) = (image.parent(), image.file_stem())
        && dir.file_name().is_some_and(|n| n == "images")
        && let Some(root) = dir.parent()
    {
        let mut t = root.join("labels").join(stem);
        t.set_extension("txt");
        candidates.push(t);
    }
    candidates.into_iter().find(|p| p.is_file())
}

/// Reads the swimmer boxes of an annotation file in any supported format, in pixels of an image of
/// `width` x `height` (needed for the normalised formats); see [`parse`].
pub fn read(path: &Path, width: u32, height: u32) -> Result<Vec<BBox>, AnnotationError> {
    let text = std::fs::read_to_string(path).map_err(|cause| AnnotationError::Read { path: path.to_path_buf(), cause })?;
    let bad = |reason: String| AnnotationError::Format { path: path.to_path_buf(), reason };
    parse(&text, path.extension().is_some_and(|e| e == "txt"), width, height).map_err(bad)
}

/// The boxes of an annotation's text: YOLO lines (`yolo`), else any of the JSON formats. Boxes with no
/// area are dropped; a coordinate that is not a finite number is an error.
pub fn parse(text: &str, yolo: bool, width: u32, height: u32) -> Result<Vec<BBox>, String> {
    let (w, h) = (width as f32, height as f32);
    let boxes = if yolo {
        parse_yolo(text, w, h)?
    } else {
        let v: Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
        parse_json(&v, w, h)?
    };
    if boxes.iter().any(|b| ![b.x1, b.y1, b.x2, b.y2].iter().all(|v| v.is_finite())) {
        return Err("a box has a coordinate that is not a finite number".into());
    }
    // A YOLO box of negative width and height has a positive area, and is still not a box.
    Ok(boxes.into_iter().filter(|b| b.width() > 0.0 && b.height() > 0.0).collect())
}

fn num(v: &Value, what: &str) -> Result<f32, String> {
    v.as_f64().map(|f| f as f32).ok_or_else(|| format!("{what} is not a number"))
}

fn corners(x1: f32, y1: f32, x2: f32, y2: f32) -> BBox {
    BBox::new(x1.min(x2), y1.min(y2), x1.max(x2), y1.max(y2))
}

fn parse_json(v: &Value, w: f32, h: f32) -> Result<Vec<BBox>, String> {
    if let Some(boxes) = v.get("boxes").and_then(Value::as_array) {
        // Our own format.
        return boxes
            .iter()
            .map(|b| Ok(corners(num(&b["x1"], "x1")?, num(&b["y1"], "y1")?, num(&b["x2"], "x2")?, num(&b["y2"], "y2")?)))
            .collect();
    }
    if let Some(anns) = v.get("annotations").and_then(Value::as_array) {
        // ietr-pool: geometry.vertices = [x1, y1, x2, y2], normalised.
        let mut out = Vec::new();
        for a in anns {
            if a.get("category").and_then(Value::as_str).is_some_and(|c| c != "swimmer") {
                continue;
            }
            let vs = a["geometry"]["vertices"].as_array().ok_or("an annotation has no geometry.vertices")?;
            if vs.len() != 4 {
                return Err(format!("geometry.vertices has {} values, expected 4", vs.len()));
            }
            let f: Vec<f32> = vs.iter().map(|x| num(x, "a vertex")).collect::<Result<_, _>>()?;
            out.push(corners(f[0] * w, f[1] * h, f[2] * w, f[3] * h));
        }
        return Ok(out);
    }
    if let Some(shapes) = v.get("shapes").and_then(Value::as_array) {
        // LabelMe: rectangles given by two (or four) corner points in any order.
        let mut out = Vec::new();
        for s in shapes {
            let kind = s.get("shape_type").and_then(Value::as_str).unwrap_or("rectangle");
            if kind != "rectangle" && kind != "polygon" {
                continue;
            }
            let pts = s["points"].as_array().ok_or("a LabelMe shape has no points")?;
            let mut xs = Vec::new();
            let mut ys = Vec::new();
            for p in pts {
                xs.push(num(&p[0], "a point's x")?);
                ys.push(num(&p[1], "a point's y")?);
            }
            if xs.len() < 2 {
                return Err("a LabelMe rectangle needs at least two points".into());
            }
            let fold = |v: &[f32], f: fn(f32, f32) -> f32, init: f32| v.iter().copied().fold(init, f);
            out.push(BBox::new(
                fold(&xs, f32::min, f32::MAX),
                fold(&ys, f32::min, f32::MAX),
                fold(&xs, f32::max, f32::MIN),
                fold(&ys, f32::max, f32::MIN),
            ));
        }
        return Ok(out);
    }
    Err("unknown annotation format: expected 'boxes' (poolwatch), 'annotations' (ietr-pool) or 'shapes' (LabelMe)".into())
}

fn parse_yolo(text: &str, w: f32, h: f32) -> Result<Vec<BBox>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<f32> = line
            .split_whitespace()
            .map(|t| t.parse::<f32>().map_err(|_| format!("line {}: '{}' is not a number", n + 1, crate::util::setting::cut(t, 40))))
            .collect::<Result<_, _>>()?;
        if f.len() < 5 {
            return Err(format!("line {}: expected 'class cx cy w h', got {} values", n + 1, f.len()));
        }
        let (cx, cy, bw, bh) = (f[1] * w, f[2] * h, f[3] * w, f[4] * h);
        out.push(BBox::new(cx - bw / 2.0, cy - bh / 2.0, cx + bw / 2.0, cy + bh / 2.0));
    }
    Ok(out)
}

/// Writes our own annotation for an image.
pub fn write_own(path: &Path, ann: &OwnAnnotation) -> Result<(), AnnotationError> {
    let text = serde_json::to_string_pretty(ann).map_err(|e| AnnotationError::Format { path: path.to_path_buf(), reason: e.to_string() })?;
    std::fs::write(path, text).map_err(|cause| AnnotationError::Write { path: path.to_path_buf(), cause })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn reads_own_format_and_round_trips() {
        let d = tempfile::tempdir().unwrap();
        let ann = OwnAnnotation {
            image: "a.png".into(),
            width: 100,
            height: 50,
            boxes: vec![OwnBox { x1: 10.0, y1: 5.0, x2: 30.0, y2: 25.0, label: swimmer(), lane: Some(2), distance_m: None }],
            pool: None,
        };
        let p = d.path().join("a.json");
        write_own(&p, &ann).unwrap();
        assert_eq!(read(&p, 100, 50).unwrap(), vec![BBox::new(10.0, 5.0, 30.0, 25.0)]);
        let back: OwnAnnotation = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        assert_eq!(back, ann);
    }

    #[test]
    fn reads_ietr_pool_json_and_drops_empty_boxes() {
        let d = tempfile::tempdir().unwrap();
        let p = write(d.path(), "T1.json", r#"{"annotations":[
            {"geometry":{"vertices":[0.25,0.5,0.75,1.0],"type":"rectangle"},"category":"swimmer"},
            {"geometry":{"vertices":[0.1,0.1,0.1,0.3]},"category":"swimmer"}]}"#);
        assert_eq!(read(&p, 640, 480).unwrap(), vec![BBox::new(160.0, 240.0, 480.0, 480.0)]);
    }

    #[test]
    fn reads_yolo_in_labels_dir() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("images")).unwrap();
        std::fs::create_dir_all(d.path().join("labels")).unwrap();
        let img = d.path().join("images/f1.jpg");
        std::fs::write(&img, b"").unwrap();
        write(&d.path().join("labels"), "f1.txt", "0 0.5 0.5 0.25 0.5\n\n");
        let found = find_for(&img).unwrap();
        assert_eq!(read(&found, 200, 100).unwrap(), vec![BBox::new(75.0, 25.0, 125.0, 75.0)]);
        let bad = write(d.path(), "bad.txt", "0 0.5 x 0.2 0.2");
        assert!(read(&bad, 10, 10).unwrap_err().to_string().contains("not a number"));
    }

    #[test]
    fn inverted_and_infinite_boxes_are_not_boxes() {
        // A YOLO box of negative width and height has a positive area; 1e39 is infinite as f32.
        assert_eq!(parse("0 0.5 0.5 -0.2 -0.2\n0 0.5 0.5 0.2 0.2\n", true, 100, 100).unwrap(), vec![BBox::new(40.0, 40.0, 60.0, 60.0)]);
        for text in ["0 1e39 0.5 0.2 0.2", "0 nan 0.5 0.2 0.2", "0 0.5 0.5 inf 0.2"] {
            assert!(parse(text, true, 100, 100).unwrap_err().contains("finite"), "{text}");
        }
        let e = parse(r#"{"boxes":[{"x1":0,"y1":0,"x2":1e300,"y2":5}]}"#, false, 100, 100).unwrap_err();
        assert!(e.contains("finite"), "{e}");
        // A token of a megabyte is not echoed whole.
        let e = parse(&format!("0 {} 0.5 0.2 0.2", "z".repeat(1 << 20)), true, 100, 100).unwrap_err();
        assert!(e.len() < 120, "{e}");
    }

    #[test]
    fn reads_labelme_corners_in_any_order() {
        let d = tempfile::tempdir().unwrap();
        let p = write(d.path(), "l.json", r#"{"shapes":[{"label":"swimmer","shape_type":"rectangle","points":[[50,40],[10,5]]}]}"#);
        assert_eq!(read(&p, 100, 100).unwrap(), vec![BBox::new(10.0, 5.0, 50.0, 40.0)]);
    }

    #[test]
    fn unknown_json_is_a_clear_error() {
        let d = tempfile::tempdir().unwrap();
        let p = write(d.path(), "x.json", r#"{"foo":1}"#);
        assert!(read(&p, 1, 1).unwrap_err().to_string().contains("unknown annotation format"));
        let p = write(d.path(), "y.json", "{not json");
        assert!(read(&p, 1, 1).unwrap_err().to_string().contains("not valid JSON"));
    }
}
