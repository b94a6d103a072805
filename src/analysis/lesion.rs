//! The lesion study of Veit, Wilber & Belongie (2016), "Residual networks
//! behave like ensembles of relatively shallow networks": remove blocks of a
//! trained network at test time and measure the test error.
//!
//! - A residual block (one with a shortcut) keeps its shortcut: its output
//!   becomes `shortcut(x)`, followed by the activation a post-activation
//!   block applies after the addition (nothing for pre-activation blocks).
//!   Option A and B shortcuts that change the shape stay removable.
//! - Any other block with weights whose input and output shapes match (a
//!   plain block of the plain twin, a conv layer, a highway layer) becomes
//!   the identity.
//! - Blocks that change the shape without a shortcut (the stem, the
//!   stride-2 plain blocks, the classifier) cannot be removed: they are
//!   listed with the reason, without an error.
//! - Blocks without weights (pooling, dropout, BN-ReLU) are not listed.
//!
//! The network is evaluated as trained: eval mode, BN running statistics.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::{AnalysisError, Budget, Progress, Share, in_parallel, mean_std, median};
use crate::arch::Shape;
use crate::data::Dataset;
use crate::model::{Block, Ctx, Network};
use crate::train::evaluate::evaluate_checked;
use crate::util::rng::Rng;

/// Most random draws for each number of removed blocks.
pub const MAX_DRAWS: usize = 10_000;

/// Settings of a lesion study.
#[derive(Clone, Debug)]
pub struct LesionOptions {
    /// Evaluate on the first N test images only (all when `None`).
    pub test_examples: Option<usize>,
    /// Random draws of k removed blocks, for each k (1 to [`MAX_DRAWS`]).
    pub draws: usize,
    pub seed: u64,
    /// Refuse a study expected to take longer (seconds); `None`: no limit.
    pub max_secs: Option<f64>,
}

impl Default for LesionOptions {
    fn default() -> Self {
        LesionOptions { test_examples: None, draws: 5, seed: 0, max_secs: None }
    }
}

/// One block removed alone.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BlockLesion {
    /// 1-based block index, as `depthlab inspect` numbers blocks.
    pub index: usize,
    pub name: String,
    /// Test error (0–1) with this block removed; absent when skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_error: Option<f64>,
    /// Why the block cannot be removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// `k` removable blocks removed at random, several draws.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RandomLesion {
    pub k: usize,
    /// Mean and standard deviation of the test error over the draws.
    pub mean: f64,
    pub std: f64,
    pub draws: usize,
}

/// What a lesion study found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LesionReport {
    pub arch: String,
    pub test_examples: usize,
    pub baseline_test_error: f64,
    pub blocks: Vec<BlockLesion>,
    pub random: Vec<RandomLesion>,
}

impl LesionReport {
    /// Test errors of the single-block lesions that ran.
    pub fn single_errors(&self) -> Vec<f64> {
        self.blocks.iter().filter_map(|b| b.test_error).collect()
    }

    /// Median rise of the test error over the baseline when one block is
    /// removed.
    pub fn median_rise(&self) -> f64 {
        median(&self.single_errors().iter().map(|e| e - self.baseline_test_error).collect::<Vec<_>>())
    }

    /// `lesion.csv`: one row per single-block lesion (`kind` single), then
    /// one per k of the random lesions (`kind` random).
    pub fn to_csv(&self) -> String {
        let mut text = String::from("kind,index,name,k,test_error,std,draws,skipped\n");
        text.push_str(&format!("baseline,,,0,{},0,1,\n", self.baseline_test_error));
        for b in &self.blocks {
            let error = b.test_error.map_or(String::new(), |e| e.to_string());
            let skipped = b.skipped.as_deref().unwrap_or("").replace(',', ";");
            text.push_str(&format!("single,{},{},1,{error},,1,{skipped}\n", b.index, b.name));
        }
        for r in &self.random {
            text.push_str(&format!("random,,,{},{},{},{},\n", r.k, r.mean, r.std, r.draws));
        }
        text
    }
}

