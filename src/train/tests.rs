use std::sync::Arc;
use std::time::{Duration, Instant};

use super::events::{Command, Event, RunStatus, StepMetrics};
use super::*;
use crate::arch::{Activation, Init, LayerOverrides, presets};
use crate::backend::BackendChoice;
use crate::data::{DataSpec, Dataset};
use burn::module::Module;

fn digits() -> Arc<Dataset> {
    Arc::new(Dataset::load(&DataSpec::Digits).unwrap())
}

fn quick(config: TrainConfig) -> TrainConfig {
    TrainConfig { data: DataSpec::Digits, backend: BackendChoice::Cpu, batch_size: 32, ..config }
}

fn request(arch: &str, data: &Arc<Dataset>, config: TrainConfig) -> RunRequest {
    RunRequest {
        arch: presets::build(arch, data.shape()).unwrap(),
        config: quick(config),
        data: Some(data.clone()),
        out: None,
        init_weights: None,
    }
}

/// Runs to the end and returns every event.
fn run_all(request: RunRequest) -> Vec<Event> {
    let handle = spawn(request, None).unwrap();
    let events: Vec<Event> = handle.events.iter().collect();
    handle.join();
    events
}

fn steps(events: &[Event]) -> Vec<StepMetrics> {
    events.iter().filter_map(|e| if let Event::Step(m) = e { Some(*m) } else { None }).collect()
}

fn summary(events: &[Event]) -> Summary {
    events.iter().rev().find_map(|e| if let Event::Finished(s) = e { Some((**s).clone()) } else { None }).unwrap()
}

#[test]
fn same_seed_gives_identical_losses_and_twins_see_identical_batches() {
    let data = digits();
    let config = TrainConfig { max_steps: Some(5), epochs: 1, seed: 11, ..Default::default() };
    let a = steps(&run_all(request("resnet-8", &data, config.clone())));
    let b = steps(&run_all(request("resnet-8", &data, config.clone())));
    let twin = steps(&run_all(request("plain-8", &data, config.clone())));
    let other = steps(&run_all(request("resnet-8", &data, TrainConfig { seed: 12, ..config })));
    assert_eq!(a.len(), 5);
    let losses = |s: &[StepMetrics]| s.iter().map(|m| m.loss).collect::<Vec<_>>();
    let batches = |s: &[StepMetrics]| s.iter().map(|m| m.batch_digest).collect::<Vec<_>>();
    assert_eq!(losses(&a), losses(&b));
    assert_eq!(batches(&a), batches(&twin), "plain and residual twins see the same batches");
    assert_ne!(losses(&a), losses(&twin));
    assert_ne!(batches(&a), batches(&other));
}

#[test]
fn training_lowers_the_loss_and_writes_a_run_folder_that_reads_back() {
    let data = digits();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut req = request("resnet-8", &data, TrainConfig { epochs: 3, probe_every: 5, ..Default::default() });
    req.out = Some(out.clone());
    let events = run_all(req);
    let s = summary(&events);
    assert_eq!(s.status, RunStatus::Completed, "{:?}", s.reason);
    assert!(s.final_test_accuracy.unwrap() > 0.8, "{s:?}");
    let first = steps(&events)[0].loss;
    assert!(s.final_train_loss.unwrap() < first / 2.0, "{first} -> {:?}", s.final_train_loss);

    let run = RunFolder::open(&out).unwrap();
    assert_eq!(run.summary.as_ref().unwrap().status, RunStatus::Completed);
    assert_eq!(run.metrics.iter().filter(|m| !m.test).count(), s.steps);
    assert_eq!(run.metrics.iter().filter(|m| m.test).count(), 3);
    let layers = run.arch.analyse(data.shape(), 10).instances.iter().filter(|i| i.has_weights()).count();
    assert_eq!(run.gradients.len() % layers, 0);
    assert!(run.gradients.iter().all(|g| g.weight_grad_norm > 0.0 && g.output_grad_norm > 0.0));
    assert_eq!(run.record.config.seed, 1);
    // The saved weights reproduce the final test accuracy.
    let net = run.load_network(&burn::prelude::Device::flex()).unwrap();
    let again = evaluate::evaluate(&net.valid(), &data, &burn::prelude::Device::flex(), 0, 0, 0.0);
    assert!((again.accuracy - s.final_test_accuracy.unwrap()).abs() < 1e-6);
    assert_eq!(again.confusion.iter().flatten().sum::<u32>() as usize, data.test.len());
}

