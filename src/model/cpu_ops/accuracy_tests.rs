//! The lab's kernels against float64: the longest sums of a training step
//! (the first convolution's weight gradient, over batch × height × width
//! terms), alone and through a whole step.
use super::*;
use crate::util::rng::Rng;

/// ‖a − b‖ / ‖b‖ in f64.
fn relative_error(a: &[f32], b: &[f64]) -> f64 {
    let diff: f64 = a.iter().zip(b).map(|(x, y)| (f64::from(*x) - y).powi(2)).sum();
    let norm: f64 = b.iter().map(|y| y * y).sum();
    (diff / norm).sqrt()
}

/// The weight gradient of plain-20's first convolution in a real training
/// step (128 fashion-mini images, the gradient reaching the convolution's
/// output through the whole net), from the lab's kernel against the same
/// sum taken in f64 over the same f32 inputs: the sum runs over batch ×
/// height × width = 100,352 terms that largely cancel (batch norm after the
/// convolution takes each channel's mean out of the gradient), where one
/// long f32 sum would lose digits; the kernel (the direct one, on AVX-512)
/// sums each of 16 lanes over a group of 8 images, then the lanes, then
/// the groups. (Measured: 3.5e-6; 1.6e-6 through the patch matrix.) This
/// checks the kernel's own summation; the whole step against a float64
/// step also carries the rounding of every layer before it.
#[test]
fn the_first_convolutions_weight_gradient_matches_a_float64_sum() {
    use crate::arch::presets;
    use crate::data::{DataSpec, Dataset};
    use crate::model::{Block, Ctx, Features, Network, layers};
    let device = Device::flex().autodiff();
    let data = Dataset::load(&DataSpec::FashionMini).unwrap();
    let shape = data.shape();
    let arch = presets::build("plain-20", shape).unwrap();
    let net = Network::build(&arch, shape, data.classes(), &device, 1).unwrap();
    let Block::Conv(first) = &net.blocks[0] else { panic!("plain-20 starts with a conv layer") };
    let indices: Vec<usize> = (0..128).map(|i| i * 37 % data.train.len()).collect();
    let batch = data.batch(&data.train, &indices, None);
    let dims = [batch.size, data.channels, data.height, data.width];
    let images = batch.images.clone();
    let x = Tensor::<4>::from_data(TensorData::new(batch.images, dims), &device);
    // The convolution's output as a leaf, so its gradient can be read.
    let z = conv2d(&first.conv, x).detach().require_grad();
    let mut h = Features::Map(layers::norm_act(z.clone(), first.norm.as_ref(), first.act));
    let mut ctx = Ctx::new(Rng::new(1));
    ctx.training = true;
    for block in &net.blocks[1..] {
        h = block.forward(h, &mut ctx);
    }
    let labels = Tensor::<1, Int>::from_data(TensorData::new(batch.labels, [batch.size]), &device);
    let loss = burn::nn::loss::CrossEntropyLossConfig::new().init(&device).forward(h.into_flat(), labels);
    let grads = loss.backward();
    let dz: Vec<f32> = z.grad(&grads).unwrap().into_data().try_to_vec::<f32>().unwrap();
    let weight = first.conv.weight.val();
    let [cout, cin, kh, kw] = weight.dims();
    let g = ConvGeometry {
        batch: batch.size,
        in_channels: cin,
        in_height: data.height,
        in_width: data.width,
        out_channels: cout,
        kernel: [kh, kw],
        stride: [1, 1],
        padding: [kh / 2, kw / 2],
    };
    let (lab, _) = crate::kernels::conv::backward_weight(&g, &images, &dz, false);
    // The same sums in f64, over the same f32 inputs.
    let (ho, wo) = (g.out_height(), g.out_width());
    let mut exact = vec![0.0f64; cout * cin * kh * kw];
    for n in 0..g.batch {
        for o in 0..cout {
            for c in 0..cin {
                for i in 0..kh {
                    for j in 0..kw {
                        let mut acc = 0.0f64;
                        for oh in 0..ho {
                            let ih = (oh + i) as isize - (kh / 2) as isize;
                            if ih < 0 || ih >= g.in_height as isize {
                                continue;
                            }
                            for ow in 0..wo {
                                let iw = (ow + j) as isize - (kw / 2) as isize;
                                if iw < 0 || iw >= g.in_width as isize {
                                    continue;
                                }
                                let xv = images[((n * cin + c) * g.in_height + ih as usize) * g.in_width + iw as usize];
                                acc += f64::from(xv) * f64::from(dz[((n * cout + o) * ho + oh) * wo + ow]);
                            }
                        }
                        exact[((o * cin + c) * kh + i) * kw + j] += acc;
                    }
                }
            }
        }
    }
    let error = relative_error(&lab, &exact);
    eprintln!("first convolution's weight gradient: relative error {error:.2e} against f64");
    assert!(error < 1e-4, "relative error {error:.2e}");
}

