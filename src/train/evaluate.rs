//! Evaluation on the test split: loss, accuracy, per-class accuracy and the
//! confusion matrix.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::prelude::*;

use super::events::Evaluation;
use crate::data::Dataset;
use crate::model::{Ctx, Network};

/// Examples per evaluation batch.
const EVAL_BATCH: usize = 256;

/// Evaluates an eval-mode network (`net.valid()`) on `device` (plain, no
/// autodiff) over the whole test split.
pub fn evaluate(net: &Network, data: &Dataset, device: &Device, step: usize, epoch: usize, elapsed_secs: f64) -> Evaluation {
    evaluate_with(net, data, device, &mut Ctx::eval(), step, epoch, elapsed_secs)
}

/// Batches of 128 training images [`recalibrate_batch_norm`] uses by default
/// (batch norm's momentum 0.1: 0.9^30 ≈ 4 % of the old statistics remain).
pub const CALIBRATION_BATCHES: usize = 30;

/// Refreshes the batch-norm running statistics of `net` (in training mode,
/// on an autodiff device) for the sub-network `column` selects — one fractal
/// column alone, or with `None` every column joined — from `batches` batches
/// of training images, without touching the weights.
///
/// A net trained with drop-path accumulates its statistics over a mixture of
/// sub-networks (single columns on global batches, random subsets of each
/// join on local ones); one sub-network evaluated with that mixture's
/// statistics is normalised wrongly. This is the usual remedy.
pub fn recalibrate_batch_norm(net: &Network, data: &Dataset, device: &Device, column: Option<usize>, batches: usize, seed: u64) {
    let (c, h, w) = (data.channels, data.height, data.width);
    let mut order = crate::data::BatchOrder::new(seed, data.train.len());
    let mut ctx = Ctx::new(crate::util::rng::Rng::stream(seed, "calibrate"));
    ctx.calibrate = true;
    ctx.eval_column = column;
    let mut done = 0;
    while done < batches && !data.train.is_empty() {
        for chunk in order.next_epoch().chunks(EVAL_BATCH / 2) {
            let batch = data.batch(&data.train, chunk, None);
            let x = Tensor::<4>::from_data(TensorData::new(batch.images, [batch.size, c, h, w]), device);
            ctx.reset();
            // The forward pass in training mode is what updates the
            // statistics; its output (and graph) is dropped.
            let _ = net.forward(x, &mut ctx);
            done += 1;
            if done == batches {
                break;
            }
        }
    }
}

/// Logits that are not all finite numbers: no score is made from them (a
/// NaN would be counted as the first class, an infinity as a certainty).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error(
    "the network's outputs (logits) include {value}, not a finite number, so they give no score: the weights or the normalisation are damaged"
)]
pub struct NonFiniteLogits {
    pub value: f32,
}

/// Refuses logits (or a sum of them) that are not all finite.
pub fn check_logits(values: &[f32]) -> Result<(), NonFiniteLogits> {
    match values.iter().find(|v| !v.is_finite()) {
        Some(&value) => Err(NonFiniteLogits { value }),
        None => Ok(()),
    }
}

/// As [`evaluate`], with a chosen context (e.g. a single fractal column).
pub fn evaluate_with(
    net: &Network,
    data: &Dataset,
    device: &Device,
    ctx: &mut Ctx,
    step: usize,
    epoch: usize,
    elapsed_secs: f64,
) -> Evaluation {
    evaluate_counting(net, data, device, ctx, [step, epoch], elapsed_secs).0
}

/// As [`evaluate_with`] (step and epoch 0), refusing logits that are not
/// all finite instead of scoring them: for analyses of saved weights.
pub fn evaluate_checked(net: &Network, data: &Dataset, device: &Device, ctx: &mut Ctx) -> Result<Evaluation, NonFiniteLogits> {
    let (evaluation, non_finite) = evaluate_counting(net, data, device, ctx, [0, 0], 0.0);
    match non_finite {
        Some(value) => Err(NonFiniteLogits { value }),
        None => Ok(evaluation),
    }
}

