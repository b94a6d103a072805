//! Small diagrams of each block's structure: the residual shortcut arc (and
//! the projection or zero-pad when the shape changes), the highway gates, the
//! fractal columns and joins, the dense concatenations.

use egui::epaint::{CubicBezierShape, QuadraticBezierShape};
use egui::{Align2, Color32, FontId, Painter, Pos2, Rect, Shape, Stroke, StrokeKind, Vec2};

use crate::arch::{BlockKind, Carry, Shortcut};

/// Colours of the diagrams.
pub struct Palette {
    pub ink: Color32,
    pub weak: Color32,
    pub layer: Color32,
    pub shortcut: Color32,
    pub gate: Color32,
    pub background: Color32,
}

impl Palette {
    pub fn from_visuals(visuals: &egui::Visuals) -> Palette {
        let dark = visuals.dark_mode;
        Palette {
            ink: visuals.text_color(),
            weak: visuals.weak_text_color(),
            layer: if dark { Color32::from_rgb(58, 88, 128) } else { Color32::from_rgb(170, 200, 235) },
            shortcut: if dark { Color32::from_rgb(120, 220, 140) } else { Color32::from_rgb(30, 140, 60) },
            gate: if dark { Color32::from_rgb(250, 190, 80) } else { Color32::from_rgb(200, 120, 0) },
            background: visuals.extreme_bg_color,
        }
    }
}

fn layer_box(painter: &Painter, p: &Palette, rect: Rect, text: &str) {
    painter.rect(rect, 3.0, p.layer, Stroke::new(1.0, p.ink.gamma_multiply(0.6)), StrokeKind::Inside);
    if !text.is_empty() && rect.width() > 14.0 {
        painter.text(rect.center(), Align2::CENTER_CENTER, text, FontId::proportional(9.0), p.ink);
    }
}

fn plus(painter: &Painter, p: &Palette, center: Pos2, r: f32) {
    painter.circle(center, r, p.background, Stroke::new(1.2, p.ink));
    painter.line_segment([center - Vec2::X * (r - 2.0), center + Vec2::X * (r - 2.0)], Stroke::new(1.2, p.ink));
    painter.line_segment([center - Vec2::Y * (r - 2.0), center + Vec2::Y * (r - 2.0)], Stroke::new(1.2, p.ink));
}

fn arrow_line(painter: &Painter, p: &Palette, a: Pos2, b: Pos2) {
    painter.line_segment([a, b], Stroke::new(1.0, p.weak));
}

/// Boxes in series along the middle of `rect`, returning their rects.
fn series(painter: &Painter, p: &Palette, rect: Rect, labels: &[&str], widths: &[f32], height: f32) -> Vec<Rect> {
    let n = labels.len().max(1) as f32;
    let gap = 6.0;
    let total_width = rect.width() - gap * (n + 1.0);
    let weight: f32 = widths.iter().sum::<f32>().max(1e-3);
    let mut x = rect.left() + gap;
    let mut rects = Vec::new();
    let mid = rect.center().y;
    arrow_line(painter, p, Pos2::new(rect.left(), mid), Pos2::new(rect.right(), mid));
    for (label, w) in labels.iter().zip(widths) {
        let width = total_width * w / weight;
        let r = Rect::from_min_size(Pos2::new(x, mid - height / 2.0), Vec2::new(width, height));
        layer_box(painter, p, r, label);
        rects.push(r);
        x += width + gap;
    }
    rects
}

