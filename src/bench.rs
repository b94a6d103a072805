//! Training throughput, probe overhead and peak memory: the figures of
//! `depthlab bench`. Each configuration runs in its own process (so peak
//! memory is its own), on synthetic data of the chosen shape, with exactly the
//! step the worker takes (SGD with momentum 0.9, weight decay 1e-4), and
//! reads the loss back every step as training does.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::arch::{Shape, presets};
use crate::backend::{self, BackendChoice};
use crate::model::Network;
use crate::train::TrainConfig;
use crate::train::step::Stepper;
use crate::util::rng::Rng;

/// One configuration to measure.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchCase {
    pub arch: String,
    pub backend: BackendChoice,
    pub batch_size: usize,
    pub input: Shape,
    pub classes: usize,
    pub warmup_steps: usize,
    pub steps: usize,
}

/// What one configuration measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchResult {
    pub case: BenchCase,
    pub backend: String,
    pub adapter: String,
    pub params: usize,
    /// Training images per second without probes.
    pub images_per_sec: f64,
    /// Training images per second with a gradient probe on every step.
    pub images_per_sec_probe_every_step: f64,
    /// Extra time per step that a probe on every step costs, as a fraction.
    pub probe_overhead: f64,
    /// Mean seconds per step, without probes.
    pub secs_per_step: f64,
    /// Peak resident memory of the process (host), in MiB.
    pub peak_rss_mib: Option<f64>,
}

/// The process's peak resident set size (Linux `VmHWM`), in MiB.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Synthetic normalised images and labels, the same for every run.
fn synthetic_batch(case: &BenchCase, rng: &mut Rng) -> (Vec<f32>, Vec<i64>) {
    let len = case.batch_size * case.input.numel();
    let images = (0..len).map(|_| rng.normal() as f32).collect();
    let labels = (0..case.batch_size).map(|_| rng.below(case.classes) as i64).collect();
    (images, labels)
}

/// Seconds for `steps` steps after `warmup` untimed ones.
fn time_steps(stepper: &mut Stepper, case: &BenchCase, probe: bool, rng: &mut Rng) -> Result<f64, String> {
    let dims = match case.input {
        Shape::Map { channels, height, width } => [case.batch_size, channels, height, width],
        Shape::Flat { features } => [case.batch_size, features, 1, 1],
    };
    // A few distinct batches, made before timing starts.
    let batches: Vec<(Vec<f32>, Vec<i64>)> = (0..4).map(|_| synthetic_batch(case, rng)).collect();
    for i in 0..case.warmup_steps {
        let (x, y) = batches[i % batches.len()].clone();
        stepper.step(x, y, dims, 0.01, probe)?;
    }
    let started = Instant::now();
    for i in 0..case.steps {
        let (x, y) = batches[i % batches.len()].clone();
        stepper.step(x, y, dims, 0.01, probe)?;
    }
    Ok(started.elapsed().as_secs_f64())
}

/// Measures one configuration in this process.
pub fn run_case(case: &BenchCase) -> Result<BenchResult, String> {
    let compute = backend::select(case.backend);
    if case.backend == BackendChoice::Wgpu && compute.backend != backend::Backend::Wgpu {
        return Err(format!("wgpu was asked for but is not available: {}", compute.reason));
    }
    let device = compute.device.clone().autodiff();
    let arch = presets::build(&case.arch, case.input)?;
    let net = Network::build(&arch, case.input, case.classes, &device, 1).map_err(|e| e.to_string())?;
    let params = net.meta.params;
    let config = TrainConfig { momentum: 0.9, weight_decay: 1e-4, ..TrainConfig::default() };
    let mut stepper = Stepper::new(net, &config, &device, 1);
    let mut rng = Rng::new(7);
    // Warm both paths up, then time them in alternating rounds and keep each
    // one's best round, so allocator warm-up and noise favour neither.
    let rounds = 2;
    let per_round = BenchCase { steps: case.steps.div_ceil(rounds).max(1), ..case.clone() };
    time_steps(&mut stepper, &BenchCase { steps: 0, ..case.clone() }, true, &mut rng)?;
    let (mut plain, mut probed) = (f64::INFINITY, f64::INFINITY);
    for round in 0..rounds {
        let warm = if round == 0 { per_round.clone() } else { BenchCase { warmup_steps: 0, ..per_round.clone() } };
        plain = plain.min(time_steps(&mut stepper, &warm, false, &mut rng)?);
        probed = probed.min(time_steps(&mut stepper, &BenchCase { warmup_steps: 0, ..per_round.clone() }, true, &mut rng)?);
    }
    let plain = plain * case.steps as f64 / per_round.steps as f64;
    let probed = probed * case.steps as f64 / per_round.steps as f64;
    let images = (case.steps * case.batch_size) as f64;
    Ok(BenchResult {
        case: case.clone(),
        backend: compute.backend.to_string(),
        adapter: compute.adapter,
        params,
        images_per_sec: images / plain,
        images_per_sec_probe_every_step: images / probed,
        probe_overhead: probed / plain - 1.0,
        secs_per_step: plain / case.steps as f64,
        peak_rss_mib: peak_rss_mib(),
    })
}
