//! The window, driven as a person would: by label, with drags, clicks and
//! keys (egui_kittest, no display needed).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use egui::{Modifiers, Pos2, Vec2};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;

use super::*;
use crate::arch::BlockKind;
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

/// Presses at `from`, moves to `to` in small steps, releases there.
fn drag(h: &mut Harness<'static, DepthLabApp>, from: Pos2, to: Pos2) {
    h.hover_at(from);
    h.step();
    h.drag_at(from);
    h.step();
    for k in 1..=10 {
        h.hover_at(from + (to - from) * (k as f32 / 10.0));
        h.step();
    }
    h.drop_at(to);
    h.step();
    h.step();
}

fn depth(h: &Harness<'static, DepthLabApp>) -> usize {
    h.state().builder.analysis.depth
}

fn params(h: &Harness<'static, DepthLabApp>) -> usize {
    h.state().builder.analysis.params
}

#[test]
fn dragging_a_residual_block_from_the_palette_updates_depth_and_parameters() {
    let mut h = harness();
    h.run();
    assert_eq!(h.state().builder.arch.name, "resnet-20");
    assert_eq!((depth(&h), params(&h)), (20, 269_722 - 2 * 16 * 9));
    let (before_depth, before_params) = (depth(&h), params(&h));
    let from = h.get_by_label("residual").rect().center();
    let row = h.get_by_label("block 2: residual").rect();
    // Upper half of block 2: the new block lands between the stem and stage 1.
    drag(&mut h, from, row.center() - Vec2::new(0.0, row.height() / 4.0));
    let blocks = &h.state().builder.arch.blocks;
    assert_eq!(blocks.len(), 7);
    assert!(matches!(blocks[1].kind, BlockKind::Residual { filters: 16, stride: 1, .. }));
    assert_eq!(depth(&h), before_depth + 2);
    assert_eq!(params(&h), before_params + 2 * (16 * 16 * 9 + 2 * 16));
    assert!(h.state().builder.analysis.is_valid());
    // And the totals line says so.
    h.get_by_label(&format!("depth {}", before_depth + 2));
}

#[test]
fn blocks_reorder_by_dragging_and_undo_redo_walks_the_edits() {
    let mut h = harness();
    h.run();
    let from = h.get_by_label("block 5: global avg pool").rect().center();
    let target = h.get_by_label("block 4: residual").rect();
    drag(&mut h, from, target.center() - Vec2::new(0.0, target.height() / 4.0));
    let kinds: Vec<&str> = h.state().builder.arch.blocks.iter().map(|b| b.kind.tag()).collect();
    assert_eq!(kinds, ["conv", "residual", "residual", "global_avg_pool", "residual", "classifier"]);
    // A residual block after global pooling has no feature map: the row says why.
    let error = h.state().builder.analysis.error_for(4).map(|e| e.message.clone()).unwrap();
    assert!(error.contains("needs a feature map"), "{error}");
    h.get_by_label_contains("a residual block needs a feature map");

    h.key_press_modifiers(Modifiers::COMMAND, egui::Key::Z);
    h.run();
    assert_eq!(h.state().builder.arch.blocks[3].kind.tag(), "residual");
    assert!(h.state().builder.analysis.is_valid());
    h.key_press_modifiers(Modifiers::COMMAND | Modifiers::SHIFT, egui::Key::Z);
    h.run();
    assert_eq!(h.state().builder.arch.blocks[3].kind.tag(), "global_avg_pool");
    h.get_by_label("Undo").click();
    h.run();
    assert_eq!(h.state().builder.arch.blocks[3].kind.tag(), "residual");
}

#[test]
fn an_invalid_edit_shows_its_error_inline_until_fixed() {
    let mut h = harness();
    h.run();
    h.get_by_label("block 3: residual").click();
    h.run();
    assert_eq!(h.state().builder.selected, Some(2));
    // 32 → 8 filters: a stride-2 block with an option-A shortcut cannot
    // shrink 16 channels to 8.
    h.get_by_value("32").set_value_accesskit(8.0);
    h.run();
    let error = h.state().builder.analysis.error_for(2).map(|e| e.message.clone()).unwrap_or_default();
    assert!(error.contains("option A shortcut cannot reduce channels (16 → 8)"), "{error}");
    // Inline in its row, and in the inspector; the header gives no depth
    // for a net that does not fit together.
    assert_eq!(h.get_all_by_label_contains("option A shortcut cannot reduce channels").count(), 2);
    h.get_by_label("depth ?");
    // Fix it: a projection shortcut (option B) can shrink the channels.
    h.get_by_value("A: zero-pad").click();
    h.run();
    h.get_by_label("B: project on change").click();
    h.run();
    assert!(h.state().builder.analysis.is_valid(), "{:?}", h.state().builder.analysis.errors);
    assert!(h.query_by_label_contains("option A shortcut cannot").is_none());
    assert!(h.query_by_label("depth ?").is_none());
}