#[test]
fn a_diverging_run_ends_as_diverged_with_its_csvs_intact() {
    let data = digits();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut req = request("plain-mlp-5", &data, TrainConfig { lr: 1e3, momentum: 0.0, epochs: 5, probe_every: 1, ..Default::default() });
    req.out = Some(out.clone());
    let s = summary(&run_all(req));
    assert_eq!(s.status, RunStatus::Diverged);
    assert!(s.reason.as_ref().unwrap().contains("the loss became"), "{:?}", s.reason);
    let run = RunFolder::open(&out).unwrap();
    assert_eq!(run.summary.unwrap().status, RunStatus::Diverged);
    assert!(!run.metrics.is_empty());
    assert!(!run.metrics.last().unwrap().loss.is_finite());
    assert!(!run.gradients.is_empty());
}

/// The rule the README states: a training loss above 10x its starting
/// level (the first loss, or ln(classes) if higher) for 5 steps in a row.
#[test]
fn the_divergence_rule_counts_steps_in_a_row_above_ten_times_the_start() {
    let mut watch = DivergenceWatch::new(10);
    // The start is ln(10) = 2.30 here (the first loss is lower): limit 23.0.
    assert!(watch.observe(2.0).is_none());
    for _ in 0..DIVERGENCE_STEPS - 1 {
        assert!(watch.observe(30.0).is_none());
    }
    // One step below the limit starts the count again.
    assert!(watch.observe(1.0).is_none());
    for _ in 0..DIVERGENCE_STEPS - 1 {
        assert!(watch.observe(30.0).is_none());
    }
    let reason = watch.observe(30.0).expect("the fifth step in a row above the limit");
    assert!(reason.contains("23.0259") && reason.contains("5 steps in a row"), "{reason}");
    // A net that starts high (a deep net at the default init) is measured
    // against its own start: 80 after a first loss of 9 is not divergence.
    let mut deep = DivergenceWatch::new(10);
    deep.observe(9.0);
    assert!((0..20).all(|_| deep.observe(80.0).is_none()));
    assert!((0..DIVERGENCE_STEPS).filter_map(|_| deep.observe(9.0 * DIVERGENCE_FACTOR + 1.0)).count() == 1);
    // At the end, a test loss above the limit after learning nothing (the
    // training loss at chance, ln 10 = 2.3026): the outputs blew up.
    assert!(deep.final_test_loss(89.0, 2.3055).is_none());
    assert!(deep.final_test_loss(11_887.8, 2.3055).unwrap().contains("blew up"));
    assert!(DivergenceWatch::new(10).final_test_loss(1e9, 2.3055).is_none(), "no limit before the first step");
    // A net that learned (plain-32 after 40 steps: training loss 1.86, test
    // loss 41.8 while its batch-norm statistics catch up) did not diverge.
    let mut plain = DivergenceWatch::new(10);
    plain.observe(2.3074);
    assert!(plain.final_test_loss(41.8, 1.86).is_none());
    assert!(plain.final_test_loss(41.8, 2.25).is_some());
}

