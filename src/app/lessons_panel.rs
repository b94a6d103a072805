//! The Lessons tab (the built-in lessons, to start one) and the lesson's
//! card beside every tab while it is taught: the step's text, its one
//! button, what to look for with this lab's figures, a question with its
//! answer folded.

use egui::RichText;

use super::DepthLabApp;
use super::command::AppCommand;
use super::tasks::Pick;

pub fn lessons_tab_ui(ui: &mut egui::Ui, app: &mut DepthLabApp, commands: &mut Vec<AppCommand>) {
    egui::CentralPanel::default().show(ui, |ui| {
        egui::ScrollArea::vertical().id_salt("lessons-scroll").show(ui, |ui| {
            ui.heading("Lessons");
            ui.label(
                "Each lesson is a few numbered steps: a short text, one button that sets up and trains what the step needs, \
                 what to look for (with this lab's own figures), and a question with its answer folded. The lesson stays \
                 beside every tab while you teach it.",
            );
            ui.add_space(8.0);
            for lesson in crate::lesson::builtins() {
                ui.group(|ui| {
                    ui.set_width(ui.available_width());
                    ui.horizontal(|ui| {
                        ui.strong(&lesson.title);
                        ui.weak(format!("{} steps", lesson.steps.len()));
                    });
                    ui.label(&lesson.summary);
                    let current = app.lesson.as_ref().is_some_and(|l| l.lesson.name == lesson.name);
                    let text = if current { "Start again" } else { "Start this lesson" };
                    if ui.button(text).clicked() {
                        commands.push(AppCommand::StartLesson(lesson.name.clone()));
                    }
                });
                ui.add_space(4.0);
            }
            ui.add_space(8.0);
            ui.horizontal(|ui| {
                if ui.button("Open a lesson file…").on_hover_text("A lab file (.depthlab) with a lesson in it").clicked() {
                    commands.push(AppCommand::PickFile(Pick::OpenLab));
                }
                ui.weak("Write your own: docs/LESSONS.md. `depthlab lesson run FILE` checks every step.");
            });
        });
    });
}

/// The lesson's card, on the right of every tab.
pub fn lesson_side_ui(ui: &mut egui::Ui, app: &mut DepthLabApp, commands: &mut Vec<AppCommand>) {
    let Some(lesson) = &app.lesson else { return };
    let busy = app.is_training() || app.why.is_running();
    // A third of the window at most when presenting (at 200 % on 1280 × 720
    // the window is 640 points wide), so the plots keep the rest.
    let width = if app.state.present { (ui.available_width() * 0.36).clamp(200.0, 420.0) } else { 340.0 };
    egui::Panel::right(("lesson-card", app.state.present)).resizable(true).default_size(width).show(ui, |ui| {
        egui::ScrollArea::vertical().id_salt("lesson-card-scroll").show(ui, |ui| {
            // The title wraps (a row would hold the card as wide as the title).
            ui.horizontal(|ui| {
                ui.weak("Lesson");
                ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                    if ui.small_button("×").on_hover_text("Close the lesson (its runs stay)").clicked() {
                        commands.push(AppCommand::CloseLesson);
                    }
                });
            });
            ui.add(egui::Label::new(RichText::new(&lesson.lesson.title).strong()).wrap());
            let count = lesson.lesson.steps.len();
            let index = lesson.step.min(count.saturating_sub(1));
            let Some(step) = lesson.lesson.steps.get(index) else { return };
            ui.horizontal_wrapped(|ui| {
                for i in 0..count {
                    if ui.selectable_label(i == index, format!("{}", i + 1)).on_hover_text(&lesson.lesson.steps[i].title).clicked() {
                        commands.push(AppCommand::LessonStep(i));
                    }
                }
            });
            ui.separator();
            ui.label(RichText::new(format!("Step {} of {count}: {}", index + 1, step.title)).heading());
            let filled = lesson.filled.get(index).and_then(Option::as_ref);
            // Once the step has run, its figures come first (what a class
            // looks at); the text that set it up folds below.
            let ran = filled.is_some_and(|f| f.missing.is_empty() && !f.figures.is_empty());
            if ran {
                look_for_ui(ui, &step.look_for, filled);
                egui::CollapsingHeader::new("The step").id_salt(("lesson-text", &lesson.lesson.name, index)).show(ui, |ui| {
                    ui.label(&step.text);
                });
            } else {
                ui.label(&step.text);
            }
            ui.add_space(4.0);
            if !matches!(step.action, crate::lesson::Action::Read) {
                ui.horizontal(|ui| {
                    if ui.add_enabled(!busy, egui::Button::new(RichText::new(step.action.button()).strong())).clicked() {
                        commands.push(AppCommand::RunLessonStep(index));
                    }
                    if let Some(progress) = lesson.progress().filter(|_| lesson.running == Some(index)) {
                        ui.spinner();
                        ui.weak(progress);
                    }
                });
            }
            if !ran {
                look_for_ui(ui, &step.look_for, filled);
            }
            if !step.question.is_empty() {
                ui.add_space(6.0);
                ui.strong("Question");
                ui.label(&step.question);
                egui::CollapsingHeader::new("Answer").id_salt(("lesson-answer", &lesson.lesson.name, index)).default_open(false).show(
                    ui,
                    |ui| {
                        ui.label(&step.answer);
                    },
                );
            }
            ui.add_space(6.0);
            ui.horizontal(|ui| {
                if ui.add_enabled(index > 0, egui::Button::new("Previous")).clicked() {
                    commands.push(AppCommand::LessonStep(index - 1));
                }
                if ui.add_enabled(index + 1 < count, egui::Button::new("Next")).clicked() {
                    commands.push(AppCommand::LessonStep(index + 1));
                }
            });
        });
    });
}

/// "What to look for", with this lab's figures where they are in.
fn look_for_ui(ui: &mut egui::Ui, text: &str, filled: Option<&crate::lesson::figures::Filled>) {
    if text.is_empty() {
        return;
    }
    ui.add_space(6.0);
    ui.strong("What to look for");
    match filled {
        Some(filled) => {
            ui.label(&filled.text);
            if !filled.missing.is_empty() {
                ui.weak("Figures in braces fill in when the step has run.");
            }
        }
        None => {
            ui.label(text);
        }
    }
}
