//! Figures of the analyses (`crate::analysis`): lesion curves, gradient per
//! path length, and the loss landscape as a banded heat map (each colour
//! band one contour interval of log loss) with the trained point marked.

use std::path::Path;

use egui::{Align2, Color32, FontId, Pos2, Rect, Stroke, Vec2};

use super::figure::{COLORS, Figure, Panel, Series};
use super::render::render;
use crate::analysis::landscape::Landscape;
use crate::analysis::lesion::LesionReport;
use crate::analysis::paths::PathsReport;
use crate::util::fsio::FileError;

/// Test error with one block removed (by block) and with k random blocks
/// removed, for one or more runs (a run per colour).
pub fn lesion_figure(reports: &[(&LesionReport, Color32)], title: &str) -> Figure {
    let mut single = Panel::new("one block removed (dashed: no block removed)", "block index", "test error %", false).legend_below();
    let mut random =
        Panel::new("k random removable blocks removed (mean over draws)", "blocks removed k", "test error %", false).legend_below();
    for (report, color) in reports {
        let points: Vec<[f64; 2]> = report.blocks.iter().filter_map(|b| b.test_error.map(|e| [b.index as f64, e * 100.0])).collect();
        let xs = points.iter().map(|p| p[0]);
        let (lo, hi) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| (a.min(x), b.max(x)));
        single = single.with(Series::new(report.arch.clone(), points, *color));
        if lo.is_finite() {
            let base = report.baseline_test_error * 100.0;
            single = single.with(Series::new(report.arch.clone(), vec![[lo, base], [hi, base]], *color).dashed().without_markers());
        }
        let mut curve = vec![[0.0, report.baseline_test_error * 100.0]];
        curve.extend(report.random.iter().map(|r| [r.k as f64, r.mean * 100.0]));
        random = random.with(Series::new(report.arch.clone(), curve, *color));
    }
    Figure {
        title: format!("Lesion study (Veit et al. 2016): {title}"),
        caption:
            "Blocks removed at test time: a residual block keeps its shortcut, a plain block whose shape allows it becomes the identity."
                .into(),
        panels: vec![single.including_y(0.0), random.including_y(0.0)],
        columns: 2,
    }
}

/// Gradient per path and total gradient per path length (log scale).
pub fn paths_figure(report: &PathsReport) -> Figure {
    let per_path: Vec<[f64; 2]> =
        report.lengths.iter().filter(|l| l.grad_per_path > 0.0).map(|l| [l.length as f64, l.grad_per_path]).collect();
    let total: Vec<[f64; 2]> = report.lengths.iter().filter(|l| l.total > 0.0).map(|l| [l.length as f64, l.total]).collect();
    let count: Vec<[f64; 2]> = report.lengths.iter().map(|l| [l.length as f64, l.count]).collect();
    Figure {
        title: format!("Gradient by path length (Veit et al. 2016, fig. 6): {}, {} residual blocks", report.arch, report.blocks),
        caption: format!(
            "{} weights; {} samples of {} images per length; input-gradient L2 norm of one path (branches of k blocks, shortcuts of the rest).",
            if report.trained { "Trained" } else { "Initial" },
            report.samples,
            report.batch
        ),
        panels: vec![
            Panel::new("paths of each length: C(n, k)", "path length k", "paths", true).with(Series::new("count", count, COLORS[7])),
            Panel::new("gradient magnitude of one path", "path length k", "‖∂L/∂x‖ per path", true)
                .with(Series::new("per path", per_path, COLORS[0])),
            Panel::new("total gradient of all paths of a length", "path length k", "C(n, k) × per path", false)
                .with(Series::new("total", total, COLORS[1])),
        ],
        columns: 3,
    }
}

/// A colour for `v` in 0..=1 (dark blue low, yellow high: viridis-like).
fn colour(v: f64) -> Color32 {
    const STOPS: [(f64, [u8; 3]); 5] =
        [(0.0, [68, 1, 84]), (0.25, [59, 82, 139]), (0.5, [33, 145, 140]), (0.75, [94, 201, 98]), (1.0, [253, 231, 37])];
    let v = v.clamp(0.0, 1.0);
    let i = STOPS.iter().rposition(|s| s.0 <= v).unwrap_or(0).min(STOPS.len() - 2);
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    let f = (v - a.0) / (b.0 - a.0);
    let mix = |x: u8, y: u8| (f64::from(x) + (f64::from(y) - f64::from(x)) * f).round() as u8;
    Color32::from_rgb(mix(a.1[0], b.1[0]), mix(a.1[1], b.1[1]), mix(a.1[2], b.1[2]))
}

/// Bilinear interpolation of the grid at fractional indices.
fn sample(loss: &[Vec<f64>], fi: f64, fj: f64) -> f64 {
    let (n, m) = (loss.len(), loss[0].len());
    let (i0, j0) = ((fi.floor() as usize).min(n - 1), (fj.floor() as usize).min(m - 1));
    let (i1, j1) = ((i0 + 1).min(n - 1), (j0 + 1).min(m - 1));
    let (di, dj) = (fi - i0 as f64, fj - j0 as f64);
    let top = loss[i0][j0] * (1.0 - dj) + loss[i0][j1] * dj;
    let bottom = loss[i1][j0] * (1.0 - dj) + loss[i1][j1] * dj;
    top * (1.0 - di) + bottom * di
}

