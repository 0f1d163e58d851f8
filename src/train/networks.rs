//! Files of several networks: models of one venue put into one file whose networks read the same input
//! and whose heatmaps the device averages (`poolwatch-train merge`, `train --models 2`), and such a file
//! taken apart again, so that everything written for one network (calibration, int8) works on each.
//!
//! The first network keeps its tensor names; network k (2, 3, ...) has every name prefixed with `netk/`
//! and writes [`output_name`]`(k - 1)`. Each network's calibration and training summary go with it
//! ([`Member`]); size, pre-processing and quantisation are the file's and must agree.

use crate::pipeline::model::contract::{INPUT_NAME, MAX_NETWORKS, Member, ModelError, ModelMeta, OUTPUT_NAME, output_name, seal};
use crate::pipeline::model::infer::read_proto;
use crate::train::onnx::write_proto;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use tract_onnx::pb;

fn prefix(k: usize) -> String {
    format!("net{}/", k + 1)
}

/// One file holding the networks of `models` (each a file of one or more networks, already decoded and
/// named by its path in messages), in that order: the first's calibration, pool mask and settings lead.
/// It comes sealed (its integrity hash written), as [`split`]'s parts do.
pub fn merge(models: &[(PathBuf, pb::ModelProto)]) -> Result<pb::ModelProto, ModelError> {
    let mut singles = Vec::new();
    for (path, proto) in models {
        for (i, p) in split(path, proto)?.into_iter().enumerate() {
            let meta = ModelMeta::from_proto(path, &p)?;
            singles.push((path.clone(), i, p, meta));
        }
    }
    let (first_path, _, first, first_meta) = singles.first().ok_or_else(|| ModelError::Run("no model to merge".into()))?;
    let bad = |path: &Path, reason: String| ModelError::Contract { path: path.to_path_buf(), reason };
    if singles.len() > MAX_NETWORKS {
        return Err(bad(first_path, format!("{} networks together, at most {MAX_NETWORKS} go in one file", singles.len())));
    }
    let mut out = first.clone();
    let mut meta = first_meta.clone();
    let graph = out.graph.as_mut().ok_or_else(|| bad(first_path, "it has no graph".into()))?;
    for (k, (path, i, proto, m)) in singles.iter().enumerate() {
        let who = if *i == 0 { "it".to_string() } else { format!("its network {}", i + 1) };
        let cal = m.calibration.clone().ok_or_else(|| bad(path, format!("{who} has no calibration: calibrate it first (`poolwatch-train calibrate`)")))?;
        if (m.width, m.height) != (meta.width, meta.height) || m.preprocess != meta.preprocess || m.quantization != meta.quantization {
            return Err(bad(
                path,
                format!("the input size, pre-processing or quantisation of {who} differ from {}'s: only networks trained alike go in one file", first_path.display()),
            ));
        }
        if proto.opset_import != out.opset_import {
            return Err(bad(path, format!("its operator sets differ from {}'s", first_path.display())));
        }
        if k == 0 {
            continue;
        }
        let g = proto.graph.as_ref().ok_or_else(|| bad(path, "it has no graph".into()))?;
        let p = prefix(k);
        let rename = |name: &str| -> String {
            match name {
                "" | INPUT_NAME => name.to_string(),
                OUTPUT_NAME => output_name(k),
                _ => format!("{p}{name}"),
            }
        };
        for n in &g.node {
            let mut n = n.clone();
            n.name = format!("{p}{}", n.name);
            n.input.iter_mut().for_each(|s| *s = rename(s));
            n.output.iter_mut().for_each(|s| *s = rename(s));
            graph.node.push(n);
        }
        for t in &g.initializer {
            let mut t = t.clone();
            t.name = rename(&t.name);
            graph.initializer.push(t);
        }
        for v in g.input.iter().filter(|v| v.name != INPUT_NAME) {
            let mut v = v.clone();
            v.name = rename(&v.name);
            graph.input.push(v);
        }
        for v in &g.value_info {
            let mut v = v.clone();
            v.name = rename(&v.name);
            graph.value_info.push(v);
        }
        let mut o = g.output.iter().find(|o| o.name == OUTPUT_NAME).cloned().ok_or_else(|| bad(path, format!("no output named '{OUTPUT_NAME}'")))?;
        o.name = output_name(k);
        graph.output.push(o);
        meta.members.push(Member { output: output_name(k), calibration: cal, training: m.training.clone() });
    }
    out.metadata_props = meta.to_props();
    seal(&mut out);
    Ok(out)
}

