//! A figure of line plots (egui_plot, optionally with a log y axis), drawn to
//! a PNG by the software renderer.

use std::path::Path;

use egui::{Color32, Vec2};
use egui_plot::{AxisHints, Legend, Line, LineStyle, Plot, PlotPoints, Points};

use super::render::render;
use crate::report::log_axis::{log_plot, log10};

/// Colours for series, readable on a light background: twelve, so a
/// figure of up to twelve lines repeats none.
pub const COLORS: [Color32; 12] = [
    Color32::from_rgb(214, 39, 40),
    Color32::from_rgb(31, 119, 180),
    Color32::from_rgb(44, 160, 44),
    Color32::from_rgb(255, 127, 14),
    Color32::from_rgb(148, 103, 189),
    Color32::from_rgb(140, 86, 75),
    Color32::from_rgb(23, 190, 207),
    Color32::from_rgb(127, 127, 127),
    Color32::from_rgb(227, 119, 194),
    Color32::from_rgb(188, 189, 34),
    Color32::from_rgb(0, 0, 128),
    Color32::from_rgb(0, 128, 128),
];

/// One line (and its markers).
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<[f64; 2]>,
    pub color: Color32,
    pub dashed: bool,
    pub markers: bool,
    /// Error bars: `± spread[i]` around point `i` (empty: none).
    pub spread: Vec<f64>,
    /// Whether the spread is drawn as a shaded band along the line (a
    /// curve of many points) instead of error bars.
    pub band: bool,
}

impl Series {
    pub fn new(name: impl Into<String>, points: Vec<[f64; 2]>, color: Color32) -> Series {
        Series { name: name.into(), points, color, dashed: false, markers: true, spread: Vec::new(), band: false }
    }

    /// Error bars of `± spread[i]` at point `i` (a zero or non-finite
    /// spread draws none).
    pub fn with_spread(mut self, spread: Vec<f64>) -> Series {
        self.spread = spread;
        self
    }

    /// A shaded band of `± spread[i]` along the line.
    pub fn with_band(mut self, spread: Vec<f64>) -> Series {
        self.spread = spread;
        self.band = true;
        self
    }

    pub fn dashed(mut self) -> Series {
        self.dashed = true;
        self
    }

    pub fn without_markers(mut self) -> Series {
        self.markers = false;
        self
    }
}

/// One plot of a figure.
#[derive(Clone, Debug, PartialEq)]
pub struct Panel {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub log_y: bool,
    pub series: Vec<Series>,
    /// Values the y axis must include (in data units).
    pub include_y: Vec<f64>,
    pub legend: egui_plot::Corner,
    /// The legend in rows under the plot instead of over a corner of it.
    pub legend_below: bool,
}

impl Panel {
    pub fn new(title: impl Into<String>, x_label: impl Into<String>, y_label: impl Into<String>, log_y: bool) -> Panel {
        Panel {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            log_y,
            series: Vec::new(),
            include_y: Vec::new(),
            legend: egui_plot::Corner::LeftTop,
            legend_below: false,
        }
    }

    pub fn legend_at(mut self, corner: egui_plot::Corner) -> Panel {
        self.legend = corner;
        self
    }

    /// Puts the legend under the plot, where it covers no data.
    pub fn legend_below(mut self) -> Panel {
        self.legend_below = true;
        self
    }

    /// The names of the legend, each once, with its series' colour.
    fn legend_entries(&self) -> Vec<(&str, Color32, bool)> {
        let mut entries: Vec<(&str, Color32, bool)> = Vec::new();
        for s in &self.series {
            if !entries.iter().any(|(n, _, _)| *n == s.name) {
                entries.push((&s.name, s.color, s.dashed));
            }
        }
        entries
    }

    /// How many legend entries share a row under the plot: three short
    /// names, two middling, one long name a row (a long name in a column
    /// of a third of the width was cut at the figure's edge).
    fn legend_columns(&self) -> usize {
        let longest = self.legend_entries().iter().map(|(name, _, _)| name.chars().count()).max().unwrap_or(0) as f32;
        let entry = 28.0 + LEGEND_CHAR_WIDTH * longest;
        (((PANEL_WIDTH - 16.0) / entry) as usize).clamp(1, 3)
    }

