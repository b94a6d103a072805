//! The lab's window (eframe).

/// Opens the lab's window.
pub fn run_native() -> Result<(), String> {
    Err("the window is not built yet".into())
}
