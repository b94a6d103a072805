//! The layer x step heatmap of gradient norm, on a log colour scale with its
//! legend: vanishing shows as the dark band at the bottom (first layers)
//! that stays dark as training goes on.

use egui::{Color32, ColorImage, TextureHandle, TextureOptions, Vec2};
use egui_plot::{Plot, PlotImage, PlotPoint};

use super::{decade_label, export_menu};
use crate::app::command::AppCommand;
use crate::app::runs::{RunId, RunView};

/// Columns shown at most (probes are decimated beyond that).
const MAX_COLUMNS: usize = 600;

/// Viridis, sampled at 9 points.
const VIRIDIS: [[u8; 3]; 9] = [
    [68, 1, 84],
    [71, 44, 122],
    [59, 81, 139],
    [44, 113, 142],
    [33, 144, 141],
    [39, 173, 129],
    [92, 200, 99],
    [170, 220, 50],
    [253, 231, 37],
];

/// The colour of `t` in [0, 1].
pub fn colormap(t: f32) -> Color32 {
    let t = t.clamp(0.0, 1.0) * (VIRIDIS.len() - 1) as f32;
    let i = (t.floor() as usize).min(VIRIDIS.len() - 2);
    let f = t - i as f32;
    let (a, b) = (VIRIDIS[i], VIRIDIS[i + 1]);
    let mix = |x: u8, y: u8| (f32::from(x) + (f32::from(y) - f32::from(x)) * f).round() as u8;
    Color32::from_rgb(mix(a[0], b[0]), mix(a[1], b[1]), mix(a[2], b[2]))
}

/// The texture of the heatmap, rebuilt only when the run's data changes.
#[derive(Default)]
pub struct HeatmapCache {
    key: Option<(RunId, u64, bool)>,
    texture: Option<TextureHandle>,
    /// log10 range of the colour scale.
    range: (f32, f32),
    /// Step of each column.
    steps: Vec<usize>,
    /// `values[column][layer]`, log10.
    values: Vec<Vec<f32>>,
}

impl HeatmapCache {
    /// Probe columns in the current picture.
    pub fn columns(&self) -> usize {
        self.values.len()
    }

    fn update(&mut self, ctx: &egui::Context, run: &RunView, output: bool) {
        let key = (run.id, run.version, output);
        if self.key == Some(key) {
            return;
        }
        self.key = Some(key);
        let snapshots = super::series::decimate(&(0..run.gradients.len()).collect::<Vec<_>>(), MAX_COLUMNS);
        self.steps = snapshots.iter().map(|&i| run.gradients[i].step).collect();
        self.values = snapshots
            .iter()
            .map(|&i| {
                let g = &run.gradients[i];
                let series = if output { &g.output } else { &g.weight };
                series.iter().map(|v| if *v > 0.0 { v.log10() } else { f32::NAN }).collect()
            })
            .collect();
        let finite = self.values.iter().flatten().copied().filter(|v| v.is_finite());
        let (lo, hi) = finite.fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
        self.range = if lo.is_finite() { (lo.floor(), hi.ceil().max(lo.floor() + 1.0)) } else { (-3.0, 0.0) };
        let layers = self.values.iter().map(Vec::len).max().unwrap_or(0);
        let columns = self.values.len();
        if layers == 0 || columns == 0 {
            self.texture = None;
            return;
        }
        let mut image = ColorImage::filled([columns, layers], Color32::from_gray(30));
        for (x, column) in self.values.iter().enumerate() {
            for (layer, v) in column.iter().enumerate() {
                // Row 0 of the image is the top: the last layer.
                let y = layers - 1 - layer;
                image.pixels[y * columns + x] =
                    if v.is_finite() { colormap((v - self.range.0) / (self.range.1 - self.range.0)) } else { Color32::from_gray(30) };
            }
        }
        match &mut self.texture {
            Some(texture) => texture.set(image, TextureOptions::NEAREST),
            None => self.texture = Some(ctx.load_texture("gradient-heatmap", image, TextureOptions::NEAREST)),
        }
    }
}

