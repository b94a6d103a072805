//! One training step — forward, loss, backward, probes, optimiser step —
//! shared by the worker and the benchmark, so what is timed is what trains.
//!
//! Everything a step reports (loss, correct count, and on probe steps every
//! layer's weight- and output-gradient norm and every highway gate mean)
//! reaches the host in a single device read.

use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer, SgdConfig};
use burn::prelude::*;

use super::config::{OptimizerKind, TrainConfig};
use super::events::ProbeValue;
use crate::model::{Ctx, Network, combine_norms};
use crate::util::rng::Rng;

/// What a probe step measured, per probe layer.
#[derive(Clone, Debug, PartialEq)]
pub struct ProbeReadings {
    /// L2 norm of each layer's weight gradients.
    pub weight: Vec<f32>,
    /// L2 norm of the gradient of the loss with respect to each layer's output.
    pub output: Vec<f32>,
    /// Highway gate means, stochastic-depth drops, fractal paths.
    pub values: Vec<ProbeValue>,
}

/// The result of one step.
#[derive(Clone, Debug, PartialEq)]
pub struct StepOutput {
    pub loss: f32,
    /// Examples of the batch classified correctly.
    pub correct: f32,
    pub probe: Option<ProbeReadings>,
}

/// A model, its optimiser and loss, ready to take steps.
pub struct Stepper {
    /// Always present between steps (taken out only while the optimiser runs).
    net: Option<Network>,
    optim: ModuleOptimizer,
    loss_fn: CrossEntropyLoss,
    ctx: Ctx,
    /// The autodiff device the model trains on.
    device: Device,
}

impl Stepper {
    /// `device` must be an autodiff device; `seed` drives drop decisions.
    pub fn new(net: Network, config: &TrainConfig, device: &Device, seed: u64) -> Stepper {
        Stepper {
            net: Some(net),
            optim: make_optimizer(config),
            loss_fn: CrossEntropyLossConfig::new().init(device),
            ctx: Ctx::new(Rng::stream(seed, "drop")),
            device: device.clone(),
        }
    }

    /// The model as trained so far.
    pub fn net(&self) -> &Network {
        self.net.as_ref().expect("the network is only taken out during a step")
    }

    /// One step on a batch `[b, c, h, w]` of normalised images. The
    /// optimiser is not applied when the loss is not finite (the run has
    /// diverged; the caller decides what to do).
    pub fn step(
        &mut self,
        images: Vec<f32>,
        labels: Vec<i64>,
        shape: [usize; 4],
        lr: f64,
        probe: bool,
    ) -> Result<StepOutput, super::evaluate::ReadBackError> {
        let x = Tensor::<4>::from_data(TensorData::new(images, shape), &self.device);
        let y = Tensor::<1, Int>::from_data(TensorData::new(labels, [shape[0]]), &self.device);
        self.ctx.reset();
        self.ctx.probe = probe;
        let net = self.net.take().expect("the network is only taken out during a step");
        let logits = net.forward(x, &mut self.ctx);
        let loss = self.loss_fn.forward(logits.clone(), y.clone());
        let correct = logits.argmax(1).squeeze_dim::<1>(1).equal(y).int().sum().float();
        let grads = loss.backward();
        let mut parts: Vec<Tensor<1>> = vec![loss.inner(), correct.inner()];
        // Per probe layer, how many weight norms it has (combined on the host).
        let mut weight_counts = Vec::new();
        let mut gate_layers = Vec::new();
        if probe {
            for norms in net.weight_grad_norms(&grads) {
                weight_counts.push(norms.len());
                parts.extend(norms);
            }
            parts.extend(net.output_grad_norms(&self.ctx, &grads, &self.device));
            for (instance, gate) in &self.ctx.gates {
                if let Some(layer) = net.meta.instances[*instance].probe_layer {
                    gate_layers.push(layer);
                    parts.push(gate.clone().inner().reshape([1]));
                }
            }
        }
        let values = match Tensor::cat(parts, 0).try_into_vec_as::<f32>() {
            Ok(v) => v,
            Err(e) => {
                self.net = Some(net);
                return Err(super::evaluate::ReadBackError { what: "step results", source: e });
            }
        };
        let output = StepOutput {
            loss: values[0],
            correct: values[1],
            probe: probe.then(|| {
                let mut rest = &values[2..];
                let weight: Vec<f32> = weight_counts
                    .iter()
                    .map(|&n| {
                        let (mine, others) = rest.split_at(n);
                        rest = others;
                        combine_norms(mine)
                    })
                    .collect();
                let (output, gates) = rest.split_at(net.meta.probe_layer_count());
                let mut probe_values: Vec<ProbeValue> = gate_layers
                    .iter()
                    .zip(gates)
                    .map(|(&layer, &value)| ProbeValue { layer, name: "transform_gate_mean".into(), value })
                    .collect();
                for (instance, name, value) in &self.ctx.events {
                    if let Some(layer) = net.meta.instances[*instance].probe_layer {
                        probe_values.push(ProbeValue { layer, name: (*name).into(), value: *value });
                    }
                }
                ProbeReadings { weight, output: output.to_vec(), values: probe_values }
            }),
        };
        let net = if output.loss.is_finite() {
            let grads = GradientsParams::from_grads(grads, &net);
            self.optim.step(lr, net, grads)
        } else {
            net
        };
        self.net = Some(net);
        Ok(output)
    }
}

/// The optimiser the settings ask for.
pub fn make_optimizer(config: &TrainConfig) -> ModuleOptimizer {
    let decay = (config.weight_decay > 0.0).then(|| WeightDecayConfig::new(config.weight_decay as f32));
    match config.optimizer {
        OptimizerKind::Sgd => {
            let momentum = (config.momentum > 0.0)
                .then(|| MomentumConfig::new().with_momentum(config.momentum).with_dampening(0.0).with_nesterov(config.nesterov));
            SgdConfig::new().with_momentum(momentum).with_weight_decay(decay).init()
        }
        OptimizerKind::Adam => AdamConfig::new().with_epsilon(1e-8).with_weight_decay(decay).init(),
    }
}
