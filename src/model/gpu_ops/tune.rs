//! Never slower than burn: the first time a convolution shape runs on a
//! device, each of its three passes is timed on the lab's kernel and on
//! burn's, and the faster is kept for the rest of the session (per device,
//! so per adapter). `DEPTHLAB_GPU_KERNELS=lab` or `=burn` skips the timing
//! and takes one side everywhere (to compare them, or to step around one).

use std::sync::Mutex;
use std::time::Instant;

use burn::backend::ops::ModuleOps;
use burn::backend::{Dispatch, tensor::FloatTensor};
use burn::prelude::*;
use burn::tensor::Distribution;

use super::{GpuKernels, Kernels, options};
use crate::kernels::conv::ConvGeometry;
use crate::kernels::cube::Pass;

/// How the passes' kernels are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Time both on first use of a shape; keep the faster (the default).
    Auto,
    /// The lab's kernels everywhere.
    Lab,
    /// burn's everywhere.
    Burn,
}

impl Policy {
    /// The policy this process uses, from `DEPTHLAB_GPU_KERNELS` (read once).
    pub fn current() -> Policy {
        static POLICY: std::sync::OnceLock<Policy> = std::sync::OnceLock::new();
        *POLICY.get_or_init(|| Policy::parse(std::env::var("DEPTHLAB_GPU_KERNELS").ok().as_deref()))
    }

    fn parse(text: Option<&str>) -> Policy {
        match text {
            None | Some("auto") => Policy::Auto,
            Some("lab") => Policy::Lab,
            Some("burn") => Policy::Burn,
            Some(other) => {
                eprintln!("depthlab: DEPTHLAB_GPU_KERNELS={other} is not auto, lab or burn; using auto");
                Policy::Auto
            }
        }
    }
}

/// One shape's timings and the choice made from them.
#[derive(Clone, Debug, PartialEq)]
pub struct Choice {
    /// The device, as burn names it.
    pub device: String,
    pub geometry: ConvGeometry,
    /// Milliseconds per pass, in [`Pass::ALL`]'s order:
    /// (the lab's kernel, burn's); `None` for a pass not yet timed (a
    /// shape only evaluated so far needs no gradients).
    pub millis: [Option<(f64, f64)>; 3],
    pub kernels: Kernels,
}

static CHOICES: Mutex<Vec<Choice>> = Mutex::new(Vec::new());

