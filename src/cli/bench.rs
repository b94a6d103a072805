//! `depthlab bench`: training images/s, probe overhead and peak memory per
//! (backend, architecture), each measured in a fresh process; with
//! `--pytorch`, the PyTorch reference runs the same networks and step in the
//! same invocation and the ratio is printed.

use std::path::PathBuf;
use std::process::Command;

use clap::Args;
use serde_json::Value;

use super::CliError;
use crate::arch::Shape;
use crate::backend::BackendChoice;
use crate::bench::{BenchCase, BenchResult, run_case};

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Architectures to time.
    #[arg(long, default_value = "plain-20,resnet-20,resnet-56")]
    pub archs: String,
    /// Backends: cpu, wgpu, cuda (comma-separated).
    #[arg(long, default_value = "cpu")]
    pub backends: String,
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    #[arg(long, default_value = "3x32x32")]
    pub input: String,
    /// Timed steps per configuration.
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    /// Untimed steps first (wgpu compiles its kernels then).
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    /// CPU threads for depthlab and for PyTorch (default: every core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Also run bench/pytorch_reference.py and print depthlab/PyTorch.
    #[arg(long)]
    pub pytorch: bool,
    /// The Python that has PyTorch.
    #[arg(long, default_value = "python3")]
    pub python: String,
    #[arg(long, default_value = "bench/pytorch_reference.py")]
    pub pytorch_script: PathBuf,
    /// The ways PyTorch runs: eager (NCHW), channels_last, compile (torch.compile); the ratio is to the fastest.
    #[arg(long, default_value = "eager,channels_last,compile")]
    pub variants: String,
    /// Write every figure as JSON here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Measure one case (JSON) in this process and print its result (used by the parent).
    #[arg(long, hide = true)]
    pub single: Option<String>,
}

fn parse_backend(text: &str) -> Result<BackendChoice, CliError> {
    match text.trim() {
        "cpu" => Ok(BackendChoice::Cpu),
        "wgpu" => Ok(BackendChoice::Wgpu),
        "cuda" => Ok(BackendChoice::Cuda),
        "auto" => Ok(BackendChoice::Auto),
        other => Err(CliError::new(2, format!("'{other}' is not a backend: cpu, wgpu, cuda or auto"))),
    }
}

pub fn bench(args: &BenchArgs) -> Result<(), CliError> {
    if let Some(json) = &args.single {
        let case: BenchCase = serde_json::from_str(json)?;
        let result = run_case(&case).map_err(|e| CliError::new(1, e))?;
        println!("{}", serde_json::to_string(&result)?);
        return Ok(());
    }
    let input = Shape::parse(&args.input).map_err(|e| CliError::new(2, e))?;
    if args.batch_size == 0 {
        return Err(CliError::new(2, "--batch-size must be at least 1"));
    }
    if args.steps == 0 {
        return Err(CliError::new(2, "--steps must be at least 1"));
    }
    crate::util::threads::check(args.threads).map_err(|e| CliError::new(2, e))?;
    let backends: Vec<BackendChoice> = args.backends.split(',').map(parse_backend).collect::<Result<_, _>>()?;
    if backends.contains(&BackendChoice::Cuda) {
        crate::backend::select(BackendChoice::Cuda).map_err(|e| CliError::new(2, e))?;
    }
    let exe = std::env::current_exe()?;
    let mut results: Vec<BenchResult> = Vec::new();
    let mut failed = Vec::new();
    eprintln!(
        "{:<6} {:<12} {:>9} {:>10} {:>14} {:>10} {:>10}  adapter",
        "", "arch", "params", "img/s", "img/s (probe)", "probe +%", "peak MiB"
    );
    for backend in &backends {
        for arch in args.archs.split(',').map(str::trim) {
            let case = BenchCase {
                arch: arch.to_string(),
                backend: *backend,
                batch_size: args.batch_size,
                input,
                classes: 10,
                warmup_steps: args.warmup,
                steps: args.steps,
                threads: args.threads,
            };
            let output = Command::new(&exe).arg("bench").arg("--single").arg(serde_json::to_string(&case)?).output()?;
            if !output.status.success() {
                eprintln!(
                    "{:<6} {arch:<12} failed: {}",
                    format!("{backend:?}").to_lowercase(),
                    String::from_utf8_lossy(&output.stderr).trim()
                );
                failed.push(arch.to_string());
                continue;
            }
            let result: BenchResult = serde_json::from_slice(&output.stdout)?;
            eprintln!(
                "{:<6} {:<12} {:>9} {:>10.1} {:>14.1} {:>9.1}% {:>10.0}  {}",
                result.backend,
                arch,
                result.params,
                result.images_per_sec,
                result.images_per_sec_probe_every_step,
                result.probe_overhead * 100.0,
                result.peak_rss_mib.unwrap_or(f64::NAN),
                match &result.gpu_runtime {
                    Some(runtime) => format!("{} [{runtime}]", result.adapter),
                    None => result.adapter.clone(),
                }
            );
            results.push(result);
        }
    }
    // The machine's float32 multiply-add rate on the threads the runs used.
    let threads = crate::util::threads::resolve(args.threads);
    let peak = crate::bench::peak::fma_flops_per_sec(threads);
    if let Some(peak) = peak {
        eprintln!("\nfp32 peak measured: {:.0} GFLOP/s on {threads} thread(s)", peak / 1e9);
        for r in &results {
            if let Some(flops) = r.flops_per_image {
                eprintln!(
                    "{:<6} {:<12} {:>7.1} MFLOP/image: {:>5.1}% of peak",
                    r.backend,
                    r.case.arch,
                    flops / 1e6,
                    100.0 * r.images_per_sec * flops / peak
                );
            }
        }
    }
    print_kernel_choices(&results);
    let pytorch = if args.pytorch { pytorch_reference(args, &backends, &results)? } else { Vec::new() };
    if let Some(path) = &args.out {
        let json = serde_json::json!({ "depthlab": results, "pytorch": pytorch, "peak_flops_per_sec": peak, "peak_threads": threads });
        crate::util::fsio::write_atomic(path, serde_json::to_string_pretty(&json)?.as_bytes())?;
        eprintln!("wrote {}", path.display());
    }
    if !failed.is_empty() {
        return Err(CliError::new(1, format!("{} of the configurations failed: {}", failed.len(), failed.join(", "))));
    }
    Ok(())
}

