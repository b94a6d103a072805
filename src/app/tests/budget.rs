//! What a sweep takes from the window: a budget in steps is that many
//! steps, not cut at the epochs the epoch budget last held (a "steps 150"
//! sweep on fashion-mini stopped at 93, one epoch), and the Train tab's
//! per-layer settings are named where they apply.

use super::*;

#[test]
fn a_sweep_budget_in_steps_trains_exactly_that_many_steps() {
    let dir = tempfile::tempdir().unwrap();
    let mut state = settings(dir.path());
    state.train.data = crate::data::DataSpec::Digits;
    state.train.batch_size = 64;
    state.sweep.epochs = 1;
    state.sweep.max_steps = Some(40);
    let app = DepthLabApp::with_state(&egui::Context::default(), state, AppOptions::headless());
    let config = app.sweep_train_config();
    assert_eq!((config.epochs, config.max_steps), (0, Some(40)));
    // Digits at batch 64 has 18 steps an epoch: 40 steps are more than two.
    let data = Arc::new(crate::data::Dataset::load(&crate::data::DataSpec::Digits).unwrap());
    let arch = crate::arch::presets::build("plain-8", data.shape()).unwrap();
    let request = crate::train::RunRequest { arch, config, data: Some(data), out: None, init_weights: None };
    let handle = crate::train::spawn(request, None).unwrap();
    let summary = handle.events.iter().find_map(|e| match e {
        crate::train::Event::Finished(s) => Some(s),
        _ => None,
    });
    handle.join();
    assert_eq!(summary.expect("the run finishes").steps, 40);
    // The epoch budget stays an epoch budget.
    let mut app = app;
    app.state.sweep.max_steps = None;
    app.state.sweep.epochs = 3;
    assert_eq!((app.sweep_train_config().epochs, app.sweep_train_config().max_steps), (3, None));
}

/// The Train tab's per-layer settings apply to every net of a sweep, and
/// the Sweep tab says so (it used to name only data, optimiser and rate).
#[test]
fn the_sweep_tab_names_the_layer_settings_it_takes_from_train() {
    let dir = tempfile::tempdir().unwrap();
    let mut state = settings(dir.path());
    state.train.overrides.activation = Some(crate::arch::Activation::Sigmoid);
    state.train.overrides.norm = Some(crate::arch::Norm::None);
    let mut h = harness_with(state);
    h.run();
    choose_tab(&mut h, "Depth sweep");
    h.get_by_label_contains("So do its layer settings, on every net: sigmoid, no bn");
    h.state_mut().state.train.overrides = Default::default();
    h.run();
    assert!(h.query_by_label_contains("So do its layer settings").is_none());
}