/// Why a block is kept in a lesion study (the `skipped` reason).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum NotRemovable {
    #[error("the classifier")]
    Classifier,
    #[error("changes the shape ({input} to {output}) and has no shortcut")]
    ChangesShape { input: Shape, output: Shape },
}

/// Whether block `i` of `net` can be removed: `Err(reason)` when not.
pub fn removable(net: &Network, i: usize) -> Result<(), NotRemovable> {
    let meta = &net.meta;
    let input: Shape = if i == 0 { meta.input } else { meta.instances[i - 1].output };
    let output = meta.instances[i].output;
    match &net.blocks[i] {
        Block::Residual(b) if b.config.path != crate::model::residual::ShortcutPath::Removed => Ok(()),
        Block::ResidualDense(b) if b.config.path != crate::model::residual_dense::DenseShortcut::Removed => Ok(()),
        Block::Classifier(_) => Err(NotRemovable::Classifier),
        _ if input == output => Ok(()),
        _ => Err(NotRemovable::ChangesShape { input, output }),
    }
}

/// The blocks a lesion study lists (those with weights), with whether each
/// can be removed.
pub fn candidates(net: &Network) -> Vec<(usize, Result<(), NotRemovable>)> {
    (0..net.blocks.len()).filter(|&i| net.meta.instances[i].probe_layer.is_some()).map(|i| (i, removable(net, i))).collect()
}

/// The test error with the blocks `removed`; logits that are not finite
/// are refused, not counted as a guess.
fn test_error(net: &Network, data: &Dataset, device: &Device, removed: Vec<usize>) -> Result<f64, AnalysisError> {
    let mut ctx = Ctx::eval();
    let lesioned = !removed.is_empty();
    ctx.surgery.removed = removed;
    match evaluate_checked(net, data, device, &mut ctx) {
        Ok(evaluation) => Ok(1.0 - f64::from(evaluation.accuracy)),
        Err(e) if lesioned => Err(AnalysisError::Failed(format!("a lesioned network: {e}"))),
        Err(e) => Err(AnalysisError::Input(format!("the trained network: {e}"))),
    }
}

/// Runs the lesion study on an eval-mode network (`valid()`, on `device`)
/// and the test split of `data`. The baseline is evaluated first: with
/// `options.max_secs`, a study that would run longer is refused then.
pub fn lesion(
    net: &Network,
    data: &Dataset,
    device: &Device,
    options: &LesionOptions,
    progress: &Progress,
) -> Result<LesionReport, AnalysisError> {
    if !(1..=MAX_DRAWS).contains(&options.draws) {
        return Err(AnalysisError::Input(format!("--draws must be 1 to {MAX_DRAWS}, not {}", options.draws)));
    }
    let data = match options.test_examples {
        Some(0) => return Err(AnalysisError::Input("--test-examples must be at least 1".into())),
        Some(n) => data.truncated(usize::MAX, n),
        None => data.clone(),
    };
    if data.test.is_empty() {
        return Err(AnalysisError::Input("the run's data set has no test images".into()));
    }
    let list = candidates(net);
    let removable: Vec<usize> = list.iter().filter(|(_, r)| r.is_ok()).map(|(i, _)| *i).collect();
    let m = removable.len();
    let draws_for = |k: usize| if k == m { 1 } else { options.draws };
    // Every network to evaluate, as the blocks it lacks: none, each block
    // alone, then for each k the random draws of k blocks (drawn here, in
    // order, so the draws do not depend on the threads; one k at a time,
    // so a long study never holds every draw).
    let total = 1 + m + (1..=m).map(draws_for).sum::<usize>();
    let evaluate = |removals: &[Vec<usize>], start: usize| {
        let point = |p: usize| -> Result<f64, AnalysisError> { test_error(net, &data, device, removals[p].clone()) };
        in_parallel(removals.len(), &point, &Share { progress, start, cost: 1, total })
    };
    let started = std::time::Instant::now();
    let baseline = evaluate(&[Vec::new()], 0)?[0];
    Budget::parallel(options.max_secs, "the lesion study", "evaluations").check(started.elapsed().as_secs_f64(), total - 1)?;
    let singles = evaluate(&removable.iter().map(|&i| vec![i]).collect::<Vec<_>>(), 1)?;
    let mut singles = singles.into_iter();
    let blocks = list
        .iter()
        .map(|(i, verdict)| {
            let name = net.meta.instances[*i].name.clone();
            match verdict {
                Ok(()) => BlockLesion { index: i + 1, name, test_error: singles.next(), skipped: None },
                Err(reason) => BlockLesion { index: i + 1, name, test_error: None, skipped: Some(reason.to_string()) },
            }
        })
        .collect();
    let mut rng = Rng::stream(options.seed, "lesion");
    let mut done = 1 + m;
    let mut random = Vec::with_capacity(m);
    for k in 1..=m {
        let removals: Vec<Vec<usize>> = (0..draws_for(k))
            .map(|_| {
                let mut order = removable.clone();
                rng.shuffle(&mut order);
                order.truncate(k);
                order
            })
            .collect();
        let errors = evaluate(&removals, done)?;
        done += removals.len();
        let (mean, std) = mean_std(&errors);
        random.push(RandomLesion { k, mean, std, draws: errors.len() });
    }
    progress.step(total, total)?;
    Ok(LesionReport { arch: String::new(), test_examples: data.test.len(), baseline_test_error: baseline, blocks, random })
}

