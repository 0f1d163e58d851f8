//! Times every operator of a model's optimised tract plan (median of several runs), to see where a
//! frame's inference time goes.
//!
//! `cargo run --release --example profile_model -- MODEL.onnx`
//! `cargo run --release --example profile_model -- arch:seed4 320x192` (random weights, any architecture)
use std::collections::BTreeMap;
use std::time::Instant;
use tract_onnx::prelude::*;

fn main() -> TractResult<()> {
    let arg = std::env::args().nth(1).expect("usage: profile_model MODEL.onnx | arch:NAME WxH");
    let tmp = std::env::temp_dir().join(format!("profile-{}.onnx", std::process::id()));
    let path = match arg.strip_prefix("arch:") {
        Some(name) => {
            let arch = poolwatch::pipeline::model::Arch::by_name(name).map_err(|e| anyhow::anyhow!(e))?;
            let size = std::env::args().nth(2).unwrap_or_else(|| "320x192".into());
            let (w, h) = poolwatch::pipeline::model::contract::parse_size(&size).map_err(|e| anyhow::anyhow!(e))?;
            let weights = poolwatch::train::onnx::random_weights(&arch, 1);
            poolwatch::train::onnx::write_model(&tmp, &poolwatch::pipeline::model::ModelMeta::new(w, h, arch), &weights)?;
            tmp.display().to_string()
        }
        None => arg,
    };
    let model = poolwatch::pipeline::model::infer::read_proto(std::path::Path::new(&path))?;
    let meta = poolwatch::pipeline::model::ModelMeta::from_proto(std::path::Path::new(&path), &model)?;
    let (w, h) = (meta.width as usize, meta.height as usize);
    poolwatch::pipeline::model::infer::avoid_faulty_kernels();
    let plan = tract_onnx::onnx()
        .model_for_proto_model(&model)?
        .with_input_fact(0, f32::fact([1, 3, h, w]).into())?
        .into_optimized()?
        .into_runnable()?;
    let mut state = plan.spawn()?;
    let input: Tensor = tract_ndarray::Array4::<f32>::from_elem((1, 3, h, w), 0.5).into();
    let mut times: BTreeMap<(usize, String), Vec<f64>> = BTreeMap::new();
    for _ in 0..7 {
        state.run_plan_with_eval(tvec![input.clone().into()], |ctx, st, node, inputs| {
            let t = Instant::now();
            let r = tract_onnx::tract_core::plan::eval(ctx, st, node, inputs);
            times.entry((node.id, format!("{} {}", node.op().name(), node.name))).or_default().push(t.elapsed().as_secs_f64() * 1e3);
            r
        })?;
    }
    let mut total = 0.0;
    for ((_, name), mut v) in times {
        v.sort_by(f64::total_cmp);
        let m = v[v.len() / 2];
        total += m;
        if m > 0.05 {
            println!("{m:8.3} ms  {name}");
        }
    }
    println!("{total:8.3} ms  total");
    let _ = std::fs::remove_file(&tmp);
    Ok(())
}