    /// Height of the legend rows under the plot.
    fn legend_height(&self) -> f32 {
        if self.legend_below { LEGEND_ROW * self.legend_entries().len().div_ceil(self.legend_columns()) as f32 } else { 0.0 }
    }

    pub fn including_y(mut self, y: f64) -> Panel {
        self.include_y.push(y);
        self
    }

    pub fn with(mut self, series: Series) -> Panel {
        self.series.push(series);
        self
    }
}

/// A titled grid of panels.
#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    pub title: String,
    pub caption: String,
    pub panels: Vec<Panel>,
    pub columns: usize,
}

const PANEL_WIDTH: f32 = 520.0;
/// A legend row's height and a character's width at most, in points (the
/// figure's body font).
const LEGEND_ROW: f32 = 22.0;
const LEGEND_CHAR_WIDTH: f32 = 7.5;
const PANEL_HEIGHT: f32 = 330.0;

impl Figure {
    fn size(&self) -> Vec2 {
        let columns = self.columns.clamp(1, self.panels.len().max(1));
        let rows = self.panels.len().div_ceil(columns).max(1);
        let legends: f32 = self.panels.chunks(columns).map(|row| row.iter().map(Panel::legend_height).fold(0.0, f32::max)).sum();
        Vec2::new(PANEL_WIDTH * columns as f32 + 30.0, (PANEL_HEIGHT + 44.0) * rows as f32 + 70.0 + legends)
    }

    fn panel_ui(panel: &Panel, ui: &mut egui::Ui, index: usize) {
        ui.vertical(|ui| {
            ui.set_width(PANEL_WIDTH - 16.0);
            ui.strong(&panel.title);
            let id = format!("figure-panel-{index}");
            let plot = if panel.log_y {
                log_plot(&id, &panel.x_label, &panel.y_label)
            } else {
                Plot::new(id).y_axis_label(panel.y_label.as_str())
            };
            // Figures are static: label the x axis more densely than the
            // interactive plots do, so depths like 10, 20, 50 all get a number.
            let x_axis = AxisHints::new_x().label(panel.x_label.as_str()).label_spacing(28.0..=40.0);
            let mut plot = plot.custom_x_axes(vec![x_axis]).x_grid_spacer(crate::report::log_axis::linear_marks);
            if !panel.legend_below {
                plot = plot.legend(Legend::default().position(panel.legend));
            }
            let mut plot = plot.height(PANEL_HEIGHT).width(PANEL_WIDTH - 16.0).allow_drag(false).allow_zoom(false).allow_scroll(false);
            for y in &panel.include_y {
                plot = plot.include_y(if panel.log_y { log10(*y) } else { *y });
            }
            plot.show(ui, |plot_ui| {
                for s in &panel.series {
                    let points: Vec<[f64; 2]> = s.points.iter().map(|[x, y]| [*x, if panel.log_y { log10(*y) } else { *y }]).collect();
                    let mut line = Line::new(s.name.clone(), PlotPoints::new(points.clone())).color(s.color).width(2.0);
                    if s.dashed {
                        line = line.style(LineStyle::dashed_loose());
                    }
                    plot_ui.line(line);
                    if s.markers {
                        plot_ui.points(Points::new(s.name.clone(), PlotPoints::new(points)).color(s.color).radius(3.5));
                    }
                    if s.band {
                        band(plot_ui, &s.name, &s.points, &s.spread, s.color, panel.log_y);
                    } else {
                        error_bars(plot_ui, &s.name, &s.points, &s.spread, s.color, panel.log_y);
                    }
                }
            });
            if panel.legend_below {
                let columns = panel.legend_columns();
                egui::Grid::new(format!("figure-legend-{index}")).num_columns(columns).spacing([14.0, 4.0]).show(ui, |ui| {
                    for (i, (name, color, dashed)) in panel.legend_entries().into_iter().enumerate() {
                        ui.horizontal(|ui| {
                            swatch(ui, color, dashed);
                            ui.label(name);
                        });
                        if i % columns == columns - 1 {
                            ui.end_row();
                        }
                    }
                });
            }
        });
    }

