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

/// The sweep takes nothing silently from the Train tab: its per-layer
/// settings are its own, shown and set in the Sweep tab.
#[test]
fn the_sweep_does_not_take_the_train_tabs_layer_settings() {
    let dir = tempfile::tempdir().unwrap();
    let mut state = settings(dir.path());
    state.train.overrides.activation = Some(crate::arch::Activation::Sigmoid);
    state.train.overrides.norm = Some(crate::arch::Norm::None);
    let mut h = harness_with(state);
    h.run();
    choose_tab(&mut h, "Depth sweep");
    h.get_by_label_contains("the layer settings above are the sweep's own");
    assert!(h.state().sweep_train_config().overrides.is_empty(), "the Train tab's sigmoid, no-BN layers stay there");
    // The sweep's own settings, ticked in its own panel, apply to its nets.
    h.get_by_label("no BN").click();
    h.run();
    let overrides = h.state().sweep_train_config().overrides;
    assert_eq!(overrides.norm, Some(crate::arch::Norm::None));
    assert_eq!(overrides.activation, None);
    assert_eq!(h.state().state.train.overrides.activation, Some(crate::arch::Activation::Sigmoid), "the Train tab keeps its own");
}
