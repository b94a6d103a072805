//! burn modules built at run time from an [`Architecture`]: one file per
//! block kind, one enum over them, and the network that chains them. The
//! network runs on whichever burn device it was built on (CPU or wgpu), in
//! training mode (autodiff device) or evaluation mode (`valid()`).

pub mod branch;
pub mod conv;
pub mod cpu_ops;
pub mod dense;
pub mod densenet;
pub mod fractal;
pub mod gpu_ops;
pub mod highway;
pub mod layers;
pub mod residual;
pub mod residual_dense;
pub mod shaping;
pub mod surgery;

use burn::module::{Flag, ModuleVisitor, Param};
use burn::prelude::*;
use burn::tensor::Gradients;

use crate::arch::{Analysis, Architecture, BlockError, BlockKind, ResidualInit, Shape};
use crate::util::rng::Rng;

use conv::ConvLayer;
use dense::{Classifier, DenseLayer};
use densenet::{DenseBlock, Transition};
use fractal::FractalBlock;
use highway::{HighwayConv, HighwayDense};
use layers::Builder;
use residual::{ResidualBlock, ResidualOptions};
use residual_dense::{ResidualDense, ResidualDenseOptions};
use shaping::{DropoutLayer, GlobalAvgPool, NormAct, Pool};

/// Activations between blocks: feature maps or flat vectors.
#[derive(Clone, Debug)]
pub enum Features {
    Map(Tensor<4>),
    Flat(Tensor<2>),
}

impl Features {
    /// As a feature map; a flat vector becomes `[B, F, 1, 1]`.
    pub fn into_map(self) -> Tensor<4> {
        match self {
            Features::Map(x) => x,
            Features::Flat(x) => {
                let [b, f] = x.dims();
                x.reshape([b, f, 1, 1])
            }
        }
    }

    /// As a flat vector (a feature map is flattened).
    pub fn into_flat(self) -> Tensor<2> {
        match self {
            Features::Map(x) => x.flatten::<2>(1, 3),
            Features::Flat(x) => x,
        }
    }

    /// Marks this output so that the backward pass reports the gradient of
    /// the loss with respect to it. On the CPU backend an identity operation
    /// takes the gradient's norm as it passes; elsewhere a zero leaf that
    /// requires a gradient is added (its gradient is the output's).
    fn tapped(self) -> (Features, Tap) {
        let (device, dtype, len) = match &self {
            Features::Map(x) => (x.device(), x.dtype(), x.shape().num_elements()),
            Features::Flat(x) => (x.device(), x.dtype(), x.shape().num_elements()),
        };
        if let Some(leaf) = cpu_ops::tap_leaf(&device, dtype, len) {
            let out = match self {
                Features::Map(x) => Features::Map(cpu_ops::tap(x, &leaf)),
                Features::Flat(x) => Features::Flat(cpu_ops::tap(x, &leaf)),
            };
            return (out, Tap::Norm(leaf));
        }
        match self {
            Features::Map(x) => {
                let zero = Tensor::<4>::zeros(x.dims(), &x.device()).require_grad();
                (Features::Map(x + zero.clone()), Tap::Leaf(Features::Map(zero)))
            }
            Features::Flat(x) => {
                let zero = Tensor::<2>::zeros(x.dims(), &x.device()).require_grad();
                (Features::Flat(x + zero.clone()), Tap::Leaf(Features::Flat(zero)))
            }
        }
    }
}

/// Where a probe pass finds a block's output gradient after `backward`.
#[derive(Clone, Debug)]
pub enum Tap {
    /// A `[1]` leaf whose gradient is the output gradient's L2 norm.
    Norm(Tensor<1>),
    /// A zero leaf shaped like the output: its gradient is the output's.
    Leaf(Features),
}

impl Tap {
    fn grad_norm(&self, grads: &Gradients) -> Option<Tensor<1>> {
        match self {
            Tap::Norm(leaf) => leaf.grad(grads),
            Tap::Leaf(Features::Map(x)) => x.grad(grads).map(l2_norm),
            Tap::Leaf(Features::Flat(x)) => x.grad(grads).map(l2_norm),
        }
    }
}

