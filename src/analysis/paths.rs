//! The gradient by path length of Veit, Wilber & Belongie (2016), fig. 6.
//!
//! Unravelled, a network of `n` residual blocks is `2^n` paths: each block
//! is passed either through its residual branch `F` or through its
//! shortcut, and `C(n, k)` paths pass through exactly `k` branches (length
//! `k`). Veit et al. measure how much gradient one path of each length
//! carries: for each `k` they sample `k` blocks, backpropagate through the
//! *branch only* of those `k` (their shortcut gets no gradient) and through
//! the *shortcut only* of the other `n - k` (their branch gets no gradient),
//! so that the gradient reaching the input is exactly the gradient of one
//! path of length `k`, and take its magnitude; the mean over samples is the
//! gradient per path of length `k`, and multiplying by the number of such
//! paths `C(n, k)` gives the total gradient of all paths of that length.
//!
//! What the lab computes, for each `k` in `0..=n`:
//! - `samples` times: a uniformly random set of `k` of the `n` residual
//!   blocks (blocks with a shortcut; other blocks always pass gradient), a
//!   batch of training images (a different one each time, seeded), one
//!   forward pass with the forward values unchanged and `detach()` applied
//!   to the shortcut's output in the chosen blocks and to the branch's
//!   output in the others, the mean cross-entropy loss over the batch, one
//!   backward pass, and the L2 norm of the gradient of that loss with
//!   respect to the input batch;
//! - `grad_per_path`: the mean of those norms;
//! - `count`: `C(n, k)` (as f64: `C(54, 27)` is about 2e15);
//! - `total`: `count × grad_per_path`, the gradient magnitude all paths of
//!   length `k` contribute (magnitudes, not vectors: it ignores
//!   cancellation between paths, as the paper's fig. 6 does).
//!
//! A trained run is measured as it is evaluated (BN running statistics,
//! stochastic-depth branches scaled); an untrained preset (`--arch`) in
//! training mode (BN with the batch's statistics, as in its first step:
//! its running statistics are still the initial 0 and 1).

use burn::nn::loss::CrossEntropyLossConfig;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::{AnalysisError, Budget, Progress, binomial};
use crate::data::{Batch, BatchOrder, Dataset};
use crate::model::residual::ShortcutPath;
use crate::model::surgery::GradientRoute;
use crate::model::{Block, Ctx, Network, l2_norm};
use crate::util::rng::Rng;

/// Most samples per length the command accepts.
pub const MAX_SAMPLES: usize = 10_000;

/// Most images per batch.
pub const MAX_BATCH: usize = 4096;

/// Settings of a path-length measurement.
#[derive(Clone, Debug)]
pub struct PathsOptions {
    /// Samples (random block sets, each with its own batch) per length.
    pub samples: usize,
    /// Images per batch.
    pub batch: usize,
    pub seed: u64,
    /// Refuse a measurement expected to take longer (seconds); `None`: no
    /// limit.
    pub max_secs: Option<f64>,
}

impl Default for PathsOptions {
    fn default() -> Self {
        PathsOptions { samples: 20, batch: 32, seed: 0, max_secs: None }
    }
}

/// The paths of one length.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PathLength {
    /// Residual branches the path passes through.
    pub length: usize,
    /// `C(n, length)`.
    pub count: f64,
    /// Mean L2 norm of the input gradient along one path of this length.
    pub grad_per_path: f64,
    /// `count × grad_per_path`.
    pub total: f64,
}

/// The measurement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PathsReport {
    pub arch: String,
    /// Residual blocks `n`.
    pub blocks: usize,
    /// Whether the weights are a trained run's (else a fresh seeded init).
    pub trained: bool,
    pub samples: usize,
    pub batch: usize,
    pub lengths: Vec<PathLength>,
}

impl PathsReport {
    /// The shortest range of lengths around the peak of `total` that holds
    /// `share` of the total gradient (Veit et al.: 5–17 of 54 hold most).
    pub fn effective_range(&self, share: f64) -> (usize, usize) {
        let sum: f64 = self.lengths.iter().map(|l| l.total).sum();
        let peak = self.lengths.iter().enumerate().max_by(|a, b| a.1.total.total_cmp(&b.1.total)).map_or(0, |(i, _)| i);
        let (mut lo, mut hi) = (peak, peak);
        let mut held = self.lengths.get(peak).map_or(0.0, |l| l.total);
        while held < share * sum && (lo > 0 || hi + 1 < self.lengths.len()) {
            let left = if lo > 0 { self.lengths[lo - 1].total } else { -1.0 };
            let right = if hi + 1 < self.lengths.len() { self.lengths[hi + 1].total } else { -1.0 };
            if left >= right {
                lo -= 1;
                held += left;
            } else {
                hi += 1;
                held += right;
            }
        }
        (self.lengths.get(lo).map_or(0, |l| l.length), self.lengths.get(hi).map_or(0, |l| l.length))
    }

