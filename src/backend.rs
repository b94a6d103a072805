//! Choosing where tensors live: the GPU through wgpu, an NVIDIA GPU through
//! CUDA, or the CPU (burn's pure-Rust `flex` backend with the lab's own
//! kernels). `auto` takes CUDA when this build has it and an NVIDIA driver
//! answers, else wgpu when a hardware adapter exists, else the CPU; a
//! software rasteriser (llvmpipe, lavapipe, WARP) counts as no GPU, since
//! the CPU backend is much faster than one.
//!
//! CUDA is the cargo feature `cuda` (burn's CUDA backend, which loads the
//! driver at run time). It is not in the default build: burn 0.22's CUDA
//! runtime downloads an LLVM bundle while it compiles, which machines
//! without a network cannot do. A build without it says so when asked for
//! `--backend cuda`, naming the NVIDIA GPU if the driver sees one.

use std::sync::OnceLock;

use burn::prelude::*;
use burn::tensor::DeviceKind;
use burn::tensor::wgpu::wgpu;
use serde::{Deserialize, Serialize};

/// The `--backend` choice.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    #[default]
    Auto,
    Wgpu,
    /// An NVIDIA GPU through CUDA (builds with the `cuda` feature).
    Cuda,
    Cpu,
}

/// The backend a run actually uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Wgpu,
    Cuda,
    Cpu,
}

impl Backend {
    /// Whether tensors live on a GPU.
    pub fn is_gpu(self) -> bool {
        !matches!(self, Backend::Cpu)
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Wgpu => "wgpu",
            Backend::Cuda => "cuda",
            Backend::Cpu => "cpu",
        })
    }
}

/// An NVIDIA GPU the CUDA driver reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CudaGpu {
    /// Device 0's name.
    pub name: String,
    /// GPUs the driver sees.
    pub count: usize,
}

/// Why the NVIDIA driver offers no GPU here.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NoCuda {
    #[error("no NVIDIA driver on this machine (libcuda.so.1 is not installed)")]
    NoDriver,
    #[error("the NVIDIA driver library has no {0}")]
    MissingSymbol(String),
    #[error("the NVIDIA driver did not start (cuInit returned {0})")]
    InitFailed(i32),
    #[error("the NVIDIA driver sees no GPU")]
    NoGpu,
    #[error("CUDA detection is only implemented on Linux")]
    Unsupported,
    /// The choice did not need the driver, so it was not asked.
    #[error("the NVIDIA driver was not asked")]
    NotAsked,
}

/// Why a backend that was asked for cannot run here.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// A CUDA build without a driver (or a GPU).
    #[error("--backend cuda: {0}")]
    NoCuda(NoCuda),
    #[error(
        "--backend cuda: this depthlab was built without its CUDA backend (cargo feature `cuda`); \
         the NVIDIA GPU {0} can train through wgpu instead: --backend wgpu"
    )]
    NotBuilt(String),
    #[error("--backend cuda: {0}; besides, this depthlab was built without its CUDA backend (cargo feature `cuda`)")]
    NotBuiltNoCuda(NoCuda),
}

/// The NVIDIA driver's answer on this machine (asked once per process):
/// the first GPU, or why there is none.
pub fn cuda_driver() -> &'static Result<CudaGpu, NoCuda> {
    static DRIVER: OnceLock<Result<CudaGpu, NoCuda>> = OnceLock::new();
    DRIVER.get_or_init(ask_cuda_driver)
}