/// The evaluation, and the sum of a batch's logits that was not finite
/// (if any was not).
fn evaluate_counting(
    net: &Network,
    data: &Dataset,
    device: &Device,
    ctx: &mut Ctx,
    [step, epoch]: [usize; 2],
    elapsed_secs: f64,
) -> (Evaluation, Option<f32>) {
    let classes = data.classes();
    let loss_fn = CrossEntropyLossConfig::new().init(device);
    let (c, h, w) = (data.channels, data.height, data.width);
    let mut confusion = vec![vec![0u32; classes]; classes];
    let mut loss_sum = 0f64;
    let mut non_finite = None;
    let indices: Vec<usize> = (0..data.test.len()).collect();
    for chunk in indices.chunks(EVAL_BATCH) {
        let batch = data.batch(&data.test, chunk, None);
        let labels = batch.labels.clone();
        let x = Tensor::<4>::from_data(TensorData::new(batch.images, [batch.size, c, h, w]), device);
        let y = Tensor::<1, Int>::from_data(TensorData::new(batch.labels, [batch.size]), device);
        ctx.reset();
        let logits = net.forward(x, ctx);
        let loss = loss_fn.forward(logits.clone(), y);
        // Any logit that is not finite makes their sum not finite.
        let sum = logits.clone().sum();
        let predictions = logits.argmax(1).reshape([batch.size]).float();
        let values: Vec<f32> = Tensor::cat(vec![loss, sum, predictions], 0).try_into_vec_as::<f32>().unwrap_or_default();
        if values.len() != batch.size + 2 {
            continue;
        }
        if let Err(e) = check_logits(&values[1..2]) {
            non_finite = non_finite.or(Some(e.value));
        }
        loss_sum += f64::from(values[0]) * batch.size as f64;
        for (label, prediction) in labels.iter().zip(&values[2..]) {
            let (t, p) = (*label as usize, *prediction as usize);
            if t < classes && p < classes {
                confusion[t][p] += 1;
            }
        }
    }
    let total: u32 = confusion.iter().flatten().sum();
    let correct: u32 = (0..classes).map(|i| confusion[i][i]).sum();
    let per_class_accuracy = confusion
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let n: u32 = row.iter().sum();
            if n == 0 { 0.0 } else { row[i] as f32 / n as f32 }
        })
        .collect();
    let evaluation = Evaluation {
        step,
        epoch,
        loss: (loss_sum / f64::from(total.max(1))) as f32,
        accuracy: correct as f32 / total.max(1) as f32,
        per_class_accuracy,
        confusion,
        elapsed_secs,
    };
    (evaluation, non_finite)
}

/// Values that could not be read back from the device.
#[derive(Debug, thiserror::Error)]
#[error("reading {what}: {source:?}")]
pub struct ReadBackError {
    /// What was read, in words (`the network's outputs`).
    pub what: &'static str,
    pub source: burn::tensor::TensorReadError,
}

/// The most probable class of each point of the plane (a net trained on
/// 2-D data, in evaluation mode), in batches of 4,096.
pub fn classes_of_points(
    net: &Network,
    device: &Device,
    normalization: &crate::data::Normalization,
    points: &[[f32; 2]],
) -> Result<Vec<usize>, ReadBackError> {
    let mut classes = Vec::with_capacity(points.len());
    for chunk in points.chunks(4096) {
        let values = crate::data::plane::normalised_inputs(chunk, normalization);
        let x = Tensor::<4>::from_data(TensorData::new(values, [chunk.len(), 2, 1, 1]), device);
        let best = net
            .forward(x, &mut Ctx::eval())
            .argmax(1)
            .try_into_vec_as::<i64>()
            .map_err(|source| ReadBackError { what: "the network's outputs", source })?;
        classes.extend(best.into_iter().map(|c| c.max(0) as usize));
    }
    Ok(classes)
}