    /// `paths.csv`.
    pub fn to_csv(&self) -> String {
        let mut text = String::from("length,count,grad_per_path,total\n");
        for l in &self.lengths {
            text.push_str(&format!("{},{},{},{}\n", l.length, l.count, l.grad_per_path, l.total));
        }
        text
    }
}

/// Instance indices of the residual blocks (those with a shortcut).
pub fn residual_blocks(net: &Network) -> Vec<usize> {
    net.blocks
        .iter()
        .enumerate()
        .filter(|(_, b)| match b {
            Block::Residual(r) => r.config.path != ShortcutPath::Removed,
            Block::ResidualDense(r) => r.config.path != crate::model::residual_dense::DenseShortcut::Removed,
            _ => false,
        })
        .map(|(i, _)| i)
        .collect()
}

/// The L2 norm of the input gradient of the mean loss over batch `b`, the
/// gradient flowing through the branches of `chosen` and the shortcuts of
/// the other residual blocks.
fn path_gradient(
    net: &Network,
    blocks: &[usize],
    chosen: &[usize],
    b: Batch,
    [c, h, w]: [usize; 3],
    ctx: &mut Ctx,
    device: &Device,
) -> f64 {
    let loss_fn = CrossEntropyLossConfig::new().init(device);
    ctx.reset();
    ctx.surgery.routes =
        blocks.iter().map(|&i| (i, if chosen.contains(&i) { GradientRoute::Branch } else { GradientRoute::Shortcut })).collect();
    let x = Tensor::<4>::from_data(TensorData::new(b.images, [b.size, c, h, w]), device).require_grad();
    let y = Tensor::<1, Int>::from_data(TensorData::new(b.labels, [b.size]), device);
    let logits = net.forward(x.clone(), ctx);
    let grads = loss_fn.forward(logits, y).backward();
    match x.grad(&grads) {
        Some(g) => f64::from(l2_norm(g).into_scalar::<f32>()),
        None => 0.0,
    }
}

/// Measures the gradient per path length of `net`, built on an autodiff
/// device (frozen for a trained run, as built for a fresh one), on batches
/// of `data`'s training split. With `options.max_secs`, a measurement that
/// would run longer is refused after its first sample.
pub fn paths(
    net: &Network,
    data: &Dataset,
    device: &Device,
    options: &PathsOptions,
    progress: &Progress,
) -> Result<PathsReport, AnalysisError> {
    if options.samples == 0 || options.samples > MAX_SAMPLES {
        return Err(AnalysisError::Input(format!("--samples must be 1 to {MAX_SAMPLES}, not {}", options.samples)));
    }
    if options.batch == 0 || options.batch > MAX_BATCH {
        return Err(AnalysisError::Input(format!("--batch-size must be 1 to {MAX_BATCH}, not {}", options.batch)));
    }
    if data.train.is_empty() {
        return Err(AnalysisError::Input("the data set has no training images".into()));
    }
    let blocks = residual_blocks(net);
    let n = blocks.len();
    if n == 0 {
        return Err(AnalysisError::Input(
            "the network has no residual blocks (blocks with a shortcut): it has one path, through every layer, so there are no path lengths to compare"
                .into(),
        ));
    }
    let batch = options.batch.min(data.train.len());
    let mut order = BatchOrder::new(options.seed, data.train.len());
    let mut pending: Vec<usize> = Vec::new();
    let mut rng = Rng::stream(options.seed, "paths");
    let mut ctx = Ctx::new(Rng::stream(options.seed, "drop"));
    let total_steps = (n + 1) * options.samples;
    // One sample at a time, each on every core.
    let budget = Budget { limit: options.max_secs, what: "the path-length measurement", unit: "samples", workers: 1 };
    let started = std::time::Instant::now();
    let mut lengths = Vec::with_capacity(n + 1);
    for k in 0..=n {
        let mut sum = 0.0;
        for s in 0..options.samples {
            progress.step(k * options.samples + s, total_steps)?;
            if pending.len() < batch {
                pending.extend(order.next_epoch());
            }
            let chunk: Vec<usize> = pending.drain(..batch).collect();
            let b = data.batch(&data.train, &chunk, None);
            let mut chosen = blocks.clone();
            rng.shuffle(&mut chosen);
            let norm = path_gradient(net, &blocks, &chosen[..k], b, [data.channels, data.height, data.width], &mut ctx, device);
            if !norm.is_finite() {
                return Err(AnalysisError::Failed(format!("the input gradient of a path of length {k} is {norm}")));
            }
            if k == 0 && s == 0 {
                budget.check(started.elapsed().as_secs_f64(), total_steps - 1)?;
            }
            sum += norm;
        }
        let grad_per_path = sum / options.samples as f64;
        let count = binomial(n, k);
        lengths.push(PathLength { length: k, count, grad_per_path, total: count * grad_per_path });
    }
    progress.step(total_steps, total_steps)?;
    Ok(PathsReport { arch: String::new(), blocks: n, trained: false, samples: options.samples, batch, lengths })
}

