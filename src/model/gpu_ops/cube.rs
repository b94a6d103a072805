//! The extension's operations on burn's cubecl backend: each launches the
//! lab's implicit-GEMM kernel for its pass (or, for the forward pass when
//! asked, burn's convolution).

use burn::backend::ops::{FloatTensorOps, ModuleOps};
use burn::tensor::{DType, Shape};
use burn_cubecl::CubeBackend;
use burn_cubecl::cubecl::prelude::{BufferArg, CubeCount, CubeDim};
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;
use burn_cubecl::tensor::CubeTensor;

use super::{GpuKernels, Kernels, geometry, options};
use crate::kernels::conv::ConvGeometry;
use crate::kernels::cube::{NORM_UNITS, Pass, UNITS, conv_gemm, norm_finish, norm_partials, norm_split, sum_partials};

impl GpuKernels for CubeBackend {
    fn gpu_conv2d(
        x: CubeTensor,
        weight: CubeTensor,
        stride_h: usize,
        stride_w: usize,
        pad_h: usize,
        pad_w: usize,
        kernels: u8,
    ) -> CubeTensor {
        let (stride, padding) = ([stride_h, stride_w], [pad_h, pad_w]);
        if !Kernels(kernels).lab(Pass::Forward) {
            return CubeBackend::conv2d(x, weight, None, options(stride, padding));
        }
        let g = geometry(x.meta.shape(), weight.meta.shape(), stride, padding);
        launch(Pass::Forward, &g, weight, x)
    }

    fn gpu_conv2d_input_grad(
        x: CubeTensor,
        weight: CubeTensor,
        dy: CubeTensor,
        stride_h: usize,
        stride_w: usize,
        pad_h: usize,
        pad_w: usize,
    ) -> CubeTensor {
        let g = geometry(x.meta.shape(), weight.meta.shape(), [stride_h, stride_w], [pad_h, pad_w]);
        launch(Pass::InputGrad, &g, weight, dy)
    }

    fn gpu_conv2d_weight_grad(
        x: CubeTensor,
        weight: CubeTensor,
        dy: CubeTensor,
        stride_h: usize,
        stride_w: usize,
        pad_h: usize,
        pad_w: usize,
    ) -> CubeTensor {
        let g = geometry(x.meta.shape(), weight.meta.shape(), [stride_h, stride_w], [pad_h, pad_w]);
        let shape = weight.meta.shape().clone();
        let partials = launch(Pass::WeightGrad, &g, dy, x);
        let chunks = g.k_split(Pass::WeightGrad).0;
        if chunks == 1 {
            return CubeBackend::float_reshape(partials, shape);
        }
        // The chunks' partial products summed in chunk order.
        let len = shape.num_elements();
        let out = empty_device_contiguous_dtype(partials.client.clone(), partials.device.clone(), shape, DType::F32);
        let units = NORM_UNITS as usize;
        sum_partials::launch(
            &partials.client,
            CubeCount::Static(len.div_ceil(units) as u32, 1, 1),
            CubeDim::new_1d(NORM_UNITS),
            buffer(&partials),
            buffer(&out),
            chunks as u32,
            len as u32,
        );
        out
    }

    fn gpu_l2_norm(x: CubeTensor) -> CubeTensor {
        let x = into_contiguous(x);
        let len = x.meta.num_elements();
        // The callers check both (`gpu_ops::l2_norm`, `cpu_ops::tap_leaf`).
        assert!(x.dtype == DType::F32 && len < u32::MAX as usize / 2, "the GPU norm takes float32 tensors of under 2^31 values");
        let (cubes, per_cube) = norm_split(len);
        let new = |n: usize| empty_device_contiguous_dtype(x.client.clone(), x.device.clone(), Shape::new([n]), DType::F32);
        let (partial_m, partial_s, out) = (new(cubes), new(cubes), new(1));
        let units = CubeDim::new_1d(NORM_UNITS);
        norm_partials::launch(
            &x.client,
            CubeCount::Static(cubes as u32, 1, 1),
            units,
            buffer(&x),
            buffer(&partial_m),
            buffer(&partial_s),
            len as u32,
            per_cube as u32,
        );
        norm_finish::launch(
            &x.client,
            CubeCount::Static(1, 1, 1),
            units,
            buffer(&partial_m),
            buffer(&partial_s),
            buffer(&out),
            cubes as u32,
        );
        out
    }

    fn gpu_tap(x: CubeTensor, _probe: CubeTensor) -> CubeTensor {
        x
    }
}

/// `t`'s buffer as a kernel argument.
fn buffer(t: &CubeTensor) -> BufferArg {
    // SAFETY: every tensor handed to the lab's kernels is contiguous, so its
    // buffer holds exactly its elements; the kernels' loads and stores check
    // their indices against the geometry or length they are given, which
    // `launch` and `gpu_l2_norm` check against these buffers first.
    unsafe { BufferArg::from_raw_parts(t.handle.clone(), t.meta.num_elements()) }
}

/// Runs `pass`'s product of `a` and `b` (see [`crate::kernels::cube`]) into
/// a new tensor: the convolution's output or input gradient, or the weight
/// gradient's partial products (one per K chunk, stacked on axis 0).
fn launch(pass: Pass, g: &ConvGeometry, a: CubeTensor, b: CubeTensor) -> CubeTensor {
    let (a, b) = (into_contiguous(a), into_contiguous(b));
    // The kernel checks its indices against the geometry, not against the
    // buffers: the buffers must be the geometry's (the callers check it;
    // this keeps a mismatch from reading out of bounds).
    let lengths = match pass {
        Pass::Forward => [g.weight_len(), g.batch * g.in_image()],
        Pass::InputGrad => [g.weight_len(), g.batch * g.out_image()],
        Pass::WeightGrad => [g.batch * g.out_image(), g.batch * g.in_image()],
    };
    assert!(
        g.validate().is_ok() && g.fits_kernels() && lengths == [a.meta.num_elements(), b.meta.num_elements()],
        "the GPU convolution's tensors do not match its geometry {g:?}"
    );
    assert!(a.dtype == DType::F32 && b.dtype == DType::F32, "the GPU convolution takes float32 tensors");
    let shape = match pass {
        Pass::Forward => Shape::new([g.batch, g.out_channels, g.out_height(), g.out_width()]),
        Pass::InputGrad => Shape::new([g.batch, g.in_channels, g.in_height, g.in_width]),
        Pass::WeightGrad => Shape::new([g.k_split(pass).0, g.out_channels * g.in_channels * g.kernel[0] * g.kernel[1]]),
    };
    let out = empty_device_contiguous_dtype(a.client.clone(), a.device.clone(), shape, DType::F32);
    conv_gemm::launch(
        &a.client,
        g.cubes(pass),
        CubeDim::new_2d(UNITS, UNITS),
        buffer(&a),
        buffer(&b),
        buffer(&out),
        g.dims(pass),
        pass.code(),
    );
    out
}
