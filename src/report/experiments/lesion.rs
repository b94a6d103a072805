//! Veit, Wilber & Belongie (2016), fig. 3 and 5 at lab scale: a residual net
//! and its plain twin, trained the same way, have each block removed at
//! test time in turn, then k random blocks.

use super::{Context, ReproduceError, he_recipe, relative};
use crate::analysis::Progress;
use crate::analysis::lesion::{LesionOptions, LesionReport, lesion_run};
use crate::arch::presets;
use crate::report::analysis::lesion_figure;
use crate::report::figure::COLORS;

pub fn run(ctx: &Context) -> Result<String, ReproduceError> {
    let quick = ctx.options.quick;
    let (names, config, options) = if quick {
        (
            ["resnet-8", "plain-8"],
            he_recipe(1, Some(6), 1000),
            LesionOptions { test_examples: Some(100), draws: 2, ..LesionOptions::default() },
        )
    } else {
        (["resnet-14", "plain-14"], he_recipe(3, None, 50), LesionOptions { test_examples: None, draws: 5, ..LesionOptions::default() })
    };
    let mut reports: Vec<LesionReport> = Vec::new();
    for name in names {
        let arch = presets::build(name, ctx.data.shape())?;
        let run = ctx.train(name, arch, config.clone())?;
        let report = lesion_run(&run.dir, &options, &Progress::none())?;
        (ctx.log)(&format!(
            "  {name}: baseline {:.2}%, median rise for one block {:+.2} points",
            report.baseline_test_error * 100.0,
            report.median_rise() * 100.0
        ));
        crate::util::fsio::write_atomic(&ctx.dir.join(format!("{name}.json")), serde_json::to_string_pretty(&report)?.as_bytes())?;
        reports.push(report);
    }
    let mut rows = Vec::new();
    for r in &reports {
        for line in r.to_csv().lines().skip(1) {
            rows.push(format!("{},{line}", r.arch));
        }
    }
    ctx.write_csv("lesion.csv", "arch,kind,index,name,k,test_error,std,draws,skipped", &rows)?;
    let png = ctx.dir.join("figure.png");
    let pairs: Vec<(&LesionReport, egui::Color32)> = reports.iter().zip([COLORS[1], COLORS[0]]).collect();
    lesion_figure(&pairs, &format!("{} vs {} on {}", names[0], names[1], ctx.data.spec)).save_png(&png)?;
    let mut md = String::from("## Veit et al. 2016 — lesion study\n\n");
    md.push_str(&format!(
        "![figure]({})\n\n{} epoch(s) of He et al.'s recipe each on {}; test error on {} test images.\n\n",
        relative(&png, &ctx.dir),
        config.epochs,
        ctx.data.spec,
        reports.first().map_or(0, |r| r.test_examples)
    ));
    md.push_str("| net | baseline test err | removable blocks | median err, one block removed | median rise | worst single removal |\n|---|---|---|---|---|---|\n");
    for r in &reports {
        let errors = r.single_errors();
        let worst = errors.iter().copied().fold(f64::NAN, f64::max);
        md.push_str(&format!(
            "| {} | {:.2}% | {} of {} | {:.2}% | {:+.2} points | {:.2}% |\n",
            r.arch,
            r.baseline_test_error * 100.0,
            errors.len(),
            r.blocks.len(),
            crate::analysis::median(&errors) * 100.0,
            r.median_rise() * 100.0,
            worst * 100.0
        ));
    }
    md.push_str("\n| k blocks removed at random | ");
    md.push_str(&reports.iter().map(|r| format!("{} mean ± std", r.arch)).collect::<Vec<_>>().join(" | "));
    md.push_str(" |\n|---|");
    md.push_str(&"---|".repeat(reports.len()));
    md.push('\n');
    let kmax = reports.iter().map(|r| r.random.len()).max().unwrap_or(0);
    for k in 1..=kmax {
        let cells: Vec<String> = reports
            .iter()
            .map(|r| r.random.get(k - 1).map_or("-".into(), |x| format!("{:.2}% ± {:.2}", x.mean * 100.0, x.std * 100.0)))
            .collect();
        md.push_str(&format!("| {k} | {} |\n", cells.join(" | ")));
    }
    Ok(md)
}