/// Bands of the heat map (contour intervals).
const BANDS: f64 = 14.0;

/// Why a landscape figure was not written.
#[derive(Debug, thiserror::Error)]
pub enum LandscapeFigureError {
    #[error("the landscape has no finite loss to draw")]
    NothingToDraw,
    #[error(transparent)]
    File(#[from] FileError),
}

/// The range of log10 loss the colour bands span.
#[derive(Clone, Copy)]
struct Bands {
    lo: f64,
    hi: f64,
}

impl Bands {
    /// The middle of the band `loss` falls in, in 0..1 (not a number: 1).
    fn level(self, loss: f64) -> f64 {
        if !(loss.is_finite() && loss > 0.0) {
            return 1.0;
        }
        let v = (loss.log10() - self.lo) / (self.hi - self.lo);
        ((v * BANDS).floor().min(BANDS - 1.0) + 0.5) / BANDS
    }
}

/// The landscape as a heat map of log10 loss in bands (α across, β up), the
/// trained weights marked, and the line from the initial weights beside it.
pub fn landscape_png(report: &Landscape, path: &Path) -> Result<(), LandscapeFigureError> {
    let bytes = landscape_png_bytes(report, path)?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(FileError::io(parent))?;
    }
    crate::util::fsio::write_atomic(path, &bytes).map_err(FileError::io(path))?;
    Ok(())
}

/// The landscape figure as PNG bytes (`path` names it in errors).
pub fn landscape_png_bytes(report: &Landscape, path: &Path) -> Result<Vec<u8>, LandscapeFigureError> {
    let finite: Vec<f64> = report.loss.iter().flatten().copied().filter(|v| v.is_finite() && *v > 0.0).collect();
    if finite.is_empty() || report.alphas.is_empty() {
        return Err(LandscapeFigureError::NothingToDraw);
    }
    let lo = finite.iter().copied().fold(f64::INFINITY, f64::min).log10();
    let hi = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max).log10().max(lo + 1e-6);
    let bands = Bands { lo, hi };
    let side = 460.0;
    let size = Vec2::new(side + 620.0, side + 150.0);
    let image = render(size, 1.5, false, |ui| {
        ui.heading(format!("Loss landscape (Li et al. 2018): {}", report.arch));
        ui.label(format!(
            "training loss on {} images at θ + αδ + βη, filter-normalised random directions; colour bands: equal steps of log10 loss",
            report.subset
        ));
        let (rect, _) = ui.allocate_exact_size(Vec2::new(size.x - 20.0, side + 70.0), egui::Sense::hover());
        let painter = ui.painter_at(rect);
        let map = Rect::from_min_size(rect.min + Vec2::new(40.0, 28.0), Vec2::splat(side));
        draw_map(&painter, map, report, bands);
        let bar = Rect::from_min_size(Pos2::new(map.max.x + 20.0, map.min.y), Vec2::new(18.0, side));
        draw_colour_bar(&painter, bar, bands);
        // The line from the initial weights, as a small plot.
        let plot = Rect::from_min_size(Pos2::new(bar.max.x + 80.0, map.min.y), Vec2::new(size.x - bar.max.x - 110.0, side * 0.6));
        draw_line(&painter, plot, report);
    });
    Ok(crate::util::fsio::png_bytes(path, &image)?)
}

/// The heat map in `map` (a square), the trained weights marked at its
/// centre, and its axes.
fn draw_map(painter: &egui::Painter, map: Rect, report: &Landscape, bands: Bands) {
    let side = map.width();
    let cells = 120usize;
    let (n, m) = (report.alphas.len(), report.betas.len());
    let cell = side / cells as f32;
    for ci in 0..cells {
        for cj in 0..cells {
            // x: alpha index, y: beta index (beta grows upwards).
            let fi = (ci as f64 + 0.5) / cells as f64 * (n.max(2) - 1) as f64;
            let fj = (cj as f64 + 0.5) / cells as f64 * (m.max(2) - 1) as f64;
            let loss = if n < 2 || m < 2 { report.loss[0][0] } else { sample(&report.loss, fi, fj) };
            let min = Pos2::new(map.min.x + ci as f32 * cell, map.max.y - (cj + 1) as f32 * cell);
            painter.rect_filled(Rect::from_min_size(min, Vec2::splat(cell + 0.6)), 0.0, colour(bands.level(loss)));
        }
    }
    painter.rect_stroke(map, 0.0, Stroke::new(1.0, Color32::BLACK), egui::StrokeKind::Outside);
    let to_screen = |a: f64, b: f64| Pos2::new(map.min.x + ((a + 1.0) / 2.0) as f32 * side, map.max.y - ((b + 1.0) / 2.0) as f32 * side);
    let centre = to_screen(0.0, 0.0);
    for (w, c) in [(4.0, Color32::BLACK), (2.0, Color32::WHITE)] {
        painter.line_segment([centre - Vec2::splat(9.0), centre + Vec2::splat(9.0)], Stroke::new(w, c));
        painter.line_segment([centre + Vec2::new(-9.0, 9.0), centre + Vec2::new(9.0, -9.0)], Stroke::new(w, c));
    }
    painter.text(centre + Vec2::new(12.0, -12.0), Align2::LEFT_BOTTOM, "trained", FontId::proportional(13.0), Color32::WHITE);
    let font = FontId::proportional(13.0);
    for v in [-1.0, -0.5, 0.0, 0.5, 1.0] {
        let p = to_screen(v, -1.0);
        painter.text(p + Vec2::new(0.0, 4.0), Align2::CENTER_TOP, format!("{v}"), font.clone(), Color32::BLACK);
        let p = to_screen(-1.0, v);
        painter.text(p - Vec2::new(4.0, 0.0), Align2::RIGHT_CENTER, format!("{v}"), font.clone(), Color32::BLACK);
    }
    painter.text(Pos2::new(map.center().x, map.max.y + 22.0), Align2::CENTER_TOP, "α (direction δ)", font.clone(), Color32::BLACK);
    painter.text(Pos2::new(map.min.x - 30.0, map.min.y - 2.0), Align2::LEFT_BOTTOM, "β (η)", font, Color32::BLACK);
}