/// The L2 norm of a tensor, on the device, without underflow: squaring
/// values below about 1e-19 would underflow f32 (a vanishing gradient of
/// 1e-25 would read as 0), so the values are scaled by their largest
/// magnitude first: `‖g‖ = m · ‖g / m‖` with `m = max |g|`.
///
/// On the CPU backend this is one pass of the lab's own reduction, in f64.
pub fn l2_norm<const D: usize>(g: Tensor<D>) -> Tensor<1> {
    match cpu_ops::l2_norm(&g) {
        Some(norm) => norm,
        None => scaled_l2_norm(g),
    }
}

/// [`l2_norm`] out of burn's tensor operations, for every device.
pub fn scaled_l2_norm<const D: usize>(g: Tensor<D>) -> Tensor<1> {
    let m = g.clone().max_abs();
    let scale = m.clone().clamp_min(f32::MIN_POSITIVE).reshape([1; D]);
    (g / scale).square().sum().sqrt() * m
}

/// `√(Σ nᵢ²)` of the norms of the parts of a whole, in f64 (the squares of
/// vanishing norms would underflow in f32).
pub fn combine_norms(norms: &[f32]) -> f32 {
    norms.iter().map(|&n| f64::from(n) * f64::from(n)).sum::<f64>().sqrt() as f32
}

/// State of one forward pass: mode, randomness for drop decisions, and what
/// the probes collect.
pub struct Ctx {
    /// Set by the network from its mode and the device.
    pub training: bool,
    /// Tap block outputs and record gates on this pass.
    pub probe: bool,
    /// Draws for stochastic depth and drop-path.
    pub rng: Rng,
    /// The fractal column this pass uses alone (global drop-path in
    /// training, or the column chosen for evaluation).
    pub fractal_column: Option<usize>,
    /// The column to evaluate alone, when not training.
    pub eval_column: Option<usize>,
    /// A training-mode pass that only refreshes batch-norm statistics for
    /// the sub-network that will be evaluated (`eval_column`): no drop-path.
    pub calibrate: bool,
    pub(crate) join_inputs: (usize, usize),
    current: usize,
    /// (instance, tap) for every tapped block output.
    pub taps: Vec<(usize, Tap)>,
    /// (instance, mean transform gate) of highway layers.
    pub gates: Vec<(usize, Tensor<1>)>,
    /// (instance, probe name, value): stochastic depth and drop-path decisions.
    pub events: Vec<(usize, &'static str, f32)>,
    /// Blocks removed and gradient routes, for the analyses (empty in training).
    pub surgery: surgery::Surgery,
}

impl Ctx {
    pub fn new(rng: Rng) -> Self {
        Self {
            training: false,
            probe: false,
            rng,
            fractal_column: None,
            eval_column: None,
            calibrate: false,
            join_inputs: (0, 0),
            current: 0,
            taps: Vec::new(),
            gates: Vec::new(),
            events: Vec::new(),
            surgery: surgery::Surgery::default(),
        }
    }

    /// A context for evaluation (no randomness is drawn in eval mode).
    pub fn eval() -> Self {
        Self::new(Rng::new(0))
    }

    pub fn record_probe(&mut self, name: &'static str, value: f32) {
        if self.training {
            self.events.push((self.current, name, value));
        }
    }

    /// The gradient route [`Surgery`](surgery::Surgery) sets for the block
    /// being run.
    pub fn gradient_route(&self) -> Option<surgery::GradientRoute> {
        self.surgery.route(self.current)
    }

    pub fn record_gate(&mut self, mean: Tensor<1>) {
        self.gates.push((self.current, mean));
    }

