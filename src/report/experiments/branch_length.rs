//! How many weight layers a residual unit should hold. He et al. (2016,
//! §3.1) use two or three and remark that a single-layer unit, `y = W x +
//! x`, is close to a linear layer, "for which we have not observed
//! advantages"; Veit et al. (2016) read residual networks as ensembles of
//! paths, which makes the grouping of layers into units secondary to how
//! many paths of which lengths there are. The lab tests the claim at a
//! fixed total depth: fully connected nets of `H` hidden weight layers
//! grouped into residual units of 1, 2, 3 and 4 layers (H, H/2, H/3, H/4
//! units; the same weight matrices, so exactly the same parameters),
//! pre-activation and post-activation, each trained with the same seed,
//! batches and budget, and their plain twin (the shortcuts removed; for a
//! given ordering it is the same network whatever the grouping).

use super::highway::smoothed_loss;
use super::{Context, ReproduceError, Trained, relative};
use crate::arch::{Architecture, BlockKind, BlockSpec, Init, LayerOptions, LayerOverrides, ResidualInit, Shortcut};
use crate::report::figure::{COLORS, Figure, Panel, Series};
use crate::train::TrainConfig;

/// Units per hidden layer.
const WIDTH: usize = 64;
/// Residual unit lengths compared.
const LENGTHS: [usize; 4] = [1, 2, 3, 4];

/// `hidden` weight layers in units of `branch_layers`, between a first
/// dense layer and the classifier (depth `hidden + 2`).
fn network(hidden: usize, branch_layers: usize, preactivation: bool, shortcut: Shortcut) -> Architecture {
    let options = LayerOptions::default();
    let unit = BlockKind::ResidualDense {
        units: WIDTH,
        branch_layers,
        preactivation,
        shortcut,
        survival: None,
        residual_init: ResidualInit::Default,
    };
    let order = if preactivation { "pre" } else { "post" };
    let name = match shortcut {
        Shortcut::None => format!("plain-{order}-{}", hidden + 2),
        _ => format!("residual-{order}-{}x{branch_layers}", hidden / branch_layers),
    };
    let mut blocks = vec![BlockSpec::new(BlockKind::Dense { units: WIDTH }), BlockSpec::new(unit).repeated(hidden / branch_layers)];
    if preactivation {
        blocks.push(BlockSpec::new(BlockKind::NormAct));
    }
    blocks.push(BlockSpec::new(BlockKind::Classifier).with_layer(LayerOptions { init: Init::Standard, ..options }));
    Architecture {
        name,
        description: format!("{hidden} hidden layers of {WIDTH} units in residual units of {branch_layers}"),
        stochastic_depth: None,
        blocks,
    }
}