/// The file's networks, each as a file of its own (with its own calibration and training summary); a
/// file of one network comes back as it is.
pub fn split(path: &Path, proto: &pb::ModelProto) -> Result<Vec<pb::ModelProto>, ModelError> {
    let meta = ModelMeta::from_proto(path, proto)?;
    if meta.members.is_empty() {
        return Ok(vec![proto.clone()]);
    }
    let bad = |reason: String| ModelError::Contract { path: path.to_path_buf(), reason };
    let graph = proto.graph.as_ref().ok_or_else(|| bad("it has no graph".into()))?;
    let producer: HashMap<&str, usize> = graph.node.iter().enumerate().flat_map(|(i, n)| n.output.iter().map(move |o| (o.as_str(), i))).collect();
    let mut parts = Vec::with_capacity(meta.networks());
    for k in 0..meta.networks() {
        // Every node the network's output depends on, walked back from it.
        let mut keep = HashSet::new();
        let mut used: HashSet<&str> = HashSet::new();
        let out_name = output_name(k);
        let mut todo = vec![out_name.as_str()];
        while let Some(t) = todo.pop() {
            if !used.insert(t) {
                continue;
            }
            if let Some(&i) = producer.get(t)
                && keep.insert(i)
            {
                todo.extend(graph.node[i].input.iter().map(String::as_str).filter(|s| !s.is_empty()));
            }
        }
        let p = prefix(k);
        let rename = |name: &str| -> String {
            if name == out_name {
                OUTPUT_NAME.to_string()
            } else if k > 0 {
                name.strip_prefix(p.as_str()).unwrap_or(name).to_string()
            } else {
                name.to_string()
            }
        };
        let node = graph
            .node
            .iter()
            .enumerate()
            .filter(|(i, _)| keep.contains(i))
            .map(|(_, n)| {
                let mut n = n.clone();
                n.name = rename(&n.name);
                n.input.iter_mut().for_each(|s| *s = rename(s));
                n.output.iter_mut().for_each(|s| *s = rename(s));
                n
            })
            .collect();
        let pick = |v: &pb::ValueInfoProto| {
            let mut v = v.clone();
            v.name = rename(&v.name);
            v
        };
        let mut g = pb::GraphProto {
            node,
            initializer: graph
                .initializer
                .iter()
                .filter(|t| used.contains(t.name.as_str()))
                .map(|t| {
                    let mut t = t.clone();
                    t.name = rename(&t.name);
                    t
                })
                .collect(),
            input: graph.input.iter().filter(|v| v.name == INPUT_NAME || used.contains(v.name.as_str())).map(pick).collect(),
            output: graph.output.iter().filter(|v| v.name == out_name).map(pick).collect(),
            value_info: graph.value_info.iter().filter(|v| used.contains(v.name.as_str())).map(pick).collect(),
            ..graph.clone()
        };
        g.name = graph.name.clone();
        let mut m = meta.clone();
        m.members.clear();
        if k > 0 {
            let member = &meta.members[k - 1];
            m.calibration = Some(member.calibration.clone());
            m.training = member.training.clone();
        }
        let mut part = proto.clone();
        part.graph = Some(g);
        part.metadata_props = m.to_props();
        seal(&mut part);
        parts.push(part);
    }
    Ok(parts)
}

/// Writes the networks of the files `inputs`, in order, into one file `out`; returns how many it holds.
pub fn merge_files(inputs: &[PathBuf], out: &Path) -> Result<usize, ModelError> {
    let models = inputs.iter().map(|p| Ok((p.clone(), read_proto(p)?))).collect::<Result<Vec<_>, ModelError>>()?;
    let merged = merge(&models)?;
    let n = ModelMeta::from_proto(out, &merged)?.networks();
    write_proto(out, &merged)?;
    Ok(n)
}

