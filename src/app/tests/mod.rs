//! The window, driven as a person would: by label, with drags, clicks and
//! keys (egui_kittest, no display needed). One file per tab or panel;
//! the harness and the helpers they share are here.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use egui::Vec2;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;

use super::*;
use crate::backend::BackendChoice;
use crate::train::RunStatus;

fn settings(runs_dir: &Path) -> Persisted {
    let mut state = Persisted::default();
    state.runs_dir = runs_dir.display().to_string();
    state.sweep.out_dir = runs_dir.join("sweeps").display().to_string();
    state.train.backend = BackendChoice::Cpu;
    state
}

fn harness_with(state: Persisted) -> Harness<'static, DepthLabApp> {
    Harness::builder()
        .with_size(Vec2::new(1400.0, 900.0))
        .with_max_steps(200)
        .build_eframe(move |cc| DepthLabApp::new(cc, AppOptions { persisted: Some(state), ..AppOptions::headless() }))
}

fn harness() -> Harness<'static, DepthLabApp> {
    harness_with(Persisted::default())
}

/// Steps frames until `done` holds (background work runs meanwhile).
fn wait_until(h: &mut Harness<'static, DepthLabApp>, what: &str, mut done: impl FnMut(&DepthLabApp) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done(h.state()) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        h.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    h.step();
}

fn choose_tab(h: &mut Harness<'static, DepthLabApp>, title: &str) {
    h.get_by_label(title).click();
    h.run();
}

#[derive(Debug)]
struct Dropped(PathBuf);

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &Path {
        &self.0
    }
    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

/// A finished run with a loss falling from `start`, and the evaluations at
/// the end, made without training (for plot and list tests).
fn finished_run(app: &mut DepthLabApp, preset: &str, start: f32, steps: usize) -> RunId {
    use crate::train::events::{Evaluation, StepMetrics};
    let id = app.runs.next_id();
    let arch = crate::arch::presets::build(preset, crate::data::DataSpec::FashionMini.expected_shape()).expect("preset");
    let mut run = runs::RunView::new(id, preset.into(), arch, crate::train::TrainConfig::default(), None);
    for step in 0..steps {
        let loss = start / (1.0 + step as f32 * 0.1);
        run.steps.push(StepMetrics {
            step,
            epoch: 0,
            loss,
            accuracy: 0.5,
            lr: 0.1,
            images_per_sec: 0.0,
            elapsed_secs: 0.0,
            batch_digest: 0,
        });
    }
    run.evals.push(Evaluation {
        step: steps - 1,
        epoch: 0,
        loss: start * 0.6,
        accuracy: 0.7,
        per_class_accuracy: Vec::new(),
        confusion: Vec::new(),
        elapsed_secs: 0.0,
    });
    run.status = RunStatus::Completed;
    run.preparing = None;
    app.runs.add(run);
    id
}

/// Trains `preset` on the embedded digits into `dir` for `epochs` (at most
/// `max_steps`), batches of 32 on the CPU, and checks it completed.
fn train_digits(preset: &str, dir: &Path, epochs: usize, max_steps: Option<usize>) {
    let data = Arc::new(crate::data::Dataset::load(&crate::data::DataSpec::Digits).unwrap());
    let request = crate::train::RunRequest {
        arch: crate::arch::presets::build(preset, data.shape()).unwrap(),
        config: crate::train::TrainConfig {
            data: crate::data::DataSpec::Digits,
            epochs,
            max_steps,
            batch_size: 32,
            backend: BackendChoice::Cpu,
            ..Default::default()
        },
        data: Some(data),
        out: Some(dir.to_path_buf()),
        init_weights: None,
    };
    let handle = crate::train::spawn(request, None).unwrap();
    let finished = handle.events.iter().any(|e| matches!(e, crate::train::Event::Finished(s) if s.status == RunStatus::Completed));
    handle.join();
    assert!(finished, "{preset} trained");
}

mod budget;
mod builder;
mod classify;
mod dashboard;
mod lab;
mod run_list;
mod snapshots;
mod sweep;
mod table;
mod why;