#[cfg(target_os = "linux")]
fn ask_cuda_driver() -> Result<CudaGpu, NoCuda> {
    use std::ffi::{CStr, c_char, c_int, c_uint, c_void};
    // SAFETY: dlopen/dlsym are called with NUL-terminated names; each symbol
    // is the CUDA driver API function of that name, called with the
    // signature the CUDA driver API documents (`CUresult` is a C int,
    // `CUdevice` a C int), and with buffers of the sizes passed.
    unsafe {
        let lib = libc::dlopen(c"libcuda.so.1".as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL);
        if lib.is_null() {
            return Err(NoCuda::NoDriver);
        }
        let symbol = |name: &CStr| -> Result<*mut c_void, NoCuda> {
            let f = libc::dlsym(lib, name.as_ptr());
            if f.is_null() { Err(NoCuda::MissingSymbol(name.to_string_lossy().into_owned())) } else { Ok(f) }
        };
        let init: extern "C" fn(c_uint) -> c_int = std::mem::transmute(symbol(c"cuInit")?);
        let count: extern "C" fn(*mut c_int) -> c_int = std::mem::transmute(symbol(c"cuDeviceGetCount")?);
        let device: extern "C" fn(*mut c_int, c_int) -> c_int = std::mem::transmute(symbol(c"cuDeviceGet")?);
        let name: extern "C" fn(*mut c_char, c_int, c_int) -> c_int = std::mem::transmute(symbol(c"cuDeviceGetName")?);
        let code = init(0);
        if code != 0 {
            return Err(NoCuda::InitFailed(code));
        }
        let mut n: c_int = 0;
        if count(&mut n) != 0 || n <= 0 {
            return Err(NoCuda::NoGpu);
        }
        let mut dev: c_int = 0;
        let mut buf = [0 as c_char; 256];
        let named = device(&mut dev, 0) == 0 && name(buf.as_mut_ptr(), buf.len() as c_int - 1, dev) == 0;
        let name = if named { CStr::from_ptr(buf.as_ptr()).to_string_lossy().into_owned() } else { "NVIDIA GPU".into() };
        // The library stays loaded: the CUDA backend uses the same driver.
        Ok(CudaGpu { name, count: n as usize })
    }
}

#[cfg(not(target_os = "linux"))]
fn ask_cuda_driver() -> Result<CudaGpu, NoCuda> {
    Err(NoCuda::Unsupported)
}

/// Whether this build has the CUDA backend.
pub const CUDA_BUILT: bool = cfg!(feature = "cuda");

/// A wgpu adapter found on this machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Adapter {
    pub name: String,
    pub api: String,
    pub kind: AdapterKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdapterKind {
    Discrete,
    Integrated,
    Virtual,
    Software,
    Other,
}

impl Adapter {
    pub fn is_hardware(&self) -> bool {
        !matches!(self.kind, AdapterKind::Software)
    }

    pub fn describe(&self) -> String {
        let kind = match self.kind {
            AdapterKind::Discrete => "discrete GPU",
            AdapterKind::Integrated => "integrated GPU",
            AdapterKind::Virtual => "virtual GPU",
            AdapterKind::Software => "software rasteriser",
            AdapterKind::Other => "GPU",
        };
        format!("{} ({}, {kind})", self.name, self.api)
    }
}

/// Every wgpu adapter on the machine (enumerated once per process).
pub fn adapters() -> &'static [Adapter] {
    static ADAPTERS: OnceLock<Vec<Adapter>> = OnceLock::new();
    ADAPTERS.get_or_init(|| {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
            backends: wgpu::Backends::PRIMARY,
            ..wgpu::InstanceDescriptor::new_without_display_handle()
        });
        let found = burn::tensor::read_sync(instance.enumerate_adapters(wgpu::Backends::PRIMARY));
        found
            .iter()
            .map(|a| {
                let info = a.get_info();
                let kind = match info.device_type {
                    wgpu::DeviceType::DiscreteGpu => AdapterKind::Discrete,
                    wgpu::DeviceType::IntegratedGpu => AdapterKind::Integrated,
                    wgpu::DeviceType::VirtualGpu => AdapterKind::Virtual,
                    wgpu::DeviceType::Cpu => AdapterKind::Software,
                    wgpu::DeviceType::Other => AdapterKind::Other,
                };
                Adapter { name: info.name.clone(), api: format!("{:?}", info.backend), kind }
            })
            .collect()
    })
}

/// The device a run computes on, and why it was chosen.
#[derive(Clone, Debug)]
pub struct Compute {
    /// The plain (non-autodiff) device; training uses `device.clone().autodiff()`.
    pub device: Device,
    pub backend: Backend,
    /// What the user sees: the adapter name or the CPU description.
    pub adapter: String,
    /// Why this backend was chosen (shown in the status bar and the log).
    pub reason: String,
    /// Set when the user asked for a GPU and got the CPU.
    pub fell_back: bool,
}