/// Every choice made in this process so far, in the order first made.
pub fn choices() -> Vec<Choice> {
    CHOICES.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// The kernels for a convolution of geometry `g` on `device`, timing the
/// `wanted` passes not timed yet (the others run burn's until a use that
/// wants them times them: evaluation wants only the forward pass, a net's
/// first convolution no input gradient).
pub fn kernels_for(device: &Device, g: &ConvGeometry, wanted: &[Pass]) -> Kernels {
    match Policy::current() {
        Policy::Lab => Kernels::LAB,
        Policy::Burn => Kernels::BURN,
        Policy::Auto => {
            let device = device.clone().inner();
            let name = format!("{device:?}");
            // One lock over the lookup, the timing and the update: threads
            // meeting a new shape together time it once, and no timing
            // waits on another thread's kernels.
            let mut all = CHOICES.lock().unwrap_or_else(|e| e.into_inner());
            let i = match all.iter().position(|c| c.device == name && c.geometry == *g) {
                Some(i) => i,
                None => {
                    all.push(Choice { device: name.clone(), geometry: *g, millis: [None; 3], kernels: Kernels::BURN });
                    all.len() - 1
                }
            };
            let missing: Vec<Pass> = wanted.iter().copied().filter(|&p| all[i].millis[p.index()].is_none()).collect();
            if !missing.is_empty() {
                let new = measure(&device, name, g, &missing);
                for &p in &missing {
                    all[i].millis[p.index()] = new.millis[p.index()];
                    all[i].kernels = all[i].kernels.with(p, new.kernels.lab(p));
                }
            }
            all[i].kernels
        }
    }
}

/// Times each of `passes` of `g` both ways on `device` (without
/// autodiff), on random tensors of the convolution's shapes; the passes
/// not timed stay on burn's kernels.
pub fn measure(device: &Device, name: String, g: &ConvGeometry, passes: &[Pass]) -> Choice {
    let normal = |shape: [usize; 4]| Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), device);
    let x = normal([g.batch, g.in_channels, g.in_height, g.in_width]);
    let w = normal([g.out_channels, g.in_channels, g.kernel[0], g.kernel[1]]);
    let dy = normal([g.batch, g.out_channels, g.out_height(), g.out_width()]);
    let (stride, padding) = (g.stride, g.padding);
    let ([sh, sw], [ph, pw]) = (stride, padding);
    let d = |t: &Tensor<4>| t.clone().into_dispatch();
    let lab = |pass: Pass| -> FloatTensor<Dispatch> {
        match pass {
            Pass::Forward => <Dispatch as GpuKernels>::gpu_conv2d(d(&x), d(&w), sh, sw, ph, pw, Kernels::LAB.0),
            Pass::InputGrad => <Dispatch as GpuKernels>::gpu_conv2d_input_grad(d(&x), d(&w), d(&dy), sh, sw, ph, pw),
            Pass::WeightGrad => <Dispatch as GpuKernels>::gpu_conv2d_weight_grad(d(&x), d(&w), d(&dy), sh, sw, ph, pw),
        }
    };
    let burn = |pass: Pass| -> FloatTensor<Dispatch> {
        let o = options(stride, padding);
        match pass {
            Pass::Forward => <Dispatch as ModuleOps<Dispatch>>::conv2d(d(&x), d(&w), None, o),
            Pass::InputGrad => <Dispatch as ModuleOps<Dispatch>>::conv2d_x_backward(d(&x), d(&w), d(&dy), o),
            Pass::WeightGrad => <Dispatch as ModuleOps<Dispatch>>::conv2d_weight_backward(d(&x), d(&w), d(&dy), o),
        }
    };
    let millis =
        Pass::ALL.map(|pass| passes.contains(&pass).then(|| (best_millis(device, || lab(pass)), best_millis(device, || burn(pass)))));
    let kernels =
        Pass::ALL.iter().zip(&millis).fold(Kernels::BURN, |k, (&pass, timed)| k.with(pass, timed.is_some_and(|(lab, burn)| lab < burn)));
    Choice { device: name, geometry: *g, millis, kernels }
}

/// The fastest of three timed runs of `run` after one untimed one (which
/// compiles the kernels and lets burn's own autotune settle), waiting for
/// the device each time.
fn best_millis(device: &Device, run: impl Fn() -> FloatTensor<Dispatch>) -> f64 {
    let wait = |out: FloatTensor<Dispatch>| {
        // Held until the device is done, so the work is never skipped as
        // unread; a failed wait leaves the timing longer, never shorter.
        let out = Tensor::<4>::from_dispatch(out);
        let _ = device.sync();
        drop(out);
    };
    wait(run());
    (0..3)
        .map(|_| {
            let start = Instant::now();
            wait(run());
            start.elapsed().as_secs_f64() * 1e3
        })
        .fold(f64::INFINITY, f64::min)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_is_read_from_its_three_names() {
        assert_eq!(Policy::parse(None), Policy::Auto);
        assert_eq!(Policy::parse(Some("auto")), Policy::Auto);
        assert_eq!(Policy::parse(Some("lab")), Policy::Lab);
        assert_eq!(Policy::parse(Some("burn")), Policy::Burn);
        assert_eq!(Policy::parse(Some("fastest")), Policy::Auto);
    }

    #[test]
    fn the_kernel_bits_name_each_pass() {
        let k = Kernels::BURN.with(Pass::InputGrad, true);
        assert!(!k.lab(Pass::Forward) && k.lab(Pass::InputGrad) && !k.lab(Pass::WeightGrad));
        assert_eq!(Kernels::LAB.with(Pass::InputGrad, false).with(Pass::Forward, false), Kernels(4));
        assert!(Pass::ALL.iter().all(|&p| Kernels::LAB.lab(p) && !Kernels::BURN.lab(p)));
        assert_eq!(Pass::ALL.map(Pass::index), [0, 1, 2]);
    }
}
