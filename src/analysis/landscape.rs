//! The loss landscape of Li, Xu, Taylor, Studer & Goldstein (2018),
//! "Visualizing the loss landscape of neural nets".
//!
//! The training loss is evaluated at `θ + αδ + βη` for `α, β` on an `N × N`
//! grid over `[-1, 1]²`, where `θ` are the trained weights and `δ`, `η` two
//! random Gaussian directions, *filter-normalised* as in the paper: each
//! filter of a direction (an output channel of a conv kernel, an output
//! unit of a linear layer) is rescaled to the norm of the same filter of
//! `θ`; biases and BN parameters get a zero direction (the paper's
//! `ignore biasbn`), and BN running statistics stay as trained. The loss is
//! the mean cross-entropy over a fixed subset of `M` training images
//! (seeded, without augmentation), the network in eval mode (BN with its
//! running statistics).
//!
//! `loss[i][j]` is the loss at `α = alphas[i]`, `β = betas[j]`; `N` is odd
//! and the centre, `α = β = 0`, is the trained weights themselves.
//!
//! The interpolation is the 1-D line `(1 - t) θ₀ + t θ` (Goodfellow et al.
//! 2015) from the initial weights `θ₀` to the trained ones, every tensor of
//! the network interpolated (weights, biases, BN scales and shifts, and BN
//! running statistics, as Li et al.'s code interpolates a model's whole
//! state). `θ₀` is re-created exactly: `Network::build` draws every initial
//! weight on the host from the run's seed (`train.json`), as `depthlab
//! train` did (a run started from other weights would not be).
//!
//! One convention for batch norm holds for the plane and the line: eval
//! mode, BN normalising with the running statistics of the point's own
//! state, on the same subset and batches. So the line's end at `t = 1` is
//! the trained network itself and its loss is the grid's centre, exactly.

use std::time::Instant;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::{AnalysisError, Budget, Progress, Share, in_parallel};
use crate::data::{BatchOrder, Dataset};
use crate::model::{Ctx, Network};
use crate::util::rng::Rng;

/// Largest grid side the command accepts (201² = 40,401 evaluations). The
/// side is odd: the grid's centre is a point, the trained weights.
pub const MAX_GRID: usize = 201;

/// Settings of a landscape.
#[derive(Clone, Debug)]
pub struct LandscapeOptions {
    /// Grid points per axis.
    pub grid: usize,
    /// Training images the loss is measured on.
    pub subset: usize,
    /// Points on the line from the initial weights (0 for none).
    pub line_points: usize,
    pub seed: u64,
    /// Refuse a landscape expected to take longer (seconds); `None`: no
    /// limit.
    pub max_secs: Option<f64>,
}

impl Default for LandscapeOptions {
    fn default() -> Self {
        LandscapeOptions { grid: 21, subset: 1000, line_points: 21, seed: 0, max_secs: None }
    }
}

/// The loss along the line from the initial to the trained weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Interpolation {
    pub t: Vec<f64>,
    pub loss: Vec<f64>,
}

/// What was measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Landscape {
    pub arch: String,
    pub subset: usize,
    pub alphas: Vec<f64>,
    pub betas: Vec<f64>,
    /// `loss[i][j]` at `(alphas[i], betas[j])`.
    pub loss: Vec<Vec<f64>>,
    /// Loss at the trained weights (`α = β = 0`).
    pub centre_loss: f64,
    /// Mean loss at the four corners of the grid.
    pub corner_mean: f64,
    pub interpolation: Interpolation,
    /// Wall time of the grid alone.
    pub grid_secs: f64,
    pub total_secs: f64,
}

impl Landscape {
    /// `landscape.csv`: `alpha,beta,loss`, one row per grid point.
    pub fn to_csv(&self) -> String {
        let mut text = String::from("alpha,beta,loss\n");
        for (i, a) in self.alphas.iter().enumerate() {
            for (j, b) in self.betas.iter().enumerate() {
                text.push_str(&format!("{a},{b},{}\n", self.loss[i][j]));
            }
        }
        text
    }

    /// `interpolation.csv`: `t,loss`.
    pub fn interpolation_csv(&self) -> String {
        let mut text = String::from("t,loss\n");
        for (t, l) in self.interpolation.t.iter().zip(&self.interpolation.loss) {
            text.push_str(&format!("{t},{l}\n"));
        }
        text
    }
}

/// `n` evenly spaced values over `[lo, hi]` (`[0]`-centred single point).
pub fn linspace(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    match n {
        0 => Vec::new(),
        1 => vec![(lo + hi) / 2.0],
        _ => (0..n).map(|i| lo + (hi - lo) * i as f64 / (n - 1) as f64).collect(),
    }
}

