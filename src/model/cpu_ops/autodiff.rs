//! The extension's operations on the CPU backend with autodiff: the forward
//! pass on the lab's kernels and a hand-written backward pass for each.

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend, Flex};

use super::LabKernels;
use super::flex::{conv_geometry, dims, flex_conv2d, norm_shape, stats_of, tensor, values, zero_pad_of};
use crate::kernels::batchnorm::{self, BatchNormStats};
use crate::kernels::conv::{self, ConvGeometry};
use crate::kernels::shortcut::ZeroPad;

// ---------------------------------------------------------------------------
// The CPU backend with autodiff: the forward on the kernels above, and a
// hand-written backward pass.

/// What the convolution's backward pass needs.
#[derive(Clone, Debug)]
struct ConvState {
    x: FlexTensor,
    weight: FlexTensor,
    geometry: ConvGeometry,
    /// `x` is also read by an operation whose backward pass has run
    /// before this one ([`super::Input::SharedWithLaterJoin`]).
    shared_input: bool,
}

/// Registers the convolution's gradients for the parents that want them;
/// `other` is another gradient of `x` to add into its own.
fn conv_backward(state: ConvState, dy: FlexTensor, grads: &mut Gradients, parents: [Option<NodeId>; 3], other: Option<FlexTensor>) {
    let g = state.geometry;
    let dy = values(&dy);
    if let Some(id) = parents[0] {
        let other = other.as_ref().map(values);
        let dx = conv::backward_input_plus(&g, &dy, &values(&state.weight), other.as_deref());
        grads.register::<Flex>(id, tensor(dx, [g.batch, g.in_channels, g.in_height, g.in_width]));
    }
    if parents[1].is_some() || parents[2].is_some() {
        let (dw, db) = conv::backward_weight(&g, &values(&state.x), &dy, parents[2].is_some());
        if let Some(id) = parents[1] {
            grads.register::<Flex>(id, tensor(dw, [g.out_channels, g.in_channels, g.kernel[0], g.kernel[1]]));
        }
        if let (Some(id), Some(db)) = (parents[2], db) {
            grads.register::<Flex>(id, tensor(db, [g.out_channels]));
        }
    }
}

#[derive(Debug)]
struct ConvWithBias;

impl Backward<Flex, 3> for ConvWithBias {
    type State = ConvState;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let dy = grads.consume::<Flex>(&ops.node);
        let [x, w, b] = ops.parents.map(|p| p.map(|n| n.id));
        conv_backward(ops.state, dy, grads, [x, w, b], None);
    }
}

#[derive(Debug)]
struct ConvNoBias;

impl Backward<Flex, 2> for ConvNoBias {
    type State = ConvState;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let dy = grads.consume::<Flex>(&ops.node);
        let [x, w] = ops.parents;
        // The other reader's gradient of `x`, taken out of `grads` to be
        // added as this one is written. Only an intermediate tensor's (one
        // with parents, order above 0) is taken: a leaf's stays where it
        // is, and burn adds the two.
        let other = x.as_ref().filter(|n| ops.state.shared_input && n.order > 0).map(|n| grads.consume::<Flex>(n));
        conv_backward(ops.state, dy, grads, [x.map(|n| n.id), w.map(|n| n.id), None], other);
    }
}

/// What batch norm's backward pass needs.
#[derive(Clone, Debug)]
struct NormState {
    x: FlexTensor,
    gamma: FlexTensor,
    beta: FlexTensor,
    stats: BatchNormStats,
    epsilon: f64,
    relu: bool,
}

#[derive(Debug)]
struct NormTrain;

impl Backward<Flex, 3> for NormTrain {
    type State = NormState;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let dy = grads.consume::<Flex>(&ops.node);
        let s = ops.state;
        let shape = norm_shape(&s.x);
        let (dx, dgamma, dbeta) = batchnorm::backward_train(
            &shape,
            &values(&s.x),
            &values(&dy),
            &values(&s.gamma),
            &values(&s.beta),
            &s.stats,
            s.epsilon,
            s.relu,
        );
        let [x, gamma, beta] = ops.parents.map(|p| p.map(|n| n.id));
        register_norm_grads(grads, [x, gamma, beta], dims(&s.x), shape.channels, (dx, dgamma, dbeta));
    }
}

/// Registers batch norm's gradients (`x`, `gamma`, `beta`) for the parents
/// that want them.
fn register_norm_grads(
    grads: &mut Gradients,
    parents: [Option<burn::backend::autodiff::NodeId>; 3],
    x_dims: Vec<usize>,
    channels: usize,
    (dx, dgamma, dbeta): (Vec<f32>, Vec<f32>, Vec<f32>),
) {
    let [x, gamma, beta] = parents;
    if let Some(id) = x {
        grads.register::<Flex>(id, tensor(dx, x_dims));
    }
    if let Some(id) = gamma {
        grads.register::<Flex>(id, tensor(dgamma, [channels]));
    }
    if let Some(id) = beta {
        grads.register::<Flex>(id, tensor(dbeta, [channels]));
    }
}

