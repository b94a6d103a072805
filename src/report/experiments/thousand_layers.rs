//! A thousand layers, trained: He et al. (2016) trained a 1,202-layer
//! ResNet on CIFAR-10 (7.93 % test error, worse than ResNet-110's 6.43 %,
//! which they put down to overfitting). At the default initialisation every
//! residual branch adds its variance to the stream, so the deep net starts
//! with logits tens of times too large and a first gradient that explodes
//! towards the input. Starting every branch at zero (zero-γ, Goyal et al.
//! 2017; SkipInit, De & Smith 2020) makes the net start as the identity
//! whatever its depth. This reproduction trains ResNet-1202 with the default
//! init, with zero-γ and with SkipInit on the same batches, with ResNet-110
//! beside them, and measures the logit scale at initialisation over depth.

use burn::prelude::*;

use super::highway::smoothed_loss;
use super::{Context, ReproduceError, Trained, relative};
use crate::arch::{LayerOverrides, ResidualInit, presets};
use crate::backend;
use crate::model::{Ctx, Network};
use crate::report::figure::{COLORS, Figure, Panel, Series};
use crate::train::{RunStatus, Schedule, TrainConfig};
use crate::util::rng::Rng;

/// The recipe every run of the reproduction uses (the README quotes it):
/// SGD with momentum 0.9 and weight decay 1e-4, batch 32, a linear warm-up
/// over the first 5 % of the steps, then a cosine decay to zero.
pub fn recipe(max_steps: usize, lr: f64) -> TrainConfig {
    TrainConfig {
        epochs: 0,
        max_steps: Some(max_steps),
        batch_size: 32,
        lr,
        momentum: 0.9,
        weight_decay: 1e-4,
        schedule: Schedule::Cosine,
        warmup_steps: (max_steps / 20).max(1),
        probe_every: 25,
        ..TrainConfig::default()
    }
}

/// The base learning rate of [`recipe`].
pub const LR: f64 = 0.1;

/// One run of the comparison: a depth and a residual init.
struct Case {
    depth: usize,
    init: ResidualInit,
}

impl Case {
    fn label(&self) -> String {
        format!("resnet-{}-{}", self.depth, self.init.word())
    }

    fn title(&self) -> String {
        format!("ResNet-{} · {}", self.depth, init_title(self.init))
    }
}

fn init_title(init: ResidualInit) -> &'static str {
    match init {
        ResidualInit::Default => "default init",
        ResidualInit::Zero => "zero-γ",
        ResidualInit::Skipinit => "SkipInit",
        ResidualInit::Fixup => "Fixup",
    }
}

/// The standard deviation of the logits of `resnet-DEPTH` at
/// initialisation, on one training batch of 32 with batch-norm's batch
/// statistics (as in training).
fn initial_logit_std(ctx: &Context, depth: usize, init: ResidualInit, seed: u64) -> Result<f64, ReproduceError> {
    let mut arch = presets::build(&format!("resnet-{depth}"), ctx.data.shape())?;
    arch.apply_overrides(&LayerOverrides { residual_init: Some(init), ..LayerOverrides::default() });
    let compute = backend::select(ctx.options.backend)?;
    let device = compute.device.clone().autodiff();
    let data = &ctx.data;
    let net = Network::build(&arch, data.shape(), data.classes(), &device, seed)?;
    let mut order = crate::data::BatchOrder::new(seed, data.train.len()).next_epoch();
    order.truncate(32);
    let batch = data.batch(&data.train, &order, None);
    let x = Tensor::<4>::from_data(TensorData::new(batch.images, [batch.size, data.channels, data.height, data.width]), &device);
    let logits: Vec<f32> = net.forward(x, &mut Ctx::new(Rng::new(seed))).try_into_vec_as::<f32>().map_err(ReproduceError::Logits)?;
    let n = logits.len().max(1) as f64;
    let mean = logits.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    Ok((logits.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n).sqrt())
}

