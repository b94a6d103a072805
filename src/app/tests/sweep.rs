//! The Depth sweep tab: a 2 x 2 sweep filling its plot and table, a
//! sweep folder followed as other machines fill it, and depths rounded
//! before a sweep runs.

use super::*;

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
    let (events, _keep) = crate::train::events::event_channel(None);
    assert_eq!(crate::train::train(request, &rx, &events).status, RunStatus::Completed);
    wait_until(&mut h, "the finished run to appear", |app| app.sweep.rows.len() == 1);
    h.get_by_label_contains("1 of 4 runs finished");
    h.get_by_label("Stop following").click();
    h.run();
    assert!(h.state().sweep.followed.is_none());
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
