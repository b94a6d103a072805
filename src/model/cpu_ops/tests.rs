//! The lab's kernels against burn's reference operations.
use burn::nn::BatchNormConfig;
use burn::nn::conv::Conv2dConfig;
use burn::tensor::module::conv2d as burn_conv2d;
use burn::tensor::ops::ConvOptions;

use super::*;
use crate::util::rng::Rng;

fn random<const D: usize>(shape: [usize; D], rng: &mut Rng, device: &Device) -> Tensor<D> {
    let len = shape.iter().product();
    let values: Vec<f32> = (0..len).map(|_| rng.normal() as f32).collect();
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// Every element within `1e-5 · (1 + |reference|)`, scaled by the
/// reference's largest magnitude for sums of many terms.
fn assert_close<const D: usize>(what: &str, got: Tensor<D>, want: Tensor<D>) {
    assert_eq!(got.dims(), want.dims(), "{what}: shapes differ");
    let got = got.into_data().try_to_vec::<f32>().expect("f32 values");
    let want = want.into_data().try_to_vec::<f32>().expect("f32 values");
    let scale = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    for (i, (a, b)) in got.iter().zip(&want).enumerate() {
        assert!((a - b).abs() <= 1e-5 * scale, "{what}[{i}]: {a} vs burn's {b} (scale {scale})");
    }
}

/// (batch, in, h, w, out, kernel, stride, padding, bias)
type ConvCase = (usize, usize, usize, usize, usize, usize, usize, usize, bool);

const CONVS: [ConvCase; 14] = [
    (2, 3, 8, 8, 4, 3, 1, 1, false),
    // Batch 1, one channel, an odd image: the direct kernel's masks.
    (1, 1, 7, 5, 3, 3, 1, 1, true),
    // Stride 2 on even sizes: the direct kernel's phases.
    (2, 3, 8, 6, 5, 3, 2, 1, true),
    (1, 1, 2, 2, 1, 3, 2, 1, false),
    (3, 9, 4, 10, 17, 3, 2, 1, false),
    (1, 1, 7, 5, 2, 3, 2, 1, true),
    (3, 2, 9, 9, 5, 3, 2, 1, false),
    (2, 4, 6, 6, 3, 1, 1, 0, true),
    (2, 4, 7, 7, 3, 1, 2, 0, false),
    (1, 2, 5, 5, 3, 5, 1, 2, true),
    (9, 3, 4, 4, 2, 3, 1, 0, false),
    (1, 1, 1, 1, 1, 1, 1, 0, false),
    // More than 16 output channels at stride 1: the channel-vectorised
    // kernel, forward (33: two vectors and a lone one) and input gradient
    // (17 input channels), a row of 8 positions and a tail of 3.
    (2, 17, 6, 11, 33, 3, 1, 1, true),
    // Batch 1, one input channel, one row: forward on the channel kernel.
    (1, 1, 1, 9, 32, 3, 1, 1, false),
];

#[test]
fn the_cpu_devices_take_the_lab_kernels() {
    // These tests compare the lab's kernels with burn's: they must run.
    assert_eq!(KernelSet::current(), KernelSet::All, "unset DEPTHLAB_CPU_KERNELS to test the kernels");
    assert!(uses_lab_kernels(&Device::flex()));
    assert!(uses_lab_kernels(&Device::flex().autodiff()));
}

#[test]
fn convolution_matches_burn_forward_and_gradients() {
    let device = Device::flex().autodiff();
    let mut rng = Rng::new(11);
    for (n, cin, h, w, cout, k, s, p, bias) in CONVS {
        let what = format!("conv {n}x{cin}x{h}x{w} -> {cout}, {k}x{k} stride {s} pad {p} bias {bias}");
        let x = random([n, cin, h, w], &mut rng, &device);
        let layer = conv_layer((cin, cout, k, s, p, bias), &mut rng, &device);
        let options = ConvOptions::new([s, s], [p, p], [1, 1], 1);
        let lab = conv2d(&layer, x.clone().require_grad());
        let ho = (h + 2 * p - k) / s + 1;
        let wo = (w + 2 * p - k) / s + 1;
        let r = random([n, cout, ho, wo], &mut rng, &device);

        let (x1, w1) = (x.clone().require_grad(), layer.weight.val().detach().require_grad());
        let b1 = layer.bias.as_ref().map(|b| b.val().detach().require_grad());
        let mut lab_layer = layer.clone();
        lab_layer.weight = burn::module::Param::from_tensor(w1.clone());
        lab_layer.bias = b1.clone().map(burn::module::Param::from_tensor);
        let y1 = conv2d(&lab_layer, x1.clone());
        let g1 = (y1.clone() * r.clone()).sum().backward();

        let (x2, w2) = (x.clone().require_grad(), layer.weight.val().detach().require_grad());
        let b2 = layer.bias.as_ref().map(|b| b.val().detach().require_grad());
        let y2 = burn_conv2d(x2.clone(), w2.clone(), b2.clone(), options);
        let g2 = (y2.clone() * r).sum().backward();

        assert_close(&format!("{what}: output"), lab, y2.clone());
        assert_close(&format!("{what}: output"), y1, y2);
        assert_close(&format!("{what}: input gradient"), x1.grad(&g1).unwrap(), x2.grad(&g2).unwrap());
        assert_close(&format!("{what}: weight gradient"), w1.grad(&g1).unwrap(), w2.grad(&g2).unwrap());
        if let (Some(b1), Some(b2)) = (b1, b2) {
            assert_close(&format!("{what}: bias gradient"), b1.grad(&g1).unwrap(), b2.grad(&g2).unwrap());
        }
    }
}

#[test]
fn convolution_on_the_plain_cpu_device_matches_burn() {
    let device = Device::flex();
    let mut rng = Rng::new(12);
    let x = random([2, 3, 9, 9], &mut rng, &device);
    let layer =
        Conv2dConfig::new([3, 5], [3, 3]).with_stride([2, 2]).with_padding(burn::nn::PaddingConfig2d::Explicit(1, 1, 1, 1)).init(&device);
    assert_close("conv on flex", conv2d(&layer, x.clone()), layer.forward(x));
}

/// (batch, channels, height, width) of batch-norm inputs; a width of 0
/// means a flat `[batch, channels]` input.
const NORMS: [(usize, usize, usize, usize); 5] = [(4, 3, 5, 5), (1, 1, 6, 7), (2, 5, 1, 1), (8, 4, 0, 0), (3, 2, 4, 3)];

#[test]
fn batch_norm_in_training_matches_burn_forward_gradients_and_running_statistics() {
    let device = Device::flex().autodiff();
    let mut rng = Rng::new(13);
    for (n, c, h, w) in NORMS {
        for relu in [false, true] {
            let what = format!("batch norm {n}x{c}x{h}x{w} relu {relu}");
            let x = random([n, c, h.max(1), w.max(1)], &mut rng, &device).mul_scalar(2.0).add_scalar(0.5);
            let r = random([n, c, h.max(1), w.max(1)], &mut rng, &device);
            let gamma = random([c], &mut rng, &device);
            let beta = random([c], &mut rng, &device);
            let make = || {
                let mut bn = BatchNormConfig::new(c).init(&device);
                bn.gamma = burn::module::Param::from_tensor(gamma.clone().require_grad());
                bn.beta = burn::module::Param::from_tensor(beta.clone().require_grad());
                bn
            };
            let (lab_bn, burn_bn) = (make(), make());
            let (x1, x2) = (x.clone().require_grad(), x.clone().require_grad());
            let (y1, y2) = if h == 0 {
                let flat = |t: Tensor<4>| t.reshape([n, c]);
                let (a, b) = (batch_norm_act(&lab_bn, flat(x1.clone()), relu), burn_bn.forward(flat(x2.clone())));
                let b = if relu { burn::tensor::activation::relu(b) } else { b };
                (a.reshape([n, c, 1, 1]), b.reshape([n, c, 1, 1]))
            } else {
                let b = burn_bn.forward(x2.clone());
                (batch_norm_act(&lab_bn, x1.clone(), relu), if relu { burn::tensor::activation::relu(b) } else { b })
            };
            let g1 = (y1.clone() * r.clone()).sum().backward();
            let g2 = (y2.clone() * r).sum().backward();
            assert_close(&format!("{what}: output"), y1, y2);
            assert_close(&format!("{what}: input gradient"), x1.grad(&g1).unwrap(), x2.grad(&g2).unwrap());
            assert_close(&format!("{what}: gamma gradient"), lab_bn.gamma.val().grad(&g1).unwrap(), burn_bn.gamma.val().grad(&g2).unwrap());
            assert_close(&format!("{what}: beta gradient"), lab_bn.beta.val().grad(&g1).unwrap(), burn_bn.beta.val().grad(&g2).unwrap());
            assert_close(&format!("{what}: running mean"), lab_bn.running_mean.value(), burn_bn.running_mean.value());
            assert_close(&format!("{what}: running variance"), lab_bn.running_var.value(), burn_bn.running_var.value());
        }
    }
}

#[test]
fn a_tap_passes_the_gradient_through_and_reports_its_norm() {
    let device = Device::flex().autodiff();
    let mut rng = Rng::new(15);
    let x = random([3, 2, 4, 4], &mut rng, &device).require_grad();
    let r = random([3, 2, 4, 4], &mut rng, &device);
    let leaf = tap_leaf(&device, burn::tensor::DType::F32, 1).expect("the CPU training device taps");
    let y = tap(x.clone() * 2.0, &leaf);
    let grads = (y * r.clone()).sum().backward();
    // d(loss)/d(tapped output) = r, and x's gradient is 2 r.
    let want = r.clone().square().sum().sqrt();
    assert_close("tap norm", leaf.grad(&grads).unwrap(), want.inner());
    assert_close("gradient through the tap", x.grad(&grads).unwrap(), (r * 2.0).inner());
    // Vanishing gradients keep their size.
    let z = random([2, 5], &mut rng, &device).require_grad();
    let leaf = tap_leaf(&device, burn::tensor::DType::F32, 1).unwrap();
    let grads = (tap(z.clone(), &leaf) * 1e-30).sum().backward();
    let norm = leaf.grad(&grads).unwrap().into_data().try_to_vec::<f32>().unwrap()[0];
    assert!((norm / (1e-30 * 10f32.sqrt()) - 1.0).abs() < 1e-5, "{norm}");
    assert!(tap_leaf(&Device::flex(), burn::tensor::DType::F32, 1).is_none(), "no taps without autodiff");
    assert!(tap_leaf(&device, burn::tensor::DType::F16, 1).is_none(), "burn's route for other types");
}

#[test]
fn the_option_a_shortcut_matches_burns_slice_and_concatenation() {
    let mut rng = Rng::new(16);
    // (batch, channels, height, width, stride, extra): CIFAR's stage
    // change, odd sizes, one channel, batch 1, stride 3, no padding.
    for (n, c, h, w, s, extra) in [(4, 16, 8, 8, 2, 16), (3, 2, 7, 5, 2, 3), (1, 1, 1, 1, 2, 1), (2, 3, 9, 6, 3, 0), (1, 4, 5, 4, 1, 2)] {
        let what = format!("{n}x{c}x{h}x{w} stride {s} extra {extra}");
        for device in [Device::flex(), Device::flex().autodiff()] {
            let grad = |t: Tensor<4>| if device.is_autodiff() { t.require_grad() } else { t };
            let x = grad(random([n, c, h, w], &mut rng, &device));
            let x2 = grad(x.clone().detach());
            let lab = zero_pad_shortcut(&x, s, extra).expect("the CPU devices take the kernel");
            let every = burn::tensor::Slice::new(0, None, s as isize);
            let sub = x2.clone().slice([burn::tensor::Slice::full(), burn::tensor::Slice::full(), every, every]);
            let [_, _, oh, ow] = sub.dims();
            let burn = Tensor::cat(vec![sub, Tensor::zeros([n, extra, oh, ow], &device)], 1);
            assert_eq!(lab.dims(), [n, c + extra, h.div_ceil(s), w.div_ceil(s)], "{what}");
            assert_close(&format!("{what}: forward"), lab.clone(), burn.clone());
            if device.is_autodiff() {
                let r = random(lab.dims(), &mut rng, &device);
                let (g1, g2) = ((lab * r.clone()).sum().backward(), (burn * r).sum().backward());
                assert_close(&format!("{what}: gradient"), x.grad(&g1).unwrap(), x2.grad(&g2).unwrap());
            }
        }
    }
}

#[test]
fn a_convolution_sharing_its_input_with_a_later_join_gives_the_same_gradients() {
    let device = Device::flex().autodiff();
    let mut rng = Rng::new(17);
    // (batch, channels, height, width): a residual block's identity
    // shortcut, odd sizes, one channel, batch 1.
    for (n, c, h, w) in [(4, 8, 8, 8), (3, 3, 7, 5), (1, 1, 3, 3)] {
        let conv = conv_layer((c, c, 3, 1, 1, false), &mut rng, &device);
        let bn = BatchNormConfig::new(c).init(&device);
        let leaf = random([n, c, h, w], &mut rng, &device);
        let r = random([n, c, h, w], &mut rng, &device);
        // An intermediate input (its gradient is taken and added into the
        // convolution's) and a leaf (burn adds the two).
        for intermediate in [true, false] {
            let what = format!("{n}x{c}x{h}x{w}, intermediate input {intermediate}");
            let mut got = Vec::new();
            for input in [Input::Own, Input::SharedWithLaterJoin] {
                let leaf = leaf.clone().detach().require_grad();
                let x = if intermediate { leaf.clone() * 1.5 } else { leaf.clone() };
                let y = conv2d_reading(&conv, x.clone(), input);
                let out = batch_norm_add_relu(&bn, y, x).unwrap_or_else(|_| panic!("{what}: the join fuses"));
                let grads = (out * r.clone()).sum().backward();
                got.push((leaf.grad(&grads).unwrap(), conv.weight.val().grad(&grads).unwrap()));
            }
            let (own, shared) = (&got[0], &got[1]);
            assert_close(&format!("{what}: input gradient"), shared.0.clone(), own.0.clone());
            assert_close(&format!("{what}: weight gradient"), shared.1.clone(), own.1.clone());
        }
    }
}

#[test]
fn batch_norm_in_evaluation_matches_burn() {
    let device = Device::flex();
    let mut rng = Rng::new(14);
    let mut bn = BatchNormConfig::new(3).init(&device);
    bn.gamma = burn::module::Param::from_tensor(random([3], &mut rng, &device));
    bn.running_mean = burn::module::RunningState::new(random([3], &mut rng, &device));
    bn.running_var = burn::module::RunningState::new(random([3], &mut rng, &device).abs().add_scalar(0.1));
    let x = random([2, 3, 4, 5], &mut rng, &device);
    assert_close("eval bn", batch_norm_act(&bn, x.clone(), false), bn.forward(x.clone()));
    assert_close("eval bn + relu", batch_norm_act(&bn, x.clone(), true), burn::tensor::activation::relu(bn.forward(x)));
}

/// A conv layer `(in, out, kernel, stride, padding, bias)` as in [`CONVS`],
/// with random weights (and bias).
fn conv_layer((cin, cout, k, s, p, bias): (usize, usize, usize, usize, usize, bool), rng: &mut Rng, device: &Device) -> Conv2d {
    let mut layer = Conv2dConfig::new([cin, cout], [k, k])
        .with_stride([s, s])
        .with_padding(burn::nn::PaddingConfig2d::Explicit(p, p, p, p))
        .with_bias(bias)
        .init(device);
    layer.weight = burn::module::Param::from_tensor(random([cout, cin, k, k], rng, device));
    layer.bias = bias.then(|| burn::module::Param::from_tensor(random([cout], rng, device)));
    layer
}

/// A batch norm with random scale, shift and running statistics.
fn eval_norm(channels: usize, rng: &mut Rng, device: &Device) -> BatchNorm {
    let mut bn = BatchNormConfig::new(channels).init(device);
    bn.gamma = burn::module::Param::from_tensor(random([channels], rng, device));
    bn.beta = burn::module::Param::from_tensor(random([channels], rng, device));
    bn.running_mean = burn::module::RunningState::new(random([channels], rng, device));
    bn.running_var = burn::module::RunningState::new(random([channels], rng, device).abs().add_scalar(0.1));
    bn
}

#[test]
fn the_fused_evaluation_pass_equals_its_steps() {
    let device = Device::flex();
    let mut rng = Rng::new(15);
    for (n, cin, h, w, cout, k, s, p, bias) in CONVS {
        let layer = conv_layer((cin, cout, k, s, p, bias), &mut rng, &device);
        let bn = eval_norm(cout, &mut rng, &device);
        let x = random([n, cin, h, w], &mut rng, &device);
        let y = conv2d(&layer, x.clone());
        let residual = random(y.dims(), &mut rng, &device);
        for norm in [None, Some(&bn)] {
            for join in [None, Some(&residual)] {
                for relu in [false, true] {
                    let what = format!(
                        "{n}x{cin}x{h}x{w} -> {cout} k{k} s{s} p{p} bias {bias} norm {} join {} relu {relu}",
                        norm.is_some(),
                        join.is_some()
                    );
                    let fused = conv_eval(&layer, norm, &x, join, relu).expect("the plain CPU device fuses");
                    // burn's own steps: close.
                    let mut want = layer.forward(x.clone());
                    if let Some(bn) = norm {
                        want = bn.forward(want);
                    }
                    if let Some(r) = join {
                        want = want + r.clone();
                    }
                    if relu {
                        want = burn::tensor::activation::relu(want);
                    }
                    assert_close(&what, fused.clone(), want);
                    // The lab's own steps: the same bits (no conv bias
                    // before a norm, as the lab's layers build them).
                    if !(bias && norm.is_some()) {
                        let mut steps = match norm {
                            Some(bn) => batch_norm_act(bn, y.clone(), relu && join.is_none()),
                            None if relu && join.is_none() => burn::tensor::activation::relu(y.clone()),
                            None => y.clone(),
                        };
                        if let Some(r) = join {
                            steps = steps + r.clone();
                            if relu {
                                steps = burn::tensor::activation::relu(steps);
                            }
                        }
                        assert_eq!(fused.into_data(), steps.into_data(), "{what}");
                    }
                }
            }
        }
    }
}

#[test]
fn the_fused_evaluation_pass_is_refused_in_training_and_differentiates_there() {
    let device = Device::flex().autodiff();
    let mut rng = Rng::new(16);
    let layer = conv_layer((3, 4, 3, 1, 1, false), &mut rng, &device);
    let x = random([2, 3, 5, 5], &mut rng, &device);
    assert!(conv_eval(&layer, None, &x, None, true).is_none(), "a training device composes the steps");
    // The operation itself on the autodiff device: burn's differentiable
    // steps, gradients included.
    let (scale, shift, residual) =
        (random([4], &mut rng, &device), random([4], &mut rng, &device), random([2, 4, 5, 5], &mut rng, &device));
    let (x1, w1) = (x.clone().require_grad(), layer.weight.val().detach().require_grad());
    let y1: Tensor<4> = Tensor::from_dispatch(<Dispatch as LabKernels>::lab_conv2d_affine_add(
        x1.clone().into_dispatch(),
        w1.clone().into_dispatch(),
        scale.clone().into_dispatch(),
        shift.clone().into_dispatch(),
        residual.clone().into_dispatch(),
        1,
        1,
        1,
        1,
        true,
    ));
    let g1 = (y1.clone() * y1.clone()).sum().backward();
    let (x2, w2) = (x.clone().require_grad(), layer.weight.val().detach().require_grad());
    let z = burn_conv2d(x2.clone(), w2.clone(), None, ConvOptions::new([1, 1], [1, 1], [1, 1], 1));
    let y2 = burn::tensor::activation::relu(z * scale.reshape([1, 4, 1, 1]) + shift.reshape([1, 4, 1, 1]) + residual);
    let g2 = (y2.clone() * y2.clone()).sum().backward();
    assert_close("affine join", y1, y2);
    assert_close("affine join: input gradient", x1.grad(&g1).unwrap(), x2.grad(&g2).unwrap());
    assert_close("affine join: weight gradient", w1.grad(&g1).unwrap(), w2.grad(&g2).unwrap());
}

/// The fused residual join in training against burn's `BatchNorm`, add and
/// ReLU: the output, every gradient (input, residual, γ, β) and the
/// running statistics; on odd shapes, batch 1 and one channel. Where it
/// does not apply (evaluation), the inputs come back untouched.
#[test]
fn the_fused_training_join_matches_burns_steps() {
    let device = Device::flex().autodiff();
    let mut rng = Rng::new(23);
    for dims in [[4, 3, 5, 7], [1, 2, 3, 3], [3, 1, 1, 1], [2, 16, 8, 8]] {
        let channels = dims[1];
        let (x, r) = (random(dims, &mut rng, &device), random(dims, &mut rng, &device));
        let init = BatchNormConfig::new(channels).init(&device);
        let (gamma, beta) = (random([channels], &mut rng, &device), random([channels], &mut rng, &device));
        let with = |bn: burn::nn::BatchNorm| burn::nn::BatchNorm {
            gamma: burn::module::Param::from_tensor(gamma.clone().detach().require_grad()),
            beta: burn::module::Param::from_tensor(beta.clone().detach().require_grad()),
            ..bn
        };
        let (lab_bn, burn_bn) = (with(init.clone()), with(BatchNormConfig::new(channels).init(&device)));
        let (x1, r1) = (x.clone().require_grad(), r.clone().require_grad());
        let fused = batch_norm_add_relu(&lab_bn, x1.clone(), r1.clone()).map_err(|_| ()).expect("applies in training");
        let (x2, r2) = (x.clone().require_grad(), r.clone().require_grad());
        let steps = burn::tensor::activation::relu(burn_bn.forward(x2.clone()) + r2.clone());
        let weights = random(dims, &mut rng, &device);
        let g1 = (fused.clone() * weights.clone()).sum().backward();
        let g2 = (steps.clone() * weights).sum().backward();
        let what = format!("{dims:?}");
        assert_close(&format!("{what}: output"), fused, steps);
        assert_close(&format!("{what}: input gradient"), x1.grad(&g1).unwrap(), x2.grad(&g2).unwrap());
        assert_close(&format!("{what}: residual gradient"), r1.grad(&g1).unwrap(), r2.grad(&g2).unwrap());
        assert_close(&format!("{what}: gamma gradient"), lab_bn.gamma.val().grad(&g1).unwrap(), burn_bn.gamma.val().grad(&g2).unwrap());
        assert_close(&format!("{what}: beta gradient"), lab_bn.beta.val().grad(&g1).unwrap(), burn_bn.beta.val().grad(&g2).unwrap());
        assert_close(&format!("{what}: running mean"), lab_bn.running_mean.value(), burn_bn.running_mean.value());
        assert_close(&format!("{what}: running variance"), lab_bn.running_var.value(), burn_bn.running_var.value());
    }
    // Evaluation: not this operation's job.
    let eval = Device::flex();
    let bn = BatchNormConfig::new(2).init(&eval);
    let x = random([1, 2, 3, 3], &mut rng, &eval);
    let (back, _) = batch_norm_add_relu(&bn, x.clone(), x.clone()).map(|_| ()).unwrap_err();
    assert_eq!(back.into_data(), x.into_data());
}

/// A training convolution hands the batch norm after it its output's
/// statistics (taken while each image was in cache): the same bits as the
/// batch norm's own pass, so the same output and gradients with them as
/// without.
#[test]
fn a_convolution_hands_its_output_statistics_to_the_batch_norm_after_it() {
    use crate::kernels::batchnorm::{self, NormShape};
    let device = Device::flex().autodiff();
    let mut rng = Rng::new(29);
    for ((cin, cout, k, s, p, bias), [n, h, w]) in
        [((3, 4, 3, 1, 1, false), [2, 8, 8]), ((1, 3, 3, 2, 1, true), [1, 7, 5]), ((2, 5, 1, 1, 0, false), [3, 4, 4])]
    {
        let conv = conv_layer((cin, cout, k, s, p, bias), &mut rng, &device);
        let (y, stats) = conv2d_reading_with_statistics(&conv, random([n, cin, h, w], &mut rng, &device), Input::Own);
        let stats = stats.expect("the CPU convolution takes its output's statistics");
        let d = y.dims();
        let values = y.clone().into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(stats, batchnorm::statistics(&NormShape { batch: d[0], channels: d[1], plane: d[2] * d[3] }, &values));
        let (gamma, beta) = (random([cout], &mut rng, &device), random([cout], &mut rng, &device));
        let norm = || burn::nn::BatchNorm {
            gamma: burn::module::Param::from_tensor(gamma.clone().detach().require_grad()),
            beta: burn::module::Param::from_tensor(beta.clone().detach().require_grad()),
            ..BatchNormConfig::new(cout).init(&device)
        };
        let weights = random([n, cout, d[2], d[3]], &mut rng, &device);
        let run = |stats: Option<BatchNormStats>| {
            let (bn, x) = (norm(), y.clone().detach().require_grad());
            let out = batch_norm_act_given(&bn, x.clone(), true, stats);
            let grads = (out.clone() * weights.clone()).sum().backward();
            let grad = |t: Tensor<1>| t.grad(&grads).unwrap().into_data();
            (
                out.into_data(),
                x.grad(&grads).unwrap().into_data(),
                grad(bn.gamma.val()),
                grad(bn.beta.val()),
                bn.running_var.value().into_data(),
            )
        };
        let alone = run(None);
        assert_eq!(run(Some(stats.clone())), alone, "given statistics change nothing");
        let wrong = BatchNormStats { mean: vec![0.0; cout + 1], var: vec![1.0; cout + 1] };
        assert_eq!(run(Some(wrong)), alone, "statistics of another shape are not used");
        // The join of a residual block takes them too.
        let r = random([n, cout, d[2], d[3]], &mut rng, &device);
        let joined = |stats| batch_norm_add_relu_given(&norm(), y.clone(), r.clone(), stats).map_err(|_| ()).unwrap().into_data();
        assert_eq!(joined(Some(stats)), joined(None));
    }
    // Asking leaves nothing behind: the next convolution, not asked, and
    // the next one asked, each get their own.
    let conv = conv_layer((2, 3, 3, 1, 1, false), &mut rng, &device);
    let x = random([1, 2, 4, 4], &mut rng, &device);
    let _ = conv2d(&conv, x.clone());
    let (y, again) = conv2d_reading_with_statistics(&conv, x.clone() * 2.0, Input::Own);
    let values = y.into_data().try_to_vec::<f32>().unwrap();
    assert_eq!(again, Some(batchnorm::statistics(&NormShape { batch: 1, channels: 3, plane: 16 }, &values)));
}
