//! Lab files: a lab saved and opened again in another window is the same
//! lab, panel by panel, even after its folder moved.

use super::*;
use crate::analysis::lesion::{BlockLesion, LesionReport};
use crate::app::lab::LabFile;
use crate::app::why::{AnalysisKind, AnalysisResult};

/// A planned sweep of plain and residual nets at depths 8 and 14 (nothing trained).
fn planned_sweep(dir: &Path) {
    use crate::experiment::{SweepConfig, SweepFile, begin_sweep, plan};
    let data = crate::data::Dataset::load(&crate::data::DataSpec::Digits).unwrap();
    let config = SweepConfig {
        families: vec![crate::arch::presets::Family::Plain, crate::arch::presets::Family::Resnet],
        depths: vec![8, 14],
        seeds: 1,
        train: crate::train::TrainConfig { data: crate::data::DataSpec::Digits, max_steps: Some(6), ..Default::default() },
        out: dir.to_path_buf(),
        resume: false,
        jobs: 1,
    };
    let planned = plan(&config, data.shape(), data.classes()).unwrap();
    begin_sweep(dir, &SweepFile::new(&config, &planned), false).unwrap();
}

fn open_in_new_window(file: &Path, runs: usize) -> Harness<'static, DepthLabApp> {
    let elsewhere = tempfile::tempdir().unwrap();
    let mut h = harness_with(settings(elsewhere.path()));
    h.run();
    h.state_mut().push(AppCommand::OpenLab(file.to_path_buf()));
    wait_until(&mut h, "the lab to open", |app| !app.is_busy() && app.runs.runs.len() == runs);
    h
}

#[test]
fn a_lab_file_round_trip_restores_every_panel() {
    let dir = tempfile::tempdir().unwrap();
    let lab_dir = dir.path().join("lecture");
    let runs_dir = lab_dir.join("runs");
    train_digits("plain-8", &runs_dir.join("plain-8"), 1, Some(4));
    train_digits("resnet-8", &runs_dir.join("resnet-8"), 1, Some(4));
    planned_sweep(&lab_dir.join("sweep"));

    let mut h = harness_with(settings(&runs_dir));
    h.run();
    // One after the other: two loads at once may finish in either order.
    for (i, name) in ["plain-8", "resnet-8"].into_iter().enumerate() {
        h.state_mut().push(AppCommand::LoadRunFolder(runs_dir.join(name)));
        wait_until(&mut h, name, |app| app.runs.runs.len() == i + 1);
    }
    let (a, b) = (h.state().runs.runs[0].id, h.state().runs.runs[1].id);
    // Every panel changed from its defaults.
    {
        let app = h.state_mut();
        app.push(AppCommand::LoadPreset("highway-14".into()));
        app.push(AppCommand::RenameRun(a, "the plain one".into()));
        app.push(AppCommand::SetRunVisible(b, false));
        app.push(AppCommand::FollowSweep(Some(lab_dir.join("sweep"))));
        app.push(AppCommand::SelectClassifierRun(b));
        app.push(AppCommand::SetPresent(true));
        app.push(AppCommand::SetTab(Tab::Why));
        app.push(AppCommand::ToggleTheme);
        app.state.arch_path = "mine.json".into();
        app.state.train.lr = 0.037;
        app.state.train.epochs = 3;
        app.state.show_weight_grad = true;
        app.state.group_seeds = false;
        app.state.sweep.depths = "8,14".into();
        app.state.sweep.seeds = 2;
        app.state.image_path = "digit.png".into();
        app.runs.get_mut(a).unwrap().color = runs::PALETTE[7];
        app.why.runs = [Some(a), Some(b)];
        app.why.path_samples = 7;
        app.why.results[0] = Some((
            "the plain one".into(),
            AnalysisResult::Lesion(LesionReport {
                arch: "plain-8".into(),
                test_examples: 100,
                baseline_test_error: 0.25,
                blocks: vec![BlockLesion { index: 2, name: "plain (1/3)".into(), test_error: Some(0.8), skipped: None }],
                random: Vec::new(),
            }),
        ));
    }
    h.run();
    wait_until(&mut h, "the sweep read", |app| app.sweep.followed.as_ref().is_some_and(|f| f.total == 4));
    assert_eq!(h.ctx.zoom_factor(), crate::app::present::DEFAULT_ZOOM, "presenting at 200 %");
    let file = lab_dir.join("lesson.depthlab");
    h.state_mut().push(AppCommand::SaveLab(Some(file.clone())));
    h.run();
    assert!(file.is_file(), "{:?}", h.state().message);
    let saved = h.state().capture_lab(Some(&lab_dir));
    assert_eq!(LabFile::read(&file).unwrap(), saved, "the file holds the lab on screen");
    assert_eq!(saved.runs[0].path, "runs/plain-8", "run folders relative to the lab file");
    assert_eq!(saved.sweep.folder.as_deref(), Some("sweep"));

    // The lab's folder moves (to another machine, a USB stick): it opens all the same.
    let moved = dir.path().join("moved");
    std::fs::rename(&lab_dir, &moved).unwrap();
    let mut h = open_in_new_window(&moved.join("lesson.depthlab"), 2);
    wait_until(&mut h, "the sweep read", |app| app.sweep.followed.as_ref().is_some_and(|f| f.total == 4));
    let reopened = h.state().capture_lab(Some(&moved));
    assert_eq!(reopened, saved, "every panel as it was left");
    let app = h.state();
    assert_eq!(app.runs.runs[0].name, "the plain one");
    assert_eq!(app.runs.runs[0].color, runs::PALETTE[7]);
    assert!(!app.runs.runs[1].visible);
    assert!(app.builder.arch.name.starts_with("highway"), "{}", app.builder.arch.name);
    assert_eq!(app.why.results[0].as_ref().map(|(l, r)| (l.as_str(), r.kind())), Some(("the plain one", AnalysisKind::Lesion)));
    assert!(app.state.present && !app.state.dark && app.state.tab == Tab::Why);
    assert_eq!(h.ctx.zoom_factor(), crate::app::present::DEFAULT_ZOOM);
    assert_eq!(app.state.lab_path, moved.join("lesson.depthlab").display().to_string());
    assert_eq!(app.state.recent_labs.first(), Some(&app.state.lab_path));
}