/// The first test accuracy after the last step, as a percentage.
fn final_accuracy(run: &Trained) -> Option<f64> {
    run.summary.final_test_accuracy.filter(|a| a.is_finite()).map(|a| f64::from(a) * 100.0)
}

/// What the reproduction trains and measures: the deep net and its
/// reference, the steps, the recipe, the runs and the depths whose logit
/// scale is measured at initialisation.
struct Setup {
    deep: usize,
    reference: usize,
    steps: usize,
    config: TrainConfig,
    cases: [Case; 5],
    depths: &'static [usize],
}

/// The residual inits whose logit scale is measured, in the table's order.
const INITS: [ResidualInit; 3] = [ResidualInit::Default, ResidualInit::Zero, ResidualInit::Skipinit];

impl Setup {
    fn new(quick: bool) -> Setup {
        // The quick check trains shallow nets for a few steps on a few images.
        let (deep, reference, steps) = if quick { (56, 20, 4) } else { (1202, 110, 400) };
        let mut config = recipe(steps, LR);
        if quick {
            config.batch_size = 8;
            config.test_limit = Some(50);
            config.probe_every = 1;
        }
        let cases = [
            Case { depth: reference, init: ResidualInit::Default },
            Case { depth: reference, init: ResidualInit::Zero },
            Case { depth: deep, init: ResidualInit::Default },
            Case { depth: deep, init: ResidualInit::Zero },
            Case { depth: deep, init: ResidualInit::Skipinit },
        ];
        let depths: &[usize] = if quick { &[8, 20, 56] } else { &[20, 56, 110, 1202] };
        Setup { deep, reference, steps, config, cases, depths }
    }
}

pub fn run(ctx: &Context) -> Result<String, ReproduceError> {
    let setup = Setup::new(ctx.options.quick);
    let mut runs = Vec::new();
    for case in &setup.cases {
        let arch = presets::build(&format!("resnet-{}", case.depth), ctx.data.shape())?;
        let overrides = LayerOverrides { residual_init: Some(case.init), ..setup.config.overrides };
        runs.push(ctx.train(&case.label(), arch, TrainConfig { overrides, ..setup.config.clone() })?);
    }
    let logit_series = logit_scales(ctx, &setup)?;
    write_curves(ctx, &setup, &runs)?;
    let png = ctx.dir.join("figure.png");
    figure(ctx, &setup, &runs, &logit_series).save_png(&png)?;
    Ok(markdown(ctx, &setup, &runs, &logit_series, &png))
}

/// The logit scale at initialisation over depth, by init (`logit_scale.csv`).
fn logit_scales(ctx: &Context, setup: &Setup) -> Result<Vec<Vec<[f64; 2]>>, ReproduceError> {
    let mut logit_rows = Vec::new();
    let mut logit_series: Vec<Vec<[f64; 2]>> = vec![Vec::new(); INITS.len()];
    for &depth in setup.depths {
        for (i, &init) in INITS.iter().enumerate() {
            let std = initial_logit_std(ctx, depth, init, setup.config.seed)?;
            (ctx.log)(&format!("  logit std at init, resnet-{depth} {}: {std:.3}", init.word()));
            logit_rows.push(format!("{depth},{},{std}", init.word()));
            logit_series[i].push([depth as f64, std]);
        }
    }
    ctx.write_csv("logit_scale.csv", "depth,residual_init,logit_std", &logit_rows)?;
    Ok(logit_series)
}

/// The gradient reaching each block at step 0.
fn first_gradients(run: &Trained) -> Vec<f32> {
    run.gradients.iter().find(|g| g.step == 0).map(|g| g.output.clone()).unwrap_or_default()
}

