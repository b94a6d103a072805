//! Srivastava et al. (2015), fig. 1 scaled down: thin plain MLPs (71 units)
//! against thin highway MLPs (50 units, about as many parameters per layer)
//! at increasing depth, same optimiser and budget: the final training loss.
//! The transform-gate bias is scaled with depth (-1, -2, -3, -4).

use super::{Context, ReproduceError, Trained, relative};
use crate::arch::presets;
use crate::report::figure::{COLORS, Figure, Panel, Series};
use crate::train::TrainConfig;

/// Training loss averaged over windows of `window` steps.
pub(super) fn smoothed_loss(run: &Trained, window: usize) -> Vec<[f64; 2]> {
    run.steps
        .chunks(window)
        .filter(|c| c.iter().all(|s| s.loss.is_finite()))
        .map(|c| [c[c.len() / 2].step as f64, c.iter().map(|s| f64::from(s.loss)).sum::<f64>() / c.len() as f64])
        .collect()
}

pub fn run(ctx: &Context) -> Result<String, ReproduceError> {
    let depths: Vec<usize> = if ctx.options.quick { vec![10, 20] } else { vec![10, 20, 50, 100] };
    let epochs = if ctx.options.quick { 1 } else { 4 };
    let config =
        TrainConfig { epochs, lr: 0.01, momentum: 0.9, weight_decay: 0.0, probe_every: 20, augment: Some(false), ..TrainConfig::default() };
    let shape = ctx.data.shape();
    let mut rows = Vec::new();
    let mut finals: [Vec<[f64; 2]>; 2] = [Vec::new(), Vec::new()];
    let mut deepest: Vec<(String, Trained)> = Vec::new();
    for &depth in &depths {
        for (f, family) in ["plain-mlp", "highway-mlp"].iter().enumerate() {
            let name = format!("{family}-{depth}");
            let arch = presets::build(&name, shape)?;
            let gate = presets::highway_gate_bias(depth);
            let run = ctx.train(&name, arch, config.clone())?;
            let loss = run.summary.final_train_loss.map_or(f64::NAN, f64::from);
            rows.push(format!(
                "{family},{depth},{},{},{loss},{},{}",
                run.summary.params,
                if f == 1 { gate.to_string() } else { String::new() },
                run.summary.final_train_accuracy.unwrap_or(f32::NAN),
                run.summary.status
            ));
            if loss.is_finite() {
                finals[f].push([depth as f64, loss]);
            }
            if depth == *depths.last().unwrap_or(&10) {
                deepest.push((name, run));
            }
        }
    }
    ctx.write_csv("results.csv", "family,depth,params,gate_bias,final_train_loss,final_train_accuracy,status", &rows)?;

    let final_panel = Panel::new("final training loss vs depth", "depth (layers)", "training loss (mean, last epoch)", true)
        .with(Series::new("plain, 71 units", finals[0].clone(), COLORS[0]))
        .with(Series::new("highway, 50 units", finals[1].clone(), COLORS[1]))
        .legend_at(egui_plot::Corner::LeftTop);
    let mut curves = Panel::new(format!("training loss, depth {}", depths.last().unwrap_or(&10)), "step", "loss (10-step mean)", true)
        .legend_at(egui_plot::Corner::LeftBottom);
    for (i, (name, run)) in deepest.iter().enumerate() {
        curves = curves.with(Series::new(name.clone(), smoothed_loss(run, 10), COLORS[i]).without_markers());
    }
    let mut gates = Panel::new("highway: mean transform gate T per layer (end of training)", "layer", "mean T", false)
        .including_y(0.0)
        .legend_at(egui_plot::Corner::RightTop);
    if let Some((name, run)) = deepest.iter().find(|(n, _)| n.starts_with("highway")) {
        if let Some(last) = run.probes.iter().rev().find(|p| p.values.iter().any(|v| v.name == "transform_gate_mean")) {
            let points: Vec<[f64; 2]> = last
                .values
                .iter()
                .filter(|v| v.name == "transform_gate_mean")
                .map(|v| [(v.layer + 1) as f64, f64::from(v.value)])
                .collect();
            gates = gates.with(Series::new(format!("{name}, step {}", last.step), points, COLORS[1]).without_markers());
        }
    }
    let figure = Figure {
        title: "Srivastava et al. (2015), fig. 1 at lab scale: plain vs highway MLPs".into(),
        caption: format!(
            "SGD (lr 0.01, momentum 0.9), batch 64, {epochs} epoch(s) of {} ({} training images), ReLU, He init, no batch norm. \
             Gate bias -1 (depth ≤ 10), -2 (≤ 30), -3 (≤ 60), -4 (deeper).",
            ctx.data.spec,
            ctx.data.train.len()
        ),
        panels: vec![final_panel, curves, gates],
        columns: 3,
    };
    let png = ctx.dir.join("figure.png");
    figure.save_png(&png)?;
    let mut md = String::from("## Srivastava et al. 2015 — plain vs highway, training loss vs depth\n\n");
    md.push_str(&format!("![figure]({})\n\n| depth | plain (71) loss | highway (50) loss |\n|---|---|---|\n", relative(&png, &ctx.dir)));
    for &d in &depths {
        let get = |f: usize| finals[f].iter().find(|p| p[0] as usize == d).map_or("diverged".into(), |p| format!("{:.4}", p[1]));
        md.push_str(&format!("| {d} | {} | {} |\n", get(0), get(1)));
    }
    Ok(md)
}
