//! The stack of blocks: one row per entry (a repeated block is one row with
//! its count, expanded on demand), drawn with its diagram, output shape,
//! parameters and any error; rows are dragged to reorder and palette blocks
//! dropped between them. Only the rows in view are laid out, so a
//! ResNet-1202 with every stage expanded still scrolls smoothly.

use egui::{Align2, FontId, Pos2, Rect, Sense, Stroke, Vec2};

use super::diagram::{self, Palette};
use super::{BuilderState, DragPayload};
use crate::app::command::AppCommand;
use crate::arch::{BlockKind, BlockSpec, Carry, Norm, ResidualInit, Shortcut};

pub const ROW_HEIGHT: f32 = 62.0;
const DIAGRAM_WIDTH: f32 = 130.0;

/// One line of the stack.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Row {
    Entry(usize),
    /// Copy `k` of a repeated entry, listed when the entry is expanded.
    Copy(usize, usize),
}

fn rows(builder: &BuilderState) -> Vec<Row> {
    let mut rows = Vec::new();
    for (i, block) in builder.arch.blocks.iter().enumerate() {
        rows.push(Row::Entry(i));
        if block.repeat > 1 && builder.expanded.contains(&i) {
            rows.extend((0..block.repeat).map(|k| Row::Copy(i, k)));
        }
    }
    rows
}

/// ", zero branch init" where a residual branch does not start by default.
fn branch_start(init: ResidualInit) -> String {
    if init.is_default() { String::new() } else { format!(", {} branch init", init.word()) }
}

/// A one-line summary of a block's options.
pub fn describe(block: &BlockSpec) -> String {
    let layer = &block.layer;
    let act = format!("{:?}", layer.activation).to_lowercase();
    let bn = if layer.norm == Norm::Batchnorm { "BN, " } else { "" };
    let init = format!("{:?}", layer.init).to_lowercase();
    match &block.kind {
        BlockKind::Conv { filters, kernel, stride } => {
            format!("{filters} filters {kernel}x{kernel}, stride {stride}; {bn}{act}, {init} init")
        }
        BlockKind::Dense { units } => format!("{units} units; {bn}{act}, {init} init"),
        BlockKind::Residual { filters, stride, bottleneck, preactivation, shortcut, survival, branch_layers, residual_init } => {
            let shape = match (*bottleneck, *branch_layers) {
                (true, _) => format!("bottleneck {filters}→{}", 4 * filters),
                (false, 2) => format!("{filters} filters"),
                (false, n) => format!("{filters} filters, {n} layer{}", if n == 1 { "" } else { "s" }),
            };
            let order = if *preactivation { "pre-act" } else { "post-act" };
            let sc = match shortcut {
                Shortcut::None => "no shortcut".to_string(),
                s => format!("shortcut {s:?}"),
            };
            let sd = survival.map(|p| format!(", survival {p:.2}")).unwrap_or_default();
            let start = branch_start(*residual_init);
            format!("{shape}, stride {stride}, {order}, {sc}{sd}{start}; {bn}{act}")
        }
        BlockKind::ResidualDense { units, branch_layers, preactivation, shortcut, survival, residual_init } => {
            let order = if *preactivation { "pre-act" } else { "post-act" };
            let sc = match shortcut {
                Shortcut::None => "no shortcut".to_string(),
                s => format!("shortcut {s:?}"),
            };
            let sd = survival.map(|p| format!(", survival {p:.2}")).unwrap_or_default();
            let layers = if *branch_layers == 1 { "1 layer".to_string() } else { format!("{branch_layers} layers") };
            format!("{units} units, {layers}, {order}, {sc}{sd}{}; {bn}{act}", branch_start(*residual_init))
        }
        BlockKind::Highway { kernel, carry, gate_bias } => {
            format!("{kernel}x{kernel}, gate bias {gate_bias}, carry {}; {bn}{act}", carry_name(*carry))
        }
        BlockKind::HighwayDense { carry, gate_bias } => format!("gate bias {gate_bias}, carry {}; {bn}{act}", carry_name(*carry)),
        BlockKind::Fractal { columns, filters, local_drop, global_ratio } => {
            format!("{columns} columns, {filters} filters, drop-path local {local_drop} / global {global_ratio}")
        }
        BlockKind::DenseBlock { layers, growth_rate, bottleneck } => {
            format!("{layers} layers, k = {growth_rate}{}", if *bottleneck { ", bottleneck" } else { "" })
        }
        BlockKind::Transition { compression } => format!("compression θ = {compression}"),
        BlockKind::MaxPool { size, stride } | BlockKind::AvgPool { size, stride } => format!("{size}x{size}, stride {stride}"),
        BlockKind::GlobalAvgPool => "one value per channel".into(),
        BlockKind::NormAct => format!("{bn}{act}"),
        BlockKind::Dropout { p } => format!("p = {p}"),
        BlockKind::Classifier => "one logit per class".into(),
    }
}