/// What the fused residual join's backward pass needs: its inputs, its
/// output (whose sign is the ReLU's mask) and the batch's statistics.
#[derive(Clone, Debug)]
struct JoinState {
    x: FlexTensor,
    gamma: FlexTensor,
    beta: FlexTensor,
    y: FlexTensor,
    stats: BatchNormStats,
    epsilon: f64,
}

#[derive(Debug)]
struct NormAddRelu;

impl Backward<Flex, 4> for NormAddRelu {
    type State = JoinState;

    fn backward(self, ops: Ops<Self::State, 4>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let dy = grads.consume::<Flex>(&ops.node);
        let s = ops.state;
        let shape = norm_shape(&s.x);
        let (dx, dgamma, dbeta, dresidual) = batchnorm::backward_train_add_relu(
            &shape,
            &values(&s.x),
            &values(&s.y),
            &values(&dy),
            &values(&s.gamma),
            &values(&s.beta),
            &s.stats,
            s.epsilon,
        );
        let [x, gamma, beta, residual] = ops.parents.map(|p| p.map(|n| n.id));
        if let Some(id) = residual {
            grads.register::<Flex>(id, tensor(dresidual, dims(&s.x)));
        }
        register_norm_grads(grads, [x, gamma, beta], dims(&s.x), shape.channels, (dx, dgamma, dbeta));
    }
}

#[derive(Debug)]
struct ZeroPadShortcut;

impl Backward<Flex, 1> for ZeroPadShortcut {
    type State = ZeroPad;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let dy = grads.consume::<Flex>(&ops.node);
        let pad = ops.state;
        if let [Some(node)] = ops.parents {
            grads.register::<Flex>(node.id, tensor(pad.backward(&values(&dy)), [pad.batch, pad.channels, pad.height, pad.width]));
        }
    }
}

#[derive(Debug)]
struct Tap;

impl Backward<Flex, 2> for Tap {
    type State = ();

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let dy = grads.consume::<Flex>(&ops.node);
        let [x, probe] = ops.parents;
        if let Some(node) = probe {
            grads.register::<Flex>(node.id, tensor(vec![crate::kernels::reduce::l2_norm(&values(&dy))], [1]));
        }
        if let Some(node) = x {
            grads.register::<Flex>(node.id, dy);
        }
    }
}

/// `relu?(y·scale + shift + residual)` with `scale` and `shift` per
/// channel, composed from burn's differentiable operations.
fn affine_join<C: CheckpointStrategy>(
    y: FloatTensor<Autodiff<Flex, C>>,
    scale: FloatTensor<Autodiff<Flex, C>>,
    shift: FloatTensor<Autodiff<Flex, C>>,
    residual: Option<FloatTensor<Autodiff<Flex, C>>>,
    relu: bool,
) -> FloatTensor<Autodiff<Flex, C>> {
    use burn::backend::TensorMetadata;
    use burn::backend::ops::{ActivationOps, FloatTensorOps};
    type B<C> = Autodiff<Flex, C>;
    let channels = scale.shape()[0];
    let per_channel = |t| <B<C> as FloatTensorOps<B<C>>>::float_reshape(t, burn::prelude::Shape::new([1, channels, 1, 1]));
    let y = <B<C> as FloatTensorOps<B<C>>>::float_mul(y, per_channel(scale));
    let mut y = <B<C> as FloatTensorOps<B<C>>>::float_add(y, per_channel(shift));
    if let Some(r) = residual {
        y = <B<C> as FloatTensorOps<B<C>>>::float_add(y, r);
    }
    if relu { <B<C> as ActivationOps<B<C>>>::relu(y) } else { y }
}

/// A convolution without bias on the training device.
fn conv_no_bias<C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<Flex, C>>,
    weight: FloatTensor<Autodiff<Flex, C>>,
    stride: [usize; 2],
    padding: [usize; 2],
    shared_input: bool,
) -> FloatTensor<Autodiff<Flex, C>> {
    let geometry = conv_geometry(x.primitive(), weight.primitive(), stride, padding);
    match ConvNoBias.prepare::<C>([x.node(), weight.node()]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => {
            let (x, weight) = (x.into_primitive(), weight.into_primitive());
            let y = flex_conv2d(&x, &weight, None, stride, padding);
            prep.finish(ConvState { x, weight, geometry, shared_input }, y)
        }
        OpsKind::UnTracked(prep) => prep.finish(flex_conv2d(x.primitive(), weight.primitive(), None, stride, padding)),
    }
}