/// Learning rate 10 on resnet-8 (no batch norm): the run ends as diverged,
/// by one rule or the other, with its reason; no weights are saved over a
/// good checkpoint and no accuracy is computed from outputs that are not
/// numbers.
#[test]
fn a_run_with_learning_rate_ten_ends_as_diverged() {
    let data = digits();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let overrides = LayerOverrides { norm: Some(crate::arch::Norm::None), ..LayerOverrides::default() };
    let mut req = request("resnet-8", &data, TrainConfig { lr: 10.0, max_steps: Some(40), epochs: 1, overrides, ..Default::default() });
    req.out = Some(out.clone());
    let events = run_all(req);
    let s = summary(&events);
    assert_eq!(s.status, RunStatus::Diverged, "{s:?}");
    let reason = s.reason.clone().unwrap();
    assert!(reason.contains("the loss became") || reason.contains("stayed above"), "{reason}");
    assert!(steps(&events).len() < 40, "the run ends when it diverges");
    assert!(s.final_test_accuracy.is_none_or(|a| a.is_nan()));
    assert!(!out.join("model.bpk").exists(), "no weights from a diverged run's first epoch");
}

fn wait_for(handle: &RunHandle, mut predicate: impl FnMut(&Event) -> bool) -> Event {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let event = handle.events.recv_timeout(deadline.saturating_duration_since(Instant::now())).expect("event in time");
        if predicate(&event) {
            return event;
        }
    }
}

#[test]
fn pause_resume_continue_from_the_same_step_and_stop_ends_within_a_second() {
    let data = digits();
    let handle = spawn(request("resnet-8", &data, TrainConfig { epochs: 1000, ..Default::default() }), None).unwrap();
    wait_for(&handle, |e| matches!(e, Event::Step(m) if m.step >= 3));
    handle.send(Command::Pause);
    let Event::Paused { step: paused_at } = wait_for(&handle, |e| matches!(e, Event::Paused { .. })) else { unreachable!() };
    // Nothing trains while paused.
    std::thread::sleep(Duration::from_millis(300));
    let during: Vec<Event> = handle.events.try_iter().collect();
    let last_before = during.iter().filter_map(|e| if let Event::Step(m) = e { Some(m.step) } else { None }).max();
    assert!(last_before.is_none_or(|s| s < paused_at), "{last_before:?} {paused_at}");
    handle.send(Command::SetLr(0.01));
    handle.send(Command::Resume);
    let Event::Step(next) = wait_for(&handle, |e| matches!(e, Event::Step(_))) else { unreachable!() };
    assert_eq!(next.step, paused_at, "training resumes at the step where it paused");
    assert!((next.lr - 0.01).abs() < 1e-12);
    wait_for(&handle, |e| matches!(e, Event::Step(m) if m.step >= paused_at + 3));
    let asked = Instant::now();
    handle.send(Command::Stop);
    let Event::Finished(s) = wait_for(&handle, |e| matches!(e, Event::Finished(_))) else { unreachable!() };
    let took = asked.elapsed();
    assert_eq!(s.status, RunStatus::Stopped);
    assert!(took < Duration::from_secs(1), "stop took {took:?}");
    handle.join();
}

/// Output-gradient norms per probe layer at initialisation.
fn initial_output_gradients(arch: &str, overrides: LayerOverrides) -> Vec<f32> {
    let data = Arc::new(Dataset::load(&DataSpec::FashionMini).unwrap().truncated(256, 16));
    let config = TrainConfig { max_steps: Some(1), probe_every: 1, batch_size: 128, overrides, ..Default::default() };
    let mut req = request(arch, &data, config);
    req.config.data = DataSpec::FashionMini;
    let events = run_all(req);
    events.iter().find_map(|e| if let Event::Gradients(g) = e { Some(g.output.clone()) } else { None }).unwrap()
}

