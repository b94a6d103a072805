//! The lab's GPU kernels against its CPU kernels, on whatever wgpu adapter
//! the machine has (lavapipe, the software one, in CI).
use burn::tensor::module::conv2d as burn_conv2d;
use burn::tensor::ops::ConvOptions;

use super::*;
use crate::model::cpu_ops::LabKernels;
use crate::util::rng::Rng;

/// The wgpu device, or `None` (with a note) where the machine has no
/// adapter; with `DEPTHLAB_REQUIRE_WGPU` set (as CI does) a missing
/// adapter fails instead.
fn wgpu_device(test: &str) -> Option<Device> {
    if crate::backend::adapters().is_empty() {
        assert!(std::env::var_os("DEPTHLAB_REQUIRE_WGPU").is_none(), "{test}: no wgpu adapter, and DEPTHLAB_REQUIRE_WGPU is set");
        eprintln!("SKIPPED {test}: no wgpu adapter on this machine");
        return None;
    }
    let compute = crate::backend::select(crate::backend::BackendChoice::Wgpu).expect("wgpu never refuses");
    assert_eq!(compute.backend, crate::backend::Backend::Wgpu);
    Some(compute.device)
}

fn random(shape: [usize; 4], rng: &mut Rng) -> TensorData {
    let len = shape.iter().product();
    TensorData::new((0..len).map(|_| rng.normal() as f32).collect::<Vec<f32>>(), shape)
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().expect("f32 values")
}

/// Every element within `tolerance` of the reference, relative to the
/// reference's largest magnitude (the sums run over many terms).
fn assert_close(what: &str, got: &[f32], want: &[f32], tolerance: f32) {
    assert_eq!(got.len(), want.len(), "{what}: sizes differ");
    let scale = want.iter().fold(f32::MIN_POSITIVE, |m, v| m.max(v.abs()));
    let worst = got.iter().zip(want).map(|(a, b)| (a - b).abs() / scale).fold(0.0f32, f32::max);
    eprintln!("{what}: largest difference {worst:e}");
    assert!(worst <= tolerance, "{what}: largest difference {worst:e} of the scale {scale} (tolerance {tolerance:e})");
}

/// (batch, in, h, w, out, kernel h, kernel w, stride, padding h, padding w);
/// a stride of 0 stands for strides (2, 1).
type Case = (usize, usize, usize, usize, usize, usize, usize, usize, usize, usize);

const CONVS: [Case; 11] = [
    // Strides that differ by axis, with a kernel that is not square.
    (2, 3, 9, 8, 4, 3, 5, 0, 1, 2),
    (2, 3, 9, 7, 5, 3, 3, 1, 1, 1),
    // Batch 1, one channel, stride 2.
    (1, 1, 8, 8, 4, 3, 3, 2, 1, 1),
    (1, 1, 7, 5, 1, 3, 3, 2, 1, 1),
    // 7×7 kernels, as a net's stem has.
    (2, 4, 11, 13, 3, 7, 7, 1, 3, 3),
    (3, 2, 10, 9, 6, 7, 7, 2, 3, 3),
    // 1×1 projections, stride 2 and no padding.
    (2, 5, 6, 6, 6, 1, 1, 2, 0, 0),
    // A kernel that is not square, padding that differs by axis.
    (2, 3, 8, 9, 4, 3, 5, 1, 1, 2),
    // No padding, a kernel as large as the image.
    (2, 3, 5, 5, 2, 5, 5, 1, 0, 0),
    // Several tiles along every axis of every product; the weight
    // gradient's K split into chunks.
    (4, 16, 16, 16, 32, 3, 3, 1, 1, 1),
    (2, 70, 6, 5, 66, 3, 3, 2, 1, 1),
];

/// The convolution's output, input gradient and weight gradient for the
/// loss `sum(y · r)`, on `device`, through `conv`.
fn forward_and_gradients(
    device: &Device,
    (x, w, r): (&TensorData, &TensorData, &TensorData),
    conv: impl Fn(Tensor<4>, Tensor<4>) -> Tensor<4>,
) -> [Vec<f32>; 3] {
    let device = device.clone().autodiff();
    let x = Tensor::<4>::from_data(x.clone(), &device).require_grad();
    let w = Tensor::<4>::from_data(w.clone(), &device).require_grad();
    let y = conv(x.clone(), w.clone());
    let r = Tensor::<4>::from_data(r.clone(), &device);
    let grads = (y.clone() * r).sum().backward();
    let dx = x.grad(&grads).expect("x's gradient");
    let dw = w.grad(&grads).expect("w's gradient");
    [values(y), values(dx), values(dw)]
}