/// Draws the diagram of `kind` in `rect`. `changes_shape` says whether the
/// block changes the shape of its input (stride or channels), which decides
/// how a residual shortcut is drawn.
pub fn draw(painter: &Painter, rect: Rect, kind: &BlockKind, changes_shape: bool, p: &Palette) {
    let rect = rect.shrink(3.0);
    match kind {
        BlockKind::Conv { kernel, stride, .. } => {
            let label = if *stride > 1 { format!("{kernel}x{kernel}/{stride}") } else { format!("{kernel}x{kernel}") };
            series(painter, p, rect, &[&label], &[1.0], rect.height() * 0.5);
        }
        BlockKind::Dense { .. } | BlockKind::Classifier => dense_diagram(painter, p, rect, matches!(kind, BlockKind::Classifier)),
        BlockKind::Residual { bottleneck, preactivation, shortcut, branch_layers, .. } => {
            let (labels, widths) = if *bottleneck {
                (vec!["1x1", "3x3", "1x1"], vec![0.7, 1.0, 0.7])
            } else {
                (vec!["3x3"; *branch_layers], vec![1.0; *branch_layers])
            };
            let branch = Branch { labels: &labels, widths: &widths, projection: "1x1" };
            residual_diagram(painter, p, rect, &branch, *preactivation, *shortcut, changes_shape)
        }
        BlockKind::ResidualDense { branch_layers, preactivation, shortcut, .. } => {
            let (labels, widths) = (vec!["fc"; *branch_layers], vec![1.0; *branch_layers]);
            let branch = Branch { labels: &labels, widths: &widths, projection: "fc" };
            residual_diagram(painter, p, rect, &branch, *preactivation, *shortcut, changes_shape)
        }
        BlockKind::Highway { carry, .. } | BlockKind::HighwayDense { carry, .. } => {
            highway_diagram(painter, p, rect, *carry, matches!(kind, BlockKind::HighwayDense { .. }))
        }
        BlockKind::Fractal { columns, .. } => fractal_diagram(painter, p, rect, *columns),
        BlockKind::DenseBlock { layers, .. } => densenet_diagram(painter, p, rect, *layers),
        BlockKind::Transition { .. } => {
            let boxes = series(painter, p, rect, &["1x1", ""], &[1.0, 0.6], rect.height() * 0.5);
            if let Some(r) = boxes.get(1) {
                pool_grid(painter, p, *r);
            }
        }
        BlockKind::MaxPool { .. } | BlockKind::AvgPool { .. } => {
            let r = Rect::from_center_size(rect.center(), Vec2::splat(rect.height() * 0.7));
            pool_grid(painter, p, r);
            let label = if matches!(kind, BlockKind::MaxPool { .. }) { "max" } else { "avg" };
            painter.text(r.right_center() + Vec2::X * 6.0, Align2::LEFT_CENTER, label, FontId::proportional(9.0), p.weak);
        }
        BlockKind::GlobalAvgPool => {
            let r = Rect::from_center_size(rect.center() - Vec2::X * 14.0, Vec2::splat(rect.height() * 0.6));
            painter.rect(r, 2.0, p.layer.gamma_multiply(0.6), Stroke::new(1.0, p.weak), StrokeKind::Inside);
            let dot = r.right_center() + Vec2::X * 22.0;
            painter.arrow(r.right_center() + Vec2::X * 2.0, Vec2::X * 14.0, Stroke::new(1.0, p.weak));
            painter.circle_filled(dot, 3.5, p.layer);
        }
        BlockKind::NormAct => {
            series(painter, p, rect, &["BN", "act"], &[1.0, 1.0], rect.height() * 0.45);
        }
        BlockKind::Dropout { .. } => {
            for i in 0..5 {
                let c = Pos2::new(rect.left() + rect.width() * (i as f32 + 0.5) / 5.0, rect.center().y);
                painter.circle(c, 4.5, p.layer, Stroke::new(1.0, p.weak));
                if i % 2 == 1 {
                    painter.line_segment([c - Vec2::splat(4.0), c + Vec2::splat(4.0)], Stroke::new(1.2, p.gate));
                }
            }
        }
    }
}

fn pool_grid(painter: &Painter, p: &Palette, r: Rect) {
    painter.rect(r, 1.0, p.layer.gamma_multiply(0.5), Stroke::new(1.0, p.weak), StrokeKind::Inside);
    painter.line_segment([r.center_top(), r.center_bottom()], Stroke::new(1.0, p.weak));
    painter.line_segment([r.left_center(), r.right_center()], Stroke::new(1.0, p.weak));
}