fn cpu(reason: String, fell_back: bool) -> Compute {
    // The current pool's threads: a run's own `--threads` inside its pool,
    // every core outside one.
    let threads = rayon::current_num_threads();
    Compute { device: Device::flex(), backend: Backend::Cpu, adapter: format!("CPU, {threads} threads (burn flex)"), reason, fell_back }
}

fn wgpu_on(adapter: &Adapter, reason: String) -> Compute {
    let kind = match adapter.kind {
        AdapterKind::Software => DeviceKind::Cpu,
        AdapterKind::Discrete => DeviceKind::DiscreteGpu(0),
        AdapterKind::Integrated => DeviceKind::IntegratedGpu(0),
        AdapterKind::Virtual => DeviceKind::VirtualGpu(0),
        AdapterKind::Other => DeviceKind::DefaultDevice,
    };
    Compute { device: Device::wgpu(kind), backend: Backend::Wgpu, adapter: adapter.describe(), reason, fell_back: false }
}

#[cfg(feature = "cuda")]
fn cuda_on(gpu: &CudaGpu, reason: String) -> Compute {
    Compute { device: Device::cuda(0), backend: Backend::Cuda, adapter: format!("{} (CUDA)", gpu.name), reason, fell_back: false }
}

#[cfg(not(feature = "cuda"))]
fn cuda_on(_gpu: &CudaGpu, _reason: String) -> Compute {
    unreachable!("CUDA is only chosen in builds with the cuda feature")
}

/// Why `--backend cuda` cannot run here.
fn cuda_refusal(driver: &Result<CudaGpu, NoCuda>) -> BackendError {
    match (CUDA_BUILT, driver) {
        (true, Err(why)) => BackendError::NoCuda(why.clone()),
        (false, Ok(gpu)) => BackendError::NotBuilt(gpu.name.clone()),
        (false, Err(why)) => BackendError::NotBuiltNoCuda(why.clone()),
        (true, Ok(_)) => unreachable!("CUDA is available"),
    }
}

/// The best adapter: discrete, then integrated, then any hardware, then software.
fn best_adapter(list: &[Adapter]) -> Option<&Adapter> {
    let rank = |a: &Adapter| match a.kind {
        AdapterKind::Discrete => 0,
        AdapterKind::Integrated => 1,
        AdapterKind::Virtual => 2,
        AdapterKind::Other => 3,
        AdapterKind::Software => 4,
    };
    list.iter().min_by_key(|a| rank(a))
}

/// Picks the device for `choice` (the driver and adapters are only asked
/// when the choice needs them). Fails only for CUDA when it is not there;
/// `wgpu` without an adapter falls back to the CPU and says so.
pub fn select(choice: BackendChoice) -> Result<Compute, BackendError> {
    match choice {
        BackendChoice::Cpu => select_from(choice, &[], &Err(NoCuda::NotAsked)),
        BackendChoice::Wgpu => select_from(choice, adapters(), &Err(NoCuda::NotAsked)),
        BackendChoice::Cuda => select_from(choice, &[], cuda_driver()),
        BackendChoice::Auto => select_from(choice, adapters(), cuda_driver()),
    }
}