/// The colour bar in `bar`, labelled with the loss at its ends and middle.
fn draw_colour_bar(painter: &egui::Painter, bar: Rect, bands: Bands) {
    let side = bar.height();
    let font = FontId::proportional(13.0);
    for b in 0..BANDS as usize {
        let v = (b as f64 + 0.5) / BANDS;
        let y1 = bar.max.y - (b as f32 / BANDS as f32) * side;
        let y0 = bar.max.y - ((b + 1) as f32 / BANDS as f32) * side;
        painter.rect_filled(Rect::from_min_max(Pos2::new(bar.min.x, y0), Pos2::new(bar.max.x, y1)), 0.0, colour(v));
    }
    for v in [0.0, 0.5, 1.0] {
        let loss = 10f64.powf(bands.lo + v * (bands.hi - bands.lo));
        let y = bar.max.y - v as f32 * side;
        painter.text(Pos2::new(bar.max.x + 4.0, y), Align2::LEFT_CENTER, format!("{loss:.3}"), font.clone(), Color32::BLACK);
    }
}

/// The loss along the line from the initial to the trained weights in
/// `plot` (log scale), and the grid's figures under it.
fn draw_line(painter: &egui::Painter, plot: Rect, report: &Landscape) {
    let font = FontId::proportional(13.0);
    painter.rect_stroke(plot, 0.0, Stroke::new(1.0, Color32::GRAY), egui::StrokeKind::Inside);
    painter.text(
        plot.min - Vec2::new(0.0, 4.0),
        Align2::LEFT_BOTTOM,
        "loss from initial (t=0) to trained (t=1) weights",
        font.clone(),
        Color32::BLACK,
    );
    let line = &report.interpolation;
    let values: Vec<f64> = line.loss.iter().copied().filter(|v| v.is_finite() && *v > 0.0).collect();
    if values.len() >= 2 {
        let (ll, lh) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v.log10()), b.max(v.log10())));
        let lh = lh.max(ll + 1e-6);
        let point = |t: f64, l: f64| {
            Pos2::new(
                plot.min.x + 8.0 + t as f32 * (plot.width() - 16.0),
                plot.max.y - 8.0 - ((l.log10() - ll) / (lh - ll)) as f32 * (plot.height() - 16.0),
            )
        };
        let points: Vec<Pos2> =
            line.t.iter().zip(&line.loss).filter(|(_, l)| l.is_finite() && **l > 0.0).map(|(t, l)| point(*t, *l)).collect();
        painter.add(egui::Shape::line(points, Stroke::new(2.0, COLORS[1])));
        painter.text(plot.left_bottom() + Vec2::new(0.0, 4.0), Align2::LEFT_TOP, "t = 0", font.clone(), Color32::BLACK);
        painter.text(plot.right_bottom() + Vec2::new(0.0, 4.0), Align2::RIGHT_TOP, "t = 1", font.clone(), Color32::BLACK);
        painter.text(
            plot.left_top() + Vec2::new(4.0, 4.0),
            Align2::LEFT_TOP,
            format!("{:.3}", 10f64.powf(lh)),
            font.clone(),
            Color32::BLACK,
        );
        painter.text(
            plot.left_bottom() + Vec2::new(4.0, -4.0),
            Align2::LEFT_BOTTOM,
            format!("{:.3} (log scale)", 10f64.powf(ll)),
            font.clone(),
            Color32::BLACK,
        );
    }
    let notes = format!(
        "loss at the trained weights {:.4}\nmean of the four corners {:.4}\ngrid {}x{}, {:.0} s",
        report.centre_loss,
        report.corner_mean,
        report.alphas.len(),
        report.betas.len(),
        report.grid_secs
    );
    painter.text(Pos2::new(plot.min.x, plot.max.y + 30.0), Align2::LEFT_TOP, notes, font, Color32::BLACK);
}
