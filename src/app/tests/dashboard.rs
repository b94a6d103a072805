//! The Train tab: a run started, paused, given a new learning rate,
//! resumed and stopped; the per-layer settings; the loss plot's axis
//! against a diverged run; a plot exported as a figure.

use egui::{Modifiers, Vec2};

use super::*;

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

/// Runs that differ only by seed read as one line, their mean with the
/// seeds' spread, until the box is unticked; other runs keep their own.
#[test]
fn runs_that_differ_only_by_seed_are_one_line_with_a_band() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = harness_with(settings(dir.path()));
    h.run();
    for (seed, start) in [(1, 2.0), (2, 2.4), (3, 2.8)] {
        let id = finished_run(h.state_mut(), "resnet-8", start, 40);
        h.state_mut().runs.get_mut(id).unwrap().config.seed = seed;
    }
    finished_run(h.state_mut(), "plain-8", 2.3, 40);
    h.state_mut().runs.refresh_labels();
    choose_tab(&mut h, "Train");
    h.run();
    h.get_by_label("resnet-8 · mean of 3 seeds");
    // Each seed once, in the run list; the legend has their one line.
    assert_eq!(h.get_all_by_label("resnet-8 · seed 2").count(), 1, "the seeds are one line");
    // The line is the seeds' mean: at step 0 the losses are 2.0, 2.4 and 2.8.
    let visible: Vec<&crate::app::runs::RunView> = h.state().runs.visible().collect();
    let groups = crate::app::run_labels::seed_groups(&visible);
    let curves = crate::app::plots::series::curves(&visible, &groups, |s| f64::from(s.loss), |e| f64::from(e.loss));
    assert_eq!(curves.len(), 2);
    let mean = &curves[0];
    assert!((mean.points.train[0][1] - 2.4).abs() < 1e-6, "{:?}", mean.points.train[0]);
    assert!((mean.train_spread[0] - 0.4).abs() < 1e-6, "one standard deviation: {}", mean.train_spread[0]);
    assert_eq!((mean.points.test.len(), mean.test_spread.len()), (1, 1));
    assert!(curves[1].train_spread.is_empty(), "a run without seed twins has no band");

    h.get_by_label("Runs that differ only by seed as one line (mean ± one standard deviation)").click();
    h.run();
    assert!(!h.state().state.group_seeds);
    for seed in 1..=3 {
        assert_eq!(h.get_all_by_label(&format!("resnet-8 · seed {seed}")).count(), 2, "in the list and the legend");
    }
    assert!(h.query_by_label("resnet-8 · mean of 3 seeds").is_none());
}