/// Picks the device for `choice` among `list` and the CUDA driver's answer
/// (separate for tests).
pub fn select_from(choice: BackendChoice, list: &[Adapter], cuda: &Result<CudaGpu, NoCuda>) -> Result<Compute, BackendError> {
    let best = best_adapter(list);
    Ok(match choice {
        BackendChoice::Cuda => match cuda {
            Ok(gpu) if CUDA_BUILT => cuda_on(gpu, "CUDA was requested".into()),
            _ => return Err(cuda_refusal(cuda)),
        },
        BackendChoice::Auto if CUDA_BUILT && cuda.is_ok() => match cuda {
            Ok(gpu) => cuda_on(gpu, format!("found an NVIDIA GPU: {}", gpu.name)),
            Err(_) => unreachable!("checked above"),
        },
        BackendChoice::Cpu => cpu("the CPU backend was requested".into(), false),
        BackendChoice::Wgpu => match best {
            Some(a) if a.is_hardware() => wgpu_on(a, "wgpu was requested".into()),
            Some(a) => wgpu_on(a, "wgpu was requested; the only adapter is a software rasteriser, which is slow".into()),
            None => cpu("wgpu was requested but no wgpu adapter was found (no Vulkan/GL driver?): using the CPU".into(), true),
        },
        BackendChoice::Auto => match best {
            Some(a) if a.is_hardware() => wgpu_on(a, format!("found a GPU: {}", a.name)),
            Some(a) => cpu(format!("no GPU, only the software rasteriser {}: the CPU backend is faster", a.name), true),
            None => cpu("no GPU adapter found: using the CPU".into(), true),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adapter(name: &str, kind: AdapterKind) -> Adapter {
        Adapter { name: name.into(), api: "Vulkan".into(), kind }
    }

    #[test]
    fn auto_treats_a_software_rasteriser_as_no_gpu() {
        let list = [adapter("llvmpipe (LLVM 15.0.6, 256 bits)", AdapterKind::Software)];
        let c = select_from(BackendChoice::Auto, &list, &no_driver()).unwrap();
        assert_eq!(c.backend, Backend::Cpu);
        assert!(c.reason.contains("software rasteriser llvmpipe"), "{}", c.reason);
        // Asked for explicitly, wgpu runs even on the software adapter.
        assert_eq!(select_from(BackendChoice::Wgpu, &list, &no_driver()).unwrap().backend, Backend::Wgpu);
    }

    #[test]
    fn auto_prefers_a_discrete_gpu() {
        let list = [
            adapter("llvmpipe", AdapterKind::Software),
            adapter("Intel UHD", AdapterKind::Integrated),
            adapter("NVIDIA H100", AdapterKind::Discrete),
        ];
        let c = select_from(BackendChoice::Auto, &list, &no_driver()).unwrap();
        assert_eq!(c.backend, Backend::Wgpu);
        assert!(c.adapter.contains("NVIDIA H100"));
        assert_eq!(select_from(BackendChoice::Cpu, &list, &no_driver()).unwrap().backend, Backend::Cpu);
    }

    #[test]
    fn no_adapter_at_all_falls_back_to_the_cpu() {
        let c = select_from(BackendChoice::Wgpu, &[], &no_driver()).unwrap();
        assert_eq!(c.backend, Backend::Cpu);
        assert!(c.fell_back);
    }

    fn no_driver() -> Result<CudaGpu, NoCuda> {
        Err(NoCuda::NoDriver)
    }

    #[test]
    fn cuda_without_a_driver_is_a_clear_error_and_auto_falls_back_silently() {
        let list = [adapter("llvmpipe", AdapterKind::Software)];
        let err = select_from(BackendChoice::Cuda, &list, &no_driver()).unwrap_err().to_string();
        assert!(err.contains("--backend cuda") && err.contains("no NVIDIA driver"), "{err}");
        let auto = select_from(BackendChoice::Auto, &list, &no_driver()).unwrap();
        assert_eq!(auto.backend, Backend::Cpu);
        assert!(!auto.reason.contains("CUDA"), "{}", auto.reason);
        let with_gpu = [adapter("NVIDIA H200", AdapterKind::Discrete)];
        assert_eq!(select_from(BackendChoice::Auto, &with_gpu, &no_driver()).unwrap().backend, Backend::Wgpu);
    }

    #[test]
    fn a_driver_without_the_cuda_build_points_to_wgpu() {
        let driver = Ok(CudaGpu { name: "NVIDIA H200".into(), count: 1 });
        let picked = select_from(BackendChoice::Cuda, &[], &driver);
        if CUDA_BUILT {
            assert_eq!(picked.unwrap().backend, Backend::Cuda);
        } else {
            let err = picked.unwrap_err().to_string();
            assert!(err.contains("built without") && err.contains("NVIDIA H200") && err.contains("--backend wgpu"), "{err}");
            // auto never picks what the build lacks.
            let list = [adapter("NVIDIA H200", AdapterKind::Discrete)];
            assert_eq!(select_from(BackendChoice::Auto, &list, &driver).unwrap().backend, Backend::Wgpu);
        }
    }

    #[test]
    fn this_machine_answers_the_cuda_question_without_panicking() {
        match cuda_driver() {
            Ok(gpu) => assert!(gpu.count >= 1 && !gpu.name.is_empty()),
            Err(why) => assert!(!why.to_string().is_empty()),
        }
    }
}
