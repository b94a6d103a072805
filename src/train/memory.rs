//! The memory pre-flight of a CPU run: what training a network at a batch
//! size will hold, against what the process can have (the machine's free
//! memory and any address-space limit, `ulimit -v`), so that a run that
//! cannot fit is refused in words before anything is allocated, where it
//! would otherwise abort when an allocation fails.
//!
//! The estimate, calibrated on the lab's measured peaks (docs/BENCHMARKS.md:
//! resnet-20 at batch 128 235–270 MiB, resnet-1202 at batch 32 3.8 GiB):
//! - parameters: 4 bytes each for the weights, their gradients, the
//!   optimiser's state (1 tensor for SGD's momentum, 2 for Adam) and one
//!   update in flight;
//! - activations: for each block, its output plus one tensor of that size
//!   per weight layer inside it, kept for the backward pass, and as much
//!   again for their gradients on the way back, for every example of the
//!   batch.

use crate::arch::Analysis;
use crate::train::config::OptimizerKind;

/// Bytes a training step of the analysed network holds at `batch_size`.
pub fn training_bytes(analysis: &Analysis, batch_size: usize, optimizer: OptimizerKind) -> u64 {
    let copies: u64 = match optimizer {
        OptimizerKind::Sgd => 4,
        OptimizerKind::Adam => 5,
    };
    let parameters = (analysis.params as u64).saturating_mul(4 * copies);
    let per_example = analysis
        .instances
        .iter()
        .fold(analysis.input.numel() as u64, |total, b| total.saturating_add((b.output.numel() as u64).saturating_mul(1 + b.depth as u64)));
    let activations = per_example.saturating_mul(batch_size as u64).saturating_mul(4 * 2);
    parameters.saturating_add(activations)
}

/// The bytes this process can still allocate: the machine's free memory
/// (`MemAvailable`), or less under an address-space limit (its headroom
/// above what the process already maps) or a cgroup's memory limit (a
/// container's or a Slurm job's: its headroom above what the group uses).
/// `None` where none is known.
pub fn available_bytes() -> Option<u64> {
    let free = read_kib("/proc/meminfo", "MemAvailable:");
    let headroom = address_space_limit().map(|limit| limit.saturating_sub(read_kib("/proc/self/status", "VmSize:").unwrap_or(0)));
    [free, headroom, cgroup_headroom()].into_iter().flatten().min()
}

/// The memory cgroup's headroom: its limit less its use, for the process's
/// own group — `memory.max` and `memory.current` (cgroup v2) or
/// `memory.limit_in_bytes` and `memory.usage_in_bytes` (v1, where the
/// group is mounted under `memory/`, as Docker and Slurm set it up);
/// `None` without a limit (v2 writes "max", which does not parse; v1's
/// near-2^63 "no limit" loses to every other bound).
fn cgroup_headroom() -> Option<u64> {
    let membership = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let root = std::path::Path::new("/sys/fs/cgroup");
    let read = |dir: &std::path::Path, name: &str| std::fs::read_to_string(dir.join(name)).ok().and_then(|t| t.trim().parse::<u64>().ok());
    for line in membership.lines() {
        let mut fields = line.splitn(3, ':');
        let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?.trim_start_matches('/'));
        let (dir, limit, usage) = match controllers {
            "" => (root.join(path), "memory.max", "memory.current"),
            c if c.split(',').any(|c| c == "memory") => (root.join("memory").join(path), "memory.limit_in_bytes", "memory.usage_in_bytes"),
            _ => continue,
        };
        if let Some(max) = read(&dir, limit) {
            return Some(max.saturating_sub(read(&dir, usage).unwrap_or(0)));
        }
    }
    None
}

/// A `KEY: N kB` line of a /proc file, in bytes.
fn read_kib(file: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(file).ok()?;
    let kib: u64 = text.lines().find(|l| l.starts_with(key))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

/// The address-space limit (`RLIMIT_AS`), when one is set.
fn address_space_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit writes one plain struct we own.
        let ok = unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut limit) } == 0;
        // rlim_t is u64 here but not on every Unix.
        #[allow(clippy::unnecessary_cast)]
        (ok && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur as u64)
    }
    #[cfg(not(unix))]
    None
}

/// A run that needs more memory than the process can have.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "training this network ({} parameters) at a batch of {batch_size} needs about {:.1} GiB (weights, gradients, \
     optimiser state and the batch's activations), but this process can have only {:.1} GiB: \
     use a smaller batch size or a smaller network",
    crate::util::format_params(*params),
    gib(*needed),
    gib(*available)
)]
pub struct TooLittleMemory {
    pub needed: u64,
    pub available: u64,
    pub batch_size: usize,
    pub params: usize,
}

fn gib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 30) as f64
}

/// Refuses a run whose estimate exceeds what the process can have.
pub fn check(analysis: &Analysis, batch_size: usize, optimizer: OptimizerKind) -> Result<(), TooLittleMemory> {
    let Some(available) = available_bytes() else { return Ok(()) };
    refuse_beyond(training_bytes(analysis, batch_size, optimizer), available, batch_size, analysis.params)
}

fn refuse_beyond(needed: u64, available: u64, batch_size: usize, params: usize) -> Result<(), TooLittleMemory> {
    if needed <= available {
        return Ok(());
    }
    Err(TooLittleMemory { needed, available, batch_size, params })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::{Shape, presets};

    fn estimate(preset: &str, batch: usize) -> f64 {
        let arch = presets::build(preset, Shape::map(3, 32, 32)).unwrap();
        training_bytes(&arch.analyse(Shape::map(3, 32, 32), 10), batch, OptimizerKind::Sgd) as f64 / (1u64 << 20) as f64
    }

    #[test]
    fn the_estimate_brackets_the_measured_peaks() {
        // Measured: resnet-20 at 128 235–270 MiB, resnet-1202 at 32 3,777 MiB.
        let small = estimate("resnet-20", 128);
        assert!((200.0..400.0).contains(&small), "resnet-20: {small:.0} MiB");
        let deep = estimate("resnet-1202", 32);
        assert!((3_500.0..5_000.0).contains(&deep), "resnet-1202: {deep:.0} MiB");
        assert!(estimate("resnet-20", 256) > 1.9 * small, "activations grow with the batch");
    }

    #[test]
    fn parameters_count_with_their_gradients_and_optimiser_state() {
        let arch = crate::arch::Architecture::from_json(
            r#"{"name": "wide", "blocks": [{"kind": "dense", "units": 20000}, {"kind": "dense", "units": 20000}, {"kind": "classifier"}]}"#,
        )
        .unwrap();
        let analysis = arch.analyse(Shape::map(1, 1, 2), 2);
        assert!(analysis.params > 400_000_000);
        let sgd = training_bytes(&analysis, 1, OptimizerKind::Sgd);
        assert!(sgd > 5 * (1u64 << 30), "{sgd}");
        assert!(training_bytes(&analysis, 1, OptimizerKind::Adam) > sgd);
        let e = refuse_beyond(sgd, 4 * (1u64 << 30), 1, analysis.params).unwrap_err().to_string();
        assert!(e.contains("needs about 6.0 GiB") && e.contains("only 4.0 GiB") && e.contains("smaller batch size"), "{e}");
        assert!(refuse_beyond(1, 2, 1, 1).is_ok());
    }
}