    /// Clears what the previous pass collected.
    pub fn reset(&mut self) {
        self.taps.clear();
        self.gates.clear();
        self.events.clear();
    }
}

/// One block of the network.
#[derive(Module, Debug)]
pub enum Block {
    Conv(ConvLayer),
    Dense(DenseLayer),
    Residual(ResidualBlock),
    ResidualDense(ResidualDense),
    Highway(HighwayConv),
    HighwayDense(HighwayDense),
    Fractal(FractalBlock),
    DenseBlock(DenseBlock),
    Transition(Transition),
    Pool(Pool),
    GlobalAvgPool(GlobalAvgPool),
    NormAct(NormAct),
    Dropout(DropoutLayer),
    Classifier(Classifier),
}

impl Block {
    pub fn forward(&self, x: Features, ctx: &mut Ctx) -> Features {
        match self {
            Block::Conv(b) => b.forward(x, ctx),
            Block::Dense(b) => b.forward(x, ctx),
            Block::Residual(b) => b.forward(x, ctx),
            Block::ResidualDense(b) => b.forward(x, ctx),
            Block::Highway(b) => b.forward(x, ctx),
            Block::HighwayDense(b) => b.forward(x, ctx),
            Block::Fractal(b) => b.forward(x, ctx),
            Block::DenseBlock(b) => b.forward(x, ctx),
            Block::Transition(b) => b.forward(x, ctx),
            Block::Pool(b) => b.forward(x, ctx),
            Block::GlobalAvgPool(b) => b.forward(x, ctx),
            Block::NormAct(b) => b.forward(x, ctx),
            Block::Dropout(b) => b.forward(x, ctx),
            Block::Classifier(b) => b.forward(x, ctx),
        }
    }

    /// The block removed at test time: a residual block's shortcut alone,
    /// anything else the identity.
    pub fn removed_forward(&self, x: Features) -> Features {
        match self {
            Block::Residual(b) => b.shortcut_only(x),
            Block::ResidualDense(b) => b.shortcut_only(x),
            _ => x,
        }
    }
}

/// What the probes and the UI need to know of each block instance.
#[derive(Clone, Debug, PartialEq)]
pub struct InstanceMeta {
    pub name: String,
    pub tag: &'static str,
    /// Index among the blocks with weights (the gradient probe's layer index).
    pub probe_layer: Option<usize>,
    pub output: Shape,
}

/// Network-wide facts that are not weights.
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkMeta {
    pub instances: Vec<InstanceMeta>,
    pub input: Shape,
    pub classes: usize,
    pub params: usize,
    pub depth: usize,
    /// (global drop-path ratio, columns) when the network has fractal blocks.
    pub fractal: Option<(f32, usize)>,
}

impl NetworkMeta {
    /// Names of the probe layers (blocks with weights), in order.
    pub fn probe_layer_names(&self) -> Vec<String> {
        self.instances.iter().filter(|i| i.probe_layer.is_some()).map(|i| i.name.clone()).collect()
    }

    pub fn probe_layer_count(&self) -> usize {
        self.instances.iter().filter(|i| i.probe_layer.is_some()).count()
    }
}

/// Why a network could not be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    #[error("the architecture is invalid: {}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<BlockError>),
    #[error("cannot load weights from {path}: {message}")]
    Load { path: String, message: String },
    #[error("cannot save weights to {path}: {message}")]
    Save { path: String, message: String },
}

/// A network built from an architecture.
#[derive(Module, Debug)]
pub struct Network {
    pub blocks: Vec<Block>,
    pub training: Param<Flag>,
    #[module(skip)]
    pub meta: NetworkMeta,
}

impl Network {
    /// Builds `arch` for examples of shape `input` and `classes` classes on
    /// `device`, drawing initial weights from `seed`.
    pub fn build(arch: &Architecture, input: Shape, classes: usize, device: &Device, seed: u64) -> Result<Network, ModelError> {
        let analysis = arch.analyse(input, classes);
        if !analysis.is_valid() {
            return Err(ModelError::Invalid(analysis.errors));
        }
        Ok(Self::from_analysis(arch, &analysis, device, seed))
    }

