//! He et al. (2016), fig. 6 scaled down: plain nets and their residual twins
//! (same layers, same weights at the start, same batches) at several depths,
//! the same budget each: final training and test error against depth.

use super::highway::smoothed_loss;
use super::{Context, ReproduceError, Trained, he_recipe, relative};
use crate::arch::presets::Family;
use crate::report::figure::{COLORS, Figure, Panel, Series};

/// What the twins' runs gave, by family (0 plain, 1 residual).
struct Twins {
    /// Rows of `results.csv`.
    rows: Vec<String>,
    train_error: [Vec<[f64; 2]>; 2],
    test_error: [Vec<[f64; 2]>; 2],
    /// The first layer's output gradient by depth.
    gradient: [Vec<[f64; 2]>; 2],
    runs: [Vec<(usize, Trained)>; 2],
}

pub fn run(ctx: &Context) -> Result<String, ReproduceError> {
    let depths: Vec<usize> = if ctx.options.quick { vec![8, 14] } else { vec![8, 20, 32, 44] };
    let epochs = if ctx.options.quick { 1 } else { 2 };
    let twins = train_twins(ctx, &depths, epochs)?;
    ctx.write_csv(
        "results.csv",
        "family,depth,params,final_train_loss,final_train_error,final_test_error,first_layer_output_grad_norm,status",
        &twins.rows,
    )?;
    let png = ctx.dir.join("figure.png");
    figure(ctx, &twins, epochs).save_png(&png)?;
    Ok(markdown(ctx, &png, &twins))
}

/// Trains the plain net and its residual twin at each depth, the same
/// budget each.
fn train_twins(ctx: &Context, depths: &[usize], epochs: usize) -> Result<Twins, ReproduceError> {
    let config = he_recipe(epochs, None, 20);
    let shape = ctx.data.shape();
    let mut twins = Twins {
        rows: Vec::new(),
        train_error: [Vec::new(), Vec::new()],
        test_error: [Vec::new(), Vec::new()],
        gradient: [Vec::new(), Vec::new()],
        runs: [Vec::new(), Vec::new()],
    };
    for &depth in depths {
        for (f, family) in [Family::Plain, Family::Resnet].into_iter().enumerate() {
            let size = family.size_for_depth(depth);
            let arch = family.build(size, shape)?;
            let name = arch.name.clone();
            let run = ctx.train(&name, arch, config.clone())?;
            let s = &run.summary;
            let (tr, te) = (s.final_train_accuracy.map(|a| 1.0 - a), s.final_test_accuracy.map(|a| 1.0 - a));
            twins.rows.push(format!(
                "{},{size},{},{},{},{},{},{}",
                family.prefix(),
                s.params,
                s.final_train_loss.unwrap_or(f32::NAN),
                tr.unwrap_or(f32::NAN),
                te.unwrap_or(f32::NAN),
                s.first_layer_output_grad_norm.unwrap_or(f32::NAN),
                s.status
            ));
            if let Some(e) = tr {
                twins.train_error[f].push([size as f64, f64::from(e) * 100.0]);
            }
            if let Some(e) = te {
                twins.test_error[f].push([size as f64, f64::from(e) * 100.0]);
            }
            // The first layer's output gradient, geometric mean over the run's probes.
            let logs: Vec<f64> = run.gradients.iter().filter_map(|g| g.output.first()).map(|v| f64::from(*v).max(1e-30).ln()).collect();
            if !logs.is_empty() {
                twins.gradient[f].push([size as f64, (logs.iter().sum::<f64>() / logs.len() as f64).exp()]);
            }
            twins.runs[f].push((size, run));
        }
    }
    Ok(twins)
}

/// Error against depth, the first layer's gradient, and the training
/// curves of each family.
fn figure(ctx: &Context, twins: &Twins, epochs: usize) -> Figure {
    let names = ["plain", "residual"];
    let mut error_panel = Panel::new("final error vs depth (solid: training, dashed: test)", "depth (weight layers)", "error %", false)
        .legend_at(egui_plot::Corner::LeftTop);
    for f in 0..2 {
        error_panel = error_panel
            .with(Series::new(format!("{} train", names[f]), twins.train_error[f].clone(), COLORS[f]))
            .with(Series::new(format!("{} test", names[f]), twins.test_error[f].clone(), COLORS[f]).dashed());
    }
    let mut curve_panels = Vec::new();
    for f in 0..2 {
        let mut panel = Panel::new(format!("training loss, {} nets", names[f]), "step", "loss (10-step mean)", true)
            .legend_at(egui_plot::Corner::RightTop);
        for (i, (size, run)) in twins.runs[f].iter().enumerate() {
            panel = panel.with(
                Series::new(format!("{}-{size}", if f == 0 { "plain" } else { "resnet" }), smoothed_loss(run, 10), COLORS[i + 2])
                    .without_markers(),
            );
        }
        curve_panels.push(panel);
    }
    let gradient_panel = Panel::new("first layer's output gradient (mean over training)", "depth", "‖∂L/∂output‖", true)
        .with(Series::new("plain", twins.gradient[0].clone(), COLORS[0]))
        .with(Series::new("residual", twins.gradient[1].clone(), COLORS[1]))
        .legend_at(egui_plot::Corner::LeftBottom);
    let mut panels = vec![error_panel, gradient_panel];
    panels.extend(curve_panels);
    Figure {
        title: "He et al. (2016), fig. 6 at lab scale: plain vs residual at increasing depth".into(),
        caption: format!(
            "CIFAR-style nets (6n+2 layers, 16/32/64 filters, BN, ReLU; option A shortcuts for the residual twins) on {}; \
             SGD lr 0.05, momentum 0.9, weight decay 1e-4, batch 64, {epochs} epoch(s) each, same seed and batches for every net.",
            ctx.data.spec
        ),
        panels,
        columns: 2,
    }
}

/// The figure and the table of errors by depth.
fn markdown(ctx: &Context, png: &std::path::Path, twins: &Twins) -> String {
    let mut md = String::from("## He et al. 2016 — the degradation problem\n\n");
    md.push_str(&format!(
        "![figure]({})\n\n| depth | plain train err | residual train err | plain test err | residual test err |\n|---|---|---|---|---|\n",
        relative(png, &ctx.dir)
    ));
    for (i, (size, _)) in twins.runs[0].iter().enumerate() {
        let get = |v: &[Vec<[f64; 2]>; 2], f: usize| v[f].get(i).map_or("-".into(), |p| format!("{:.2}%", p[1]));
        md.push_str(&format!(
            "| {size} | {} | {} | {} | {} |\n",
            get(&twins.train_error, 0),
            get(&twins.train_error, 1),
            get(&twins.test_error, 0),
            get(&twins.test_error, 1)
        ));
    }
    md
}