/// Opens the run folder `dir` and runs the lesion study on its weights (on
/// the CPU).
pub fn lesion_run(dir: &std::path::Path, options: &LesionOptions, progress: &Progress) -> Result<LesionReport, AnalysisError> {
    let (run, data) = super::open_run(dir)?;
    let device = Device::flex();
    let net = run.load_network(&device)?.valid();
    let mut report = lesion(&net, &data, &device, options, progress)?;
    report.arch = run.arch.name.clone();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::presets;

    fn net(name: &str) -> Network {
        let shape = Shape::map(1, 8, 8);
        let arch = presets::build(name, shape).unwrap();
        Network::build(&arch, shape, 10, &Device::flex(), 1).unwrap().valid()
    }

    #[test]
    fn residual_blocks_are_all_removable_and_plain_ones_only_where_the_shape_holds() {
        let resnet = net("resnet-14");
        let list = candidates(&resnet);
        // stem, 6 residual blocks, classifier
        assert_eq!(list.len(), 8);
        assert_eq!(list.iter().filter(|(_, r)| r.is_ok()).count(), 6);
        let plain = net("plain-14");
        let list = candidates(&plain);
        // the two stride-2 plain blocks change the shape
        assert_eq!(list.iter().filter(|(_, r)| r.is_ok()).count(), 4);
        assert!(list.iter().any(|(_, r)| r.as_ref().is_err_and(|e| e.to_string().contains("changes the shape"))));
    }

    #[test]
    fn a_removed_residual_block_is_its_shortcut() {
        let resnet = net("resnet-14");
        let x = Tensor::<4>::ones([2, 16, 8, 8], &Device::flex());
        // Block 1 is the first residual block (identity shortcut, ReLU after).
        let y = resnet.blocks[1].removed_forward(crate::model::Features::Map(x.clone())).into_map();
        let diff: f32 = (y - x).abs().sum().into_scalar();
        assert_eq!(diff, 0.0);
        // The first block of stage 2 (stride 2, 16 -> 32 channels): option A.
        let y = resnet.blocks[3].removed_forward(crate::model::Features::Map(Tensor::<4>::ones([2, 16, 8, 8], &Device::flex())));
        assert_eq!(y.into_map().dims(), [2, 32, 4, 4]);
    }
}
