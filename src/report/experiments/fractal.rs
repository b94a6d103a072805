//! Larsson et al. (2017): a fractal network trained with drop-path (local
//! and global, mixed 50/50 per batch), then each of its columns evaluated
//! alone — and the same network trained without drop-path for contrast.
//! Drop-path trains every column to work on its own; without it a single
//! column is much worse than the whole.

use burn::prelude::*;

use super::{Context, ReproduceError, he_recipe, relative};
use crate::arch::{BlockKind, presets};
use crate::model::Ctx;
use crate::report::figure::{COLORS, Figure, Panel, Series};
use crate::train::evaluate::{CALIBRATION_BATCHES, evaluate_with, recalibrate_batch_norm};
use crate::train::runfolder::RunFolder;

pub fn run(ctx: &Context) -> Result<String, ReproduceError> {
    let columns = if ctx.options.quick { 2 } else { 3 };
    let epochs = if ctx.options.quick { 1 } else { 6 };
    let config = he_recipe(epochs, ctx.options.quick.then_some(30), 10);
    let shape = ctx.data.shape();
    let with_drop = presets::build(&format!("fractal-{columns}"), shape)?;
    let mut without_drop = with_drop.clone();
    without_drop.name = format!("fractal-{columns} (no drop-path)");
    for block in &mut without_drop.blocks {
        if let BlockKind::Fractal { local_drop, global_ratio, .. } = &mut block.kind {
            *local_drop = 0.0;
            *global_ratio = 0.0;
        }
    }
    // Autodiff, so that a training-mode forward pass can refresh the
    // batch-norm statistics of each sub-network before it is evaluated.
    let device = Device::flex().autodiff();
    let mut rows = Vec::new();
    let mut series = Vec::new();
    let mut table = Vec::new();
    for (i, (label, arch)) in [("drop-path", with_drop), ("no-drop-path", without_drop)].into_iter().enumerate() {
        let run = ctx.train(&format!("fractal-{columns}-{label}"), arch, config.clone())?;
        let folder = RunFolder::open(&run.dir)?;
        let mut points = Vec::new();
        let mut errors = Vec::new();
        for column in (1..=columns).map(Some).chain([None]) {
            let net = folder.load_network(&device)?;
            recalibrate_batch_norm(&net, &ctx.data, &device, column, CALIBRATION_BATCHES, 1);
            let mut eval_ctx = Ctx::eval();
            eval_ctx.eval_column = column;
            let result = evaluate_with(&net.valid(), &ctx.data, &device, &mut eval_ctx, 0, 0, 0.0);
            let error = f64::from(1.0 - result.accuracy) * 100.0;
            let x = column.unwrap_or(columns + 1);
            (ctx.log)(&format!(
                "  {label}: {} test error {error:.2}%",
                column.map_or("whole network".into(), |c| format!("column {c} alone"))
            ));
            rows.push(format!("{label},{},{}", column.map_or("all".into(), |c| c.to_string()), error / 100.0));
            points.push([x as f64, error]);
            errors.push(error);
        }
        table.push((label, errors));
        series.push(Series::new(label, points, COLORS[i]));
    }
    ctx.write_csv("results.csv", "training,column,test_error", &rows)?;
    let mut panel = Panel::new(
        format!("test error of each column alone (x = {}: all columns joined)", columns + 1),
        "column (depth 2^(c-1) convs per block)",
        "test error %",
        false,
    )
    .including_y(0.0)
    .legend_at(egui_plot::Corner::RightTop);
    for s in series {
        panel = panel.with(s);
    }
    let figure = Figure {
        title: format!("Larsson et al. (2017) at lab scale: FractalNet with C = {columns}, columns alone"),
        caption: format!(
            "fractal-{columns} (5 blocks, 16..128 filters) on {}, {epochs} epoch(s), SGD lr 0.05. Drop-path: local p = 0.15 per join input, \
             global (one column for the whole net) on half the batches.",
            ctx.data.spec
        ),
        panels: vec![panel],
        columns: 1,
    };
    let png = ctx.dir.join("figure.png");
    figure.save_png(&png)?;
    let mut md = format!(
        "## Larsson et al. 2017 — FractalNet columns alone (C = {columns})\n\n![figure]({})\n\n| training |",
        relative(&png, &ctx.dir)
    );
    for c in 1..=columns {
        md.push_str(&format!(" column {c} |"));
    }
    md.push_str(" whole net |\n|---|");
    md.push_str(&"---|".repeat(columns + 1));
    md.push('\n');
    for (label, errors) in table {
        md.push_str(&format!("| {label} |"));
        for e in errors {
            md.push_str(&format!(" {e:.2}% |"));
        }
        md.push('\n');
    }
    Ok(md)
}
