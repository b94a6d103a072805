//! Classify: pick a trained run, open an image (typed path, dialog, or a
//! file dropped on the window), see it as the model sees it and the top-5
//! classes with their probabilities.

use egui::{Color32, ColorImage, TextureOptions, Vec2};

use super::DepthLabApp;
use super::command::AppCommand;
use super::tasks::Pick;
use crate::train::RunStatus;

pub fn classify_tab_ui(ui: &mut egui::Ui, app: &mut DepthLabApp, commands: &mut Vec<AppCommand>) {
    let mut shown = app.settings_shown();
    egui::Panel::left("classify-settings")
        .resizable(true)
        .default_size(320.0)
        .show_collapsible(ui, &mut shown, |ui| settings_ui(ui, app, commands));
    egui::CentralPanel::default().show(ui, |ui| result_ui(ui, app));
}

fn settings_ui(ui: &mut egui::Ui, app: &mut DepthLabApp, commands: &mut Vec<AppCommand>) {
    ui.heading("Classify");
    ui.label("A trained run classifies an image you give it.");
    let candidates: Vec<(u64, String)> = app
        .runs
        .runs
        .iter()
        .filter(|r| r.dir.is_some() && r.status != RunStatus::Running && r.status != RunStatus::Failed)
        .map(|r| (r.id, format!("{} ({})", r.name, r.arch.name)))
        .collect();
    if candidates.is_empty() {
        ui.colored_label(ui.visuals().warn_fg_color, "No trained run yet: train one in the Train tab, or load a run folder.");
    }
    let current = app.classify.run.and_then(|id| candidates.iter().find(|(c, _)| *c == id)).map(|(_, n)| n.clone());
    egui::ComboBox::from_id_salt("classify-run")
        .selected_text(current.unwrap_or_else(|| "choose a run".into()))
        .width(260.0)
        .show_ui(ui, |ui| {
            for (id, name) in &candidates {
                if ui.selectable_label(app.classify.run == Some(*id), name).clicked() {
                    commands.push(AppCommand::SelectClassifierRun(*id));
                }
            }
        })
        .response
        .on_hover_text("The trained run that classifies");
    ui.add_space(6.0);
    ui.label("Image");
    ui.horizontal(|ui| {
        ui.add(egui::TextEdit::singleline(&mut app.state.image_path).desired_width(220.0).hint_text("path/to/image.png"))
            .on_hover_text("Image path");
        if ui.button("Classify image").clicked() {
            commands.push(AppCommand::ClassifyImage(app.state.image_path.clone().into()));
        }
    });
    if app.options.dialogs && ui.button("Open image…").clicked() {
        commands.push(AppCommand::PickFile(Pick::Image));
    }
    ui.weak("Or drop an image file on the window. PNG, JPEG, BMP, GIF, WebP and TIFF are read; samples are in assets/samples.");
    if app.classify.busy {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label("classifying…");
        });
    }
    if let Some(e) = &app.classify.error {
        ui.colored_label(ui.visuals().error_fg_color, e);
    }
}

fn result_ui(ui: &mut egui::Ui, app: &mut DepthLabApp) {
    let Some(result) = &app.classify.result else {
        ui.add_space(30.0);
        ui.vertical_centered(|ui| ui.heading("Choose a run and an image."));
        return;
    };
    let input = &result.input;
    if app.classify.texture.is_none() {
        let plane = input.height * input.width;
        let pixels: Vec<Color32> = (0..plane)
            .map(|i| {
                if input.channels >= 3 {
                    Color32::from_rgb(input.pixels[i], input.pixels[plane + i], input.pixels[2 * plane + i])
                } else {
                    Color32::from_gray(input.pixels[i])
                }
            })
            .collect();
        let image = ColorImage::new([input.width, input.height], pixels);
        app.classify.texture = Some(ui.ctx().load_texture("classify-input", image, TextureOptions::NEAREST));
    }
    ui.heading(result.image.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
    ui.horizontal_top(|ui| {
        ui.vertical(|ui| {
            ui.label(format!("as the model sees it: {}x{}x{}", input.channels, input.height, input.width));
            if let Some(conversion) = input.conversion() {
                ui.weak(conversion);
            }
            if let Some(texture) = &app.classify.texture {
                let side = 224.0;
                let scale = side / input.width.max(input.height) as f32;
                ui.image((texture.id(), Vec2::new(input.width as f32 * scale, input.height as f32 * scale)));
            }
        });
        ui.add_space(24.0);
        ui.vertical(|ui| {
            ui.label("top 5");
            let bar_width = 260.0;
            for p in result.predictions.iter().take(5) {
                ui.horizontal(|ui| {
                    ui.add_sized([110.0, 20.0], egui::Label::new(&p.class).truncate());
                    let (rect, _) = ui.allocate_exact_size(Vec2::new(bar_width, 18.0), egui::Sense::hover());
                    ui.painter().rect_filled(rect, 3.0, ui.visuals().faint_bg_color);
                    let filled = egui::Rect::from_min_size(rect.min, Vec2::new(bar_width * p.probability, rect.height()));
                    ui.painter().rect_filled(filled, 3.0, Color32::from_rgb(66, 165, 245));
                    ui.label(format!("{:.1}%", p.probability * 100.0));
                });
            }
        });
    });
}