#[test]
fn a_damaged_lab_opens_what_it_can_and_says_what_it_cannot() {
    let dir = tempfile::tempdir().unwrap();
    train_digits("resnet-8", &dir.path().join("runs/resnet-8"), 1, Some(3));
    let lab = LabFile {
        runs: vec![
            crate::app::lab::LabRun { path: "runs/resnet-8".into(), name: "kept".into(), ..Default::default() },
            crate::app::lab::LabRun { path: "runs/gone".into(), name: "gone".into(), ..Default::default() },
        ],
        sweep: crate::app::lab::SweepPanel { folder: Some("no-sweep".into()), ..Default::default() },
        ..LabFile::default()
    };
    let file = dir.path().join("l.depthlab");
    lab.write(&file).unwrap();
    // Dropped on the window, as a teacher would from the file manager.
    let mut h = harness_with(settings(dir.path()));
    h.run();
    h.input_mut().dropped_files.push(Arc::new(Dropped(file.clone())));
    wait_until(&mut h, "the lab to open", |app| !app.is_busy() && app.runs.runs.len() == 1);
    let message = h.state().message.clone().expect("a message");
    assert!(message.error, "{}", message.text);
    assert!(message.text.contains("runs/gone") && message.text.contains("no-sweep"), "{}", message.text);
    assert_eq!(h.state().runs.runs[0].name, "kept");

    // Not a lab at all: the window stays as it was, with the reason.
    for (text, expected) in [("{\"blocks\": []}", "is not a lab file"), ("{\"format\": \"depthlab-lab\", \"version\": 7}", "version 7")] {
        std::fs::write(&file, text).unwrap();
        h.state_mut().push(AppCommand::OpenLab(file.clone()));
        wait_until(&mut h, "the refusal", |app| app.message.as_ref().is_some_and(|m| m.text.contains(expected)));
        assert!(h.state().message.as_ref().unwrap().error);
        assert_eq!(h.state().runs.runs.len(), 1);
    }
}

