//! Choosing where tensors live: the GPU through wgpu, or the CPU (burn's
//! pure-Rust `flex` backend). `auto` takes wgpu when a hardware adapter
//! exists and the CPU otherwise; a software rasteriser (llvmpipe, lavapipe,
//! WARP) counts as no GPU, since the CPU backend is much faster than one.

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
    Cpu,
}

/// The backend a run actually uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Wgpu,
    Cpu,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Wgpu => "wgpu",
            Backend::Cpu => "cpu",
        })
    }
}

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
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
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

/// Picks the device for `choice` (adapters are only enumerated when the
/// choice needs them).
pub fn select(choice: BackendChoice) -> Compute {
    match choice {
        BackendChoice::Cpu => select_from(choice, &[]),
        _ => select_from(choice, adapters()),
    }
}

/// Picks the device for `choice` among `list` (separate for tests).
pub fn select_from(choice: BackendChoice, list: &[Adapter]) -> Compute {
    let best = best_adapter(list);
    match choice {
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
    }
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
        let c = select_from(BackendChoice::Auto, &list);
        assert_eq!(c.backend, Backend::Cpu);
        assert!(c.reason.contains("software rasteriser llvmpipe"), "{}", c.reason);
        // Asked for explicitly, wgpu runs even on the software adapter.
        assert_eq!(select_from(BackendChoice::Wgpu, &list).backend, Backend::Wgpu);
    }

    #[test]
    fn auto_prefers_a_discrete_gpu() {
        let list = [
            adapter("llvmpipe", AdapterKind::Software),
            adapter("Intel UHD", AdapterKind::Integrated),
            adapter("NVIDIA H100", AdapterKind::Discrete),
        ];
        let c = select_from(BackendChoice::Auto, &list);
        assert_eq!(c.backend, Backend::Wgpu);
        assert!(c.adapter.contains("NVIDIA H100"));
        assert_eq!(select_from(BackendChoice::Cpu, &list).backend, Backend::Cpu);
    }

    #[test]
    fn no_adapter_at_all_falls_back_to_the_cpu() {
        let c = select_from(BackendChoice::Wgpu, &[]);
        assert_eq!(c.backend, Backend::Cpu);
        assert!(c.fell_back);
    }
}