/// One float tensor of the module, in visiting order.
#[derive(Clone, Debug)]
struct Tensor1 {
    /// The field's name: `weight`, `bias`, `gamma`, `running_mean`…
    name: String,
    dims: Vec<usize>,
    values: Vec<f32>,
}

#[derive(Default)]
struct Collect {
    path: Vec<String>,
    tensors: Vec<Tensor1>,
    failed: bool,
}

impl ModuleVisitor for Collect {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let tensor = param.val();
        let dims = tensor.dims().to_vec();
        let values = tensor.try_into_vec_as::<f32>().unwrap_or_else(|_| {
            self.failed = true;
            Vec::new()
        });
        self.tensors.push(Tensor1 { name: self.path.last().cloned().unwrap_or_default(), dims, values });
    }
}

fn collect(net: &Network) -> Result<Vec<Tensor1>, AnalysisError> {
    let mut visitor = Collect::default();
    net.visit(&mut visitor);
    if visitor.failed {
        return Err(AnalysisError::Failed("reading the network's weights".into()));
    }
    Ok(visitor.tensors)
}

/// Replaces the float tensors of a module (in visiting order) by the given
/// values where they are `Some`.
struct Replace<'a> {
    values: &'a [Option<Vec<f32>>],
    index: usize,
    device: Device,
}

impl ModuleMapper for Replace<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let i = self.index;
        self.index += 1;
        match self.values.get(i) {
            Some(Some(values)) => {
                let dims: [usize; D] = param.val().dims();
                let tensor = Tensor::<D>::from_data(TensorData::new(values.clone(), dims), &self.device);
                Param::initialized(param.id, tensor)
            }
            _ => param,
        }
    }
}

fn with_values(net: &Network, values: &[Option<Vec<f32>>], device: &Device) -> Network {
    net.clone().map(&mut Replace { values, index: 0, device: device.clone() })
}

/// A random Gaussian direction, filter-normalised to `theta` (zero for
/// everything but conv kernels and linear weights).
fn direction(theta: &[Tensor1], rng: &mut Rng) -> Vec<Option<Vec<f32>>> {
    theta
        .iter()
        .map(|t| {
            if t.name != "weight" || t.values.is_empty() {
                return None;
            }
            let mut d: Vec<f32> = (0..t.values.len()).map(|_| rng.normal() as f32).collect();
            // Elements of each filter: conv [out, in, k, k] -> rows of the
            // flattened kernel; linear [in, out] (burn's layout) -> columns.
            let (filters, index): (usize, Box<dyn Fn(usize) -> usize>) = match t.dims.as_slice() {
                [out, ..] if t.dims.len() == 4 => {
                    let per = t.values.len() / (*out).max(1);
                    (*out, Box::new(move |e| e / per.max(1)))
                }
                [_, out] => {
                    let out = *out;
                    (out, Box::new(move |e| e % out.max(1)))
                }
                _ => (1, Box::new(|_| 0)),
            };
            let mut theta_sq = vec![0f64; filters];
            let mut d_sq = vec![0f64; filters];
            for e in 0..d.len() {
                let f = index(e);
                theta_sq[f] += f64::from(t.values[e]).powi(2);
                d_sq[f] += f64::from(d[e]).powi(2);
            }
            for (e, v) in d.iter_mut().enumerate() {
                let f = index(e);
                *v *= (theta_sq[f].sqrt() / d_sq[f].sqrt().max(1e-30)) as f32;
            }
            Some(d)
        })
        .collect()
}

/// Images per forward pass on the grid. The grid's BN uses running
/// statistics, so the size changes nothing but the speed: 50 images keep a
/// layer's output in the core's cache (9 % faster than 250 on resnet-20).
const GRID_BATCH: usize = 50;

/// The subset as ready tensors: `(images, labels, size)` batches of
/// `batch` images.
fn subset_batches(data: &Dataset, subset: usize, seed: u64, batch: usize, device: &Device) -> Vec<(Tensor<4>, Tensor<1, Int>, usize)> {
    let mut indices = BatchOrder::new(seed, data.train.len()).next_epoch();
    indices.truncate(subset);
    indices.sort_unstable();
    indices
        .chunks(batch)
        .map(|chunk| {
            let b = data.batch(&data.train, chunk, None);
            let x = Tensor::<4>::from_data(TensorData::new(b.images, [b.size, data.channels, data.height, data.width]), device);
            let y = Tensor::<1, Int>::from_data(TensorData::new(b.labels, [b.size]), device);
            (x, y, b.size)
        })
        .collect()
}