/// A lesson taught in the window: its card beside the tab, the step's
/// button trains the step's runs one after the other, and the figures the
/// step quotes fill in from them; saved and reopened, the lesson comes back
/// at its step with its figures.
#[test]
fn a_lesson_step_trains_its_runs_and_fills_its_figures() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("twins.depthlab");
    let run = |name: &str, arch: &str| {
        format!(
            r#"{{"name": "{name}", "arch": "{arch}", "config": {{"data": {{"kind": "digits"}}, "epochs": 1, "max_steps": 8, "batch_size": 32, "probe_every": 4, "backend": "cpu"}}}}"#
        )
    };
    let lesson = format!(
        r#"{{"format": "depthlab-lab", "lesson": {{"name": "twins", "title": "Twins", "summary": "s", "steps": [
            {{"title": "Train both", "text": "t", "action": {{"do": "train", "runs": [{}, {}]}},
              "look_for": "plain {{plain.test_accuracy}}, resnet {{resnet.test_accuracy}}, ratio {{resnet.grad_ratio}}",
              "question": "q", "answer": "a"}}]}}}}"#,
        run("plain", "plain-8"),
        run("resnet", "resnet-8")
    );
    std::fs::write(&file, lesson).unwrap();
    let mut h = harness_with(settings(dir.path()));
    h.run();
    h.state_mut().push(AppCommand::StartLesson(file.display().to_string()));
    h.run();
    h.get_by_label_contains("Step 1 of 1: Train both");
    h.get_by_label("Train plain and resnet").click();
    wait_until(&mut h, "both runs and the figures", |app| {
        app.lesson.as_ref().is_some_and(|l| l.running.is_none() && l.filled[0].as_ref().is_some_and(|f| f.missing.is_empty()))
    });
    let names: Vec<String> = h.state().runs.runs.iter().map(|r| r.name.clone()).collect();
    assert_eq!(names, vec!["plain · plain-8", "resnet · resnet-8"]);
    let filled = h.state().lesson.as_ref().unwrap().filled[0].clone().unwrap();
    assert_eq!(filled.figures.len(), 3, "{filled:?}");
    assert!(!filled.text.contains('{'), "{}", filled.text);
    h.get_by_label_contains(&filled.text);

    // Saved with the lab and opened again: the lesson, its step and its figures.
    let saved = dir.path().join("class.depthlab");
    h.state_mut().push(AppCommand::SaveLab(Some(saved.clone())));
    h.run();
    let mut h = open_in_new_window(&saved, 2);
    wait_until(&mut h, "the figures again", |app| {
        app.lesson.as_ref().is_some_and(|l| l.filled[0].as_ref().is_some_and(|f| f.missing.is_empty()))
    });
    assert_eq!(h.state().lesson.as_ref().unwrap().filled[0].as_ref().unwrap().text, filled.text);
}

/// The window's storage, in memory.
#[derive(Default)]
struct Memory(std::collections::HashMap<String, String>);

impl eframe::Storage for Memory {
    fn get_string(&self, key: &str) -> Option<String> {
        self.0.get(key).cloned()
    }
    fn set_string(&mut self, key: &str, value: String) {
        self.0.insert(key.to_string(), value);
    }
    fn remove_string(&mut self, key: &str) {
        self.0.remove(key);
    }
    fn flush(&mut self) {}
}

