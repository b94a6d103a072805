//! The convolution kernels against their definitions.

use super::super::unfold::unfold;
use super::*;

/// Every multiply-add of the convolution's definition, in order
/// (image, output channel, output position, input channel, tap), as
/// `(output index, input index, weight index)`; taps in the padding are
/// skipped.
pub(in crate::kernels) fn for_each_tap(g: &ConvGeometry, mut visit: impl FnMut(usize, usize, usize)) {
    let (ho, wo) = (g.out_height(), g.out_width());
    for n in 0..g.batch {
        for o in 0..g.out_channels {
            for oh in 0..ho {
                for ow in 0..wo {
                    let y = ((n * g.out_channels + o) * ho + oh) * wo + ow;
                    for c in 0..g.in_channels {
                        for i in 0..g.kernel[0] {
                            for j in 0..g.kernel[1] {
                                let ih = (oh * g.stride[0] + i) as isize - g.padding[0] as isize;
                                let iw = (ow * g.stride[1] + j) as isize - g.padding[1] as isize;
                                if ih < 0 || iw < 0 || ih >= g.in_height as isize || iw >= g.in_width as isize {
                                    continue;
                                }
                                let x = ((n * g.in_channels + c) * g.in_height + ih as usize) * g.in_width + iw as usize;
                                visit(y, x, ((o * g.in_channels + c) * g.kernel[0] + i) * g.kernel[1] + j);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The definition, one multiply-add at a time.
fn naive_forward(g: &ConvGeometry, x: &[f32], w: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    let plane = g.out_plane();
    let mut y: Vec<f64> = (0..g.batch * g.out_image()).map(|k| bias.map_or(0.0, |b| f64::from(b[(k / plane) % g.out_channels]))).collect();
    for_each_tap(g, |yi, xi, wi| y[yi] += f64::from(x[xi] * w[wi]));
    y.into_iter().map(|v| v as f32).collect()
}

/// The input gradient from the definition: each output's gradient
/// sent back along each tap.
fn naive_input_grad(g: &ConvGeometry, dy: &[f32], w: &[f32]) -> Vec<f32> {
    let mut dx = vec![0.0f64; g.batch * g.in_image()];
    for_each_tap(g, |yi, xi, wi| dx[xi] += f64::from(dy[yi]) * f64::from(w[wi]));
    dx.into_iter().map(|v| v as f32).collect()
}

/// `len` values in [−1, 1] from a xorshift stream seeded by `seed`.
pub(in crate::kernels) fn values(len: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2654435761).wrapping_add(1);
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s % 2001) as f32 / 1000.0 - 1.0
        })
        .collect()
}

fn geometries() -> Vec<ConvGeometry> {
    let g = |batch, cin, h, w, cout, k: [usize; 2], s: [usize; 2], p: [usize; 2]| ConvGeometry {
        batch,
        in_channels: cin,
        in_height: h,
        in_width: w,
        out_channels: cout,
        kernel: k,
        stride: s,
        padding: p,
    };
    vec![
        g(2, 3, 8, 8, 4, [3, 3], [1, 1], [1, 1]),
        g(1, 1, 5, 7, 2, [3, 3], [2, 2], [1, 1]),
        g(3, 2, 9, 6, 5, [3, 3], [2, 2], [1, 1]),
        g(2, 4, 6, 6, 3, [1, 1], [1, 1], [0, 0]),
        g(2, 4, 7, 7, 3, [1, 1], [2, 2], [0, 0]),
        g(1, 2, 4, 5, 2, [3, 2], [1, 2], [0, 1]),
        g(17, 3, 4, 4, 2, [3, 3], [1, 1], [2, 2]),
        g(1, 1, 1, 1, 1, [1, 1], [1, 1], [0, 0]),
        g(2, 2, 5, 5, 3, [5, 5], [1, 1], [2, 2]),
    ]
}

#[test]
fn valid_ranges_cover_exactly_the_inside_positions() {
    for stride in 1..4 {
        for pad in 0..3 {
            for offset in 0..5 {
                for size in 1..8 {
                    let outputs = 10;
                    let (lo, hi) = valid_range(offset, stride, pad, size, outputs);
                    for o in 0..outputs {
                        let pos = (o * stride + offset) as isize - pad as isize;
                        let inside = pos >= 0 && pos < size as isize;
                        assert_eq!(inside, (lo..hi).contains(&o), "o {o} s {stride} p {pad} off {offset} size {size}");
                    }
                }
            }
        }
    }
}

#[test]
fn the_stride_1_unfold_matches_the_general_one() {
    for (t, g) in geometries().iter().enumerate().filter(|(_, g)| g.stride == [1, 1]) {
        let image = values(g.in_image(), 900 + t as u32);
        let mut general = vec![0.0f32; g.patch_len() * g.out_plane()];
        unfold(g, &image, &mut general);
        let mut scratch = Patches::default();
        // Twice, with a larger geometry in between: the buffers are
        // reused, their borders must be cleared again.
        assert_eq!(scratch.of(g, &image), &general[..], "{g:?}");
        let big = ConvGeometry { in_height: g.in_height + 3, in_width: g.in_width + 2, ..*g };
        let _ = scratch.of(&big, &values(big.in_image(), 7));
        assert_eq!(scratch.of(g, &image), &general[..], "{g:?} after a larger image");
    }
}

#[test]
fn forward_matches_the_definition() {
    for (t, g) in geometries().iter().enumerate() {
        let x = values(g.batch * g.in_image(), t as u32);
        let w = values(g.weight_len(), 100 + t as u32);
        let b = values(g.out_channels, 200 + t as u32);
        for bias in [None, Some(&b[..])] {
            let got = forward(g, &x, &w, bias);
            let want = naive_forward(g, &x, &w, bias);
            for (a, e) in got.iter().zip(&want) {
                assert!((a - e).abs() <= 1e-5 * (1.0 + e.abs()), "{g:?}: {a} vs {e}");
            }
        }
    }
}

#[test]
fn the_fused_epilogue_gives_the_bits_of_the_separate_passes() {
    for (t, g) in geometries().iter().enumerate() {
        let x = values(g.batch * g.in_image(), 600 + t as u32);
        let w = values(g.weight_len(), 700 + t as u32);
        let scale = values(g.out_channels, 800 + t as u32);
        let shift = values(g.out_channels, 900 + t as u32);
        let residual = values(g.batch * g.out_image(), 1000 + t as u32);
        let z = forward(g, &x, &w, None);
        let p = g.out_plane();
        for relu in [false, true] {
            let want: Vec<f32> = z
                .iter()
                .enumerate()
                .map(|(i, &v)| {
                    let o = (i / p) % g.out_channels;
                    let y = v * scale[o] + shift[o] + residual[i];
                    if relu { y.max(0.0) } else { y }
                })
                .collect();
            let epilogue = Epilogue { scale: Some(&scale), shift: Some(&shift), residual: Some(&residual), relu, moments: None };
            assert_eq!(forward_fused(g, &x, &w, &epilogue), want, "{g:?}");
        }
    }
}

#[test]
fn an_input_gradient_plus_another_is_the_sum_of_the_two() {
    for (t, g) in geometries().iter().enumerate() {
        let dy = values(g.batch * g.out_image(), 1100 + t as u32);
        let w = values(g.weight_len(), 1200 + t as u32);
        let other = values(g.batch * g.in_image(), 1300 + t as u32);
        let want: Vec<f32> = backward_input(g, &dy, &w).iter().zip(&other).map(|(a, b)| a + b).collect();
        assert_eq!(backward_input_plus(g, &dy, &w, Some(&other)), want, "{g:?}");
        assert_eq!(backward_input_plus(g, &dy, &w, None), backward_input(g, &dy, &w), "{g:?}");
    }
}

/// The gradients are the adjoints of the forward map: for any `dy`,
/// `<forward(x), dy> = <x, backward_input(dy)> = <w, backward_weight(x, dy)>`.
#[test]
fn gradients_are_the_adjoints_of_the_forward_map() {
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x * y) as f64).sum::<f64>();
    for (t, g) in geometries().iter().enumerate() {
        let x = values(g.batch * g.in_image(), 300 + t as u32);
        let w = values(g.weight_len(), 400 + t as u32);
        let dy = values(g.batch * g.out_image(), 500 + t as u32);
        let y = forward(g, &x, &w, None);
        let dx = backward_input(g, &dy, &w);
        let (dw, db) = backward_weight(g, &x, &dy, true);
        let reference = dot(&y, &dy);
        let tol = 1e-4 * (1.0 + reference.abs());
        assert!((dot(&x, &dx) - reference).abs() < tol, "{g:?}: input gradient");
        assert!((dot(&w, &dw) - reference).abs() < tol, "{g:?}: weight gradient");
        let db = db.expect("bias gradient was asked for");
        let sums: Vec<f32> = (0..g.out_channels)
            .map(|o| (0..g.batch).map(|n| dy[(n * g.out_channels + o) * g.out_plane()..][..g.out_plane()].iter().sum::<f32>()).sum())
            .collect();
        for (a, e) in db.iter().zip(&sums) {
            assert!((a - e).abs() < 1e-4 * (1.0 + e.abs()), "{g:?}: bias gradient {a} vs {e}");
        }
    }
}

#[test]
fn the_weight_gradient_does_not_depend_on_the_number_of_threads() {
    // The patch matrix path, and the outer products' (3×3, stride 1).
    let wide = ConvGeometry { batch: 19, in_channels: 3, in_height: 28, in_width: 28, out_channels: 5, ..geometries()[0] };
    for g in [geometries()[2], geometries()[6], wide] {
        let x = values(g.batch * g.in_image(), 1);
        let dy = values(g.batch * g.out_image(), 2);
        let run = |threads| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("a thread pool");
            pool.install(|| backward_weight(&g, &x, &dy, true))
        };
        // A training run's team of threads, too.
        let team = crate::kernels::team::with_team(3, || backward_weight(&g, &x, &dy, true));
        assert_eq!(run(1), run(3), "{g:?}");
        assert_eq!(run(1), team, "{g:?}");
    }
}

#[test]
fn both_methods_match_the_definition() {
    for (t, g) in geometries().iter().enumerate() {
        let x = values(g.batch * g.in_image(), 40 + t as u32);
        let w = values(g.weight_len(), 140 + t as u32);
        let b = values(g.out_channels, 240 + t as u32);
        let want = naive_forward(g, &x, &w, Some(&b));
        for method in [Method::Patches, Method::Shifted] {
            let got = forward_with(g, &x, &w, &Epilogue { shift: Some(&b), ..Epilogue::default() }, method);
            for (a, e) in got.iter().zip(&want) {
                assert!((a - e).abs() <= 1e-5 * (1.0 + e.abs()), "{g:?} {method:?}: {a} vs {e}");
            }
        }
    }
}

/// The outer-product weight gradient against the patch matrix's and the
/// definition (a forward convolution's adjoint), on 3×3 shapes at strides 1 and 2
/// with every remainder of the output-channel blocks, one channel,
/// batch 1, a batch that is not a whole number of groups, odd and flat
/// images, images of one row or column, and paddings 0 and 1 (padding 2
/// takes the patch matrix).
#[test]
fn the_outer_weight_gradient_matches_the_patch_matrix() {
    if !crate::kernels::simd::has_avx512() {
        eprintln!("no AVX-512: the outer-product weight gradient never runs here");
        return;
    }
    let g = |batch, cin, h, w, cout, pad| ConvGeometry {
        batch,
        in_channels: cin,
        in_height: h,
        in_width: w,
        out_channels: cout,
        kernel: [3, 3],
        stride: [1, 1],
        padding: [pad, pad],
    };
    let strided = |g: ConvGeometry| ConvGeometry { stride: [2, 2], ..g };
    let shapes = [
        strided(g(3, 4, 8, 8, 16, 1)),
        strided(g(2, 3, 9, 7, 5, 1)),
        strided(g(5, 2, 6, 6, 33, 0)),
        strided(g(1, 1, 3, 3, 1, 1)),
        g(1, 1, 3, 3, 1, 0),
        g(1, 1, 5, 7, 1, 1),
        g(2, 3, 8, 8, 4, 1),
        g(9, 2, 7, 5, 5, 1),
        g(3, 4, 6, 9, 6, 1),
        g(17, 3, 4, 4, 7, 0),
        g(2, 3, 1, 9, 5, 1),
        g(2, 3, 9, 1, 5, 1),
        strided(g(2, 3, 5, 9, 18, 1)),
        g(2, 16, 32, 32, 16, 1),
        g(8, 5, 1, 1, 2, 1),
        g(4, 2, 11, 3, 8, 0),
        g(3, 7, 8, 8, 64, 1),
        g(2, 5, 6, 5, 37, 1),
        g(9, 4, 5, 5, 80, 0),
    ];
    assert_eq!(WeightMethod::best(&g(1, 1, 5, 5, 1, 2)), WeightMethod::Patches, "padding 2");
    for (t, g) in shapes.iter().enumerate() {
        assert_eq!(WeightMethod::best(g), WeightMethod::Outer, "{g:?}");
        let x = values(g.batch * g.in_image(), 700 + t as u32);
        let dy = values(g.batch * g.out_image(), 800 + t as u32);
        let (patches, db2) = backward_weight_by(g, &x, &dy, true, WeightMethod::Patches);
        let scale = patches.iter().fold(1.0f32, |m, v| m.max(v.abs()));
        let w = values(g.weight_len(), 900 + t as u32);
        let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum::<f64>();
        let y = naive_forward(g, &x, &w, None);
        let (outer, db1) = backward_weight_by(g, &x, &dy, true, WeightMethod::Outer);
        assert_eq!(db1, db2, "{g:?}: bias gradient");
        for (i, (a, b)) in outer.iter().zip(&patches).enumerate() {
            assert!((a - b).abs() <= 1e-5 * scale, "{g:?}[{i}]: outer {a} vs patches {b}");
        }
        // The definition: the forward convolution's adjoint.
        assert!((dot(&w, &outer) - dot(&y, &dy)).abs() < 1e-4 * (1.0 + dot(&y, &dy).abs()), "{g:?}: adjoint");
    }
}

/// The direct kernel against the definition and the other methods, on
/// 3×3 padding-1 shapes at strides 1 and 2 with every remainder of its
/// register blocks (output channels 1–13, planes that end inside a
/// vector), one channel, batch 1, a 1×1 image, single rows and columns;
/// with an epilogue, and as the input gradient (against the definition
/// and through the adjoint).
#[test]
fn the_direct_kernel_matches_the_definition() {
    if !crate::kernels::simd::has_avx512() {
        eprintln!("no AVX-512: the direct kernel never runs here");
        return;
    }
    let g = |batch, cin, h, w, cout| ConvGeometry {
        batch,
        in_channels: cin,
        in_height: h,
        in_width: w,
        out_channels: cout,
        kernel: [3, 3],
        stride: [1, 1],
        padding: [1, 1],
    };
    let strided = |g: ConvGeometry| ConvGeometry { stride: [2, 2], ..g };
    let shapes = [
        g(1, 1, 1, 1, 1),
        g(1, 1, 5, 7, 1),
        g(2, 3, 8, 8, 16),
        g(3, 5, 14, 14, 7),
        g(2, 16, 32, 32, 16),
        g(17, 2, 4, 4, 13),
        g(1, 4, 1, 9, 5),
        g(1, 3, 9, 1, 2),
        g(2, 64, 8, 8, 64),
        g(1, 2, 3, 17, 11),
        strided(g(2, 3, 8, 8, 16)),
        strided(g(1, 1, 2, 2, 1)),
        strided(g(3, 5, 14, 10, 7)),
        strided(g(2, 16, 32, 32, 32)),
        strided(g(17, 2, 4, 6, 13)),
        strided(g(1, 4, 2, 18, 5)),
        strided(g(2, 9, 36, 4, 3)),
    ];
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum::<f64>();
    for (t, g) in shapes.iter().enumerate() {
        let tiled = crate::kernels::winograd::applies(g);
        assert_eq!(Method::best(g), if tiled { Method::Winograd } else { Method::Direct }, "{g:?}");
        let x = values(g.batch * g.in_image(), 1100 + t as u32);
        let w = values(g.weight_len(), 1200 + t as u32);
        let shift = values(g.out_channels, 1300 + t as u32);
        let residual = values(g.batch * g.out_image(), 1400 + t as u32);
        let epilogue = Epilogue { shift: Some(&shift), residual: Some(&residual), relu: true, ..Epilogue::default() };
        let direct = forward_with(g, &x, &w, &epilogue, Method::Direct);
        let shifted = forward_with(g, &x, &w, &epilogue, Method::Shifted);
        // Where Winograd does not apply, this is the direct kernel again.
        let winograd = forward_with(g, &x, &w, &epilogue, Method::Winograd);
        let want = naive_forward(g, &x, &w, Some(&shift));
        for (i, (((a, s), t), e)) in direct.iter().zip(&shifted).zip(&winograd).zip(&want).enumerate() {
            let e = (e + residual[i]).max(0.0);
            assert!((a - e).abs() <= 1e-5 * (1.0 + e.abs()), "{g:?}[{i}]: direct {a} vs definition {e}");
            assert!((a - s).abs() <= 1e-5 * (1.0 + e.abs()), "{g:?}[{i}]: direct {a} vs shifted {s}");
            assert!((t - e).abs() <= 1e-5 * (1.0 + e.abs()), "{g:?}[{i}]: Winograd {t} vs definition {e}");
        }
        let dy = values(g.batch * g.out_image(), 1500 + t as u32);
        let dx = backward_input(g, &dy, &w);
        let reference = dot(&naive_forward(g, &x, &w, None), &dy);
        assert!((dot(&x, &dx) - reference).abs() < 1e-4 * (1.0 + reference.abs()), "{g:?}: input gradient");
        for (i, (a, e)) in dx.iter().zip(naive_input_grad(g, &dy, &w)).enumerate() {
            assert!((a - e).abs() <= 1e-5 * (1.0 + e.abs()), "{g:?}[{i}]: input gradient {a} vs definition {e}");
        }
    }
}

#[test]
fn the_shifted_copies_are_rebuilt_when_their_buffers_are_reused() {
    for g in geometries().iter().filter(|g| super::super::shifted::applies(g)) {
        let g = ConvGeometry { batch: 1, ..*g };
        let x = values(g.in_image(), 17);
        let w = values(g.weight_len(), 18);
        let want = naive_forward(&g, &x, &w, None);
        let big = ConvGeometry { in_height: g.in_height + 3, in_width: g.in_width + 2, ..g };
        // On one thread, so that every call uses the same scratch space.
        let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().expect("a thread pool");
        let (first, again) = pool.install(|| {
            let first = forward_with(&g, &x, &w, &Epilogue::default(), Method::Shifted);
            let _ = forward_with(&big, &values(big.in_image(), 7), &values(big.weight_len(), 8), &Epilogue::default(), Method::Shifted);
            (first, forward_with(&g, &x, &w, &Epilogue::default(), Method::Shifted))
        });
        assert_eq!(first, again, "{g:?} after a larger image");
        for (a, e) in first.iter().zip(&want) {
            assert!((a - e).abs() <= 1e-5 * (1.0 + e.abs()), "{g:?}: {a} vs {e}");
        }
    }
}

#[test]
fn bad_geometry_is_refused() {
    let mut g = geometries()[0];
    g.kernel = [11, 11];
    assert!(g.validate().unwrap_err().to_string().contains("does not fit"));
    g.kernel = [3, 3];
    g.stride = [0, 1];
    assert!(g.validate().is_err());
}

/// The moments a forward convolution takes on the way give the batch
/// statistics of a separate pass over its output, to the bit, by every
/// method, and change nothing in the output.
#[test]
fn the_moments_taken_on_the_way_give_the_statistics_of_a_separate_pass() {
    use super::super::batchnorm::{NormShape, statistics, statistics_from_moments};
    for (t, g) in geometries().iter().enumerate() {
        let x = values(g.batch * g.in_image(), 300 + t as u32);
        let w = values(g.weight_len(), 400 + t as u32);
        let b = values(g.out_channels, 500 + t as u32);
        let shape = NormShape { batch: g.batch, channels: g.out_channels, plane: g.out_plane() };
        let plain = Epilogue { shift: Some(&b), ..Epilogue::default() };
        let mut methods = vec![Method::Patches];
        if super::super::shifted::applies(g) {
            methods.push(Method::Shifted);
        }
        if super::super::direct::applies(g) {
            methods.push(Method::Direct);
            if super::super::winograd::fits(g) {
                methods.push(Method::Winograd);
            }
        }
        for method in methods {
            let mut moments = vec![[f32::NAN; 3]; g.batch * g.out_channels];
            let out = MomentsOut { row: moments.as_mut_ptr(), channels: g.out_channels, _rows: std::marker::PhantomData };
            let y = forward_with(g, &x, &w, &Epilogue { moments: Some(out), ..plain }, method);
            assert_eq!(y, forward_with(g, &x, &w, &plain, method), "{method:?} {g:?}");
            assert_eq!(statistics_from_moments(&shape, &moments), statistics(&shape, &y), "{method:?} {g:?}");
        }
        let (y, moments) = forward_with_moments(g, &x, &w, Some(&b));
        assert_eq!(y, forward(g, &x, &w, Some(&b)), "{g:?}");
        assert_eq!(statistics_from_moments(&shape, &moments), statistics(&shape, &y), "{g:?}");
    }
}
