//! The run list: hiding and showing runs, twins told apart by what
//! differs, and a run folder opened by a typed path where no file dialog
//! can be shown.

use super::*;

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
    let (events, _keep) = crate::train::events::event_channel(None);
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