/// Measures a trained run (its weights, its data, BN running statistics).
pub fn paths_run(dir: &std::path::Path, options: &PathsOptions, progress: &Progress) -> Result<PathsReport, AnalysisError> {
    let (run, data) = super::open_run(dir)?;
    let device = Device::flex().autodiff();
    let net = run.load_network(&device)?.freeze();
    let mut report = paths(&net, &data, &device, options, progress)?;
    report.arch = run.arch.name.clone();
    report.trained = true;
    Ok(report)
}

/// Measures architecture `arch` freshly initialised from `seed`, on `data`.
pub fn paths_arch(
    arch: &crate::arch::Architecture,
    data: &Dataset,
    options: &PathsOptions,
    progress: &Progress,
) -> Result<PathsReport, AnalysisError> {
    let device = Device::flex().autodiff();
    device.seed(options.seed);
    let net = Network::build(arch, data.shape(), data.classes(), &device, options.seed).map_err(|e| AnalysisError::Input(e.to_string()))?;
    let mut report = paths(&net, data, &device, options, progress)?;
    report.arch = arch.name.clone();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::{Shape, presets};
    use crate::data::DataSpec;

    #[test]
    fn one_path_of_each_length_is_measured_with_binomial_counts() {
        let data = Dataset::load(&DataSpec::Digits).unwrap();
        let arch = presets::build("resnet-14", Shape::map(1, 8, 8)).unwrap();
        let options = PathsOptions { samples: 2, batch: 8, seed: 3, max_secs: None };
        let report = paths_arch(&arch, &data, &options, &Progress::none()).unwrap();
        assert_eq!(report.blocks, 6);
        let counts: Vec<f64> = report.lengths.iter().map(|l| l.count).collect();
        assert_eq!(counts, vec![1.0, 6.0, 15.0, 20.0, 15.0, 6.0, 1.0]);
        assert!(report.lengths.iter().all(|l| l.grad_per_path > 0.0 && l.grad_per_path.is_finite()));
        // Seeded: the same numbers again.
        let again = paths_arch(&arch, &data, &options, &Progress::none()).unwrap();
        assert_eq!(report, again);
    }

    /// Dense residual blocks (resnet-mlp) are residual blocks here too:
    /// their paths are counted, and the lesion study removes them down to
    /// their shortcut.
    #[test]
    fn dense_residual_blocks_count_as_residual() {
        let data = Dataset::load(&DataSpec::Digits).unwrap();
        let arch = presets::build("resnet-mlp-10", Shape::map(1, 8, 8)).unwrap();
        let dense_blocks: usize =
            arch.blocks.iter().filter(|b| matches!(b.kind, crate::arch::BlockKind::ResidualDense { .. })).map(|b| b.repeat).sum();
        assert!(dense_blocks >= 2, "{dense_blocks}");
        let options = PathsOptions { samples: 2, batch: 8, seed: 3, max_secs: None };
        let report = paths_arch(&arch, &data, &options, &Progress::none()).unwrap();
        assert_eq!(report.blocks, dense_blocks);
        assert_eq!(report.lengths.len(), dense_blocks + 1);
        assert!(report.lengths.iter().all(|l| l.grad_per_path > 0.0 && l.grad_per_path.is_finite()), "{report:?}");
        let device = Device::flex().autodiff();
        let net = Network::build(&arch, data.shape(), data.classes(), &device, 3).unwrap();
        let removable = crate::analysis::lesion::candidates(&net)
            .into_iter()
            .filter(|(i, ok)| ok.is_ok() && matches!(net.blocks[*i], Block::ResidualDense(_)))
            .count();
        assert_eq!(removable, dense_blocks);
    }

    #[test]
    fn a_plain_net_has_no_path_lengths() {
        let data = Dataset::load(&DataSpec::Digits).unwrap();
        let arch = presets::build("plain-8", Shape::map(1, 8, 8)).unwrap();
        let error = paths_arch(&arch, &data, &PathsOptions::default(), &Progress::none()).unwrap_err();
        assert!(matches!(error, AnalysisError::Input(ref m) if m.contains("no residual blocks")), "{error}");
    }
}