fn dense_diagram(painter: &Painter, p: &Palette, rect: Rect, classifier: bool) {
    let left: Vec<Pos2> =
        (0..3).map(|i| Pos2::new(rect.left() + rect.width() * 0.3, rect.top() + rect.height() * (i as f32 + 1.0) / 4.0)).collect();
    let right_count = if classifier { 4 } else { 3 };
    let right: Vec<Pos2> = (0..right_count)
        .map(|i| Pos2::new(rect.left() + rect.width() * 0.7, rect.top() + rect.height() * (i as f32 + 1.0) / (right_count as f32 + 1.0)))
        .collect();
    for a in &left {
        for b in &right {
            painter.line_segment([*a, *b], Stroke::new(0.6, p.weak));
        }
    }
    for c in left.iter().chain(&right) {
        painter.circle(*c, 3.5, p.layer, Stroke::new(1.0, p.ink.gamma_multiply(0.6)));
    }
    if classifier {
        for (i, b) in right.iter().enumerate() {
            let len = [6.0, 14.0, 4.0, 9.0][i % 4];
            painter.line_segment([*b + Vec2::X * 6.0, *b + Vec2::X * (6.0 + len)], Stroke::new(3.0, p.gate));
        }
    }
}

/// The weight layers of a residual branch as the diagram draws them.
struct Branch<'a> {
    labels: &'a [&'a str],
    widths: &'a [f32],
    /// The label of a projection shortcut's box.
    projection: &'a str,
}

fn residual_diagram(
    painter: &Painter,
    p: &Palette,
    rect: Rect,
    branch: &Branch,
    preactivation: bool,
    shortcut: Shortcut,
    changes_shape: bool,
) {
    let body =
        Rect::from_min_max(Pos2::new(rect.left() + 6.0, rect.top() + rect.height() * 0.38), Pos2::new(rect.right() - 18.0, rect.bottom()));
    let boxes = series(painter, p, body, branch.labels, branch.widths, body.height() * 0.55);
    if preactivation {
        for r in &boxes {
            // BN-ReLU before each conv.
            painter.line_segment([r.left_top() - Vec2::X * 3.0, r.left_bottom() - Vec2::X * 3.0], Stroke::new(2.0, p.gate));
        }
    }
    let start = Pos2::new(rect.left() + 2.0, body.center().y);
    let join = Pos2::new(rect.right() - 9.0, body.center().y);
    arrow_line(painter, p, Pos2::new(body.right(), join.y), join);
    if shortcut == Shortcut::None {
        // The plain twin: no shortcut, nothing to add.
        painter.text(Pos2::new(rect.center().x, rect.top() + 4.0), Align2::CENTER_TOP, "no shortcut", FontId::proportional(9.0), p.weak);
        painter.circle_filled(join, 2.5, p.ink);
        return;
    }
    let top = rect.top() + 2.0;
    let projection = shortcut == Shortcut::C || (shortcut == Shortcut::B && changes_shape);
    let padded = shortcut == Shortcut::A && changes_shape;
    let curve = CubicBezierShape::from_points_stroke(
        [start, Pos2::new(start.x + 8.0, top), Pos2::new(join.x - 8.0, top), join],
        false,
        Color32::TRANSPARENT,
        Stroke::new(1.8, p.shortcut),
    );
    if padded {
        // Dashes along the arc: zero-padded channels, no parameters.
        let points: Vec<Pos2> = curve.flatten(Some(0.5));
        painter.extend(Shape::dashed_line(&points, Stroke::new(1.8, p.shortcut), 4.0, 3.0));
        let mid = Pos2::new(rect.center().x, top + 2.0);
        painter.text(mid, Align2::CENTER_TOP, "pad", FontId::proportional(9.0), p.shortcut);
    } else {
        painter.add(curve);
    }
    if projection {
        let r = Rect::from_center_size(Pos2::new(rect.center().x, top + 4.0), Vec2::new(24.0, 11.0));
        painter.rect(r, 2.0, p.shortcut.gamma_multiply(0.5), Stroke::new(1.0, p.shortcut), StrokeKind::Inside);
        painter.text(r.center(), Align2::CENTER_CENTER, branch.projection, FontId::proportional(8.5), p.ink);
    }
    plus(painter, p, join, 6.0);
}