/// Mean cross-entropy of `net` over the batches.
fn mean_loss(net: &Network, batches: &[(Tensor<4>, Tensor<1, Int>, usize)], device: &Device, ctx: &mut Ctx) -> Result<f64, AnalysisError> {
    let loss_fn = CrossEntropyLossConfig::new().init(device);
    let mut parts = Vec::with_capacity(batches.len());
    for (x, y, n) in batches {
        ctx.reset();
        let logits = net.forward(x.clone(), ctx);
        parts.push(loss_fn.forward(logits, y.clone()).mul_scalar(*n as f32));
    }
    let sums =
        Tensor::cat(parts, 0).detach().try_into_vec_as::<f32>().map_err(|e| AnalysisError::Failed(format!("reading losses: {e:?}")))?;
    let total: usize = batches.iter().map(|b| b.2).sum();
    Ok(sums.iter().map(|&s| f64::from(s)).sum::<f64>() / total.max(1) as f64)
}

/// Checks the settings against the data: a clear refusal for a zero or
/// huge grid or subset.
pub fn check(options: &LandscapeOptions, data: &Dataset) -> Result<(), AnalysisError> {
    if options.grid == 0 || options.grid > MAX_GRID {
        return Err(AnalysisError::Input(format!("--grid must be 1 to {MAX_GRID}, not {}", options.grid)));
    }
    if options.grid % 2 == 0 {
        return Err(AnalysisError::Input(format!(
            "--grid must be odd, so that the grid's centre is the trained weights: {} has no centre point",
            options.grid
        )));
    }
    if options.subset == 0 || options.subset > data.train.len() {
        return Err(AnalysisError::Input(format!(
            "--subset must be 1 to {} (the run's training images), not {}",
            data.train.len(),
            options.subset
        )));
    }
    if options.line_points > MAX_GRID {
        return Err(AnalysisError::Input(format!("--line-points must be at most {MAX_GRID}, not {}", options.line_points)));
    }
    Ok(())
}

/// Measures the landscape around the trained `net` (eval mode, on the plain
/// `device`) and, when `initial` is given (the same architecture freshly
/// built from the run's seed), the line from `initial` to `net`, evaluated
/// the same way. The centre is evaluated first, on `net` itself: with
/// `options.max_secs`, a landscape that would run longer is refused then.
pub fn landscape(
    net: &Network,
    initial: Option<&Network>,
    data: &Dataset,
    device: &Device,
    options: &LandscapeOptions,
    progress: &Progress,
) -> Result<Landscape, AnalysisError> {
    check(options, data)?;
    let started = Instant::now();
    let theta = collect(net)?;
    let mut rng = Rng::stream(options.seed, "landscape");
    let delta = direction(&theta, &mut rng);
    let eta = direction(&theta, &mut rng);
    let batches = subset_batches(data, options.subset, options.seed, GRID_BATCH, device);
    let alphas = linspace(-1.0, 1.0, options.grid);
    let betas = alphas.clone();
    let line_points = if initial.is_some() { options.line_points } else { 0 };
    let total = alphas.len() * betas.len() + line_points;
    let first = Instant::now();
    let trained = |_: usize| mean_loss(net, &batches, device, &mut Ctx::eval());
    // The grid counts the centre again (at no cost) in its progress.
    let centre_loss = in_parallel(1, &trained, &Share { progress, start: 0, cost: 0, total })?[0];
    if !centre_loss.is_finite() {
        // Points away from the centre may blow up; the trained weights may not.
        return Err(AnalysisError::Input(format!(
            "the trained network's loss is {centre_loss}, not a finite number, so the landscape has no centre: the weights or the normalisation are damaged"
        )));
    }
    Budget::parallel(options.max_secs, "the landscape", "evaluations").check(first.elapsed().as_secs_f64(), total - 1)?;
    let point = |p: usize| -> Result<f64, AnalysisError> {
        let (a, b) = (alphas[p / betas.len()] as f32, betas[p % betas.len()] as f32);
        if a == 0.0 && b == 0.0 {
            return Ok(centre_loss);
        }
        let values: Vec<Option<Vec<f32>>> = theta
            .iter()
            .zip(delta.iter().zip(&eta))
            .map(|(t, (d, e))| match (d, e) {
                (Some(d), Some(e)) => Some(t.values.iter().zip(d.iter().zip(e)).map(|(&t, (&d, &e))| t + a * d + b * e).collect()),
                _ => None,
            })
            .collect();
        mean_loss(&with_values(net, &values, device), &batches, device, &mut Ctx::eval())
    };
    let flat = in_parallel(alphas.len() * betas.len(), &point, &Share { progress, start: 0, cost: 1, total })?;
    let loss: Vec<Vec<f64>> = flat.chunks(betas.len()).map(<[f64]>::to_vec).collect();
    let grid_secs = started.elapsed().as_secs_f64();
    let (last_i, last_j) = (alphas.len() - 1, betas.len() - 1);
    let corner_mean = (loss[0][0] + loss[0][last_j] + loss[last_i][0] + loss[last_i][last_j]) / 4.0;
    let mut interpolation = Interpolation { t: Vec::new(), loss: Vec::new() };
    if let Some(initial) = initial {
        let theta0 = collect(initial)?;
        if theta0.len() != theta.len() || theta0.iter().zip(&theta).any(|(a, b)| a.values.len() != b.values.len()) {
            return Err(AnalysisError::Failed("the initial network does not match the trained one".into()));
        }
        let ts = linspace(0.0, 1.0, line_points);
        let point = |p: usize| -> Result<f64, AnalysisError> {
            let t = ts[p];
            if p + 1 == ts.len() {
                // The trained network itself: the grid's centre.
                return Ok(centre_loss);
            }
            // Every tensor, BN running statistics included, on the trained
            // network's device, evaluated as the grid is.
            let values: Vec<Option<Vec<f32>>> = theta0
                .iter()
                .zip(&theta)
                .map(|(a, b)| {
                    Some(a.values.iter().zip(&b.values).map(|(&x, &y)| ((1.0 - t) * f64::from(x) + t * f64::from(y)) as f32).collect())
                })
                .collect();
            mean_loss(&with_values(net, &values, device), &batches, device, &mut Ctx::eval())
        };
        let start = alphas.len() * betas.len();
        let loss = in_parallel(ts.len(), &point, &Share { progress, start, cost: 1, total })?;
        interpolation = Interpolation { t: ts, loss };
    }
    progress.step(total, total)?;
    Ok(Landscape {
        arch: String::new(),
        subset: options.subset,
        alphas,
        betas,
        loss,
        centre_loss,
        corner_mean,
        interpolation,
        grid_secs,
        total_secs: started.elapsed().as_secs_f64(),
    })
}