/// One trained net and what the table reports of it.
struct Outcome {
    label: String,
    preactivation: bool,
    /// `None` for the plain twin.
    branch_layers: Option<usize>,
    params: usize,
    /// Geometric mean over seeds.
    initial_ratio: f64,
    train_loss: f64,
    train_error: f64,
    test_error: f64,
    run: Trained,
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

pub fn run(ctx: &Context) -> Result<String, ReproduceError> {
    let quick = ctx.options.quick;
    let hidden = if quick { 12 } else { 48 };
    let epochs = if quick { 1 } else { 4 };
    let seeds: Vec<u64> = if quick { vec![1] } else { vec![1, 2, 3] };
    let base = TrainConfig {
        epochs,
        max_steps: quick.then_some(20),
        lr: 0.05,
        momentum: 0.9,
        weight_decay: 1e-4,
        schedule: crate::train::Schedule::Step { milestones: vec![0.5, 0.75] },
        probe_every: 10,
        ..TrainConfig::default()
    };
    let shape = ctx.data.shape();
    let classes = ctx.data.classes();
    let mut plans: Vec<(bool, Option<usize>)> = Vec::new();
    for preactivation in [true, false] {
        plans.push((preactivation, None));
        plans.extend(LENGTHS.iter().map(|&k| (preactivation, Some(k))));
    }
    let mut outcomes = Vec::new();
    let mut rows = Vec::new();
    for (preactivation, branch_layers) in plans {
        let shortcut = if branch_layers.is_some() { Shortcut::B } else { Shortcut::None };
        let arch = network(hidden, branch_layers.unwrap_or(1), preactivation, shortcut);
        let params = arch.analyse(shape, classes).params;
        let (mut losses, mut train_errors, mut test_errors, mut log_ratios) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut last_run = None;
        for &seed in &seeds {
            let gradients = ctx.initial_output_gradients(&arch, &LayerOverrides::default(), seed, 2)?;
            let ratio = match (gradients.first(), gradients.last()) {
                (Some(first), Some(last)) if *last > 0.0 => first / last,
                _ => f64::NAN,
            };
            log_ratios.push(ratio.ln());
            let run = ctx.train(&format!("{}-seed{seed}", arch.name), arch.clone(), TrainConfig { seed, ..base.clone() })?;
            let s = &run.summary;
            let (loss, train_error, test_error) = (
                s.final_train_loss.map_or(f64::NAN, f64::from),
                s.final_train_accuracy.map_or(f64::NAN, |a| f64::from(1.0 - a) * 100.0),
                s.final_test_accuracy.map_or(f64::NAN, |a| f64::from(1.0 - a) * 100.0),
            );
            rows.push(format!(
                "{},{},{seed},{},{},{params},{ratio},{loss},{train_error},{test_error},{}",
                if preactivation { "pre" } else { "post" },
                branch_layers.map_or("plain".to_string(), |k| k.to_string()),
                branch_layers.map_or(0, |k| hidden / k),
                hidden + 2,
                s.status
            ));
            losses.push(loss);
            train_errors.push(train_error);
            test_errors.push(test_error);
            last_run = Some(run);
        }
        let run = last_run.ok_or(ReproduceError::NoSeeds)?;
        outcomes.push(Outcome {
            label: arch.name.clone(),
            preactivation,
            branch_layers,
            params,
            initial_ratio: mean(&log_ratios).exp(),
            train_loss: mean(&losses),
            train_error: mean(&train_errors),
            test_error: mean(&test_errors),
            run,
        });
    }
    ctx.write_csv(
        "results.csv",
        "order,branch_layers,seed,units,depth,params,initial_first_over_last_output_grad,final_train_loss,final_train_error,final_test_error,status",
        &rows,
    )?;

    let png = ctx.dir.join("figure.png");
    figure(ctx, &outcomes, hidden, epochs, seeds.len()).save_png(&png)?;
    Ok(summary(&outcomes, hidden, epochs, seeds.len(), &relative(&png, &ctx.dir), &ctx.data.spec.to_string()))
}

fn figure(ctx: &Context, outcomes: &[Outcome], hidden: usize, epochs: usize, seeds: usize) -> Figure {
    let lengths = |o: &&Outcome| o.branch_layers.is_some();
    let mut error_panel = Panel::new("final training error (solid) and test error (dashed)", "layers per residual unit", "error %", false)
        .including_y(0.0)
        .legend_below();
    let mut loss_panel = Panel::new("final training loss", "layers per residual unit", "loss", true).legend_below();
    for (c, preactivation) in [true, false].into_iter().enumerate() {
        let order = if preactivation { "pre-act" } else { "post-act" };
        let of = |f: &dyn Fn(&Outcome) -> f64| -> Vec<[f64; 2]> {
            outcomes
                .iter()
                .filter(lengths)
                .filter(|o| o.preactivation == preactivation)
                .map(|o| [o.branch_layers.unwrap_or(0) as f64, f(o)])
                .collect()
        };
        let flat = |value: f64| vec![[1.0, value], [4.0, value]];
        error_panel = error_panel
            .with(Series::new(format!("residual {order}, train"), of(&|o| o.train_error), COLORS[1 + 2 * c]))
            .with(Series::new(format!("residual {order}, test"), of(&|o| o.test_error), COLORS[1 + 2 * c]).dashed());
        loss_panel = loss_panel.with(Series::new(format!("residual {order}"), of(&|o| o.train_loss), COLORS[1 + 2 * c]));
        if let Some(plain) = outcomes.iter().find(|o| o.branch_layers.is_none() && o.preactivation == preactivation) {
            error_panel = error_panel
                .with(Series::new(format!("plain twin {order}, train"), flat(plain.train_error), COLORS[2 * c]).without_markers());
            loss_panel =
                loss_panel.with(Series::new(format!("plain twin {order}"), flat(plain.train_loss), COLORS[2 * c]).without_markers());
        }
    }
    let mut curves =
        Panel::new("training loss, pre-activation nets", "step", "loss (10-step mean)", true).legend_at(egui_plot::Corner::RightTop);
    for (i, o) in outcomes.iter().filter(|o| o.preactivation).enumerate() {
        let name = o.branch_layers.map_or("plain twin".to_string(), |k| format!("units of {k}"));
        curves = curves.with(Series::new(name, smoothed_loss(&o.run, 10), COLORS[(i + 2) % COLORS.len()]).without_markers());
    }
    Figure {
        title: format!("Layers per residual unit at a fixed depth of {} weight layers", hidden + 2),
        caption: format!(
            "{hidden} hidden fully connected layers of {WIDTH} units (BN, ReLU, He init) grouped into residual units of 1, 2, 3 or 4 \
             layers, identity shortcuts, the same weights and parameters for every grouping; plain twin = shortcuts removed. {}; \
             SGD lr 0.05, momentum 0.9, weight decay 1e-4, batch 64, {epochs} epoch(s), mean of {seeds} seed(s).",
            ctx.data.spec
        ),
        panels: vec![error_panel, loss_panel, curves],
        columns: 3,
    }
}

fn summary(outcomes: &[Outcome], hidden: usize, epochs: usize, seeds: usize, png: &str, data: &str) -> String {
    let mut md = format!(
        "## Layers per residual unit (He et al. 2016; Veit et al. 2016)\n\n![figure]({png})\n\n\
         {hidden} hidden layers of {WIDTH} units (depth {}), {data}, {epochs} epoch(s), mean of {seeds} seed(s).\n\n\
         | net | units x layers | params | first/last output gradient at init | final train loss | train err | test err |\n\
         |---|---|---|---|---|---|---|\n",
        hidden + 2
    );
    for o in outcomes {
        let grouping = o.branch_layers.map_or("plain".to_string(), |k| format!("{} x {k}", hidden / k));
        md.push_str(&format!(
            "| {} | {grouping} | {} | {:.3} | {:.4} | {:.2}% | {:.2}% |\n",
            o.label, o.params, o.initial_ratio, o.train_loss, o.train_error, o.test_error
        ));
    }
    for preactivation in [true, false] {
        let residual: Vec<&Outcome> = outcomes.iter().filter(|o| o.preactivation == preactivation && o.branch_layers.is_some()).collect();
        let errors: Vec<f64> = residual.iter().map(|o| o.train_error).collect();
        let (min, max) = errors.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &e| (a.min(e), b.max(e)));
        let plain = outcomes.iter().find(|o| o.preactivation == preactivation && o.branch_layers.is_none());
        md.push_str(&format!(
            "\n{}: residual training error {min:.2}–{max:.2}% over units of 1–4 layers (spread {:.2} points); plain twin {}.",
            if preactivation { "Pre-activation" } else { "Post-activation" },
            max - min,
            plain.map_or("-".into(), |p| format!("{:.2}%", p.train_error))
        ));
    }
    md.push('\n');
    md
}