#[test]
fn the_gpu_convolution_matches_the_cpu_kernels_forward_and_both_gradients() {
    let Some(gpu) = wgpu_device("the_gpu_convolution_matches_the_cpu_kernels") else { return };
    let mut rng = Rng::new(5);
    for (n, cin, h, w, cout, kh, kw, s, ph, pw) in CONVS {
        let [sh, sw] = if s == 0 { [2, 1] } else { [s, s] };
        let what = format!("{n}x{cin}x{h}x{w} -> {cout}, {kh}x{kw} stride {sh},{sw} pad {ph},{pw}");
        let g = geometry(&[n, cin, h, w], &[cout, cin, kh, kw], [sh, sw], [ph, pw]);
        let out = [n, cout, g.out_height(), g.out_width()];
        let (x, wt, r) = (random([n, cin, h, w], &mut rng), random([cout, cin, kh, kw], &mut rng), random(out, &mut rng));
        // The lab's CPU kernels, and burn's own convolution on the CPU.
        let lab_cpu = forward_and_gradients(&Device::flex(), (&x, &wt, &r), |x, w| {
            Tensor::from_dispatch(<Dispatch as LabKernels>::lab_conv2d(x.into_dispatch(), w.into_dispatch(), sh, sw, ph, pw, false))
        });
        let burn_cpu = forward_and_gradients(&Device::flex(), (&x, &wt, &r), |x, w| {
            burn_conv2d(x, w, None, ConvOptions::new([sh, sw], [ph, pw], [1, 1], 1))
        });
        let on_gpu = forward_and_gradients(&gpu, (&x, &wt, &r), |x, w| conv2d_with(&x, &w, [sh, sw], [ph, pw], Kernels::LAB));
        let names = ["output", "input gradient", "weight gradient"];
        for (reference, cpu) in [("the lab's CPU kernels", &lab_cpu), ("burn on the CPU", &burn_cpu)] {
            for (name, (got, want)) in names.iter().zip(on_gpu.iter().zip(cpu)) {
                assert_close(&format!("{what}: {name} against {reference}"), got, want, 1e-4);
            }
        }
    }
}

#[test]
fn the_gpu_kernels_apply_only_to_float32_on_cubecl_devices() {
    let x = Tensor::<4>::zeros([1, 1, 3, 3], &Device::flex());
    let w = Tensor::<4>::zeros([1, 1, 3, 3], &Device::flex());
    assert!(conv2d(&x, &w, [1, 1], [1, 1]).is_none(), "the CPU keeps its own kernels");
    let Some(gpu) = wgpu_device("the_gpu_kernels_apply_only_to_float32_on_cubecl_devices") else { return };
    assert!(uses_gpu_kernels(&gpu) && uses_gpu_kernels(&gpu.clone().autodiff()));
    let x = Tensor::<4>::zeros([1, 1, 3, 3], &gpu);
    let w = Tensor::<4>::zeros([1, 1, 3, 3], &gpu);
    let g = geometry(&x.dims(), &w.dims(), [1, 1], [1, 1]);
    let choice = tune::measure(&gpu, "test".into(), &g, &Pass::ALL);
    let timed = |m: &Option<(f64, f64)>| m.is_some_and(|(lab, burn)| lab > 0.0 && burn > 0.0 && lab.is_finite() && burn.is_finite());
    assert!(choice.millis.iter().all(timed), "{choice:?}");
    // Evaluation times the forward pass only; the gradients stay on burn's.
    let forward = tune::measure(&gpu, "test".into(), &g, &Pass::ALL[..1]);
    assert!(timed(&forward.millis[0]) && forward.millis[1..].iter().all(Option::is_none), "{forward:?}");
    assert!(!forward.kernels.lab(Pass::InputGrad) && !forward.kernels.lab(Pass::WeightGrad));
    let y = conv2d_with(&x, &w, [1, 1], [1, 1], choice.kernels);
    assert_eq!(y.dims(), [1, 1, 3, 3]);
}