/// Runs `f(network_in, network_out)` on each network of the file `src`, which must write the changed
/// network (calibrated again, quantised, ...) to `network_out`, and puts the results together in `out`.
/// A file of one network is given to `f` as it is, with `out`; a file of several is taken apart into
/// files beside `out` (removed afterwards) and merged back.
pub fn each_network<E: From<ModelError>>(src: &Path, out: &Path, mut f: impl FnMut(&Path, &Path) -> Result<(), E>) -> Result<(), E> {
    let proto = read_proto(src)?;
    let parts = split(src, &proto)?;
    if parts.len() == 1 {
        return f(src, out);
    }
    let mut made = Vec::new();
    let result = (|| -> Result<(), E> {
        let mut outs = Vec::new();
        for (k, part) in parts.iter().enumerate() {
            let input = out.with_extension(format!("net{}.in.onnx", k + 1));
            let result = out.with_extension(format!("net{}.onnx", k + 1));
            made.push(input.clone());
            made.push(result.clone());
            write_proto(&input, part)?;
            f(&input, &result)?;
            outs.push(result);
        }
        merge_files(&outs, out)?;
        Ok(())
    })();
    for p in made {
        let _ = std::fs::remove_file(p);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::model::contract::Calibration;
    use crate::pipeline::model::{Arch, Autoencoder};
    use crate::train::onnx::{build_model, random_weights};

    fn model(seed: u64, threshold: f32) -> pb::ModelProto {
        let arch = Arch::by_name("fast").unwrap();
        let (w, h) = (32, 32);
        let mut meta = ModelMeta::new(w, h, arch.clone());
        let n = (w * h) as usize;
        meta.calibration = Some(Calibration {
            width: w,
            height: h,
            mean: vec![0.01; n],
            std: vec![0.02; n],
            heatmap: Default::default(),
            threshold,
            raw_threshold: threshold / 100.0,
            quantile: 0.999,
            frames: 5,
            pool: None,
            noise_area: None,
        });
        meta.training = serde_json::json!({ "seed": seed });
        build_model(&meta, &random_weights(&arch, seed)).unwrap()
    }

    #[test]
    fn networks_merged_run_as_they_did_alone_and_split_back() {
        let (a, b) = (model(1, 4.0), model(2, 5.0));
        let merged = merge(&[("a.onnx".into(), a.clone()), ("b.onnx".into(), b.clone())]).unwrap();
        let meta = ModelMeta::from_proto(Path::new("m"), &merged).unwrap();
        assert_eq!(meta.networks(), 2);
        assert_eq!(meta.members[0].output, "reconstruction.2");
        assert_eq!(meta.members[0].calibration.threshold, 5.0);
        assert_eq!(meta.members[0].training["seed"], 2);
        let x: Vec<f32> = (0..3 * 32 * 32).map(|i| (i % 97) as f32 / 97.0).collect();
        let mut ma = Autoencoder::from_proto(Path::new("a"), &a).unwrap();
        let mut mb = Autoencoder::from_proto(Path::new("b"), &b).unwrap();
        let mut m = Autoencoder::from_proto(Path::new("m"), &merged).unwrap();
        m.run(&x).unwrap();
        assert_eq!(m.outputs()[0], ma.reconstruct(&x).unwrap());
        assert_eq!(m.outputs()[1], mb.reconstruct(&x).unwrap());
        assert_ne!(m.outputs()[0], m.outputs()[1]);
        // Run as one network: only the first is computed.
        let mut one = Autoencoder::from_proto_with(Path::new("m"), &merged, Some(1)).unwrap();
        assert_eq!(one.networks(), 1);
        assert!(one.meta().members.is_empty());
        assert_eq!(one.reconstruct(&x).unwrap(), ma.reconstruct(&x).unwrap());
        // Taken apart: each network's graph, weights and calibration as they were.
        let parts = split(Path::new("m"), &merged).unwrap();
        assert_eq!(parts.len(), 2);
        for (part, orig) in parts.iter().zip([&a, &b]) {
            assert_eq!(part.graph.as_ref().unwrap().node, orig.graph.as_ref().unwrap().node);
            let (mut pi, mut oi) = (part.graph.as_ref().unwrap().initializer.clone(), orig.graph.as_ref().unwrap().initializer.clone());
            pi.sort_by(|x, y| x.name.cmp(&y.name));
            oi.sort_by(|x, y| x.name.cmp(&y.name));
            assert_eq!(pi, oi);
            assert_eq!(ModelMeta::from_proto(Path::new("p"), part).unwrap(), ModelMeta::from_proto(Path::new("o"), orig).unwrap());
        }
        // Merging a merged file with a third network flattens it.
        let three = merge(&[("m".into(), merged), ("c".into(), model(3, 6.0))]).unwrap();
        let meta = ModelMeta::from_proto(Path::new("t"), &three).unwrap();
        assert_eq!(meta.outputs(), ["reconstruction", "reconstruction.2", "reconstruction.3"]);
        assert_eq!(meta.members[1].calibration.threshold, 6.0);
    }

    #[test]
    fn networks_that_do_not_belong_together_are_refused() {
        let mut uncalibrated = model(2, 5.0);
        let mut meta = ModelMeta::from_proto(Path::new("u"), &uncalibrated).unwrap();
        meta.calibration = None;
        uncalibrated.metadata_props = meta.to_props();
        let e = merge(&[("a.onnx".into(), model(1, 4.0)), ("u.onnx".into(), uncalibrated)]).unwrap_err().to_string();
        assert!(e.contains("u.onnx") && e.contains("calibrate it first"), "{e}");
        let mut other = model(2, 5.0);
        let mut meta = ModelMeta::from_proto(Path::new("o"), &other).unwrap();
        meta.preprocess.bright_clip = Some(0.9);
        other.metadata_props = meta.to_props();
        let e = merge(&[("a.onnx".into(), model(1, 4.0)), ("o.onnx".into(), other)]).unwrap_err().to_string();
        assert!(e.contains("o.onnx") && e.contains("differ"), "{e}");
        let many: Vec<_> = (0..5).map(|s| (PathBuf::from(format!("{s}.onnx")), model(s, 4.0))).collect();
        assert!(merge(&many).unwrap_err().to_string().contains("at most 4"));
    }

    #[test]
    fn the_detector_averages_the_networks_heatmaps_in_the_first_ones_units() {
        use crate::pipeline::detect::{Detector, DetectorSettings};
        use crate::pipeline::model::infer::{EMBEDDED_MODEL, decode_proto};
        let shipped = decode_proto(Path::new("e"), EMBEDDED_MODEL).unwrap();
        // The same network twice, the second calibrated with half the spread, so twice the score and
        // twice the threshold: in the first's units its score is the first's, and the average is the
        // first network's heatmap.
        let mut twice = shipped.clone();
        let mut meta = ModelMeta::from_proto(Path::new("e"), &twice).unwrap();
        let cal = meta.calibration.as_mut().unwrap();
        cal.threshold *= 2.0;
        cal.std.iter_mut().for_each(|s| *s *= 0.5);
        twice.metadata_props = meta.to_props();
        let merged = merge(&[("a".into(), shipped.clone()), ("b".into(), twice)]).unwrap();
        let scene = crate::synth::Scene::new(1, 320, 240, (1, 3));
        let (img, _) = scene.render(2.0, 7);
        let heat = |proto: &pb::ModelProto| {
            let mut d = Detector::new(Autoencoder::from_proto(Path::new("m"), proto).unwrap(), &DetectorSettings::default());
            let boxes = d.detect(&img).unwrap().boxes;
            (d.heatmap().score.clone(), boxes)
        };
        let (one, one_boxes) = heat(&shipped);
        let (two, two_boxes) = heat(&merged);
        assert!(one.iter().any(|&s| s > 1.0), "the frame has something to see");
        let worst = one.iter().zip(&two).map(|(a, b)| (a - b).abs() / a.abs().max(1.0)).fold(0.0f32, f32::max);
        assert!(worst < 1e-4, "relative difference {worst}");
        assert_eq!(one_boxes.len(), two_boxes.len());
    }

    #[test]
    fn a_member_whose_output_is_missing_is_refused_at_load() {
        let merged = merge(&[("a.onnx".into(), model(1, 4.0)), ("b.onnx".into(), model(2, 5.0))]).unwrap();
        let mut broken = merged.clone();
        broken.graph.as_mut().unwrap().output.retain(|o| o.name != "reconstruction.2");
        let e = ModelMeta::from_proto(Path::new("m.onnx"), &broken).unwrap_err().to_string();
        assert!(e.contains("no output named 'reconstruction.2'"), "{e}");
    }
}