/// Closed and started again, the window opens the lab it was left with
/// (from its own storage), and a damaged one is no lab at all.
#[test]
fn the_window_reopens_the_lab_it_was_left_with() {
    let dir = tempfile::tempdir().unwrap();
    train_digits("resnet-8", &dir.path().join("runs/resnet-8"), 1, Some(3));
    let mut h = harness_with(settings(dir.path()));
    h.run();
    h.state_mut().push(AppCommand::LoadRunFolder(dir.path().join("runs/resnet-8")));
    wait_until(&mut h, "the run", |app| app.runs.runs.len() == 1);
    let id = h.state().runs.runs[0].id;
    h.state_mut().push(AppCommand::RenameRun(id, "kept for tomorrow".into()));
    h.state_mut().push(AppCommand::SetTab(Tab::Why));
    h.run();
    let mut storage = Memory::default();
    h.state().keep_last_lab(&mut storage);
    let left = h.state().capture_lab(None);

    let lab = super::super::last_lab(&storage).expect("a last lab");
    let mut h = harness_with(settings(&dir.path().join("elsewhere")));
    h.run();
    h.state_mut().reopen_last_lab(lab);
    wait_until(&mut h, "the last lab", |app| !app.is_busy() && app.runs.runs.len() == 1);
    assert_eq!(h.state().capture_lab(None), left);
    assert_eq!(h.state().runs.runs[0].name, "kept for tomorrow");
    assert_eq!(h.state().state.tab, Tab::Why);

    storage.0.insert(super::super::LAST_LAB_KEY.into(), "{\"format\": \"depthlab-lab\", \"runs\": 7".into());
    assert!(super::super::last_lab(&storage).is_none(), "a damaged last lab opens the defaults");
}

/// A lesson's sweep and lesion steps in the window: the sweep runs in the
/// Depth sweep tab and the lesion study in the Why tab, and their figures
/// fill in from them.
#[test]
fn a_lessons_sweep_and_lesion_steps_fill_their_figures() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("steps.depthlab");
    let config = r#"{"data": {"kind": "digits"}, "epochs": 1, "max_steps": 6, "batch_size": 32, "probe_every": 3, "backend": "cpu"}"#;
    let lesson = format!(
        r#"{{"format": "depthlab-lab", "lesson": {{"name": "steps", "title": "Steps", "summary": "s", "steps": [
            {{"title": "Sweep", "text": "t", "action": {{"do": "sweep", "name": "depth", "families": ["plain", "resnet"], "depths": [8], "config": {config}}},
              "look_for": "plain {{depth.plain-8.train_error}}, resnet {{depth.resnet-8.test_error}}", "question": "q", "answer": "a"}},
            {{"title": "Train", "text": "t", "action": {{"do": "train", "runs": [{{"name": "r", "arch": "resnet-8", "config": {config}}}]}},
              "look_for": "{{r.steps}} steps", "question": "q", "answer": "a"}},
            {{"title": "Lesion", "text": "t", "action": {{"do": "lesion", "runs": ["r"], "examples": 50}},
              "look_for": "baseline {{lesion.r.baseline_error}}, rise {{lesion.r.median_rise}}", "question": "q", "answer": "a"}}]}}}}"#
    );
    std::fs::write(&file, lesson).unwrap();
    let mut h = harness_with(settings(dir.path()));
    h.run();
    h.state_mut().push(AppCommand::StartLesson(file.display().to_string()));
    h.run();
    let done = |step: usize| {
        move |app: &DepthLabApp| {
            app.lesson.as_ref().is_some_and(|l| l.running.is_none() && l.filled[step].as_ref().is_some_and(|f| f.missing.is_empty()))
        }
    };
    for step in 0..3 {
        h.state_mut().push(AppCommand::RunLessonStep(step));
        // Stepped, not run: a spinner repaints while the step works. The
        // step's first run starts on the frame after the click.
        h.step();
        h.step();
        let tab = h.state().state.tab;
        assert_eq!(tab, [Tab::Sweep, Tab::Train, Tab::Why][step], "step {step} shows where it runs");
        wait_until(&mut h, "the step's figures", done(step));
    }
    let lesson = h.state().lesson.clone().unwrap();
    assert!(lesson.filled[0].as_ref().unwrap().text.starts_with("plain "), "{:?}", lesson.filled[0]);
    assert_eq!(lesson.filled[1].as_ref().unwrap().text, "6 steps");
    assert!(lesson.filled[2].as_ref().unwrap().text.contains("points"), "{:?}", lesson.filled[2]);
    // A lesion step before its run is trained says so instead of running.
    h.state_mut().push(AppCommand::StartLesson(file.display().to_string()));
    h.run();
    h.state_mut().push(AppCommand::RunLessonStep(2));
    h.run();
    assert!(h.state().message.as_ref().is_some_and(|m| m.error && m.text.contains("run the step that trains r first")));
}