#[test]
fn vanishing_gradients_show_in_plain_sigmoid_nets_and_not_in_highway_nets() {
    let sigmoid_standard =
        LayerOverrides { activation: Some(Activation::Sigmoid), init: Some(Init::Standard), norm: None, residual_init: None };
    let plain = initial_output_gradients("plain-mlp-30", sigmoid_standard);
    let ratio = plain.last().unwrap() / plain.first().unwrap();
    eprintln!("plain-mlp-30 sigmoid standard: last/first output gradient = {ratio:.3e}");
    assert!(ratio > 100.0, "{ratio}");

    let mut highway = presets::build("highway-mlp-30", crate::arch::Shape::map(1, 28, 28)).unwrap();
    for block in &mut highway.blocks {
        if let crate::arch::BlockKind::HighwayDense { gate_bias, .. } = &mut block.kind {
            assert_eq!(*gate_bias, -2.0);
        }
    }
    let highway = initial_output_gradients("highway-mlp-30", sigmoid_standard);
    let ratio = highway.last().unwrap() / highway.first().unwrap();
    eprintln!("highway-mlp-30 sigmoid standard, gate bias -2: last/first output gradient = {ratio:.3e}");
    assert!(ratio <= 100.0, "{ratio}");
}

#[test]
fn identity_shortcuts_carry_the_gradient_through_sigmoid_mlps() {
    let sigmoid_standard =
        LayerOverrides { activation: Some(Activation::Sigmoid), init: Some(Init::Standard), norm: None, residual_init: None };
    let residual = initial_output_gradients("resnet-mlp-30", sigmoid_standard);
    // The first dense layer, 14 two-layer residual blocks, the classifier.
    assert_eq!(residual.len(), 16);
    let (first, last) = (residual[0], residual[residual.len() - 1]);
    let ratio = last / first;
    eprintln!("resnet-mlp-30 sigmoid standard: last/first output gradient = {ratio:.3e}");
    assert!((0.01..=100.0).contains(&ratio), "first {first:e}, last {last:e}");
    // Every block's output gradient is within 100x of the first's.
    assert!(residual.iter().all(|g| (0.01..=100.0).contains(&(g / first))), "{residual:?}");
    // plain-mlp-30, the same layout without shortcuts (or batch norm), loses it.
    let plain = initial_output_gradients("plain-mlp-30", sigmoid_standard);
    assert!(plain.last().unwrap() / plain.first().unwrap() > 1e6);
}

/// Glorot and Bengio's setting on the plane (sigmoid, standard init, no
/// batch norm), the README's figure at a third of its size: only the net
/// with shortcuts learns the one-turn spiral.
#[test]
fn only_the_residual_sigmoid_mlp_learns_the_spiral() {
    use crate::data::plane::{PlaneShape, PlaneSpec};
    let spec = DataSpec::Plane(PlaneSpec { points: 400, turns: 1.0, ..PlaneSpec::new(PlaneShape::Spiral) });
    let data = Arc::new(Dataset::load(&spec).unwrap());
    let overrides = LayerOverrides {
        activation: Some(Activation::Sigmoid),
        init: Some(Init::Standard),
        norm: Some(crate::arch::Norm::None),
        residual_init: None,
    };
    let accuracy = |arch: &str| {
        let config = TrainConfig {
            data: spec.clone(),
            backend: BackendChoice::Cpu,
            batch_size: 32,
            epochs: 40,
            optimizer: super::config::OptimizerKind::Adam,
            lr: 0.003,
            overrides,
            ..TrainConfig::default()
        };
        let request = RunRequest {
            arch: presets::build(arch, data.shape()).unwrap(),
            config,
            data: Some(data.clone()),
            out: None,
            init_weights: None,
        };
        summary(&run_all(request)).final_test_accuracy.unwrap()
    };
    let (plain, residual) = (accuracy("plain-mlp-20"), accuracy("resnet-mlp-20"));
    eprintln!("one-turn spiral, sigmoid standard no bn, 480 steps: plain-mlp-20 {plain:.3}, resnet-mlp-20 {residual:.3}");
    assert!(plain < 0.6, "plain-mlp-20 stays near chance: {plain}");
    assert!(residual > 0.9, "resnet-mlp-20 learns: {residual}");
}

