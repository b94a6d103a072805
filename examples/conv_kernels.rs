//! Times each way the lab's CPU kernels compute a convolution on the
//! shapes of the CIFAR ResNets (3×3, 16/32/64 channels at 32×32/16×16/8×8,
//! and the two stride-2 layers), forward and both gradients, and prints
//! GFLOP/s (multiply-adds of the whole 3×3 window counted twice, the
//! padding included): the figures behind the choices in
//! `src/kernels/conv/mod.rs` (with `DEPTHLAB_CONV_TAPS` set, `Direct` is
//! the tap kernel where the channel-vectorised one would run). Then batch
//! norm's passes on the same shapes, with the memory bandwidth each
//! reaches.
//!
//! ```sh
//! cargo run --release --example conv_kernels -- [BATCH] [norm | WORD]
//! ```
//!
//! `norm` times batch norm's passes alone; any other word times only the
//! convolution passes whose label holds it (`Outer`, `Direct`, `input`),
//! for a profile of one kernel.

use std::time::Instant;

use depthlab::kernels::conv::{self, ConvGeometry, Epilogue, Method, WeightMethod};

/// The best of twelve runs, in seconds.
fn best_of(mut f: impl FnMut()) -> f64 {
    (0..12)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::MAX, f64::min)
}

fn main() {
    let batch: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(128);
    let threads = rayon::current_num_threads();
    println!("batch {batch}, {threads} threads");
    // The kernels' loops on a team, as in training.
    depthlab::kernels::team::with_team(threads, || match std::env::args().nth(2).as_deref() {
        Some("norm") => batch_norm_passes(),
        Some(word) => convolutions(batch, word),
        None => {
            convolutions(batch, "");
            batch_norm_passes();
        }
    });
}

/// Each convolution kernel on the ResNets' shapes whose label holds
/// `word`.
fn convolutions(batch: usize, word: &str) {
    for (c, hw, stride) in [(16usize, 32usize, 1usize), (32, 16, 1), (64, 8, 1), (16, 32, 2), (32, 16, 2)] {
        let g = ConvGeometry {
            batch,
            in_channels: c,
            in_height: hw,
            in_width: hw,
            out_channels: c * stride,
            kernel: [3, 3],
            stride: [stride, stride],
            padding: [1, 1],
        };
        let x: Vec<f32> = (0..g.batch * g.in_image()).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect();
        let w: Vec<f32> = (0..g.weight_len()).map(|i| ((i * 104729) % 1000) as f32 / 1000.0 - 0.5).collect();
        let flop = 2.0 * (g.batch * g.out_image() * g.patch_len()) as f64;
        let report = |what: String, secs: f64| {
            println!("{c:3} channels {hw:2}x{hw:<2} stride {stride} {what:<22} {:6.2} ms {:5.0} GFLOP/s", secs * 1e3, flop / secs / 1e9)
        };
        let dy: Vec<f32> = (0..g.batch * g.out_image()).map(|i| ((i * 31) % 1000) as f32 / 1000.0 - 0.5).collect();
        let methods: &[Method] = if stride == 1 {
            &[Method::Patches, Method::Shifted, Method::Direct, Method::Winograd]
        } else {
            &[Method::Patches, Method::Direct]
        };
        for &m in methods.iter().filter(|m| format!("forward {m:?}").contains(word)) {
            let secs = best_of(|| {
                std::hint::black_box(conv::forward_with(&g, &x, &w, &Epilogue::default(), m));
            });
            report(format!("forward {m:?}"), secs);
        }
        if "input grad".contains(word) {
            let secs = best_of(|| {
                std::hint::black_box(conv::backward_input(&g, &dy, &w));
            });
            report("input grad".into(), secs);
        }
        let weight_methods = [WeightMethod::Patches, WeightMethod::Outer];
        for m in weight_methods.into_iter().filter(|m| format!("weight grad {m:?}").contains(word)) {
            let secs = best_of(|| {
                std::hint::black_box(conv::backward_weight_by(&g, &x, &dy, false, m));
            });
            report(format!("weight grad {m:?}"), secs);
        }
    }
}

/// Batch norm's passes on the same shapes (batch 128), with the bandwidth
/// each reaches, beside a plain copy: they are bound by memory, not by
/// arithmetic.
fn batch_norm_passes() {
    use depthlab::kernels::batchnorm::{self, NormShape};
    for (c, hw) in [(16usize, 32usize), (32, 16), (64, 8)] {
        let shape = NormShape { batch: 128, channels: c, plane: hw * hw };
        let n = 128 * c * hw * hw;
        let x: Vec<f32> = (0..n).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect();
        let dy: Vec<f32> = (0..n).map(|i| ((i * 31) % 1000) as f32 / 1000.0 - 0.5).collect();
        let gamma = vec![1.0f32; c];
        let beta = vec![0.1f32; c];
        let mb = (n * 4) as f64 / 1e6;
        let t = best_of(|| {
            std::hint::black_box(batchnorm::statistics(&shape, &x));
        });
        println!("{c} ch {hw}x{hw}: statistics {:.2} ms ({:.1} GB/s read)", t * 1e3, mb / t / 1e3);
        let stats = batchnorm::statistics(&shape, &x);
        let t = best_of(|| {
            std::hint::black_box(batchnorm::normalize(&shape, &x, &stats, &gamma, &beta, 1e-5, true));
        });
        println!("{c} ch {hw}x{hw}: normalize {:.2} ms ({:.1} GB/s r+w)", t * 1e3, 2.0 * mb / t / 1e3);
        let t = best_of(|| {
            std::hint::black_box(batchnorm::backward_train(&shape, &x, &dy, &gamma, &beta, &stats, 1e-5, true));
        });
        println!("{c} ch {hw}x{hw}: backward {:.2} ms ({:.1} GB/s, 4 reads + 1 write)", t * 1e3, 5.0 * mb / t / 1e3);
        let y = batchnorm::normalize(&shape, &x, &stats, &gamma, &beta, 1e-5, true);
        let t = best_of(|| {
            std::hint::black_box(batchnorm::backward_train_add_relu(&shape, &x, &y, &dy, &gamma, &beta, &stats, 1e-5));
        });
        println!("{c} ch {hw}x{hw}: join backward {:.2} ms ({:.1} GB/s, 5 reads + 2 writes)", t * 1e3, 7.0 * mb / t / 1e3);
        let t = best_of(|| {
            std::hint::black_box(x.clone());
        });
        println!("{c} ch {hw}x{hw}: clone {:.2} ms ({:.1} GB/s r+w)", t * 1e3, 2.0 * mb / t / 1e3);
    }
}
