//! Huang et al. (2016): a deep ResNet trained with stochastic depth (linear
//! decay to p_L = 0.5) against the same ResNet at constant depth: time per
//! epoch (a quarter of the residual branches are skipped on average, so
//! about 25 % less), the first layer's gradient over training, and how often
//! each block was dropped against the rule 1 - p_l.

use super::highway::smoothed_loss;
use super::{Context, ReproduceError, Trained, he_recipe, relative};
use crate::arch::presets;
use crate::report::figure::{COLORS, Figure, Panel, Series};

/// Seconds of training (not evaluation) per epoch.
fn secs_per_epoch(run: &Trained, steps_per_epoch: usize) -> f64 {
    match (run.steps.first(), run.steps.last()) {
        (Some(first), Some(last)) if last.step > first.step => {
            (last.elapsed_secs - first.elapsed_secs) / (last.step - first.step) as f64 * steps_per_epoch as f64
        }
        _ => f64::NAN,
    }
}

pub fn run(ctx: &Context) -> Result<String, ReproduceError> {
    let depth = if ctx.options.quick { 20 } else { 56 };
    let epochs = if ctx.options.quick { 1 } else { 2 };
    let config = he_recipe(epochs, ctx.options.quick.then_some(30), 5);
    let shape = ctx.data.shape();
    let steps_per_epoch = (ctx.data.train.len() / config.batch_size).max(1);
    let constant = ctx.train(&format!("resnet-{depth}"), presets::build(&format!("resnet-{depth}"), shape)?, config.clone())?;
    let stochastic = ctx.train(&format!("resnet-sd-{depth}"), presets::build(&format!("resnet-sd-{depth}"), shape)?, config.clone())?;
    let (t_constant, t_stochastic) = (secs_per_epoch(&constant, steps_per_epoch), secs_per_epoch(&stochastic, steps_per_epoch));
    let saving = 1.0 - t_stochastic / t_constant;

    let first_layer = |run: &Trained| -> Vec<[f64; 2]> {
        run.gradients.iter().filter_map(|g| g.output.first().map(|v| [g.step as f64, f64::from(*v)])).collect()
    };
    let mut rows = Vec::new();
    for (name, run) in [("constant", &constant), ("stochastic", &stochastic)] {
        for g in &run.gradients {
            rows.push(format!("{name},{},{},{}", g.step, g.output.first().unwrap_or(&f32::NAN), g.weight.first().unwrap_or(&f32::NAN)));
        }
    }
    ctx.write_csv("first_layer_gradient.csv", "depth_mode,step,first_layer_output_grad_norm,first_layer_weight_grad_norm", &rows)?;

    // How often each residual block was dropped, against 1 - p_l.
    let analysis = presets::build(&format!("resnet-sd-{depth}"), shape)?.analyse(shape, ctx.data.classes());
    let mut counts: std::collections::BTreeMap<usize, (f64, f64)> = Default::default();
    for p in &stochastic.probes {
        for v in p.values.iter().filter(|v| v.name == "dropped") {
            let e = counts.entry(v.layer).or_default();
            e.0 += f64::from(v.value);
            e.1 += 1.0;
        }
    }
    let measured: Vec<[f64; 2]> = counts.iter().map(|(&layer, &(d, n))| [(layer + 1) as f64, d / n.max(1.0)]).collect();
    let weighted: Vec<_> = analysis.instances.iter().filter(|i| i.has_weights()).collect();
    let rule: Vec<[f64; 2]> =
        weighted.iter().enumerate().filter_map(|(l, i)| i.survival.map(|p| [(l + 1) as f64, f64::from(1.0 - p)])).collect();

    let figure = Figure {
        title: format!("Huang et al. (2016) at lab scale: ResNet-{depth} with and without stochastic depth"),
        caption: format!(
            "{} for {epochs} epoch(s), SGD lr 0.05, batch 64; stochastic depth drops block l with probability (l/L)(1 - 0.5). \
             Training time per epoch: constant {t_constant:.1} s, stochastic {t_stochastic:.1} s ({:.0}% less).",
            ctx.data.spec,
            saving * 100.0
        ),
        panels: vec![
            Panel::new("first layer's output gradient during training", "step", "‖∂L/∂output‖, layer 1", true)
                .with(Series::new("constant depth", first_layer(&constant), COLORS[0]).without_markers())
                .with(Series::new("stochastic depth", first_layer(&stochastic), COLORS[1]).without_markers())
                .legend_at(egui_plot::Corner::RightTop),
            Panel::new("training loss", "step", "loss (10-step mean)", true)
                .with(Series::new("constant depth", smoothed_loss(&constant, 10), COLORS[0]).without_markers())
                .with(Series::new("stochastic depth", smoothed_loss(&stochastic, 10), COLORS[1]).without_markers())
                .legend_at(egui_plot::Corner::RightTop),
            Panel::new("how often each block was dropped (probe steps)", "layer", "fraction dropped", false)
                .with(Series::new("measured", measured, COLORS[1]))
                .with(Series::new("rule: 1 - p_l", rule, COLORS[7]).dashed().without_markers())
                .including_y(0.0)
                .legend_at(egui_plot::Corner::LeftTop),
        ],
        columns: 3,
    };
    let png = ctx.dir.join("figure.png");
    figure.save_png(&png)?;
    let mean_grad = |run: &Trained| {
        let logs: Vec<f64> = run.gradients.iter().filter_map(|g| g.output.first()).map(|v| f64::from(*v).max(1e-30).ln()).collect();
        (logs.iter().sum::<f64>() / logs.len().max(1) as f64).exp()
    };
    let mut md = format!("## Huang et al. 2016 — stochastic depth (ResNet-{depth})\n\n![figure]({})\n\n", relative(&png, &ctx.dir));
    md.push_str("| | constant depth | stochastic depth |\n|---|---|---|\n");
    md.push_str(&format!("| training seconds per epoch | {t_constant:.1} | {t_stochastic:.1} ({:.0}% less) |\n", saving * 100.0));
    md.push_str(&format!(
        "| first-layer output gradient (geometric mean) | {:.3e} | {:.3e} |\n",
        mean_grad(&constant),
        mean_grad(&stochastic)
    ));
    let err = |run: &Trained, train: bool| {
        let a = if train { run.summary.final_train_accuracy } else { run.summary.final_test_accuracy };
        a.map_or("-".into(), |a| format!("{:.2}%", (1.0 - a) * 100.0))
    };
    md.push_str(&format!("| final training error | {} | {} |\n", err(&constant, true), err(&stochastic, true)));
    md.push_str(&format!("| final test error | {} | {} |\n", err(&constant, false), err(&stochastic, false)));
    Ok(md)
}