#[test]
fn a_preset_loads_from_the_menu_and_its_depth_control_rebuilds_it() {
    let mut h = harness();
    h.run();
    h.get_by_label("Presets").click();
    h.run();
    h.get_by_label("plain").hover();
    h.run();
    h.get_by_label("plain").click();
    h.run();
    h.get_by_label("plain-56").click();
    h.run();
    assert_eq!(h.state().builder.arch.name, "plain-56");
    assert_eq!(depth(&h), 56);
    // The depth control: n of 6n+2, shown as the depth.
    h.get_by_value("56").set_value_accesskit(2.0);
    h.run();
    assert_eq!(h.state().builder.arch.name, "plain-20");
    assert_eq!(depth(&h), 20);
}

#[test]
fn an_architecture_saves_and_loads_back_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("net.json");
    let mut state = settings(dir.path());
    state.arch_path = path.display().to_string();
    let mut h = harness_with(state);
    h.run();
    h.get_by_label("block 3: residual").click();
    h.run();
    h.get_by_label("Duplicate").click();
    h.run();
    let saved = h.state().builder.arch.clone();
    h.get_by_label("Save").click();
    wait_until(&mut h, "the save", |app| path.exists() && !app.is_busy());
    h.get_by_label("New").click();
    h.run();
    assert_ne!(h.state().builder.arch, saved);
    h.get_by_label("Load").click();
    wait_until(&mut h, "the load", |app| app.builder.arch == saved);
    assert_eq!(Architecture::load(&path).unwrap(), saved);
}