/// Casts every float parameter of a module to another dtype, as a fresh
/// leaf that tracks its gradient.
struct CastParams(burn::tensor::DType);

impl burn::module::ModuleMapper for CastParams {
    fn map_float<const D: usize>(&mut self, param: burn::module::Param<Tensor<D>>) -> burn::module::Param<Tensor<D>> {
        let value = param.val();
        let tensor = Tensor::<D>::from_data(value.to_data(), (&value.device(), self.0)).require_grad();
        assert_eq!(tensor.dtype(), self.0);
        burn::module::Param::initialized(param.id, tensor)
    }
}

/// The whole training step of plain-20 (128 fashion-mini images, from the
/// same weights) in float32 through the lab's kernels and in float64
/// through burn's generic operations: the weight gradient of the first
/// convolution, which carries the rounding of every layer's forward and
/// backward pass and the longest sums (batch × height × width terms),
/// agrees to 1e-4 relative.
///
/// The net uses tanh: with ReLU the float64 answer itself moves by ~5e-3
/// when the input moves by half a float32 rounding step (a pre-activation
/// within rounding of zero switches its ReLU, and that element's gradient
/// passes or not), and PyTorch's float32 step is 1–4e-3 from its float64
/// one on the same net — no float32 computation can match to 1e-4 there.
#[test]
fn a_whole_training_step_matches_float64_at_the_first_convolution() {
    use crate::arch::{Activation, presets};
    use crate::data::{DataSpec, Dataset};
    use crate::model::{Block, Ctx, Network};
    use burn::module::Module;
    use burn::tensor::DType;
    let device = Device::flex().autodiff();
    let data = Dataset::load(&DataSpec::FashionMini).unwrap();
    let shape = data.shape();
    let mut arch = presets::build("plain-20", shape).unwrap();
    for block in &mut arch.blocks {
        block.layer.activation = Activation::Tanh;
    }
    // Built twice from the same seed (the same weights): a clone would
    // share its batch-norm running statistics with the original.
    let net32 = Network::build(&arch, shape, data.classes(), &device, 1).unwrap();
    let net64 = Network::build(&arch, shape, data.classes(), &device, 1).unwrap().map(&mut CastParams(DType::F64));
    let indices: Vec<usize> = (0..128).map(|i| i * 37 % data.train.len()).collect();
    let batch = data.batch(&data.train, &indices, None);
    let dims = [batch.size, data.channels, data.height, data.width];
    let labels = Tensor::<1, Int>::from_data(TensorData::new(batch.labels, [batch.size]), &device);
    let x = Tensor::<4>::from_data(TensorData::new(batch.images, dims), &device);
    let first_weight_grad = |net: &Network, x: Tensor<4>| -> Vec<f64> {
        let mut ctx = Ctx::new(Rng::new(1));
        ctx.training = true;
        let logits = net.forward(x, &mut ctx);
        let loss = burn::nn::loss::CrossEntropyLossConfig::new().init(&device).forward(logits, labels.clone());
        let grads = loss.backward();
        let Block::Conv(first) = &net.blocks[0] else { panic!("plain-20 starts with a conv layer") };
        let grad = first.conv.weight.val().grad(&grads).expect("the first convolution has a gradient");
        grad.cast(DType::F64).into_data().try_to_vec::<f64>().unwrap()
    };
    let lab: Vec<f32> = first_weight_grad(&net32, x.clone()).iter().map(|&v| v as f32).collect();
    let exact = first_weight_grad(&net64, x.cast(DType::F64));
    let error = relative_error(&lab, &exact);
    eprintln!("whole step, first convolution's weight gradient: relative error {error:.2e} against float64");
    assert!(error < 1e-4, "relative error {error:.2e}");
}