/// Opens the run folder `dir` and measures its landscape on the CPU, with
/// the line from its seed's initial weights.
pub fn landscape_run(dir: &std::path::Path, options: &LandscapeOptions, progress: &Progress) -> Result<Landscape, AnalysisError> {
    let (run, data) = super::open_run(dir)?;
    check(options, &data)?;
    let device = Device::flex();
    let net = run.load_network(&device)?.valid();
    // The initial weights as training drew them from the run's seed.
    device.seed(run.record.config.seed);
    let info = &run.record.dataset;
    let initial = Network::build(&run.arch, info.input, info.class_names.len(), &device, run.record.config.seed)
        .map_err(|e| AnalysisError::Input(e.to_string()))?;
    let mut report = landscape(&net, Some(&initial), &data, &device, options, progress)?;
    report.arch = run.arch.name.clone();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::{Shape, presets};

    #[test]
    fn directions_are_normalised_filter_by_filter_and_skip_bn_and_biases() {
        let shape = Shape::map(1, 8, 8);
        let arch = presets::build("resnet-8", shape).unwrap();
        let net = Network::build(&arch, shape, 10, &Device::flex(), 2).unwrap().valid();
        let theta = collect(&net).unwrap();
        let d = direction(&theta, &mut Rng::new(5));
        let norm = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
        let mut kernels = 0;
        for (t, d) in theta.iter().zip(&d) {
            match (t.name.as_str(), d) {
                ("weight", Some(d)) if t.dims.len() == 4 => {
                    kernels += 1;
                    let per = t.values.len() / t.dims[0];
                    for f in 0..t.dims[0] {
                        let (a, b) = (norm(&t.values[f * per..(f + 1) * per]), norm(&d[f * per..(f + 1) * per]));
                        assert!((a - b).abs() < 1e-4 * a.max(1.0), "filter {f}: {a} vs {b}");
                    }
                }
                ("weight", Some(_)) => {}
                (name, d) => assert!(d.is_none(), "{name} has a direction"),
            }
        }
        assert!(kernels >= 3);
    }

    #[test]
    fn linspace_is_symmetric_and_holds_zero_for_odd_sizes() {
        assert_eq!(linspace(-1.0, 1.0, 3), vec![-1.0, 0.0, 1.0]);
        assert_eq!(linspace(-1.0, 1.0, 1), vec![0.0]);
    }
}