#[test]
fn a_large_network_stays_usable() {
    let mut h = harness();
    h.run();
    h.state_mut().push(AppCommand::LoadPreset("resnet-1202".into()));
    h.run();
    assert_eq!(depth(&h), 1202);
    // Repeats are collapsed: one row per stage, each can be expanded.
    h.get_by_label("block 3: residual");
    let buttons = h.get_all_by_label("expand").count();
    assert_eq!(buttons, 3);
    h.get_all_by_label("expand").next().unwrap().click();
    h.run();
    assert!(h.state().builder.expanded.contains(&1));
    // 200 copies listed, only those in view laid out: frames stay cheap.
    let started = Instant::now();
    for _ in 0..20 {
        h.step();
    }
    assert!(started.elapsed() < Duration::from_secs(20));
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

fn choose_tab(h: &mut Harness<'static, DepthLabApp>, title: &str) {
    h.get_by_label(title).click();
    h.run();
}

#[test]
fn a_run_starts_pauses_changes_its_learning_rate_resumes_and_stops() {
    let dir = tempfile::tempdir().unwrap();
    let mut state = settings(dir.path());
    state.train.data = crate::data::DataSpec::Digits;
    state.train.epochs = 200;
    state.train.probe_every = 2;
    state.train.batch_size = 32;
    let mut h = harness_with(state);
    h.run();
    h.state_mut().push(AppCommand::LoadPreset("resnet-8".into()));
    h.run();
    choose_tab(&mut h, "Train");
    h.get_by_label("Start").click();
    wait_until(&mut h, "steps and probes", |app| app.active_run().is_some_and(|r| r.steps.len() >= 8 && r.gradients.len() >= 3));
    // Points arrive in the loss and gradient plots and the heatmap.
    let run = h.state().active_run().unwrap().clone();
    assert!(run.steps.iter().all(|s| s.loss.is_finite()));
    assert_eq!(run.gradients[0].output.len(), 5, "resnet-8 has 5 blocks with weights");
    h.get_by_label_contains("Gradient heatmap: resnet-8");
    assert!(h.state().heatmap.columns() >= 3);

    h.get_by_label("Pause").click();
    wait_until(&mut h, "the pause", |app| app.active_run().is_some_and(|r| r.paused));
    let paused_at = h.state().active_run().unwrap().steps.last().unwrap().step;
    h.get_by_label("Resume");
    h.state_mut().lr_field = 0.0125;
    h.get_by_label("Set").click();
    h.run();
    h.get_by_label("Resume").click();
    wait_until(&mut h, "steps after resuming", |app| app.active_run().is_some_and(|r| r.steps.last().unwrap().step >= paused_at + 4));
    let steps = &h.state().active_run().unwrap().steps;
    let resumed: Vec<_> = steps.iter().filter(|s| s.step > paused_at).collect();
    assert_eq!(resumed[0].step, paused_at + 1, "no step lost or repeated");
    assert!(resumed.iter().all(|s| (s.lr - 0.0125).abs() < 1e-12));

    h.get_by_label("Stop").click();
    wait_until(&mut h, "the stop", |app| !app.is_training());
    let run = h.state().runs.runs.last().unwrap();
    assert_eq!(run.status, RunStatus::Stopped);
    let dir = run.dir.clone().unwrap();
    assert!(dir.join("model.bpk").is_file() && dir.join("summary.json").is_file());
}

#[test]
fn a_two_by_two_sweep_fills_its_plot_and_table() {
    let dir = tempfile::tempdir().unwrap();
    let mut state = settings(dir.path());
    state.train.data = crate::data::DataSpec::Digits;
    state.train.batch_size = 32;
    state.train.probe_every = 5;
    state.sweep.depths = "8,20".into();
    state.sweep.max_steps = Some(12);
    let mut h = harness_with(state);
    h.run();
    choose_tab(&mut h, "Depth sweep");
    h.get_by_label("Run sweep").click();
    wait_until(&mut h, "the sweep", |app| !app.is_training() && app.sweep.rows.len() == 4);
    let rows = &h.state().sweep.rows;
    let families: Vec<(&str, usize)> = rows.iter().map(|r| (r.family.as_str(), r.depth)).collect();
    assert_eq!(families, [("plain", 8), ("resnet", 8), ("plain", 20), ("resnet", 20)]);
    assert!(rows.iter().all(|r| r.final_train_error.is_some() && r.status == RunStatus::Completed));
    h.run();
    // The table lists every run; the plots are drawn.
    assert_eq!(h.get_all_by_label("plain").count() >= 2, true);
    h.get_by_label_contains("Final error vs depth");
    // One sentence says what the result shows, family by family.
    h.get_by_label_contains("plain's training error");
    h.get_by_label_contains("resnet's training error");
    // The sweep's runs sit in their own group in the Train tab, collapsed
    // and out of its plots.
    choose_tab(&mut h, "Train");
    h.get_by_label_contains("(4 runs, 0 shown)");
    assert!(h.state().runs.runs.iter().all(|r| r.group.is_some() && !r.visible));
    let csv = std::fs::read_to_string(h.state().sweep.out_dir.as_ref().unwrap().join("sweep.csv")).unwrap();
    assert_eq!(csv.lines().count(), 5);
}

#[test]
fn a_run_folder_dropped_on_the_window_loads_and_classifies_an_image() {
    let dir = tempfile::tempdir().unwrap();
    // A small trained run on the embedded digits.
    let run_dir = dir.path().join("digits-run");
    train_digits("resnet-8", &run_dir, 2, None);
    let data = crate::data::Dataset::load(&crate::data::DataSpec::Digits).unwrap();
    // A test digit, written as a PNG.
    let index = 7;
    let pixels = &data.test.images[index * 64..(index + 1) * 64];
    let image = image::GrayImage::from_raw(8, 8, pixels.to_vec()).unwrap();
    let image = image::imageops::resize(&image, 32, 32, image::imageops::FilterType::Nearest);
    let png = dir.path().join("digit.png");
    image.save(&png).unwrap();

    let mut h = harness_with(settings(dir.path()));
    h.run();
    h.input_mut().dropped_files.push(Arc::new(Dropped(run_dir.clone())));
    wait_until(&mut h, "the run folder", |app| app.runs.runs.iter().any(|r| r.dir.as_deref() == Some(run_dir.as_path())));
    let run = h.state().runs.runs.last().unwrap();
    assert_eq!(run.status, RunStatus::Completed);
    assert!(!run.steps.is_empty() && !run.gradients.is_empty());

    choose_tab(&mut h, "Classify");
    h.state_mut().state.image_path = png.display().to_string();
    h.get_by_label("Classify image").click();
    wait_until(&mut h, "the classification", |app| app.classify.result.is_some() || app.message.as_ref().is_some_and(|m| m.error));
    let predictions = h.state().classify.result.as_ref().expect("a result").predictions.clone();
    assert_eq!(predictions.len(), 10);
    let top: f32 = predictions.iter().take(5).map(|p| p.probability).sum();
    assert!(top > 0.5 && top <= 1.0001);
    h.run();
    h.get_by_label("top 5");
    h.get_by_label(&predictions[0].class);

    // A file that is not an image gives a clear message.
    let bad = dir.path().join("notes.txt");
    std::fs::write(&bad, "not an image").unwrap();
    h.input_mut().dropped_files.push(Arc::new(Dropped(bad)));
    wait_until(&mut h, "the error", |app| app.message.as_ref().is_some_and(|m| m.error));
    let message = h.state().message.as_ref().unwrap().text.clone();
    assert!(message.contains("notes.txt: not an image"), "{message}");
    assert!(!h.state().classify.busy && h.state().classify.result.is_none(), "the wait ends and the old result goes");

    // What was done to the image is said: the 32x32 digit was resized to 8x8.
    let classify = |h: &mut Harness<'static, DepthLabApp>, path: &Path| {
        h.state_mut().state.image_path = path.display().to_string();
        h.get_by_label("Classify image").click();
        h.step();
        assert!(h.state().classify.busy, "the click starts a classification");
        wait_until(h, "the classification to end", |app| !app.classify.busy);
    };
    classify(&mut h, &png);
    assert!(
        h.state().classify.error.is_none() && h.state().message.is_none(),
        "a success clears the earlier error: {:?} {:?}",
        h.state().classify.error,
        h.state().message.as_ref().map(|m| m.text.clone())
    );
    h.get_by_label_contains("resized from 32x32 to 8x8");
    // Every error path ends the wait, clears the old result, says why, and
    // leaves nothing running (the window goes idle).
    let corrupt = dir.path().join("corrupt.png");
    std::fs::write(&corrupt, b"\x89PNG\r\n\x1a\nnot really").unwrap();
    for (path, words) in [(dir.path().join("missing.png"), "missing.png"), (corrupt, "cannot decode")] {
        classify(&mut h, &path);
        let app = h.state();
        assert!(app.classify.result.is_none(), "{words}");
        assert!(app.classify.error.as_deref().unwrap_or_default().contains(words), "{:?}", app.classify.error);
        assert!(!app.is_busy(), "nothing left running after {words}");
    }
    // File → Export writes the run for PyTorch under the runs folder.
    h.state_mut().runs.selected = h.state().runs.runs.last().map(|r| r.id);
    h.get_by_label("File").click();
    h.run();
    h.get_by_label("Export digits-run to PyTorch").click();
    wait_until(&mut h, "the export", |app| app.message.as_ref().is_some_and(|m| m.text.contains("export")));
    let message = h.state().message.as_ref().unwrap().text.clone();
    assert!(message.starts_with("exported digits-run to"), "{message}");
    let exported: Vec<PathBuf> = std::fs::read_dir(dir.path().join("exports")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(exported.len(), 1);
    for file in ["model.py", "weights.safetensors", "predict.py", "README.md"] {
        assert!(exported[0].join(file).is_file(), "{file} in {}", exported[0].display());
    }
    std::fs::remove_file(run_dir.join("model.bpk")).unwrap();
    classify(&mut h, &png);
    let error = h.state().classify.error.clone().unwrap_or_default();
    assert!(error.contains("saved no weights"), "{error}");
    assert!(!h.state().is_busy());
}

#[test]
fn the_main_screens_match_their_snapshots() {
    // The sample's absolute path depends on where the checkout is.
    let mut h = harness_with(Persisted { image_path: "assets/samples/sneaker.png".into(), ..Persisted::default() });
    h.run();
    h.snapshot("builder");
    choose_tab(&mut h, "Train");
    h.snapshot("train-empty");
    choose_tab(&mut h, "Depth sweep");
    h.snapshot("sweep-empty");
    choose_tab(&mut h, "Classify");
    h.snapshot("classify-empty");
    h.get_by_label("View").click();
    h.run();
    h.get_by_label("Light theme").click();
    h.run();
    choose_tab(&mut h, "Build");
    h.snapshot("builder-light");
}

/// A sweep folder planned for other machines fills in live: first every
/// run pending, then a run finished elsewhere appears in the plot's rows.
#[test]
fn a_followed_sweep_folder_fills_in_as_runs_finish_elsewhere() {
    use crate::experiment::{SweepConfig, SweepFile, begin_sweep, plan, write_csv};
    let dir = tempfile::tempdir().unwrap();
    let sweep_dir = dir.path().join("planned");
    let data = Arc::new(crate::data::Dataset::load(&crate::data::DataSpec::Digits).unwrap());
    let train = crate::train::TrainConfig {
        data: crate::data::DataSpec::Digits,
        backend: BackendChoice::Cpu,
        max_steps: Some(6),
        batch_size: 32,
        ..Default::default()
    };
    let config = SweepConfig {
        families: vec![crate::arch::presets::Family::Plain, crate::arch::presets::Family::Resnet],
        depths: vec![8, 14],
        seeds: 1,
        train: train.clone(),
        out: sweep_dir.clone(),
        resume: false,
        jobs: 1,
    };
    let planned = plan(&config, data.shape(), data.classes()).unwrap();
    let file = SweepFile::new(&config, &planned);
    begin_sweep(&sweep_dir, &file, false).unwrap();
    write_csv(&sweep_dir, &crate::experiment::collect(&sweep_dir).unwrap().1).unwrap();

    let mut h = harness_with(settings(dir.path()));
    h.run();
    choose_tab(&mut h, "Depth sweep");
    h.get_by_label("folder to follow");
    h.state_mut().follow_field = sweep_dir.display().to_string();
    h.run();
    h.get_by_label("Follow").click();
    wait_until(&mut h, "the first read", |app| app.sweep.followed.as_ref().is_some_and(|f| f.total == 4));
    assert!(h.state().sweep.rows.is_empty(), "every run is pending");
    h.get_by_label_contains("0 of 4 runs finished");

    // One run finishes "elsewhere".
    let run = &file.runs[0];
    let arch = crate::arch::presets::build(&run.arch, data.shape()).unwrap();
    let request = crate::train::RunRequest {
        arch,
        config: crate::train::TrainConfig { seed: run.seed, ..train },
        data: Some(data.clone()),
        out: Some(sweep_dir.join(&run.dir)),
        init_weights: None,
    };
    let (_tx, rx) = std::sync::mpsc::channel();
    let (events, _keep) = crate::train::worker::event_channel(None);
    assert_eq!(crate::train::train(request, &rx, &events).status, RunStatus::Completed);
    wait_until(&mut h, "the finished run to appear", |app| app.sweep.rows.len() == 1);
    h.get_by_label_contains("1 of 4 runs finished");
    h.get_by_label("Stop following").click();
    h.run();
    assert!(h.state().sweep.followed.is_none());
}

/// The Train tab sets the initialisation of every layer, as `--init` does.
#[test]
fn the_initialisation_of_every_layer_can_be_chosen() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = harness_with(settings(dir.path()));
    h.run();
    choose_tab(&mut h, "Train");
    assert_eq!(h.state().state.train.overrides.init, None);
    h.get_by_value("init as built").click();
    h.run();
    h.get_by_label("xavier").click();
    h.run();
    assert_eq!(h.state().state.train.overrides.init, Some(crate::arch::Init::Xavier));
    h.get_by_value("init xavier");
}