#[test]
fn shapes_past_32_bit_indices_or_wgpus_grid_are_left_to_burn() {
    let g = geometry(&[4096, 512, 64, 64], &[512, 512, 3, 3], [1, 1], [1, 1]);
    assert!(!g.fits_kernels(), "indices past 2^31");
    // 128 images of 3x224x224: the input gradient's N is 6.4 M pixels, over
    // 65,535 tiles of 64.
    let g = geometry(&[128, 3, 224, 224], &[64, 3, 7, 7], [2, 2], [3, 3]);
    assert!(!g.fits_kernels(), "more cubes than wgpu launches along one axis");
    let g = geometry(&[128, 64, 32, 32], &[64, 64, 3, 3], [1, 1], [1, 1]);
    assert!(g.fits_kernels());
    let Some(gpu) = wgpu_device("shapes_past_32_bit_indices_or_wgpus_grid_are_left_to_burn") else { return };
    // Channels that do not match, and a kernel larger than the padded
    // image, are not the lab's kernels' to run (burn says what is wrong).
    let x = Tensor::<4>::zeros([1, 2, 3, 3], &gpu);
    assert!(conv2d(&x, &Tensor::<4>::zeros([1, 3, 3, 3], &gpu), [1, 1], [1, 1]).is_none());
    assert!(conv2d(&x, &Tensor::<4>::zeros([1, 2, 7, 7], &gpu), [1, 1], [1, 1]).is_none());
}

#[test]
fn the_gpu_norm_matches_the_cpus_without_underflow_or_overflow() {
    let Some(gpu) = wgpu_device("the_gpu_norm_matches_the_cpus") else { return };
    let mut rng = Rng::new(9);
    // Lengths: one value, one cube's stretch and a little more, many cubes.
    for (len, scale) in [(1, 1.0f32), (4097, 1.0), (300_001, 1.0), (300_001, 1e-25), (50_000, 1e30), (10, 0.0)] {
        let values: Vec<f32> = (0..len).map(|_| rng.normal() as f32 * scale).collect();
        let data = TensorData::new(values, [len]);
        let want = crate::model::l2_norm(Tensor::<1>::from_data(data.clone(), &Device::flex())).into_scalar::<f32>();
        let got = l2_norm(&Tensor::<1>::from_data(data, &gpu)).expect("on wgpu").into_scalar::<f32>();
        assert!(want.is_finite() && (scale == 0.0 || want > 0.0), "{len} values of scale {scale}: the CPU's norm {want}");
        assert!((got - want).abs() <= 1e-5 * want, "{len} values of scale {scale}: {got} against the CPU's {want}");
    }
    let special = |values: Vec<f32>| {
        let n = values.len();
        l2_norm(&Tensor::<1>::from_data(TensorData::new(values, [n]), &gpu)).unwrap().into_scalar::<f32>()
    };
    assert_eq!(special(vec![3.0, 0.0, -4.0]), 5.0);
    assert_eq!(special(vec![1.0, f32::INFINITY, 2.0]), f32::INFINITY);
    assert_eq!(special(vec![f32::INFINITY, -f32::INFINITY]), f32::INFINITY);
    assert_eq!(special(vec![0.0; 5000]), 0.0);
    assert!(special(vec![1.0, f32::NAN, 2.0]).is_nan(), "a NaN gradient reads as NaN, never as a number");
}

#[test]
fn the_gpu_tap_passes_the_gradient_through_and_hands_its_norm_to_the_probe() {
    let Some(gpu) = wgpu_device("the_gpu_tap_passes_the_gradient_through") else { return };
    let device = gpu.autodiff();
    let mut rng = Rng::new(4);
    let (x, r) = (random([2, 3, 5, 7], &mut rng), random([2, 3, 5, 7], &mut rng));
    let x = Tensor::<4>::from_data(x, &device).require_grad();
    let leaf =
        crate::model::cpu_ops::tap_leaf(&device, burn::tensor::DType::F32, 210).expect("a wgpu training device takes the lab's taps");
    let y = crate::model::cpu_ops::tap(x.clone() * 2.0, &leaf);
    let r = Tensor::<4>::from_data(r, &device);
    let grads = (y * r.clone()).sum().backward();
    let dx = values(x.grad(&grads).unwrap());
    let want_dx: Vec<f32> = values(r.clone().inner()).iter().map(|v| v * 2.0).collect();
    assert_close("x's gradient through the tap", &dx, &want_dx, 1e-6);
    let norm = leaf.grad(&grads).expect("the probe's gradient").into_scalar::<f32>();
    let want = values(r.inner()).iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>().sqrt() as f32;
    assert!((norm - want).abs() <= 1e-5 * want, "{norm} against {want}");
}
