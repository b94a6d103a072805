//! How each scene sets itself up: the settings it needs, then the
//! commands that open, edit or start what it shows.

use super::*;

/// A preset in the builder with one block selected and, where `expand`,
/// its repeats shown one by one (the builder, highway and fractal scenes).
pub(super) fn open_preset(app: &mut DepthLabApp, preset: &str, block: usize, expand: bool) {
    app.push(AppCommand::LoadPreset(preset.into()));
    app.push(AppCommand::SelectBlock(Some(block)));
    if expand {
        app.push(AppCommand::ToggleExpanded(block));
    }
}

/// ResNet-20 made invalid by four max pools inserted after its stem.
pub(super) fn setup_invalid(app: &mut DepthLabApp) {
    app.push(AppCommand::LoadPreset("resnet-20".into()));
    for _ in 0..4 {
        app.push(AppCommand::InsertBlock { index: 1, kind: BlockKind::MaxPool { size: 2, stride: 2 } });
    }
    app.push(AppCommand::SelectBlock(Some(6)));
}

/// plain-20 trains first; `ready` starts its residual twin.
pub(super) fn setup_training(app: &mut DepthLabApp) {
    app.state.train.epochs = 1;
    app.state.train.max_steps = Some(60);
    app.state.train.probe_every = 3;
    app.lr_field = 0.05;
    app.push(AppCommand::LoadPreset("plain-20".into()));
    app.push(AppCommand::StartTraining);
}

pub(super) fn setup_playground(app: &mut DepthLabApp) {
    // plain-mlp-30 and resnet-mlp-30 on the one-turn spiral with sigmoid
    // units, the standard init and no batch norm (the README's vanishing
    // gradient figure), trained at once as a two-run sweep, their
    // boundaries side by side.
    use crate::arch::{Activation, Init, Norm};
    let t = &mut app.state.train;
    let spiral = crate::data::plane::PlaneSpec { turns: 1.0, ..crate::data::plane::PlaneSpec::new(crate::data::plane::PlaneShape::Spiral) };
    t.data = DataSpec::Plane(spiral);
    t.batch_size = 32;
    t.probe_every = 10;
    t.optimizer = crate::train::OptimizerKind::Adam;
    t.lr = 0.001;
    app.lr_field = 0.001;
    let s = &mut app.state.sweep;
    s.overrides.activation = Some(Activation::Sigmoid);
    s.overrides.init = Some(Init::Standard);
    s.overrides.norm = Some(Norm::None);
    s.families = vec![Family::PlainMlp, Family::ResnetMlp];
    s.depths = "30".into();
    s.epochs = PLAYGROUND_EPOCHS;
    s.max_steps = None;
    s.jobs = 2;
    app.state.tab = Tab::Sweep;
    app.push(AppCommand::StartSweep);
}

pub(super) fn setup_sweep(app: &mut DepthLabApp) {
    app.state.sweep.families = vec![Family::Plain, Family::Resnet];
    app.state.sweep.depths = "8,14,20".into();
    app.state.sweep.max_steps = Some(60);
    app.state.train.probe_every = 10;
    app.state.tab = Tab::Sweep;
    app.push(AppCommand::StartSweep);
}

/// Short runs and a small analysis; `why_ready` trains the two nets and
/// runs it.
pub(super) fn setup_why(app: &mut DepthLabApp, kind: AnalysisKind) {
    app.state.train.epochs = 1;
    app.state.train.max_steps = Some(120);
    app.state.train.test_limit = Some(500);
    app.why.kind = kind;
    app.why.lesion_examples = 500;
    app.why.path_samples = 4;
    app.why.landscape_grid = 15;
    app.why.landscape_subset = 256;
}

/// Short runs; `comparison_ready` trains them one after another.
pub(super) fn setup_comparison(app: &mut DepthLabApp) {
    app.state.train.epochs = 1;
    app.state.train.max_steps = Some(40);
    app.state.train.probe_every = 4;
    app.state.train.test_limit = Some(500);
}

pub(super) fn setup_large(app: &mut DepthLabApp) {
    app.push(AppCommand::LoadPreset("resnet-1202".into()));
    for entry in 1..=3 {
        app.push(AppCommand::ToggleExpanded(entry));
    }
}

pub(super) fn setup_bench(app: &mut DepthLabApp, i: usize) {
    // The command line's defaults, so both train the same run.
    let steps = std::env::var("DEPTHLAB_BENCH_STEPS").ok().and_then(|s| s.parse().ok()).unwrap_or(200);
    // On the GPU (wgpu) when asked, to see the window share the device.
    let backend = match std::env::var("DEPTHLAB_BENCH_BACKEND").as_deref() {
        Ok("wgpu") => crate::backend::BackendChoice::Wgpu,
        _ => crate::backend::BackendChoice::Cpu,
    };
    let t = &mut app.state.train;
    *t = crate::train::TrainConfig { data: DataSpec::FashionMini, backend, ..Default::default() };
    t.max_steps = Some(steps);
    if BENCH_ARCHS[i] == "resnet-1202" {
        // As scripts/bench_window.py trains it on the command line.
        t.overrides.residual_init = Some(crate::arch::ResidualInit::Zero);
        t.batch_size = 32;
    }
    app.lr_field = t.lr;
    app.state.tab = Tab::Train;
    app.push(AppCommand::LoadPreset(BENCH_ARCHS[i].into()));
    app.push(AppCommand::StartTraining);
}

pub(super) fn setup_thousand(app: &mut DepthLabApp) {
    let t = &mut app.state.train;
    t.epochs = 1;
    t.max_steps = Some(THOUSAND_STEPS);
    t.batch_size = 32;
    t.probe_every = 1;
    t.test_limit = Some(100);
    t.warmup_steps = 20;
    t.schedule = crate::train::Schedule::Cosine;
    t.overrides.residual_init = Some(crate::arch::ResidualInit::Zero);
    app.lr_field = 0.1;
    app.push(AppCommand::LoadPreset("resnet-1202".into()));
    app.push(AppCommand::StartTraining);
}

/// A short run to classify with (the classify and classify-error scenes).
pub(super) fn setup_classify(app: &mut DepthLabApp) {
    app.state.train.epochs = 1;
    app.state.train.max_steps = Some(90);
    app.push(AppCommand::LoadPreset("resnet-8".into()));
    app.push(AppCommand::StartTraining);
}