#[test]
fn recalibrated_batch_norm_fits_the_column_evaluated_alone() {
    use crate::arch::{Architecture, BlockKind, BlockSpec};
    use crate::model::{Ctx, Network};
    use crate::util::rng::Rng;
    use burn::prelude::*;
    let data = digits();
    let shape = data.shape();
    let arch = Architecture {
        name: "fractal".into(),
        description: String::new(),
        stochastic_depth: None,
        blocks: vec![
            BlockSpec::new(BlockKind::Fractal { columns: 2, filters: 4, local_drop: 0.15, global_ratio: 0.5 }),
            BlockSpec::new(BlockKind::GlobalAvgPool),
            BlockSpec::new(BlockKind::Classifier),
        ],
    };
    let device = Device::flex().autodiff();
    let (c, h, w) = (data.channels, data.height, data.width);
    let n = data.train.len();
    let images = data.batch(&data.train, &(0..n).collect::<Vec<_>>(), None).images;
    let x = || Tensor::<4>::from_data(TensorData::new(images.clone(), [n, c, h, w]), &device);
    let logits = |net: &Network, training: bool| {
        let mut ctx = Ctx::new(Rng::new(0));
        ctx.calibrate = true;
        ctx.eval_column = Some(2);
        let net = if training { net.clone() } else { net.valid() };
        net.forward(x(), &mut ctx).into_data().try_to_vec::<f32>().unwrap()
    };
    // Column 2 alone, normalised by the statistics of the whole training set
    // (training mode on one batch of every image, without drops): the target.
    let target = logits(&Network::build(&arch, shape, data.classes(), &device, 1).unwrap(), true);
    let distance = |v: &[f32]| v.iter().zip(&target).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    // The same weights in eval mode: with fresh statistics (mean 0, variance 1)
    // far off, after recalibration close.
    let net = Network::build(&arch, shape, data.classes(), &device, 1).unwrap();
    let before = distance(&logits(&net, false));
    super::evaluate::recalibrate_batch_norm(&net, &data, &device, Some(2), 40, 1);
    let after = distance(&logits(&net, false));
    eprintln!("column 2 logits vs batch statistics: before {before:.4}, after recalibration {after:.4}");
    assert!(after < before / 4.0, "before {before}, after {after}");
}

/// A run on 2-D data sends its decision boundary every 10 steps (a 64 × 64
/// grid of classes that learning changes); a run on images sends none.
#[test]
fn runs_on_the_plane_send_their_decision_boundary() {
    use super::events::{BOUNDARY_EVERY, BOUNDARY_GRID};
    use crate::data::plane::{PlaneShape, PlaneSpec};
    let spec = DataSpec::Plane(PlaneSpec { points: 400, ..PlaneSpec::new(PlaneShape::Moons) });
    let data = Arc::new(Dataset::load(&spec).unwrap());
    let config = TrainConfig { data: spec, backend: BackendChoice::Cpu, batch_size: 32, epochs: 3, ..TrainConfig::default() };
    let request =
        RunRequest { arch: presets::build("plain-mlp-4", data.shape()).unwrap(), config, data: Some(data), out: None, init_weights: None };
    let events = run_all(request);
    let boundaries: Vec<_> = events.iter().filter_map(|e| if let Event::Boundary(b) = e { Some(b.clone()) } else { None }).collect();
    let total = steps(&events).len();
    assert_eq!(boundaries.len(), total.div_ceil(BOUNDARY_EVERY), "one every {BOUNDARY_EVERY} of {total} steps");
    for (i, b) in boundaries.iter().enumerate() {
        assert_eq!((b.step, b.size, b.classes.len()), (i * BOUNDARY_EVERY, BOUNDARY_GRID, BOUNDARY_GRID * BOUNDARY_GRID));
        assert!(b.classes.iter().all(|&c| c < 2));
    }
    assert_ne!(boundaries.first().unwrap().classes, boundaries.last().unwrap().classes, "learning moves the boundary");
    let images = run_all(request_for_digits());
    assert!(!images.iter().any(|e| matches!(e, Event::Boundary(_))));
}

fn request_for_digits() -> RunRequest {
    request("plain-8", &digits(), TrainConfig { max_steps: Some(12), ..TrainConfig::default() })
}