/// Per run: the curves (`curves.csv`) and the gradient reaching each
/// block at step 0 (`gradients_step0.csv`).
fn write_curves(ctx: &Context, setup: &Setup, runs: &[Trained]) -> Result<(), ReproduceError> {
    let mut rows = Vec::new();
    for (case, run) in setup.cases.iter().zip(runs) {
        for s in &run.steps {
            rows.push(format!("{},{},train,{},{}", case.label(), s.step, s.loss, s.accuracy));
        }
        for e in &run.evaluations {
            rows.push(format!("{},{},test,{},{}", case.label(), e.step, e.loss, e.accuracy));
        }
    }
    ctx.write_csv("curves.csv", "run,step,split,loss,accuracy", &rows)?;
    let mut gradient_rows = Vec::new();
    for (case, run) in setup.cases.iter().zip(runs) {
        for (layer, v) in first_gradients(run).iter().enumerate() {
            gradient_rows.push(format!("{},{layer},{v}", case.label()));
        }
    }
    ctx.write_csv("gradients_step0.csv", "run,layer,output_grad_norm", &gradient_rows)?;
    Ok(())
}

/// Loss, test accuracy, the gradient at step 0 of the deep runs, and the
/// logit scale over depth.
fn figure(ctx: &Context, setup: &Setup, runs: &[Trained], logit_series: &[Vec<[f64; 2]>]) -> Figure {
    let (deep, reference, config) = (setup.deep, setup.reference, &setup.config);
    let mut loss = Panel::new("training loss", "step", "loss (10-step mean)", true).legend_below();
    let mut accuracy = Panel::new("test accuracy", "step", "test accuracy (%)", false).including_y(0.0).including_y(100.0).legend_below();
    let mut gradient = Panel::new("gradient reaching each block at step 0", "block (input → output)", "‖∂L/∂output‖", true).legend_below();
    for (i, (case, run)) in setup.cases.iter().zip(runs).enumerate() {
        let color = COLORS[i % COLORS.len()];
        let dashed = case.depth != deep;
        let style = |s: Series| if dashed { s.dashed() } else { s };
        loss = loss.with(style(Series::new(case.title(), smoothed_loss(run, 10), color).without_markers()));
        let points: Vec<[f64; 2]> =
            run.evaluations.iter().filter(|e| e.accuracy.is_finite()).map(|e| [e.step as f64, f64::from(e.accuracy) * 100.0]).collect();
        accuracy = accuracy.with(style(Series::new(case.title(), points, color)));
        if case.depth == deep {
            let norms: Vec<[f64; 2]> = first_gradients(run)
                .iter()
                .enumerate()
                .filter(|(_, v)| v.is_finite() && **v > 0.0)
                .map(|(l, v)| [(l + 1) as f64, f64::from(*v)])
                .collect();
            gradient = gradient.with(Series::new(case.title(), norms, color).without_markers());
        }
    }
    let mut logits = Panel::new("logit scale at initialisation", "depth (layers)", "std of the logits", true).legend_below();
    for (i, init) in INITS.iter().enumerate() {
        logits = logits.with(Series::new(init_title(*init), logit_series[i].clone(), COLORS[[2, 3, 4][i]]));
    }
    Figure {
        title: format!("A thousand layers, trained: ResNet-{deep} with and without a zero start, beside ResNet-{reference}"),
        caption: format!(
            "{} · {} steps of batch {} · SGD momentum 0.9, lr {} with {} warm-up steps and a cosine decay, weight decay 1e-4 · same seed and batches for every run.",
            ctx.data.spec, setup.steps, config.batch_size, config.lr, config.warmup_steps
        ),
        panels: vec![loss, accuracy, gradient, logits],
        columns: 2,
    }
}