/// Runs the PyTorch reference once per (net, variant), each in a fresh
/// process (so peak memory is its own), and prints depthlab's speed beside
/// every variant's and the ratio to the fastest.
fn pytorch_reference(args: &BenchArgs, backends: &[BackendChoice], results: &[BenchResult]) -> Result<Vec<Value>, CliError> {
    let devices: Vec<&str> = backends
        .iter()
        .map(|b| match b {
            BackendChoice::Cpu => "cpu",
            _ => "cuda",
        })
        .collect();
    let mut entries: Vec<Value> = Vec::new();
    for arch in args.archs.split(',').map(str::trim) {
        for variant in args.variants.split(',').map(str::trim) {
            let mut reference = Command::new(&args.python);
            reference
                .arg(&args.pytorch_script)
                .args(["--archs", arch, "--variants", variant, "--batch-size", &args.batch_size.to_string(), "--input", &args.input])
                .args(["--steps", &args.steps.to_string(), "--warmup", &args.warmup.to_string(), "--device", &devices.join(","), "--json"]);
            if let Some(n) = args.threads {
                reference.args(["--threads", &n.to_string()]);
            }
            let output = reference
                .output()
                .map_err(|e| CliError::new(1, format!("cannot run {} {}: {e}", args.python, args.pytorch_script.display())))?;
            if !output.status.success() {
                return Err(CliError::new(
                    1,
                    format!("the PyTorch reference failed ({arch}, {variant}): {}", String::from_utf8_lossy(&output.stderr).trim()),
                ));
            }
            let found: Vec<Value> = serde_json::from_slice(&output.stdout)?;
            for entry in &found {
                if let Some(error) = entry.get("error").and_then(Value::as_str) {
                    eprintln!("PyTorch {arch} {variant}: failed, left out of the comparison: {error}");
                }
            }
            entries.extend(found);
        }
    }
    eprintln!(
        "\n{:<6} {:<12} {:>12} {:>12} {:>14} {:>12} {:>8}  best PyTorch",
        "", "arch", "depthlab", "eager", "channels_last", "compile", "ratio"
    );
    for r in results {
        let device = if r.backend == "cpu" { "cpu" } else { "cuda" };
        let speed = |variant: &str| {
            entries
                .iter()
                .find(|p| p["arch"] == r.case.arch.as_str() && p["device"] == device && p["variant"] == variant)
                .and_then(|p| p["images_per_sec"].as_f64())
        };
        let shown = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}/s"));
        let best =
            ["eager", "channels_last", "compile"].into_iter().filter_map(|v| speed(v).map(|s| (v, s))).max_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((variant, theirs)) = best {
            eprintln!(
                "{:<6} {:<12} {:>10.1}/s {:>12} {:>14} {:>12} {:>7.2}x  {variant}",
                r.backend,
                r.case.arch,
                r.images_per_sec,
                shown(speed("eager")),
                shown(speed("channels_last")),
                shown(speed("compile")),
                r.images_per_sec / theirs
            );
        }
    }
    Ok(entries)
}

/// Which convolution kernels each GPU run chose, per shape and pass, with
/// the timings behind each choice.
fn print_kernel_choices(results: &[BenchResult]) {
    for r in results.iter().filter(|r| !r.gpu_kernels.is_empty()) {
        eprintln!("\n{} {}: convolution kernels, ms on the lab's / burn's (* ran)", r.backend, r.case.arch);
        for choice in &r.gpu_kernels {
            let passes: Vec<String> = choice
                .passes
                .iter()
                .map(|p| {
                    let (lab, burn) = if p.chosen == "lab" { ("*", "") } else { ("", "*") };
                    format!("{} {:.2}{lab} / {:.2}{burn}", p.pass, p.lab_ms, p.burn_ms)
                })
                .collect();
            eprintln!("  {:<28} {}", choice.shape, passes.join("   "));
        }
    }
}