fn highway_diagram(painter: &Painter, p: &Palette, rect: Rect, carry: Carry, dense: bool) {
    let mid = rect.center().y + 4.0;
    let start = Pos2::new(rect.left() + 2.0, mid);
    let join = Pos2::new(rect.right() - 9.0, mid);
    let h = Rect::from_center_size(Pos2::new(rect.center().x - 10.0, mid), Vec2::new(rect.width() * 0.34, rect.height() * 0.34));
    arrow_line(painter, p, start, join);
    layer_box(painter, p, h, if dense { "H" } else { "H 3x3" });
    // Transform gate T multiplies H.
    let t = Pos2::new(h.right() + 12.0, mid);
    painter.circle(t, 5.5, p.background, Stroke::new(1.2, p.gate));
    painter.text(t, Align2::CENTER_CENTER, "T", FontId::proportional(8.5), p.gate);
    // The carry path above, through C.
    let top = rect.top() + 5.0;
    let carry_path = QuadraticBezierShape::from_points_stroke(
        [start, Pos2::new(rect.center().x, top - 4.0), join],
        false,
        Color32::TRANSPARENT,
        Stroke::new(1.5, p.shortcut),
    );
    painter.add(carry_path);
    let c = Pos2::new(rect.center().x, top + 6.0);
    painter.circle(c, 5.5, p.background, Stroke::new(1.2, p.gate));
    let label = match carry {
        Carry::Coupled => "1-T",
        Carry::Independent => "C",
    };
    painter.text(c + Vec2::Y * 0.5, Align2::CENTER_CENTER, label, FontId::proportional(7.5), p.gate);
    plus(painter, p, join, 6.0);
}

fn fractal_diagram(painter: &Painter, p: &Palette, rect: Rect, columns: usize) {
    let columns = columns.clamp(1, 6);
    let lanes = columns as f32;
    let lane_h = rect.height() / lanes;
    let left = rect.left() + 4.0;
    let right = rect.right() - 8.0;
    let width = right - left;
    let deepest = 1usize << (columns - 1);
    // Column c (1 = shallowest) is drawn in lane c-1 from the top, with 2^(c-1) boxes.
    for c in 1..=columns {
        let y = rect.top() + lane_h * (c as f32 - 0.5);
        let n = 1usize << (c - 1);
        let slot = width / n as f32;
        arrow_line(painter, p, Pos2::new(left, y), Pos2::new(right, y));
        for k in 0..n {
            let r = Rect::from_center_size(
                Pos2::new(left + slot * (k as f32 + 0.5), y),
                Vec2::new((slot - 3.0).max(2.0), (lane_h - 3.0).clamp(2.0, 12.0)),
            );
            layer_box(painter, p, r, "");
        }
    }
    // Joins: wherever two or more columns end a box at the same place.
    for k in 1..=deepest {
        let joined: Vec<usize> = (1..=columns).filter(|&c| k % (1usize << (columns - c)) == 0).collect();
        if joined.len() < 2 {
            continue;
        }
        let x = left + width * k as f32 / deepest as f32;
        let x = if k == deepest { right + 3.0 } else { x };
        let top = rect.top() + lane_h * (joined[0] as f32 - 0.5) - 3.0;
        let bottom = rect.top() + lane_h * (*joined.last().unwrap_or(&columns) as f32 - 0.5) + 3.0;
        painter.line_segment([Pos2::new(x, top), Pos2::new(x, bottom)], Stroke::new(2.5, p.gate));
    }
}

fn densenet_diagram(painter: &Painter, p: &Palette, rect: Rect, layers: usize) {
    let shown = layers.clamp(1, 5);
    let mid = rect.bottom() - rect.height() * 0.3;
    let slot = rect.width() / shown as f32;
    let centers: Vec<Pos2> = (0..shown).map(|i| Pos2::new(rect.left() + slot * (i as f32 + 0.5), mid)).collect();
    // Every layer feeds every later one (concatenation).
    for (i, a) in centers.iter().enumerate() {
        for b in &centers[i + 1..] {
            let lift = (b.x - a.x) * 0.45;
            painter.add(QuadraticBezierShape::from_points_stroke(
                [*a, Pos2::new((a.x + b.x) / 2.0, (mid - lift).max(rect.top())), *b],
                false,
                Color32::TRANSPARENT,
                Stroke::new(0.9, p.shortcut),
            ));
        }
    }
    for c in &centers {
        layer_box(painter, p, Rect::from_center_size(*c, Vec2::new((slot - 6.0).max(4.0), 12.0)), "");
    }
    if layers > shown {
        painter.text(rect.right_top(), Align2::RIGHT_TOP, format!("{layers}"), FontId::proportional(9.0), p.weak);
    }
}
