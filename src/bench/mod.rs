//! Training throughput, probe overhead and peak memory: the figures of
//! `depthlab bench`. Each configuration runs in its own process (so peak
//! memory is its own), on synthetic data of the chosen shape, with exactly the
//! step the worker takes (SGD with momentum 0.9, weight decay 1e-4), and
//! reads the loss back every step as training does.

pub mod flops;
pub mod peak;

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::arch::{Shape, presets};
use crate::backend::{self, BackendChoice};
use crate::kernels::cube::Pass;
use crate::model::Network;
use crate::model::gpu_ops::tune;
use crate::train::TrainConfig;
use crate::train::step::Stepper;
use crate::util::rng::Rng;

/// Why a configuration could not be measured.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("a benchmark needs a batch of at least 1 and at least 1 step")]
    Empty,
    #[error("wgpu was asked for but is not available: {0}")]
    NoWgpu(String),
    #[error(transparent)]
    Threads(#[from] crate::util::threads::ThreadsError),
    #[error(transparent)]
    Backend(#[from] backend::BackendError),
    #[error(transparent)]
    Preset(#[from] presets::PresetError),
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
    #[error(transparent)]
    Step(#[from] crate::train::evaluate::ReadBackError),
}

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
    /// CPU threads (`None`: every core).
    #[serde(default)]
    pub threads: Option<usize>,
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
    /// FLOPs of one training image ([`flops::training_flops_per_image`]),
    /// where the count covers the net.
    #[serde(default)]
    pub flops_per_image: Option<f64>,
    /// On a GPU: the convolution kernels chosen per shape, with the
    /// timings that chose them ([`crate::model::gpu_ops::tune`]).
    #[serde(default)]
    pub gpu_kernels: Vec<KernelChoice>,
    /// On a GPU: the cubecl runtime, which names the shader compiler
    /// (`wgpu<spirv>` or `wgpu<wgsl>`).
    #[serde(default)]
    pub gpu_runtime: Option<String>,
}

/// The kernels one convolution shape ran on a GPU.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KernelChoice {
    /// `batch×in×H×W→out KH×KW /stride pad`.
    pub shape: String,
    /// Forward, input gradient, weight gradient.
    pub passes: Vec<PassChoice>,
}

/// One pass of a [`KernelChoice`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PassChoice {
    pub pass: String,
    /// Milliseconds on the lab's kernel and on burn's.
    pub lab_ms: f64,
    pub burn_ms: f64,
    /// `lab` or `burn`.
    pub chosen: String,
}

impl From<&tune::Choice> for KernelChoice {
    fn from(c: &tune::Choice) -> Self {
        let g = c.geometry;
        let shape = format!(
            "{}x{}x{}x{}->{} {}x{} /{} pad {}",
            g.batch, g.in_channels, g.in_height, g.in_width, g.out_channels, g.kernel[0], g.kernel[1], g.stride[0], g.padding[0]
        );
        // Passes never timed (a shape only evaluated) are left out.
        let passes = Pass::ALL
            .iter()
            .zip(&c.millis)
            .filter_map(|(&pass, timed)| {
                timed.map(|(lab_ms, burn_ms)| PassChoice {
                    pass: pass.name().into(),
                    lab_ms,
                    burn_ms,
                    chosen: if c.kernels.lab(pass) { "lab" } else { "burn" }.into(),
                })
            })
            .collect();
        KernelChoice { shape, passes }
    }
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

/// The median seconds of a plain step, of a step with every probe on, and
/// the median of the ratio probed / plain over adjacent pairs of steps.
///
/// Step times on a CPU drift and jump (the allocator, the thread pool, other
/// work on the machine): on two cores, runs of plain steps were seen to sit
/// at 0.8 s and then at 1.25 s for no reason of their own. So the two kinds
/// alternate step by step (plain, probed, probed, plain, …), each pair of
/// neighbours gives one ratio, and medians ignore the odd slow step.
fn time_steps(stepper: &mut Stepper, case: &BenchCase, rng: &mut Rng) -> Result<StepTimes, BenchError> {
    let dims = match case.input {
        Shape::Map { channels, height, width } => [case.batch_size, channels, height, width],
        Shape::Flat { features } => [case.batch_size, features, 1, 1],
    };
    // A few distinct batches, made before timing starts.
    let batches: Vec<(Vec<f32>, Vec<i64>)> = (0..4).map(|_| synthetic_batch(case, rng)).collect();
    let mut step = |i: usize, probe: bool| -> Result<f64, BenchError> {
        let (x, y) = batches[i % batches.len()].clone();
        let started = Instant::now();
        stepper.step(x, y, dims, 0.01, probe)?;
        Ok(started.elapsed().as_secs_f64())
    };
    for i in 0..case.warmup_steps {
        step(i, false)?;
        step(i, true)?;
    }
    let (mut plain, mut probed, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..case.steps.max(1) {
        let probe_first = i % 2 == 1;
        let first = step(2 * i, probe_first)?;
        let second = step(2 * i + 1, !probe_first)?;
        let (p, q) = if probe_first { (second, first) } else { (first, second) };
        plain.push(p);
        probed.push(q);
        ratios.push(q / p);
    }
    Ok(StepTimes { plain: median(&mut plain), probed: median(&mut probed), ratio: median(&mut ratios) })
}

struct StepTimes {
    plain: f64,
    probed: f64,
    ratio: f64,
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 }
}

/// Measures one configuration in this process, on the threads it asks for.
pub fn run_case(case: &BenchCase) -> Result<BenchResult, BenchError> {
    let pool = crate::util::threads::pool(case.threads, "depthlab-bench")?;
    crate::kernels::team::install(&pool, || measure(case))
}

fn measure(case: &BenchCase) -> Result<BenchResult, BenchError> {
    if case.batch_size == 0 || case.steps == 0 {
        return Err(BenchError::Empty);
    }
    let compute = backend::select(case.backend)?;
    if case.backend == BackendChoice::Wgpu && compute.backend != backend::Backend::Wgpu {
        return Err(BenchError::NoWgpu(compute.reason));
    }
    let device = compute.device.clone().autodiff();
    let arch = presets::build(&case.arch, case.input)?;
    let flops_per_image = flops::training_flops_per_image(&arch.analyse(case.input, case.classes));
    let net = Network::build(&arch, case.input, case.classes, &device, 1)?;
    let params = net.meta.params;
    let config = TrainConfig { momentum: 0.9, weight_decay: 1e-4, ..TrainConfig::default() };
    let mut stepper = Stepper::new(net, &config, &device, 1);
    let mut rng = Rng::new(7);
    let times = time_steps(&mut stepper, case, &mut rng)?;
    let images = case.batch_size as f64;
    Ok(BenchResult {
        case: case.clone(),
        backend: compute.backend.to_string(),
        adapter: compute.adapter,
        params,
        images_per_sec: images / times.plain,
        images_per_sec_probe_every_step: images / times.probed,
        probe_overhead: times.ratio - 1.0,
        secs_per_step: times.plain,
        peak_rss_mib: peak_rss_mib(),
        flops_per_image,
        gpu_kernels: tune::choices().iter().map(KernelChoice::from).collect(),
        gpu_runtime: crate::model::gpu_ops::runtime_name(&device).map(str::to_string),
    })
}
