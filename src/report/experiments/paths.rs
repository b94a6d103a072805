//! Veit, Wilber & Belongie (2016), fig. 6 at lab scale: the gradient
//! reaching the input along one path of each length, and the total per
//! length, for a 54-block ResNet-110 at initialisation (the paper's net,
//! untrained) and a briefly trained ResNet-20.

use super::{Context, ReproduceError, he_recipe, relative};
use crate::analysis::Progress;
use crate::analysis::paths::{PathsOptions, PathsReport, paths_arch, paths_run};
use crate::arch::presets;
use crate::report::analysis::paths_figure;
use crate::report::figure::{COLORS, Figure, Panel, Series};

pub fn run(ctx: &Context) -> Result<String, ReproduceError> {
    let quick = ctx.options.quick;
    let (init_name, trained_name) = if quick { ("resnet-14", "resnet-8") } else { ("resnet-110", "resnet-20") };
    let init_options = if quick {
        PathsOptions { samples: 1, batch: 8, ..PathsOptions::default() }
    } else {
        PathsOptions { samples: 3, batch: 16, ..PathsOptions::default() }
    };
    let trained_options = if quick { init_options.clone() } else { PathsOptions { samples: 10, batch: 32, ..PathsOptions::default() } };
    (ctx.log)(&format!("paths of {init_name} at initialisation"));
    let arch = presets::build(init_name, ctx.data.shape())?;
    let init = paths_arch(&arch, &ctx.data, &init_options, &Progress::none())?;
    let config = if quick { he_recipe(1, Some(6), 1000) } else { he_recipe(1, None, 50) };
    let run = ctx.train(trained_name, presets::build(trained_name, ctx.data.shape())?, config)?;
    (ctx.log)(&format!("paths of trained {trained_name}"));
    let trained = paths_run(&run.dir, &trained_options, &Progress::none())?;
    let mut rows = Vec::new();
    for (label, r) in [("initial", &init), ("trained", &trained)] {
        crate::util::fsio::write_atomic(&ctx.dir.join(format!("{}-{label}.json", r.arch)), serde_json::to_string_pretty(r)?.as_bytes())?;
        for l in &r.lengths {
            rows.push(format!("{},{label},{},{},{},{},{}", r.arch, r.blocks, l.length, l.count, l.grad_per_path, l.total));
        }
    }
    ctx.write_csv("paths.csv", "arch,weights,blocks,length,count,grad_per_path,total", &rows)?;
    let share = |r: &PathsReport| {
        let sum: f64 = r.lengths.iter().map(|l| l.total).sum();
        r.lengths.iter().map(|l| [l.length as f64 / r.blocks as f64, l.total / sum]).collect::<Vec<_>>()
    };
    let per_path = |r: &PathsReport| r.lengths.iter().map(|l| [l.length as f64, l.grad_per_path]).collect::<Vec<_>>();
    let figure = Figure {
        title: "Gradient by path length (Veit et al. 2016, fig. 6) at lab scale".into(),
        caption: format!(
            "{init_name} initialised ({} samples of {} images per length) and {trained_name} after one epoch ({} samples of {}), on {}.",
            init_options.samples, init_options.batch, trained_options.samples, trained_options.batch, ctx.data.spec
        ),
        panels: vec![
            Panel::new("gradient magnitude of one path", "path length k", "‖∂L/∂x‖ per path", true)
                .with(Series::new(format!("{init_name} (initial)"), per_path(&init), COLORS[1]))
                .with(Series::new(format!("{trained_name} (trained)"), per_path(&trained), COLORS[0]))
                .legend_below(),
            Panel::new("share of the total gradient by relative length", "path length k / blocks n", "C(n,k)·per path / Σ", false)
                .with(Series::new(format!("{init_name} (initial)"), share(&init), COLORS[1]))
                .with(Series::new(format!("{trained_name} (trained)"), share(&trained), COLORS[0]))
                .legend_below(),
        ],
        columns: 2,
    };
    let png = ctx.dir.join("figure.png");
    figure.save_png(&png)?;
    paths_figure(&init).save_png(&ctx.dir.join(format!("{init_name}-initial.png")))?;
    paths_figure(&trained).save_png(&ctx.dir.join(format!("{trained_name}-trained.png")))?;
    let mut md = String::from("## Veit et al. 2016 — gradient by path length\n\n");
    md.push_str(&format!("![figure]({})\n\n", relative(&png, &ctx.dir)));
    md.push_str("| net | weights | blocks n | per-path gradient, k=0 | k=n/2 | k=n | peak of the total at k | lengths holding 90% of the total |\n|---|---|---|---|---|---|---|---|\n");
    for (label, r) in [("initial", &init), ("trained", &trained)] {
        let g = |k: usize| r.lengths.get(k).map_or(f64::NAN, |l| l.grad_per_path);
        let peak = r.lengths.iter().max_by(|a, b| a.total.total_cmp(&b.total)).map_or(0, |l| l.length);
        let (lo, hi) = r.effective_range(0.9);
        md.push_str(&format!(
            "| {} | {label} | {} | {:.3e} | {:.3e} | {:.3e} | {peak} | {lo}–{hi} |\n",
            r.arch,
            r.blocks,
            g(0),
            g(r.blocks / 2),
            g(r.blocks)
        ));
    }
    Ok(md)
}
