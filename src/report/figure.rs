//! A figure of line plots (egui_plot, optionally with a log y axis), drawn to
//! a PNG by the software renderer.

use std::path::Path;

use egui::{Color32, Vec2};
use egui_plot::{AxisHints, Legend, Line, LineStyle, Plot, PlotPoints, Points};

use super::render::render;
use crate::report::log_axis::{log_plot, log10};

/// Colours for series, readable on a light background.
pub const COLORS: [Color32; 8] = [
    Color32::from_rgb(214, 39, 40),
    Color32::from_rgb(31, 119, 180),
    Color32::from_rgb(44, 160, 44),
    Color32::from_rgb(255, 127, 14),
    Color32::from_rgb(148, 103, 189),
    Color32::from_rgb(140, 86, 75),
    Color32::from_rgb(23, 190, 207),
    Color32::from_rgb(127, 127, 127),
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
}

impl Series {
    pub fn new(name: impl Into<String>, points: Vec<[f64; 2]>, color: Color32) -> Series {
        Series { name: name.into(), points, color, dashed: false, markers: true, spread: Vec::new() }
    }

    /// Error bars of `± spread[i]` at point `i` (a zero or non-finite
    /// spread draws none).
    pub fn with_spread(mut self, spread: Vec<f64>) -> Series {
        self.spread = spread;
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
    fn legend_entries(&self) -> Vec<(&str, Color32)> {
        let mut entries: Vec<(&str, Color32)> = Vec::new();
        for s in &self.series {
            if !entries.iter().any(|(n, _)| *n == s.name) {
                entries.push((&s.name, s.color));
            }
        }
        entries
    }

    /// Height of the legend rows under the plot.
    fn legend_height(&self) -> f32 {
        if self.legend_below { 20.0 * self.legend_entries().len().div_ceil(3) as f32 } else { 0.0 }
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
            let mut plot = plot.custom_x_axes(vec![x_axis]);
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
                    error_bars(plot_ui, &s.name, &s.points, &s.spread, s.color, panel.log_y);
                }
            });
            if panel.legend_below {
                egui::Grid::new(format!("figure-legend-{index}")).num_columns(3).spacing([14.0, 4.0]).show(ui, |ui| {
                    for (i, (name, color)) in panel.legend_entries().into_iter().enumerate() {
                        ui.horizontal(|ui| {
                            legend_entry(ui, color, name);
                        });
                        if i % 3 == 2 {
                            ui.end_row();
                        }
                    }
                });
            }
        });
    }

    /// Draws the figure and writes it as a PNG.
    pub fn save_png(&self, path: &Path) -> Result<(), crate::util::fsio::FileError> {
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
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(crate::util::fsio::FileError::io(parent))?;
        }
        crate::util::fsio::write_png(path, &image)
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
        let map = |v: f64| if log_y { log10(v.max(y * 1e-3)) } else { v };
        let (low, high) = (map(y - spread), map(y + spread));
        plot_ui.line(Line::new(name.to_string(), PlotPoints::new(vec![[x, low], [x, high]])).color(color).width(1.5));
        for end in [low, high] {
            plot_ui.line(Line::new(name.to_string(), PlotPoints::new(vec![[x - cap, end], [x + cap, end]])).color(color).width(1.5));
        }
    }
}

/// One legend entry: a short line in `color`, then `name`.
pub fn legend_entry(ui: &mut egui::Ui, color: Color32, name: &str) {
    let (swatch, _) = ui.allocate_exact_size(egui::Vec2::new(18.0, 10.0), egui::Sense::hover());
    ui.painter().line_segment([swatch.left_center(), swatch.right_center()], egui::Stroke::new(2.5, color));
    ui.label(name);
}
