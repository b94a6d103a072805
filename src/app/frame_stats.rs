//! Frame times: how long each frame took on the CPU (UI and rendering, as
//! eframe measures it, vsync waits excluded), kept for the status bar and,
//! with `DEPTHLAB_FRAME_LOG=FILE`, written out when the window closes (one
//! line per frame: the previous frame's whole-frame seconds, this frame's
//! UI-only seconds, training 0/1, the CPU seconds the drawing threads used
//! since the frame before (with a software renderer that includes
//! rasterising it), and when this frame's UI started, in seconds since the
//! Unix epoch — so a script that clicks at a known time can find the frame
//! that answered it).

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

const KEEP: usize = 600;

pub struct FrameStats {
    recent: VecDeque<f32>,
    log: Option<(std::path::PathBuf, Vec<(f32, f32, bool, f64, f64)>)>,
}

impl FrameStats {
    pub fn from_env() -> FrameStats {
        let log = std::env::var_os("DEPTHLAB_FRAME_LOG").map(|p| (std::path::PathBuf::from(p), Vec::new()));
        FrameStats { recent: VecDeque::with_capacity(KEEP), log }
    }

    /// `ui` is this frame's UI time, begun at `started`; `previous_frame_secs`
    /// is eframe's measure of the whole previous frame (UI, tessellation,
    /// painting).
    pub fn record(
        &mut self,
        started: SystemTime,
        ui: Duration,
        previous_frame_secs: Option<f32>,
        training: bool,
        drawing_secs: Option<f64>,
    ) {
        let Some(frame_secs) = previous_frame_secs else { return };
        let ms = frame_secs * 1000.0;
        if self.recent.len() == KEEP {
            self.recent.pop_front();
        }
        self.recent.push_back(ms);
        if let Some((_, log)) = &mut self.log {
            let unix = started.duration_since(SystemTime::UNIX_EPOCH).map_or(f64::NAN, |d| d.as_secs_f64());
            log.push((frame_secs, ui.as_secs_f32(), training, drawing_secs.unwrap_or(f64::NAN), unix));
        }
    }

    /// Median and 99th percentile of the recent frames, in milliseconds.
    pub fn median_p99(&self) -> Option<(f32, f32)> {
        percentiles(self.recent.iter().copied().collect())
    }

    pub fn write_log(&self) {
        if let Some((path, log)) = &self.log {
            let text: String = log
                .iter()
                .map(|(frame, ui, t, drawing, unix)| format!("{frame:.5},{ui:.5},{},{drawing:.3},{unix:.4}\n", u8::from(*t)))
                .collect();
            if let Err(e) = std::fs::write(path, format!("frame_secs,ui_secs,training,drawing_secs,started_unix\n{text}")) {
                eprintln!("depthlab: cannot write the frame log {}: {e}", path.display());
            }
        }
    }
}

/// Median and 99th percentile of `values`.
pub fn percentiles(mut values: Vec<f32>) -> Option<(f32, f32)> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f32::total_cmp);
    let at = |q: f32| values[((values.len() - 1) as f32 * q).round() as usize];
    Some((at(0.5), at(0.99)))
}
