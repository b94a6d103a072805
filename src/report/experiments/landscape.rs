//! Li, Xu, Taylor, Studer & Goldstein (2018), fig. 5 at lab scale: the loss
//! around a residual net and around its plain twin, trained the same way,
//! on a plane of filter-normalised random directions.

use super::{Context, ReproduceError, he_recipe, relative};
use crate::analysis::Progress;
use crate::analysis::landscape::{Landscape, LandscapeOptions, landscape_run};
use crate::arch::presets;
use crate::report::analysis::landscape_png;
use crate::report::figure::{COLORS, Figure, Panel, Series};

/// Mean absolute second difference of log loss along both axes: how rough
/// the surface is at the grid's resolution (0 for a plane).
fn roughness(l: &Landscape) -> f64 {
    let log: Vec<Vec<f64>> = l.loss.iter().map(|r| r.iter().map(|v| v.max(1e-12).ln()).collect()).collect();
    let (n, m) = (log.len(), log.first().map_or(0, Vec::len));
    let mut sum = 0.0;
    let mut count = 0;
    for i in 0..n {
        for j in 0..m {
            if i > 0 && i + 1 < n {
                sum += (log[i - 1][j] - 2.0 * log[i][j] + log[i + 1][j]).abs();
                count += 1;
            }
            if j > 0 && j + 1 < m {
                sum += (log[i][j - 1] - 2.0 * log[i][j] + log[i][j + 1]).abs();
                count += 1;
            }
        }
    }
    if count == 0 { 0.0 } else { sum / count as f64 }
}

/// Local minima of the grid other than the centre's neighbourhood (a
/// chaotic surface has many).
fn local_minima(l: &Landscape) -> usize {
    let (n, m) = (l.loss.len(), l.loss.first().map_or(0, Vec::len));
    let mut found = 0;
    for i in 1..n.saturating_sub(1) {
        for j in 1..m.saturating_sub(1) {
            let v = l.loss[i][j];
            let lower = [(0i64, 1i64), (0, -1), (1, 0), (-1, 0)]
                .iter()
                .all(|(di, dj)| v < l.loss[(i as i64 + di) as usize][(j as i64 + dj) as usize]);
            if lower {
                found += 1;
            }
        }
    }
    found
}

pub fn run(ctx: &Context) -> Result<String, ReproduceError> {
    let quick = ctx.options.quick;
    let names = if quick { ["resnet-8", "plain-8"] } else { ["resnet-20", "plain-20"] };
    let config = if quick { he_recipe(1, Some(6), 1000) } else { he_recipe(2, None, 50) };
    let options = if quick {
        LandscapeOptions { grid: 3, subset: 50, line_points: 3, ..LandscapeOptions::default() }
    } else {
        LandscapeOptions { grid: 15, subset: 500, line_points: 11, ..LandscapeOptions::default() }
    };
    let mut results = Vec::new();
    for name in names {
        let run = ctx.train(name, presets::build(name, ctx.data.shape())?, config.clone())?;
        (ctx.log)(&format!("landscape of {name}"));
        let mut l = landscape_run(&run.dir, &options, &Progress::none())?;
        l.arch = name.to_string();
        (ctx.log)(&format!("  centre {:.4}, corners {:.4}, {:.0} s", l.centre_loss, l.corner_mean, l.total_secs));
        crate::util::fsio::write_atomic(&ctx.dir.join(format!("{name}.json")), serde_json::to_string_pretty(&l)?.as_bytes())?;
        crate::util::fsio::write_atomic(&ctx.dir.join(format!("{name}.csv")), l.to_csv().as_bytes())?;
        landscape_png(&l, &ctx.dir.join(format!("{name}.png")))?;
        results.push(l);
    }
    let mut rows = Vec::new();
    for l in &results {
        for (t, v) in l.interpolation.t.iter().zip(&l.interpolation.loss) {
            rows.push(format!("{},{t},{v}", l.arch));
        }
    }
    ctx.write_csv("interpolation.csv", "arch,t,loss", &rows)?;
    // A 1-D slice through the trained point along δ (β = 0) and the line.
    let mid = |l: &Landscape| l.betas.iter().enumerate().min_by(|a, b| a.1.abs().total_cmp(&b.1.abs())).map_or(0, |(j, _)| j);
    let mut slice = Panel::new("loss along δ through the trained weights (β = 0)", "α", "training loss", true).legend_below();
    let mut line = Panel::new("loss from the initial (t = 0) to the trained (t = 1) weights", "t", "training loss", true).legend_below();
    for (l, color) in results.iter().zip([COLORS[1], COLORS[0]]) {
        let j = mid(l);
        slice = slice.with(Series::new(l.arch.clone(), l.alphas.iter().zip(&l.loss).map(|(a, r)| [*a, r[j]]).collect(), color));
        line = line.with(Series::new(
            l.arch.clone(),
            l.interpolation.t.iter().zip(&l.interpolation.loss).map(|(t, v)| [*t, *v]).collect(),
            color,
        ));
    }
    let figure = Figure {
        title: format!("Loss landscape (Li et al. 2018) at lab scale: {} vs {}", names[0], names[1]),
        caption: format!(
            "{} epoch(s) each on {}; loss on {} training images; heat maps in {}.png and {}.png.",
            config.epochs, ctx.data.spec, options.subset, names[0], names[1]
        ),
        panels: vec![slice, line],
        columns: 2,
    };
    let png = ctx.dir.join("figure.png");
    figure.save_png(&png)?;
    let mut md = String::from("## Li et al. 2018 — loss landscape\n\n");
    md.push_str(&format!("![figure]({})\n\n", relative(&png, &ctx.dir)));
    for name in names {
        md.push_str(&format!("![{name}]({name}.png)\n\n"));
    }
    md.push_str("| net | loss at trained weights | corners' mean | max on grid | roughness (mean abs 2nd difference of ln loss) | local minima on grid | grid time |\n|---|---|---|---|---|---|---|\n");
    for l in &results {
        let max = l.loss.iter().flatten().copied().fold(f64::NAN, f64::max);
        md.push_str(&format!(
            "| {} | {:.4} | {:.4} | {:.4} | {:.3} | {} | {:.0} s ({}x{}) |\n",
            l.arch,
            l.centre_loss,
            l.corner_mean,
            max,
            roughness(l),
            local_minima(l),
            l.grid_secs,
            l.alphas.len(),
            l.betas.len()
        ));
    }
    Ok(md)
}