pub fn heatmap_ui(ui: &mut egui::Ui, run: &RunView, output: bool, cache: &mut HeatmapCache, commands: &mut Vec<AppCommand>) {
    cache.update(ui.ctx(), run, output);
    let Some(texture) = cache.texture.clone() else {
        ui.weak("The heatmap fills as gradient probes arrive.");
        return;
    };
    let layers = cache.values.iter().map(Vec::len).max().unwrap_or(0);
    let (first, last) = (cache.steps.first().copied().unwrap_or(0) as f64, cache.steps.last().copied().unwrap_or(0) as f64);
    let column = if cache.steps.len() > 1 { (last - first) / (cache.steps.len() - 1) as f64 } else { 1.0 };
    let width = (last - first + column).max(1.0);
    let legend_width = 70.0;
    let mut hover_text = None;
    ui.horizontal(|ui| {
        let plot_width = (ui.available_width() - legend_width).max(100.0);
        let response = Plot::new("heatmap")
            .height(240.0)
            .width(plot_width)
            .x_axis_label("step")
            .y_axis_label("layer")
            .allow_scroll(false)
            .show_grid(false)
            .include_x(first - column / 2.0)
            .include_x(last + column / 2.0)
            .include_y(0.5)
            .include_y(layers as f64 + 0.5)
            .show(ui, |plot| {
                let center = PlotPoint::new(first - column / 2.0 + width / 2.0, (layers as f64 + 1.0) / 2.0);
                plot.image(PlotImage::new("gradient norm", texture.id(), center, Vec2::new(width as f32, layers as f32)));
                plot.pointer_coordinate()
            });
        if let Some(p) = response.inner
            && response.response.hovered()
        {
            let layer = p.y.round() as i64 - 1;
            let col = ((p.x - first) / column).round() as i64;
            if layer >= 0 && (layer as usize) < layers && col >= 0 && (col as usize) < cache.steps.len() {
                let (l, c) = (layer as usize, col as usize);
                let v = cache.values[c].get(l).copied().unwrap_or(f32::NAN);
                let name = run.layer_names.get(l).cloned().unwrap_or_default();
                hover_text = Some(format!("layer {} ({name})\nstep {}\nnorm {:.4e}", l + 1, cache.steps[c], 10f32.powf(v)));
            }
        }
        let plot_response = response.response;
        if let Some(text) = hover_text {
            plot_response.clone().on_hover_text_at_pointer(text);
        }
        export_menu(
            &plot_response,
            "gradient-heatmap",
            || {
                let mut csv = String::from("step,layer_index,layer_name,log10_norm\n");
                for (c, column) in cache.values.iter().enumerate() {
                    for (l, v) in column.iter().enumerate() {
                        csv.push_str(&format!(
                            "{},{},{},{v}\n",
                            cache.steps[c],
                            l + 1,
                            run.layer_names.get(l).cloned().unwrap_or_default()
                        ));
                    }
                }
                csv
            },
            commands,
        );
        legend_ui(ui, cache.range, legend_width);
    });
}

/// The colour bar with its decades.
fn legend_ui(ui: &mut egui::Ui, range: (f32, f32), width: f32) {
    let (response, painter) = ui.allocate_painter(Vec2::new(width, 240.0), egui::Sense::hover());
    let bar = egui::Rect::from_min_size(response.rect.min + Vec2::new(6.0, 10.0), Vec2::new(14.0, 200.0));
    let steps = 50;
    for i in 0..steps {
        let t = i as f32 / steps as f32;
        let y0 = bar.bottom() - bar.height() * t;
        let y1 = bar.bottom() - bar.height() * (t + 1.0 / steps as f32);
        painter.rect_filled(egui::Rect::from_x_y_ranges(bar.x_range(), y1..=y0), 0.0, colormap(t + 0.5 / steps as f32));
    }
    let (lo, hi) = range;
    let decades = (hi - lo).round().max(1.0) as i32;
    let stride = (decades / 6).max(1);
    let mut d = lo as i32;
    while d <= hi as i32 {
        let t = (d as f32 - lo) / (hi - lo);
        let y = bar.bottom() - bar.height() * t;
        painter.line_segment(
            [egui::Pos2::new(bar.right(), y), egui::Pos2::new(bar.right() + 4.0, y)],
            egui::Stroke::new(1.0, ui.visuals().text_color()),
        );
        painter.text(
            egui::Pos2::new(bar.right() + 6.0, y),
            egui::Align2::LEFT_CENTER,
            decade_label(d),
            egui::FontId::proportional(10.0),
            ui.visuals().text_color(),
        );
        d += stride;
    }
    painter.text(
        egui::Pos2::new(bar.left(), bar.bottom() + 4.0),
        egui::Align2::LEFT_TOP,
        "norm",
        egui::FontId::proportional(10.0),
        ui.visuals().weak_text_color(),
    );
}