    /// Draws the figure and writes it as a PNG.
    pub fn save_png(&self, path: &Path) -> Result<(), crate::util::fsio::FileError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(crate::util::fsio::FileError::io(parent))?;
        }
        crate::util::fsio::write_atomic(path, &self.png(path)?).map_err(crate::util::fsio::FileError::io(path))
    }

    /// The figure as PNG bytes (`path` names it in errors).
    pub fn png(&self, path: &Path) -> Result<Vec<u8>, crate::util::fsio::FileError> {
        let columns = self.columns.clamp(1, self.panels.len().max(1));
        let image = render(self.size(), 1.5, false, |ui| {
            ui.heading(&self.title);
            ui.label(&self.caption);
            ui.add_space(6.0);
            for (row, panels) in self.panels.chunks(columns).enumerate() {
                ui.horizontal_top(|ui| {
                    for (i, panel) in panels.iter().enumerate() {
                        Self::panel_ui(panel, ui, row * columns + i);
                    }
                });
                ui.add_space(8.0);
            }
        });
        crate::util::fsio::png_bytes(path, &image)
    }
}

/// Error bars of `± spread[i]` at `points[i]` (data units; a zero or
/// non-finite spread draws none), with caps. On a log axis (`log_y`, the
/// plot in log10 units) a bar reaching zero or below stops at a thousandth
/// of its point.
pub fn error_bars(plot_ui: &mut egui_plot::PlotUi, name: &str, points: &[[f64; 2]], spread: &[f64], color: Color32, log_y: bool) {
    let width = points.last().zip(points.first()).map_or(1.0, |(l, f)| (l[0] - f[0]).abs()).max(1.0);
    let cap = 0.012 * width;
    for (&[x, y], &spread) in points.iter().zip(spread) {
        if !(spread.is_finite() && spread > 0.0) {
            continue;
        }
        let (low, high) = spread_ends(y, spread, log_y);
        plot_ui.line(Line::new(name.to_string(), PlotPoints::new(vec![[x, low], [x, high]])).color(color).width(1.5));
        for end in [low, high] {
            plot_ui.line(Line::new(name.to_string(), PlotPoints::new(vec![[x - cap, end], [x + cap, end]])).color(color).width(1.5));
        }
    }
}

/// The ends of `y ± spread` on the plot's axis: log10 of them on a log
/// axis (`log_y`), where an end at zero or below stops at a thousandth of
/// `y`.
fn spread_ends(y: f64, spread: f64, log_y: bool) -> (f64, f64) {
    let map = |v: f64| if log_y { log10(v.max(y * 1e-3)) } else { v };
    (map(y - spread), map(y + spread))
}

/// Whether no two of `colors` are within `distance` of each other in RGB
/// space (the palettes' tests).
#[cfg(test)]
pub fn colors_apart(colors: &[Color32], distance: f32) -> Result<(), (Color32, Color32)> {
    let apart = |a: Color32, b: Color32| {
        (0..3).map(|k| (f32::from(a.to_array()[k]) - f32::from(b.to_array()[k])).powi(2)).sum::<f32>().sqrt() > distance
    };
    for (i, a) in colors.iter().enumerate() {
        if let Some(b) = colors[i + 1..].iter().find(|b| !apart(*a, **b)) {
            return Err((*a, *b));
        }
    }
    Ok(())
}