#[test]
fn the_sweep_shows_how_depths_round_before_it_runs() {
    use crate::arch::presets::Family;
    let text = super::sweep_panel::planned_nets(&[Family::Plain, Family::Resnet], "7,8,20").unwrap();
    assert_eq!(text, "will train: plain-8, plain-20 (7 → plain-8); resnet-8, resnet-20 (7 → resnet-8)");
    let dir = tempfile::tempdir().unwrap();
    let mut state = settings(dir.path());
    state.sweep.depths = "7,8".into();
    let mut h = harness_with(state);
    h.run();
    choose_tab(&mut h, "Depth sweep");
    h.get_by_label_contains("7 → plain-8");
}

/// Where no file dialog can be shown (rfd answers "nothing" at once), the
/// window asks for the path instead of doing nothing.
#[test]
fn without_a_file_dialog_the_path_is_typed() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("a-run");
    let data = Arc::new(crate::data::Dataset::load(&crate::data::DataSpec::Digits).unwrap());
    let request = crate::train::RunRequest {
        arch: crate::arch::presets::build("plain-8", data.shape()).unwrap(),
        config: crate::train::TrainConfig {
            data: crate::data::DataSpec::Digits,
            max_steps: Some(3),
            backend: BackendChoice::Cpu,
            ..Default::default()
        },
        data: Some(data),
        out: Some(run_dir.clone()),
        init_weights: None,
    };
    let (_tx, rx) = std::sync::mpsc::channel();
    let (events, _keep) = crate::train::worker::event_channel(None);
    assert_eq!(crate::train::train(request, &rx, &events).status, RunStatus::Completed);
    let mut h = harness_with(settings(&dir.path().join("runs")));
    h.run();
    h.state_mut().take_task_result(super::tasks::TaskResult::Picked(super::tasks::Pick::RunFolder, None, Duration::ZERO));
    h.run();
    h.get_by_label_contains("No file dialog could be shown");
    h.get_by_label("Open");
    let app = h.state_mut();
    if let Some((_, text)) = app.path_prompt.as_mut() {
        *text = run_dir.display().to_string();
    }
    h.run();
    h.get_by_label("Open").click();
    wait_until(&mut h, "the run folder to load", |app| app.runs.runs.iter().any(|r| r.dir.as_deref() == Some(run_dir.as_path())));
    assert!(h.state().path_prompt.is_none());
    // A dialog that was open a while and came back empty was cancelled: no prompt.
    h.state_mut().take_task_result(super::tasks::TaskResult::Picked(super::tasks::Pick::Image, None, Duration::from_secs(3)));
    h.run();
    assert!(h.state().path_prompt.is_none());
}