fn carry_name(carry: Carry) -> &'static str {
    match carry {
        Carry::Coupled => "1-T",
        Carry::Independent => "independent",
    }
}

pub fn stack_ui(ui: &mut egui::Ui, builder: &BuilderState, commands: &mut Vec<AppCommand>) {
    let rows = rows(builder);
    let colours = Palette::from_visuals(ui.visuals());
    let payload = egui::DragAndDrop::payload::<DragPayload>(ui.ctx());
    let pointer = ui.input(|i| i.pointer.interact_pos().or(i.pointer.hover_pos()));
    // Entry rows laid out this frame, for the drop position.
    let mut laid_out: Vec<(usize, Rect)> = Vec::new();
    let area = egui::ScrollArea::vertical().id_salt("stack-scroll").auto_shrink([false, false]).show_rows(
        ui,
        ROW_HEIGHT,
        rows.len() + 1,
        |ui, range| {
            for r in range {
                match rows.get(r) {
                    Some(Row::Entry(i)) => {
                        let rect = entry_row(ui, builder, *i, &colours, commands);
                        laid_out.push((*i, rect));
                    }
                    Some(Row::Copy(i, k)) => copy_row(ui, builder, *i, *k),
                    None => {
                        // A last row to drop onto the end of the network.
                        let (rect, _) = ui.allocate_exact_size(Vec2::new(ui.available_width(), ROW_HEIGHT), Sense::hover());
                        if builder.arch.blocks.is_empty() {
                            ui.painter().text(
                                rect.center(),
                                Align2::CENTER_CENTER,
                                "Drag blocks here, or load a preset",
                                FontId::proportional(14.0),
                                ui.visuals().weak_text_color(),
                            );
                        }
                        laid_out.push((builder.arch.blocks.len(), rect));
                    }
                }
            }
        },
    );
    let stack_rect = area.inner_rect;
    let Some(payload) = payload else { return };
    // Where would the block land? Before the row under the pointer's upper
    // half, after it for the lower half. Remembered between frames, since
    // the pointer may be gone on the frame the button is released.
    let memory = egui::Id::unique("stack-drop-target");
    // The row nearest the pointer: the gap between two rows (where the
    // insertion line is drawn) belongs to them too.
    let distance = |r: &Rect, y: f32| if r.y_range().contains(y) { 0.0 } else { (r.top() - y).abs().min((r.bottom() - y).abs()) };
    let target = pointer.filter(|p| stack_rect.contains(*p)).and_then(|pointer| {
        laid_out.iter().min_by(|a, b| distance(&a.1, pointer.y).total_cmp(&distance(&b.1, pointer.y))).map(|&(i, r)| {
            let end = i == builder.arch.blocks.len();
            if end || pointer.y < r.center().y { (i, r.top()) } else { (i + 1, r.bottom()) }
        })
    });
    match (target, pointer) {
        (Some((index, y)), Some(pointer)) => {
            ui.painter().with_clip_rect(stack_rect).hline(stack_rect.x_range(), y, Stroke::new(3.0, ui.visuals().selection.stroke.color));
            ghost(ui, &payload, pointer, builder);
            ui.data_mut(|d| d.insert_temp(memory, index));
        }
        (None, Some(_)) => ui.data_mut(|d| d.remove::<usize>(memory)),
        _ => {}
    }
    if ui.input(|i| i.pointer.any_released()) {
        let index = target.map(|t| t.0).or_else(|| ui.data(|d| d.get_temp::<usize>(memory)));
        ui.data_mut(|d| d.remove::<usize>(memory));
        egui::DragAndDrop::clear_payload(ui.ctx());
        let Some(index) = index else { return };
        match &*payload {
            DragPayload::Palette(kind) => commands.push(AppCommand::InsertBlock { index, kind: kind.clone() }),
            DragPayload::Entry(from) => {
                if index != *from && index != from + 1 {
                    commands.push(AppCommand::MoveBlock { from: *from, to: index });
                }
            }
        }
    }
}

