//! The palette: every block kind, with its diagram. Drag one into the stack,
//! or click it to append it (before the classifier).

use egui::{Align2, FontId, Sense, Vec2};

use super::DragPayload;
use super::diagram::{self, Palette};
use crate::app::command::AppCommand;
use crate::arch::BlockKind;

pub const ITEM_HEIGHT: f32 = 44.0;

pub fn palette_ui(ui: &mut egui::Ui, commands: &mut Vec<AppCommand>) {
    ui.heading("Blocks");
    ui.weak("Drag into the network, or click to add.");
    ui.add_space(4.0);
    let colours = Palette::from_visuals(ui.visuals());
    egui::ScrollArea::vertical().id_salt("palette-scroll").show(ui, |ui| {
        for kind in BlockKind::palette() {
            let title = kind.title();
            let (rect, response) = ui.allocate_exact_size(Vec2::new(ui.available_width(), ITEM_HEIGHT), Sense::click_and_drag());
            response.widget_info(|| egui::WidgetInfo::labeled(egui::accesskit::Role::Button, true, title));
            let response = response.on_hover_text(kind.explanation());
            response.dnd_set_drag_payload(DragPayload::Palette(kind.clone()));
            let visuals = ui.style().interact(&response);
            ui.painter().rect_filled(rect, 4.0, visuals.weak_bg_fill);
            let picture = egui::Rect::from_min_size(rect.min, Vec2::new(70.0, rect.height()));
            diagram::draw(ui.painter(), picture, &kind, false, &colours);
            ui.painter().text(
                egui::Pos2::new(picture.right() + 6.0, rect.center().y),
                Align2::LEFT_CENTER,
                title,
                FontId::proportional(13.0),
                visuals.text_color(),
            );
            if response.clicked() {
                commands.push(AppCommand::InsertBlock { index: usize::MAX, kind });
            }
            ui.add_space(2.0);
        }
    });
}