impl<C: CheckpointStrategy> LabKernels for Autodiff<Flex, C> {
    // Evaluation on a training device (the model takes these only on the
    // plain CPU backend): the convolution, then burn's differentiable steps.
    fn lab_conv2d_affine(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        scale: FloatTensor<Self>,
        shift: FloatTensor<Self>,
        stride_h: usize,
        stride_w: usize,
        pad_h: usize,
        pad_w: usize,
        relu: bool,
    ) -> FloatTensor<Self> {
        affine_join::<C>(Self::lab_conv2d(x, weight, stride_h, stride_w, pad_h, pad_w, false), scale, shift, None, relu)
    }

    fn lab_conv2d_affine_add(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        scale: FloatTensor<Self>,
        shift: FloatTensor<Self>,
        residual: FloatTensor<Self>,
        stride_h: usize,
        stride_w: usize,
        pad_h: usize,
        pad_w: usize,
        relu: bool,
    ) -> FloatTensor<Self> {
        affine_join::<C>(Self::lab_conv2d(x, weight, stride_h, stride_w, pad_h, pad_w, false), scale, shift, Some(residual), relu)
    }

    fn lab_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        stride_h: usize,
        stride_w: usize,
        pad_h: usize,
        pad_w: usize,
        shared_input: bool,
    ) -> FloatTensor<Self> {
        conv_no_bias::<C>(x, weight, [stride_h, stride_w], [pad_h, pad_w], shared_input)
    }

    fn lab_conv2d_bias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        stride_h: usize,
        stride_w: usize,
        pad_h: usize,
        pad_w: usize,
    ) -> FloatTensor<Self> {
        let (stride, padding) = ([stride_h, stride_w], [pad_h, pad_w]);
        let geometry = conv_geometry(x.primitive(), weight.primitive(), stride, padding);
        match ConvWithBias.prepare::<C>([x.node(), weight.node(), bias.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (x, weight, bias) = (x.into_primitive(), weight.into_primitive(), bias.into_primitive());
                let y = flex_conv2d(&x, &weight, Some(&bias), stride, padding);
                prep.finish(ConvState { x, weight, geometry, shared_input: false }, y)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(flex_conv2d(x.primitive(), weight.primitive(), Some(bias.primitive()), stride, padding))
            }
        }
    }

    fn lab_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let prep = NormTrain.prepare::<C>([x.node(), gamma.node(), beta.node()]).compute_bound().stateful();
        let (x, gamma, beta) = (x.into_primitive(), gamma.into_primitive(), beta.into_primitive());
        let (y, mean, var) = Flex::lab_batch_norm_train(x.clone(), gamma.clone(), beta.clone(), epsilon, relu);
        let output = match prep {
            OpsKind::Tracked(prep) => {
                let stats = stats_of(&mean, &var);
                prep.finish(NormState { x, gamma, beta, stats, epsilon, relu }, y)
            }
            OpsKind::UnTracked(prep) => prep.finish(y),
        };
        (output, Self::from_inner(mean), Self::from_inner(var))
    }

    fn lab_batch_norm_add_relu_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        residual: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let prep = NormAddRelu.prepare::<C>([x.node(), gamma.node(), beta.node(), residual.node()]).compute_bound().stateful();
        let (x, gamma, beta, residual) = (x.into_primitive(), gamma.into_primitive(), beta.into_primitive(), residual.into_primitive());
        let (y, mean, var) = Flex::lab_batch_norm_add_relu_train(x.clone(), gamma.clone(), beta.clone(), residual, epsilon);
        let output = match prep {
            OpsKind::Tracked(prep) => {
                let stats = stats_of(&mean, &var);
                prep.finish(JoinState { x, gamma, beta, y: y.clone(), stats, epsilon }, y)
            }
            OpsKind::UnTracked(prep) => prep.finish(y),
        };
        (output, Self::from_inner(mean), Self::from_inner(var))
    }

    fn lab_l2_norm(x: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::from_inner(Flex::lab_l2_norm(x.into_primitive()))
    }

    fn lab_zero_pad_shortcut(x: FloatTensor<Self>, stride: usize, extra: usize) -> FloatTensor<Self> {
        let pad = zero_pad_of(x.primitive(), stride, extra);
        let y = Flex::lab_zero_pad_shortcut(x.primitive().clone(), stride, extra);
        match ZeroPadShortcut.prepare::<C>([x.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish(pad, y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        }
    }

    fn lab_tap(x: FloatTensor<Self>, probe: FloatTensor<Self>) -> FloatTensor<Self> {
        Tap.prepare::<C>([x.node(), probe.node()]).compute_bound().stateless(x.into_primitive())
    }

    fn lab_batch_norm_eval(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        variance: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> FloatTensor<Self> {
        // Evaluation on a training device (rare: a frozen layer): burn's
        // differentiable composition.
        use burn::backend::ops::{ActivationOps, ModuleOps};
        let y = <Self as ModuleOps<Self>>::batch_norm(x, gamma, beta, mean, variance, epsilon);
        if relu { <Self as ActivationOps<Self>>::relu(y) } else { y }
    }
}
