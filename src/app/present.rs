//! Presentation mode (View → Present, F11): for a lecture hall's projector.
//! The settings panels step aside so the plots take the window, and the
//! whole UI is zoomed (150–250 %, 200 % unless chosen): text, plot labels
//! and lines grow together. Ctrl +/−/0 still zoom within the mode, and the
//! zoom chosen there is the mode's next time.

use super::DepthLabApp;

/// Presentation mode's zoom unless one was chosen.
pub const DEFAULT_ZOOM: f32 = 2.0;
/// The zooms View → Present offers.
pub const ZOOMS: [f32; 5] = [1.5, 1.75, 2.0, 2.25, 2.5];
/// The range presentation mode keeps its zoom in.
const RANGE: std::ops::RangeInclusive<f32> = 1.5..=2.5;

impl DepthLabApp {
    /// Enters or leaves presentation mode.
    pub(super) fn set_present(&mut self, on: bool) {
        if on == self.state.present {
            return;
        }
        if on {
            self.state.zoom = self.ctx.zoom_factor();
            self.ctx.set_zoom_factor(clamp_zoom(self.state.present_zoom));
        } else {
            self.state.present_zoom = clamp_zoom(self.ctx.zoom_factor());
            self.ctx.set_zoom_factor(self.state.zoom.clamp(0.5, 3.0));
        }
        self.state.present = on;
    }

    /// Presentation mode at zoom `zoom` (clamped to 150–250 %).
    pub(super) fn set_present_zoom(&mut self, zoom: f32) {
        self.state.present_zoom = clamp_zoom(zoom);
        if self.state.present {
            self.ctx.set_zoom_factor(self.state.present_zoom);
        } else {
            self.set_present(true);
        }
    }

    /// Whether the settings panels are shown (not while presenting).
    pub fn settings_shown(&self) -> bool {
        !self.state.present
    }
}

/// A presentation zoom within 150–250 % (the default for nonsense).
pub fn clamp_zoom(zoom: f32) -> f32 {
    if zoom.is_finite() { zoom.clamp(*RANGE.start(), *RANGE.end()) } else { DEFAULT_ZOOM }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presentation_zoom_stays_between_150_and_250_percent() {
        assert_eq!(clamp_zoom(1.0), 1.5);
        assert_eq!(clamp_zoom(9.0), 2.5);
        assert_eq!(clamp_zoom(f32::NAN), DEFAULT_ZOOM);
        assert_eq!(clamp_zoom(2.25), 2.25);
        assert!(ZOOMS.iter().all(|z| RANGE.contains(z)));
    }
}