/// The block being dragged, drawn at the pointer.
fn ghost(ui: &egui::Ui, payload: &DragPayload, pointer: Pos2, builder: &BuilderState) {
    let title = match payload {
        DragPayload::Palette(kind) => kind.title().to_string(),
        DragPayload::Entry(i) => builder.arch.blocks.get(*i).map_or(String::new(), |b| format!("block {}: {}", i + 1, b.kind.title())),
    };
    let painter = ui.ctx().layer_painter(egui::LayerId::new(egui::Order::Tooltip, egui::Id::unique("drag-ghost")));
    let rect = Rect::from_min_size(pointer + Vec2::new(12.0, 4.0), Vec2::new(150.0, 24.0));
    painter.rect_filled(rect, 4.0, ui.visuals().selection.bg_fill.gamma_multiply(0.9));
    painter.text(
        rect.left_center() + Vec2::X * 6.0,
        Align2::LEFT_CENTER,
        title,
        FontId::proportional(13.0),
        ui.visuals().strong_text_color(),
    );
}

fn entry_row(ui: &mut egui::Ui, builder: &BuilderState, i: usize, colours: &Palette, commands: &mut Vec<AppCommand>) -> Rect {
    let block = &builder.arch.blocks[i];
    let (rect, response) = ui.allocate_exact_size(Vec2::new(ui.available_width(), ROW_HEIGHT), Sense::click_and_drag());
    let label = format!("block {}: {}", i + 1, block.kind.title());
    response.widget_info(|| egui::WidgetInfo::labeled(egui::accesskit::Role::Button, true, &label));
    // The explanation opens beside the card's text, not below the card,
    // where it would cover the next card's error line.
    let beside = Rect::from_min_size(rect.min, Vec2::new((DIAGRAM_WIDTH + 320.0).min(rect.width()), rect.height()));
    egui::Popup::from_response(&response)
        .kind(egui::PopupKind::Tooltip)
        .anchor(egui::PopupAnchor::ParentRect(beside))
        .align(egui::RectAlign::RIGHT_START)
        .align_alternatives(&[egui::RectAlign::LEFT_START, egui::RectAlign::TOP_START])
        .open(egui::containers::Tooltip::should_show_tooltip(&response, false))
        .width(300.0)
        .show(|ui| ui.label(block.kind.explanation()));
    response.dnd_set_drag_payload(DragPayload::Entry(i));
    if response.clicked() {
        commands.push(AppCommand::SelectBlock(Some(i)));
    }
    response.context_menu(|ui| {
        if ui.button("Duplicate").clicked() {
            commands.push(AppCommand::DuplicateBlock(i));
            ui.close();
        }
        if ui.button("Delete").clicked() {
            commands.push(AppCommand::DeleteBlock(i));
            ui.close();
        }
    });
    let error = builder.analysis.error_for(i);
    let selected = builder.selected == Some(i);
    let visuals = ui.visuals();
    let fill = if selected {
        visuals.selection.bg_fill.gamma_multiply(0.6)
    } else if error.is_some() {
        visuals.error_fg_color.gamma_multiply(0.12)
    } else if response.hovered() {
        visuals.widgets.hovered.weak_bg_fill
    } else {
        visuals.faint_bg_color
    };
    let painter = ui.painter();
    let inner = rect.shrink2(Vec2::new(2.0, 2.0));
    painter.rect_filled(inner, 5.0, fill);
    if error.is_some() {
        painter.rect_stroke(inner, 5.0, Stroke::new(1.5, visuals.error_fg_color), egui::StrokeKind::Inside);
    }
    let picture = Rect::from_min_size(inner.min + Vec2::new(26.0, 2.0), Vec2::new(DIAGRAM_WIDTH, inner.height() - 4.0));
    diagram::draw(painter, picture, &block.kind, builder.changes_shape(i), colours);
    painter.text(
        inner.left_center() + Vec2::X * 6.0,
        Align2::LEFT_CENTER,
        format!("{}", i + 1),
        FontId::monospace(12.0),
        visuals.weak_text_color(),
    );
    let x = picture.right() + 10.0;
    let title = if block.repeat > 1 { format!("{}  x{}", block.kind.title(), block.repeat) } else { block.kind.title().to_string() };
    painter.text(Pos2::new(x, inner.top() + 4.0), Align2::LEFT_TOP, title, FontId::proportional(15.0), visuals.strong_text_color());
    painter.text(Pos2::new(x, inner.top() + 23.0), Align2::LEFT_TOP, describe(block), FontId::proportional(11.5), visuals.text_color());
    let info = builder.analysis.entries.get(i);
    let third = match error {
        Some(e) => (format!("error: {}", e.message), visuals.error_fg_color),
        None => match info.and_then(|e| e.output) {
            Some(output) => {
                let info = info.map(|e| (e.params, e.depth)).unwrap_or_default();
                (
                    format!(
                        "→ {output}    {} params    {} weight layer{}",
                        crate::util::format_params(info.0),
                        info.1,
                        if info.1 == 1 { "" } else { "s" }
                    ),
                    visuals.weak_text_color(),
                )
            }
            None => ("shape unknown: an earlier block is invalid".into(), visuals.weak_text_color()),
        },
    };
    // A real label (not just paint), so the message is in the accessibility tree.
    let line = Rect::from_min_max(Pos2::new(x, inner.top() + 38.0), Pos2::new(inner.right() - 4.0, inner.bottom()));
    let mut child = ui.new_child(egui::UiBuilder::new().max_rect(line));
    child.add(egui::Label::new(egui::RichText::new(third.0).size(11.5).color(third.1)).truncate());
    if block.repeat > 1 {
        let expanded = builder.expanded.contains(&i);
        let text = if expanded { "collapse" } else { "expand" };
        let button_rect = Rect::from_min_size(Pos2::new(inner.right() - 78.0, inner.top() + 4.0), Vec2::new(72.0, 20.0));
        // A child Ui, so the button does not move the row layout's cursor.
        let mut child = ui.new_child(egui::UiBuilder::new().max_rect(button_rect));
        let button = child.add(egui::Button::new(text).small()).on_hover_text(format!("List the {} copies one by one", block.repeat));
        if button.clicked() {
            commands.push(AppCommand::ToggleExpanded(i));
        }
    }
    rect
}

fn copy_row(ui: &mut egui::Ui, builder: &BuilderState, i: usize, k: usize) {
    let (rect, _) = ui.allocate_exact_size(Vec2::new(ui.available_width(), ROW_HEIGHT), Sense::hover());
    let block = &builder.arch.blocks[i];
    let visuals = ui.visuals();
    let inner = Rect::from_min_max(rect.min + Vec2::new(40.0, 6.0), rect.max - Vec2::new(2.0, 6.0));
    ui.painter().rect_filled(inner, 4.0, visuals.faint_bg_color.gamma_multiply(0.5));
    let instance = builder.analysis.instances.iter().find(|inst| inst.entry == i && inst.copy == k);
    let text = match instance {
        Some(inst) => format!(
            "copy {}/{}   {} → {}   {} params{}",
            k + 1,
            block.repeat,
            inst.input,
            inst.output,
            crate::util::format_params(inst.params),
            inst.survival.map(|p| format!("   survival p = {p:.3}")).unwrap_or_default()
        ),
        None => format!("copy {}/{}", k + 1, block.repeat),
    };
    ui.painter().text(inner.left_center() + Vec2::X * 8.0, Align2::LEFT_CENTER, text, FontId::proportional(12.0), visuals.text_color());
}