/// A translucent band of `± spread[i]` around the line through `points`
/// (data units), one four-cornered piece between neighbouring points (each
/// convex, as the plot fills them). On a log axis the band's lower edge
/// stops at a thousandth of its point, as the error bars do.
pub fn band(plot_ui: &mut egui_plot::PlotUi, name: &str, points: &[[f64; 2]], spread: &[f64], color: Color32, log_y: bool) {
    let edge = |&[x, y]: &[f64; 2], spread: f64| {
        let (low, high) = spread_ends(y, if spread.is_finite() { spread.max(0.0) } else { 0.0 }, log_y);
        (x, low, high)
    };
    let fill = color.gamma_multiply(0.25);
    let edges: Vec<(f64, f64, f64)> = points.iter().zip(spread).map(|(p, s)| edge(p, *s)).collect();
    for pair in edges.windows(2) {
        let [(x0, lo0, hi0), (x1, lo1, hi1)] = [pair[0], pair[1]];
        if [lo0, hi0, lo1, hi1].iter().all(|v| v.is_finite()) && (hi0 > lo0 || hi1 > lo1) {
            let corners = vec![[x0, lo0], [x1, lo1], [x1, hi1], [x0, hi0]];
            plot_ui
                .polygon(egui_plot::Polygon::new(name.to_string(), PlotPoints::new(corners)).fill_color(fill).stroke(egui::Stroke::NONE));
        }
    }
}

/// One legend entry: a short line in `color`, then `name`.
pub fn legend_entry(ui: &mut egui::Ui, color: Color32, name: &str) {
    swatch(ui, color, false);
    ui.label(name);
}

/// A legend's short line in `color`, dashed for a dashed series.
fn swatch(ui: &mut egui::Ui, color: Color32, dashed: bool) {
    let (swatch, _) = ui.allocate_exact_size(egui::Vec2::new(18.0, 10.0), egui::Sense::hover());
    let stroke = egui::Stroke::new(2.5, color);
    let (left, right) = (swatch.left_center(), swatch.right_center());
    if dashed {
        ui.painter().extend(egui::Shape::dashed_line(&[left, right], stroke, 4.0, 3.0));
    } else {
        ui.painter().line_segment([left, right], stroke);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every legend entry is drawn, whole, however many and however long:
    /// each of 13 long names' swatch colours is in the picture (the series
    /// have no points, so only the legend can show them).
    #[test]
    fn an_exported_figure_carries_every_legend_entry() {
        let colors: Vec<Color32> = (0..13u8).map(|i| Color32::from_rgb(20 + 17 * i, 230 - 13 * i, 60 + 11 * i)).collect();
        let mut panel = Panel::new("Loss", "step", "loss", true).legend_below();
        for (i, color) in colors.iter().enumerate() {
            panel = panel.with(Series::new(format!("resnet-110 · sigmoid · standard init · lr 0.05 · seed {i}"), Vec::new(), *color));
        }
        assert_eq!(panel.legend_columns(), 1, "names this long take a row each");
        let figure = Figure { title: "Loss".into(), caption: String::new(), panels: vec![panel], columns: 1 };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("legend.png");
        figure.save_png(&path).unwrap();
        let image = image::open(&path).unwrap().to_rgba8();
        let near = |p: &image::Rgba<u8>, c: Color32| (0..3).all(|k| p.0[k].abs_diff([c.r(), c.g(), c.b()][k]) <= 6);
        for (i, color) in colors.iter().enumerate() {
            assert!(image.pixels().any(|p| near(p, *color)), "entry {i}'s swatch is not in the figure");
        }
        let short = (0..6)
            .fold(Panel::new("a", "x", "y", false).legend_below(), |p, i| p.with(Series::new(format!("net {i}"), Vec::new(), COLORS[i])));
        assert_eq!(short.legend_columns(), 3, "short names share a row");
        let styles = Panel::new("a", "x", "y", false)
            .with(Series::new("train", Vec::new(), COLORS[0]))
            .with(Series::new("test", Vec::new(), COLORS[0]).dashed());
        let dashed: Vec<bool> = styles.legend_entries().iter().map(|e| e.2).collect();
        assert_eq!(dashed, [false, true], "a dashed series' swatch is dashed");
    }

    #[test]
    fn the_palette_has_twelve_distinct_colours() {
        if let Err((a, b)) = colors_apart(&COLORS, 60.0) {
            panic!("{a:?} and {b:?} look alike");
        }
    }
}