    fn from_analysis(arch: &Architecture, analysis: &Analysis, device: &Device, seed: u64) -> Network {
        let mut rng = Rng::stream(seed, "init");
        let mut builder = Builder { device, rng: &mut rng };
        let mut blocks = Vec::with_capacity(analysis.instances.len());
        let mut instances = Vec::with_capacity(analysis.instances.len());
        let mut probe_layers = 0;
        let mut fractal = None;
        // Fixup scales each branch by the number of Fixup branches.
        let fixup_branches = analysis.instances.iter().filter(|i| i.kind.residual_init() == Some(ResidualInit::Fixup)).count();
        for inst in &analysis.instances {
            let cin = match inst.input {
                Shape::Map { channels, .. } => channels,
                Shape::Flat { features } => features,
            };
            let options = &inst.layer;
            let b = &mut builder;
            let block = match inst.kind {
                BlockKind::Conv { filters, kernel, stride } => Block::Conv(ConvLayer::new(b, cin, filters, kernel, stride, options)),
                BlockKind::Dense { units } => Block::Dense(DenseLayer::new(b, inst.input.numel(), units, options)),
                BlockKind::Residual { .. } => {
                    let o = ResidualOptions::of(inst, fixup_branches).expect("a residual block");
                    Block::Residual(ResidualBlock::new(b, cin, &o, options))
                }
                BlockKind::ResidualDense { .. } => {
                    let o = ResidualDenseOptions::of(inst, fixup_branches).expect("a dense residual block");
                    Block::ResidualDense(ResidualDense::new(b, inst.input.numel(), &o, options))
                }
                BlockKind::Highway { kernel, carry, gate_bias } => {
                    Block::Highway(HighwayConv::new(b, cin, kernel, carry, gate_bias, options))
                }
                BlockKind::HighwayDense { carry, gate_bias } => {
                    Block::HighwayDense(HighwayDense::new(b, inst.input.numel(), carry, gate_bias, options))
                }
                BlockKind::Fractal { columns, filters, local_drop, global_ratio } => {
                    fractal.get_or_insert((global_ratio, columns));
                    Block::Fractal(FractalBlock::new(b, cin, columns, filters, local_drop, options))
                }
                BlockKind::DenseBlock { layers, growth_rate, bottleneck } => {
                    Block::DenseBlock(DenseBlock::new(b, cin, layers, growth_rate, bottleneck, options))
                }
                BlockKind::Transition { compression } => Block::Transition(Transition::new(b, cin, compression, options)),
                BlockKind::MaxPool { size, stride } => Block::Pool(Pool { size, stride, max: true }),
                BlockKind::AvgPool { size, stride } => Block::Pool(Pool { size, stride, max: false }),
                BlockKind::GlobalAvgPool => Block::GlobalAvgPool(GlobalAvgPool { channels: cin }),
                BlockKind::NormAct => Block::NormAct(NormAct::new(b, cin, options)),
                BlockKind::Dropout { p } => Block::Dropout(DropoutLayer { p }),
                BlockKind::Classifier => {
                    Block::Classifier(Classifier::new(b, inst.input.numel(), analysis.classes, options, fixup_branches > 0))
                }
            };
            let probe_layer = inst.has_weights().then(|| {
                probe_layers += 1;
                probe_layers - 1
            });
            let repeat = arch.blocks.get(inst.entry).map_or(1, |e| e.repeat);
            instances.push(InstanceMeta { name: inst.name(repeat), tag: inst.kind.tag(), probe_layer, output: inst.output });
            blocks.push(block);
        }
        let meta = NetworkMeta {
            instances,
            input: analysis.input,
            classes: analysis.classes,
            params: analysis.params,
            depth: analysis.depth,
            fractal,
        };
        Network { blocks, training: Param::from_bool(true), meta }
    }

