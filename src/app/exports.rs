//! Exports: plots as figures, CSV tables and PNGs of the screen, runs as
//! PyTorch code and weights. Each is written on a background thread, under
//! the runs folder's `exports/` or where a save dialog says.

use std::path::PathBuf;

use super::DepthLabApp;
use super::runs::RunId;
use super::tasks::TaskResult;

impl DepthLabApp {
    // Exports, written under the runs folder's `exports/`.

    /// A line plot drawn again as a figure, saved as a PNG.
    pub(super) fn export_figure(&mut self, name: &str, figure: Box<crate::report::figure::Figure>) {
        let (path, ask) = (self.export_path(name, "png"), self.options.dialogs);
        self.tasks.spawn("export-figure", move || {
            let Some(path) = save_as(path, ask) else { return TaskResult::Info("export cancelled".into()) };
            match figure.save_png(&path) {
                Ok(()) => TaskResult::Info(format!("exported {}", path.display())),
                Err(e) => TaskResult::Error(format!("cannot export {}: {e}", path.display())),
            }
        });
    }

    pub(super) fn export_csv(&mut self, name: &str, csv: String) {
        let (path, ask) = (self.export_path(name, "csv"), self.options.dialogs);
        self.tasks.spawn("export-csv", move || {
            let Some(path) = save_as(path, ask) else { return TaskResult::Info("export cancelled".into()) };
            let written =
                path.parent().map_or(Ok(()), std::fs::create_dir_all).and_then(|_| crate::util::fsio::write_atomic(&path, csv.as_bytes()));
            match written {
                Ok(()) => TaskResult::Info(format!("exported {}", path.display())),
                Err(e) => TaskResult::Error(format!("cannot export {}: {e}", path.display())),
            }
        });
    }

    /// A picture of the screen region `rect` (the plots drawn by hand),
    /// taken from the next frame's screenshot.
    pub(super) fn export_png(&mut self, name: &str, rect: egui::Rect) {
        let path = self.export_path(name, "png");
        let ctx = self.ctx.clone();
        let pixels_per_point = ctx.pixels_per_point();
        let (tx, wake) = (self.tasks.sender(), self.waker());
        ctx.request_screenshot(move |image| {
            let region = image.region(&rect, Some(pixels_per_point));
            let bytes: Vec<u8> = region.pixels.iter().flat_map(|c| c.to_array()).collect();
            let saved = path.parent().map_or(Ok(()), std::fs::create_dir_all).map_err(|e| e.to_string()).and_then(|_| {
                image::save_buffer(&path, &bytes, region.width() as u32, region.height() as u32, image::ColorType::Rgba8)
                    .map_err(|e| e.to_string())
            });
            let result = match saved {
                Ok(()) => TaskResult::Info(format!("exported {}", path.display())),
                Err(e) => TaskResult::Error(format!("cannot export {}: {e}", path.display())),
            };
            if tx.send(result).is_ok() {
                wake();
            }
        });
        self.ctx.request_repaint();
    }

    /// Exports a run's weights and code for PyTorch on a background thread.
    pub(super) fn export_run(&mut self, id: RunId) {
        let Some(run) = self.runs.get(id) else { return };
        let Some(dir) = run.dir.clone() else {
            self.error(format!("{} has no run folder to export yet", run.label));
            return;
        };
        if run.is_running() {
            self.error(format!("{} is still training: export it when it has finished", run.label));
            return;
        }
        let folder: String = run.name.chars().map(|c| if c.is_alphanumeric() || c == '-' { c } else { '_' }).collect();
        let out = self.export_path(&format!("{folder}-pytorch"), "");
        let label = run.label.clone();
        self.tasks.spawn("export-run", move || match crate::export::export(&dir, crate::export::ExportFormat::Pytorch, &out, false) {
            Ok(done) => {
                let mut text = format!("exported {label} to {} (model.py, weights.safetensors, predict.py)", out.display());
                for warning in done.warnings {
                    text.push_str(&format!("; {warning}"));
                }
                TaskResult::Info(text)
            }
            Err(e) => TaskResult::Error(format!("cannot export {label}: {e}")),
        });
    }

    /// `exports/<name>-<time>.<ext>` beside the runs.
    pub(super) fn export_path(&self, name: &str, ext: &str) -> PathBuf {
        let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        // No extension: a folder (a run exported for PyTorch).
        let file = match ext {
            "" => format!("{name}-{}", crate::util::timestamp(secs)),
            ext => format!("{name}-{}.{ext}", crate::util::timestamp(secs)),
        };
        PathBuf::from(&self.state.runs_dir).join("exports").join(file)
    }
}

/// Where an export goes: `suggested` (under the runs folder's `exports/`),
/// or where the user chose in a save dialog when one can be shown (`None`:
/// cancelled). Runs on a background thread; a dialog that closes at once
/// (no desktop file-dialog service) keeps the suggestion.
fn save_as(suggested: PathBuf, ask: bool) -> Option<PathBuf> {
    if !ask {
        return Some(suggested);
    }
    let opened = std::time::Instant::now();
    let mut dialog = rfd::FileDialog::new();
    if let Some(dir) = suggested.parent() {
        let _created = std::fs::create_dir_all(dir);
        dialog = dialog.set_directory(dir);
    }
    if let Some(name) = suggested.file_name() {
        dialog = dialog.set_file_name(name.to_string_lossy());
    }
    match dialog.save_file() {
        Some(path) => Some(path),
        None if opened.elapsed() < super::tasks::NO_DIALOG_WITHIN => Some(suggested),
        None => None,
    }
}
