//! The extension's operations with autodiff on a cubecl device: the
//! convolution's forward pass on the lab's kernel, and a backward pass that
//! runs its two gradient kernels.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend, Backend};

use super::{GpuKernels, Kernels, options};
use crate::kernels::cube::Pass;

/// What the convolution's backward pass needs.
#[derive(Clone, Debug)]
struct ConvState<B: Backend> {
    x: FloatTensor<B>,
    weight: FloatTensor<B>,
    stride: [usize; 2],
    padding: [usize; 2],
    kernels: Kernels,
}

#[derive(Debug)]
struct ConvBackward;

impl<B: Backend + GpuKernels> Backward<B, 2> for ConvBackward {
    type State = ConvState<B>;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let dy = grads.consume::<B>(&ops.node);
        let [x_node, weight_node] = ops.parents;
        let ConvState { x, weight, stride, padding, kernels } = ops.state;
        let ([sh, sw], [ph, pw]) = (stride, padding);
        if let Some(node) = weight_node {
            let dw = if kernels.lab(Pass::WeightGrad) {
                B::gpu_conv2d_weight_grad(x.clone(), weight.clone(), dy.clone(), sh, sw, ph, pw)
            } else {
                B::conv2d_weight_backward(x.clone(), weight.clone(), dy.clone(), options(stride, padding))
            };
            grads.register::<B>(node.id, dw);
        }
        if let Some(node) = x_node {
            let dx = if kernels.lab(Pass::InputGrad) {
                B::gpu_conv2d_input_grad(x, weight, dy, sh, sw, ph, pw)
            } else {
                B::conv2d_x_backward(x, weight, dy, options(stride, padding))
            };
            grads.register::<B>(node.id, dx);
        }
    }
}

/// The probe's tap: the gradient passes through, and its norm goes to the
/// probe's leaf.
#[derive(Debug)]
struct Tap;

impl<B: Backend + GpuKernels> Backward<B, 2> for Tap {
    type State = ();

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let dy = grads.consume::<B>(&ops.node);
        let [x, probe] = ops.parents;
        if let Some(node) = probe {
            grads.register::<B>(node.id, B::gpu_l2_norm(dy.clone()));
        }
        if let Some(node) = x {
            grads.register::<B>(node.id, dy);
        }
    }
}

impl<B: Backend + GpuKernels, C: CheckpointStrategy> GpuKernels for Autodiff<B, C> {
    fn gpu_l2_norm(x: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::from_inner(B::gpu_l2_norm(x.into_primitive()))
    }

    fn gpu_tap(x: FloatTensor<Self>, probe: FloatTensor<Self>) -> FloatTensor<Self> {
        Tap.prepare::<C>([x.node(), probe.node()]).compute_bound().stateless(x.into_primitive())
    }

    fn gpu_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        stride_h: usize,
        stride_w: usize,
        pad_h: usize,
        pad_w: usize,
        kernels: u8,
    ) -> FloatTensor<Self> {
        let run = |x, weight| B::gpu_conv2d(x, weight, stride_h, stride_w, pad_h, pad_w, kernels);
        match ConvBackward.prepare::<C>([x.node(), weight.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (x, weight) = (x.into_primitive(), weight.into_primitive());
                let state = ConvState {
                    x: x.clone(),
                    weight: weight.clone(),
                    stride: [stride_h, stride_w],
                    padding: [pad_h, pad_w],
                    kernels: Kernels(kernels),
                };
                prep.finish(state, run(x, weight))
            }
            OpsKind::UnTracked(prep) => prep.finish(run(x.into_primitive(), weight.into_primitive())),
        }
    }

    // The gradients themselves are not differentiated again.
    fn gpu_conv2d_input_grad(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        stride_h: usize,
        stride_w: usize,
        pad_h: usize,
        pad_w: usize,
    ) -> FloatTensor<Self> {
        let (x, weight, dy) = (x.into_primitive(), weight.into_primitive(), dy.into_primitive());
        Self::from_inner(B::gpu_conv2d_input_grad(x, weight, dy, stride_h, stride_w, pad_h, pad_w))
    }

    fn gpu_conv2d_weight_grad(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        stride_h: usize,
        stride_w: usize,
        pad_h: usize,
        pad_w: usize,
    ) -> FloatTensor<Self> {
        let (x, weight, dy) = (x.into_primitive(), weight.into_primitive(), dy.into_primitive());
        Self::from_inner(B::gpu_conv2d_weight_grad(x, weight, dy, stride_h, stride_w, pad_h, pad_w))
    }
}
