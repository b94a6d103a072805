//! The live decision boundary of runs on 2-D data: the class each net
//! predicts over the plane, redrawn as it trains, with the training points;
//! the runs shown side by side (a plain net beside its residual twin).

use egui::{Color32, Pos2, Rect, Sense, Vec2};

use crate::app::runs::RunView;
use crate::data::DataSpec;
use std::sync::Arc;

use crate::data::plane::{EXTENT, PlaneSpec, from_byte};
use crate::report::figure::COLORS;

/// Side of one boundary picture, in points.
const SIDE: f32 = 260.0;

/// Whether any of `runs` has a boundary to show.
pub fn any(runs: &[&RunView]) -> bool {
    runs.iter().any(|r| r.boundary.is_some())
}

/// The boundaries of `runs` that have one, in a row: as large as `SIDE`
/// where there is room, smaller (down to half) so that a narrow window or
/// presentation mode still shows them side by side.
pub fn boundaries_ui(ui: &mut egui::Ui, runs: &[&RunView]) {
    let shown = runs.iter().filter(|r| r.boundary.is_some()).count().max(1) as f32;
    let side = ((ui.available_width() - 12.0 * shown) / shown).clamp(SIDE / 2.0, SIDE);
    ui.horizontal_wrapped(|ui| {
        for run in runs.iter().filter(|r| r.boundary.is_some()) {
            ui.vertical(|ui| {
                let step = run.boundary.as_ref().map_or(0, |b| b.step);
                ui.horizontal(|ui| {
                    ui.colored_label(run.color, "■");
                    ui.label(format!("{} · step {step}", run.label));
                });
                boundary_ui(ui, run, side);
            });
            ui.add_space(12.0);
        }
    });
}

fn tint(class: usize, weight: f32) -> Color32 {
    let c = COLORS[class % COLORS.len()];
    let mix = |v: u8| (255.0 - weight * (255.0 - f32::from(v))) as u8;
    Color32::from_rgb(mix(c.r()), mix(c.g()), mix(c.b()))
}

fn boundary_ui(ui: &mut egui::Ui, run: &RunView, side: f32) {
    let (rect, _) = ui.allocate_exact_size(Vec2::splat(side), Sense::hover());
    let painter = ui.painter_at(rect);
    let Some(boundary) = &run.boundary else { return };
    // One texture per run, made anew when a newer boundary arrives: a
    // single quad to draw, where a rectangle per cell was 4,096.
    let id = egui::Id::unique("decision-boundary").with(run.id);
    let cached: Option<(usize, egui::TextureHandle)> = ui.data(|d| d.get_temp(id));
    let texture = match cached {
        Some((step, texture)) if step == boundary.step => texture,
        _ => {
            let n = boundary.size.max(1);
            let mut image = egui::ColorImage::filled([n, n], Color32::WHITE);
            for (pixel, &class) in image.pixels.iter_mut().zip(&boundary.classes) {
                *pixel = tint(usize::from(class), 0.35);
            }
            let texture = ui.ctx().load_texture(format!("decision-boundary-{:?}", run.id), image, egui::TextureOptions::NEAREST);
            ui.data_mut(|d| d.insert_temp(id, (boundary.step, texture.clone())));
            texture
        }
    };
    painter.image(texture.id(), rect, Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0)), Color32::WHITE);
    let to_screen =
        |x: f32, y: f32| Pos2::new(rect.min.x + (x + EXTENT) / (2.0 * EXTENT) * side, rect.min.y + (EXTENT - y) / (2.0 * EXTENT) * side);
    let axis = egui::Stroke::new(1.0, Color32::from_gray(150));
    painter.line_segment([to_screen(-EXTENT, 0.0), to_screen(EXTENT, 0.0)], axis);
    painter.line_segment([to_screen(0.0, -EXTENT), to_screen(0.0, EXTENT)], axis);
    if let DataSpec::Plane(spec) = &run.config.data {
        let rim = egui::Stroke::new(0.8, Color32::from_gray(40));
        for &(x, y, label) in shown_points(ui, run.id, spec).iter() {
            painter.circle(to_screen(x, y), 2.2, tint(usize::from(label), 1.0), rim);
        }
    }
}

/// Most training points drawn over a boundary (evenly spaced through the
/// set beyond that: a million circles a frame would stall the window).
const MAX_SHOWN: usize = 4000;

/// The training points drawn for a run: generated once per data set and
/// kept in egui's memory, not every frame.
fn shown_points(ui: &egui::Ui, run: crate::app::runs::RunId, spec: &PlaneSpec) -> Arc<Vec<(f32, f32, u16)>> {
    let id = egui::Id::unique("decision-boundary-points").with(run);
    if let Some((cached, points)) = ui.data(|d| d.get_temp::<(PlaneSpec, Arc<Vec<(f32, f32, u16)>>)>(id))
        && cached == *spec
    {
        return points;
    }
    let (train, _) = spec.generate();
    let every = train.len().div_ceil(MAX_SHOWN).max(1);
    let points: Arc<Vec<_>> = Arc::new(
        train
            .images
            .chunks_exact(2)
            .zip(&train.labels)
            .step_by(every)
            .map(|(p, &label)| (from_byte(p[0]), from_byte(p[1]), label))
            .collect(),
    );
    ui.data_mut(|d| d.insert_temp(id, (*spec, points.clone())));
    points
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::plane::PlaneShape;

    #[test]
    fn a_huge_data_set_draws_a_bounded_sample_made_once() {
        let ctx = egui::Context::default();
        let spec = PlaneSpec { points: 1_000_000, ..PlaneSpec::new(PlaneShape::Moons) };
        let mut first = None;
        for _ in 0..2 {
            let _ = ctx.run_ui(Default::default(), |ui| {
                let points = shown_points(ui, 7, &spec);
                assert!(points.len() <= MAX_SHOWN && points.len() > MAX_SHOWN / 2, "{} points", points.len());
                match &first {
                    None => first = Some(points),
                    Some(f) => assert!(Arc::ptr_eq(f, &points), "made once, then kept"),
                }
            });
        }
        // Another data set for the same run: made anew.
        let small = PlaneSpec::new(PlaneShape::Moons);
        let _ = ctx.run_ui(Default::default(), |ui| assert_eq!(shown_points(ui, 7, &small).len(), 1000));
    }
}