    /// Logits `[B, classes]` for images `[B, C, H, W]`.
    pub fn forward(&self, x: Tensor<4>, ctx: &mut Ctx) -> Tensor<2> {
        ctx.training = self.training.is_enabled() && x.device().is_autodiff();
        ctx.fractal_column = match (ctx.training, self.meta.fractal) {
            (true, _) if ctx.calibrate => ctx.eval_column,
            (true, Some((global_ratio, columns))) => ctx.rng.bernoulli(f64::from(global_ratio)).then(|| 1 + ctx.rng.below(columns)),
            (true, None) => None,
            (false, _) => ctx.eval_column,
        };
        let tap = ctx.probe && ctx.training;
        let mut h = Features::Map(x);
        for (i, block) in self.blocks.iter().enumerate() {
            ctx.current = i;
            h = if ctx.surgery.removes(i) { block.removed_forward(h) } else { block.forward(h, ctx) };
            if tap && self.meta.instances[i].probe_layer.is_some() {
                let (out, tap) = h.tapped();
                ctx.taps.push((i, tap));
                h = out;
            }
        }
        h.into_flat()
    }

    /// Whether training drops fractal paths (local or global drop-path), so
    /// that it trains a mixture of sub-networks rather than one network.
    pub fn has_drop_path(&self) -> bool {
        self.meta.fractal.is_some_and(|(global_ratio, _)| global_ratio > 0.0)
            || self.blocks.iter().any(|b| matches!(b, Block::Fractal(f) if f.local_drop > 0.0))
    }

    /// Trainable parameters (BN running statistics are not parameters).
    pub fn num_trainable(&self) -> usize {
        let mut counter = TrainableCounter::default();
        self.visit(&mut counter);
        counter.count
    }

    /// Per probe layer, the L2 norms of each of its weight gradients (conv
    /// kernels and linear matrices; BN and biases excluded), still on the
    /// device. The layer's norm is the root of the sum of their squares
    /// ([`combine_norms`]), taken on the host so that a layer costs no
    /// device work beyond one reduction per weight. A layer that received
    /// no gradient (a dropped block) has an empty list and a norm of 0.
    pub fn weight_grad_norms(&self, grads: &Gradients) -> Vec<Vec<Tensor<1>>> {
        self.blocks
            .iter()
            .zip(&self.meta.instances)
            .filter(|(_, m)| m.probe_layer.is_some())
            .map(|(block, _)| {
                let mut visitor = WeightGradNorms { grads, path: Vec::new(), norms: Vec::new() };
                block.visit(&mut visitor);
                visitor.norms
            })
            .collect()
    }

    /// Per probe layer, the L2 norm of the gradient of the loss with respect
    /// to that block's output (taps recorded by a probe pass).
    pub fn output_grad_norms(&self, ctx: &Ctx, grads: &Gradients, device: &Device) -> Vec<Tensor<1>> {
        ctx.taps.iter().map(|(_, tap)| tap.grad_norm(grads).unwrap_or_else(|| Tensor::zeros([1], &device.clone().inner()))).collect()
    }

    /// Saves the weights (and BN statistics) to `path` (`.bpk`).
    pub fn save(&self, path: &std::path::Path) -> Result<(), ModelError> {
        self.clone().save_file(path).map_err(|e| ModelError::Save { path: path.display().to_string(), message: e.to_string() })
    }

    /// Loads weights saved by [`Network::save`] into this network (built from
    /// the same architecture).
    pub fn load(self, path: &std::path::Path) -> Result<Network, ModelError> {
        self.try_load_file(path).map_err(|e| ModelError::Load { path: path.display().to_string(), message: e.to_string() })
    }
}

#[derive(Default)]
struct TrainableCounter {
    path: Vec<String>,
    count: usize,
}

impl ModuleVisitor for TrainableCounter {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if !self.path.last().is_some_and(|n| n.starts_with("running_")) {
            self.count += param.lazy_shape().num_elements();
        }
    }
}

struct WeightGradNorms<'a> {
    grads: &'a Gradients,
    path: Vec<String>,
    norms: Vec<Tensor<1>>,
}

impl ModuleVisitor for WeightGradNorms<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if self.path.last().map(String::as_str) != Some("weight") {
            return;
        }
        if let Some(g) = param.grad(self.grads) {
            self.norms.push(l2_norm(g));
        }
    }
}

#[cfg(test)]
mod tests;