/// Choosing a family in the builder's preset dropdown loads it at once.
#[test]
fn choosing_a_preset_family_loads_it() {
    let mut h = harness();
    h.run();
    let before = h.state().builder.arch.name.clone();
    let family = h.state().builder.preset_family;
    h.get_by_value(family.prefix()).click();
    h.run();
    h.get_by_label("highway-mlp").click();
    h.run();
    let name = h.state().builder.arch.name.clone();
    assert!(name.starts_with("highway-mlp-") && name != before, "{before} -> {name}");
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

/// Hide all empties the plots; "Show only this" in a run's menu shows it
/// alone; Show all brings every run back.
#[test]
fn runs_hide_all_show_only_and_show_all() {
    let mut h = harness();
    h.run();
    let ids: Vec<RunId> = ["plain-8", "resnet-8", "plain-14"].iter().map(|p| finished_run(h.state_mut(), p, 2.3, 30)).collect();
    choose_tab(&mut h, "Train");
    h.run();
    h.get_by_label_contains("Runs (3, 3 shown)");
    h.get_by_label("Hide all").click();
    h.run();
    assert!(h.state().runs.runs.iter().all(|r| !r.visible));
    h.get_by_label("No run is shown.");
    // The run list shows the newest first: the first "…" is plain-14's.
    h.get_all_by_label("…").next().expect("a run menu").click();
    h.run();
    h.get_by_label("Show only this").click();
    h.run();
    let visible: Vec<RunId> = h.state().runs.runs.iter().filter(|r| r.visible).map(|r| r.id).collect();
    assert_eq!(visible, vec![ids[2]]);
    h.get_by_label_contains("Runs (3, 1 shown)");
    h.get_by_label("Show all").click();
    h.run();
    assert!(h.state().runs.runs.iter().all(|r| r.visible));
}

/// A diverged run (its loss exploding, then NaN) leaves the loss axis the
/// other runs are read on as it was; its curve ends with a cross.
#[test]
fn a_diverged_run_does_not_change_the_other_runs_loss_axis() {
    let mut h = harness();
    h.run();
    finished_run(h.state_mut(), "plain-8", 2.3, 40);
    finished_run(h.state_mut(), "resnet-8", 2.0, 40);
    choose_tab(&mut h, "Train");
    h.run();
    let before = *h.state().plot_view.bounds.get("loss").expect("the loss plot was drawn");
    let diverged = finished_run(h.state_mut(), "resnet-32", 2.3, 12);
    {
        let run = h.state_mut().runs.get_mut(diverged).expect("run");
        for (i, loss) in [50.0, 3e4, 1e12, f32::INFINITY, f32::NAN].into_iter().enumerate() {
            run.steps[7 + i].loss = loss;
        }
        run.evals[0].loss = f32::NAN;
        run.status = RunStatus::Diverged;
    }
    h.run();
    let after = *h.state().plot_view.bounds.get("loss").expect("the loss plot was drawn");
    assert!(after.max()[1].is_finite() && after.min()[1].is_finite());
    let close = |a: f64, b: f64| (a - b).abs() < 1e-3 * (1.0 + a.abs());
    assert!(close(before.min()[1], after.min()[1]) && close(before.max()[1], after.max()[1]), "loss axis {before:?} became {after:?}");
    assert_eq!(h.state().runs.get(diverged).map(|r| r.status), Some(RunStatus::Diverged));
    assert!(h.get_all_by_label_contains("diverged").count() >= 2, "its status and the legend's cross");
}

/// The builder's depth control steps through the family's valid depths
/// (resnet: 6n+2) one at a time, and each step rebuilds the net.
#[test]
fn the_depth_control_steps_through_valid_depths() {
    let mut h = harness();
    h.run();
    h.state_mut().push(AppCommand::LoadPreset("resnet-20".into()));
    h.run();
    h.get_by_label("▶").click();
    h.run();
    assert_eq!(h.state().builder.arch.name, "resnet-26");
    h.get_by_label("▶").click();
    h.run();
    assert_eq!(h.state().builder.arch.name, "resnet-32");
    h.get_by_label("◀").click();
    h.run();
    h.get_by_label("◀").click();
    h.run();
    h.get_by_label("◀").click();
    h.run();
    assert_eq!(h.state().builder.arch.name, "resnet-14");
    assert_eq!(depth(&h), 14);
}

/// Twins of one name are told apart in the run list by what differs.
#[test]
fn twin_runs_are_named_by_what_differs() {
    let mut h = harness();
    h.run();
    let a = finished_run(h.state_mut(), "plain-mlp-30", 2.3, 10);
    let b = finished_run(h.state_mut(), "plain-mlp-30", 2.3, 10);
    h.state_mut().runs.get_mut(a).expect("run").config.overrides.activation = Some(crate::arch::Activation::Sigmoid);
    h.state_mut().runs.get_mut(b).expect("run").config.seed = 7;
    choose_tab(&mut h, "Train");
    h.run();
    // In the run list and in the legend above the plots.
    assert!(h.get_all_by_label_contains("plain-mlp-30 · sigmoid · seed 1").count() >= 2);
    assert!(h.get_all_by_label_contains("plain-mlp-30 · relu · seed 7").count() >= 2);
}

/// Export PNG on the loss plot writes the plot drawn again as a figure,
/// with its title, numbered axes and the runs' legend (not a bare crop);
/// the wheel over a plot scrolls the page instead of panning the plot.
#[test]
fn a_plot_exports_as_a_figure_and_the_wheel_scrolls_the_page() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = harness_with(settings(dir.path()));
    h.run();
    finished_run(h.state_mut(), "plain-8", 2.3, 40);
    finished_run(h.state_mut(), "resnet-8", 2.0, 40);
    choose_tab(&mut h, "Train");
    h.run();
    let before = *h.state().plot_view.bounds.get("loss").expect("the loss plot was drawn");
    let title = h.get_by_label("Loss").rect();
    let inside = title.left_bottom() + Vec2::new(120.0, 80.0);
    h.hover_at(inside);
    h.run();
    for _ in 0..5 {
        h.event(egui::Event::MouseWheel {
            unit: egui::MouseWheelUnit::Point,
            delta: Vec2::new(0.0, -60.0),
            phase: egui::TouchPhase::Move,
            source: egui::MouseWheelSource::Wheel,
            modifiers: Modifiers::NONE,
        });
        h.run();
    }
    let after = *h.state().plot_view.bounds.get("loss").expect("the loss plot was drawn");
    assert_eq!(before, after, "the wheel must not pan the plot");
    let title = h.get_by_label("Loss").rect();
    assert!(title.top() < inside.y - 80.0 - 10.0, "the page scrolled: the title moved from {inside:?} to {title:?}");
    let inside = title.left_bottom() + Vec2::new(120.0, 80.0);
    h.hover_at(inside);
    h.event(egui::Event::PointerButton { pos: inside, button: egui::PointerButton::Secondary, pressed: true, modifiers: Modifiers::NONE });
    h.event(egui::Event::PointerButton { pos: inside, button: egui::PointerButton::Secondary, pressed: false, modifiers: Modifiers::NONE });
    h.run();
    h.get_by_label("Export PNG").click();
    wait_until(&mut h, "the export", |app| app.message.as_ref().is_some_and(|m| m.text.contains("exported")));
    let exports: Vec<PathBuf> = std::fs::read_dir(dir.path().join("exports")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(exports.len(), 1, "{exports:?}");
    let image = image::open(&exports[0]).expect("a PNG").to_rgba8();
    // A figure (520 points wide at 1.5 pixels per point, with title and
    // legend rows), not the plot's 500 x 230 crop of the screen.
    assert!(image.width() >= 700 && image.height() >= 500, "{}x{}", image.width(), image.height());
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

/// The Why tab runs each analysis on a plain net and its residual twin side
/// by side, with a progress bar, and Cancel stops one.
#[test]
fn the_why_tab_runs_each_analysis_on_two_runs_and_cancels() {
    let dir = tempfile::tempdir().unwrap();
    for preset in ["plain-8", "resnet-8"] {
        train_digits(preset, &dir.path().join(preset), 1, Some(20));
    }
    let mut h = harness_with(settings(dir.path()));
    h.run();
    for preset in ["plain-8", "resnet-8"] {
        h.input_mut().dropped_files.push(Arc::new(Dropped(dir.path().join(preset))));
        wait_until(&mut h, "the run folder", |app| app.runs.runs.iter().any(|r| r.name == preset));
    }
    choose_tab(&mut h, "Why it works");
    h.get_by_label_contains("Veit, Wilber & Belongie (2016)");
    let ids: Vec<RunId> = h.state().runs.runs.iter().map(|r| r.id).collect();
    h.state_mut().why.runs = [Some(ids[0]), Some(ids[1])];
    h.state_mut().why.lesion_examples = 100;
    h.state_mut().why.path_samples = 2;
    h.state_mut().why.landscape_grid = 5;
    h.state_mut().why.landscape_subset = 64;
    h.run();
    for (kind, words) in [
        ("Lesion study", "median rise"),
        ("Gradient by path length", "carry 90% of the gradient"),
        ("Loss landscape", "at the trained weights"),
    ] {
        // The radio button (the heading repeats the name).
        h.get_by_role_and_label(egui::accesskit::Role::RadioButton, kind).click();
        h.run();
        h.get_by_label("Run analysis").click();
        h.run();
        wait_until(&mut h, kind, |app| !app.why.is_running());
        if kind == "Gradient by path length" {
            // A plain net has one path through every layer: the side says so.
            let error = h.state().why.errors[0].clone().unwrap_or_default();
            assert!(error.contains("no residual blocks"), "{error}");
            assert!(h.state().why.errors[1].is_none());
            assert_eq!(h.get_all_by_label_contains(words).count(), 1, "{kind}: the residual side");
        } else {
            assert_eq!(h.state().why.errors, [None, None], "{kind}");
            assert_eq!(h.get_all_by_label_contains(words).count(), 2, "{kind}: both sides");
        }
    }
    // Another analysis chosen: the landscapes are not shown under its
    // heading, and come back when the landscape is chosen again.
    h.get_by_role_and_label(egui::accesskit::Role::RadioButton, "Lesion study").click();
    h.run();
    assert_eq!(h.query_all_by_label_contains("at the trained weights").count(), 0);
    assert_eq!(h.get_all_by_label_contains("it holds a loss landscape of").count(), 2);
    h.get_by_role_and_label(egui::accesskit::Role::RadioButton, "Loss landscape").click();
    h.run();
    assert_eq!(h.get_all_by_label_contains("at the trained weights").count(), 2);
    // A large landscape, cancelled.
    h.state_mut().why.landscape_grid = 101;
    h.state_mut().why.landscape_subset = 1400;
    h.run();
    h.get_by_label("Run analysis").click();
    h.run();
    assert!(h.state().why.is_running());
    h.get_by_label("Cancel").click();
    wait_until(&mut h, "the cancel", |app| !app.why.is_running());
    assert_eq!(h.state().why.errors, [Some("cancelled".to_string()), Some("cancelled".to_string())]);
}

mod budget;
mod table;