/// The recipe, the table of runs, the logit scales and the deep net's
/// accuracy against its reference's.
fn markdown(ctx: &Context, setup: &Setup, runs: &[Trained], logit_series: &[Vec<[f64; 2]>], png: &std::path::Path) -> String {
    let (deep, reference, config) = (setup.deep, setup.reference, &setup.config);
    let mut md = String::from("## He et al. 2016 — a thousand layers, and a zero start\n\n");
    md.push_str(&format!(
        "![figure]({})\n\n{} steps of batch {} on {}; SGD with momentum 0.9, weight decay 1e-4, learning rate {} \
         warmed up linearly over the first {} step(s), then a cosine decay to zero; every run on the same seed and batches.\n\n",
        relative(png, &ctx.dir),
        setup.steps,
        config.batch_size,
        ctx.data.spec,
        config.lr,
        config.warmup_steps
    ));
    md.push_str(&runs_table(setup, runs));
    md.push_str("\n| depth | logit std at init: default | zero-γ | SkipInit |\n|---|---|---|---|\n");
    for (d, &depth) in setup.depths.iter().enumerate() {
        md.push_str(&format!("| {depth} | {:.3} | {:.3} | {:.3} |\n", logit_series[0][d][1], logit_series[1][d][1], logit_series[2][d][1]));
    }
    let (deep_zero, reference_zero) = (final_accuracy(&runs[3]), final_accuracy(&runs[1]));
    if let (Some(d), Some(r)) = (deep_zero, reference_zero) {
        md.push_str(&format!(
            "\nWith every branch starting at zero, ResNet-{deep} reaches {d:.1}% test accuracy against ResNet-{reference}'s {r:.1}% \
             with the same recipe ({:+.1} points). He et al. report 7.93% test error for ResNet-1202 on CIFAR-10 against 6.43% for ResNet-110.\n",
            d - r
        ));
    }
    md
}

/// A row per run: first loss, status, final loss and accuracy, the
/// gradient ratio at step 0, wall time and speed; then why any diverged.
fn runs_table(setup: &Setup, runs: &[Trained]) -> String {
    let mut md = String::from(
        "| run | first loss | status | final train loss | final test accuracy | output gradient at step 0, first residual block / last | wall time | img/s |\n",
    );
    md.push_str("|---|---|---|---|---|---|---|---|\n");
    for (case, run) in setup.cases.iter().zip(runs) {
        // Probe layers: the stem, the residual blocks, the classifier.
        let g = first_gradients(run);
        let ratio = match (g.get(1), g.len().checked_sub(2).and_then(|i| g.get(i))) {
            (Some(a), Some(b)) if *b > 0.0 => {
                format!("{} / {} = {}", three_digits(f64::from(*a)), three_digits(f64::from(*b)), three_digits(f64::from(a / b)))
            }
            _ => "-".into(),
        };
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {ratio} | {:.0} s | {} |\n",
            case.title(),
            run.steps.first().map_or("-".into(), |s| format!("{:.3}", s.loss)),
            run.summary.status,
            run.summary.final_train_loss.map_or("-".into(), |l| format!("{l:.4}")),
            final_accuracy(run).map_or("-".into(), |a| format!("{a:.1}%")),
            run.summary.wall_secs,
            run.summary.images_per_sec.map_or("-".into(), |v| format!("{v:.1}")),
        ));
    }
    for (case, run) in setup.cases.iter().zip(runs) {
        if run.summary.status == RunStatus::Diverged {
            md.push_str(&format!("\n{} diverged: {}.\n", case.title(), run.summary.reason.as_deref().unwrap_or("no reason recorded")));
        }
    }
    md
}

/// `x` to three significant digits, without an exponent (9.56, 0.0172, 556).
fn three_digits(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let decimals = (2 - x.abs().log10().floor() as i32).max(0) as usize;
    format!("{x:.decimals$}")
}

#[cfg(test)]
mod tests {
    use super::three_digits;

    #[test]
    fn three_significant_digits_without_an_exponent() {
        assert_eq!(three_digits(9.560_66), "9.56");
        assert_eq!(three_digits(0.017_198), "0.0172");
        assert_eq!(three_digits(555.48), "555");
        assert_eq!(three_digits(0.004_520_2), "0.00452");
        assert_eq!(three_digits(12_345.6), "12346");
        assert_eq!(three_digits(0.0), "0");
    }
}
