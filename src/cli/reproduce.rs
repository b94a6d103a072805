//! `depthlab reproduce NAME`: the papers' experiments at lab scale.

use super::say;
use std::path::PathBuf;

use clap::Args;

use super::CliError;
use crate::backend::BackendChoice;
use crate::data::DataSpec;
use crate::report::experiments::{self, NAMES, Options};

#[derive(Args, Debug)]
pub struct ReproduceArgs {
    /// glorot, highway, degradation, stochastic-depth, fractal, branch-length, lesion, paths, landscape, thousand-layers, or all.
    pub name: String,
    /// Where the figures, numbers and runs go (OUT/NAME/).
    #[arg(long, default_value = "docs/reproductions")]
    pub out: PathBuf,
    /// The data (default: the embedded fashion-mini; e.g. cifar10:DIR for the degradation experiment).
    #[arg(long, default_value = "fashion-mini")]
    pub data: String,
    #[arg(long, value_enum, default_value_t = BackendChoice::Auto)]
    pub backend: BackendChoice,
    /// Fewer depths and steps: checks that everything runs, in seconds.
    #[arg(long)]
    pub quick: bool,
    /// Read back runs already in OUT that finished with exactly the settings a run would get, instead of training them again.
    #[arg(long)]
    pub reuse: bool,
}

pub fn reproduce(args: &ReproduceArgs) -> Result<(), CliError> {
    let data = args.data.parse::<DataSpec>().map_err(|e| CliError::new(2, e))?;
    let names: Vec<&str> = if args.name == "all" { NAMES.to_vec() } else { vec![args.name.as_str()] };
    if let Some(bad) = names.iter().find(|n| !NAMES.contains(n)) {
        return Err(CliError::new(2, format!("'{bad}' is not a reproduction: {} or all", NAMES.join(", "))));
    }
    let options = Options { out: args.out.clone(), data, backend: args.backend, quick: args.quick, reuse: args.reuse };
    for name in names {
        let started = std::time::Instant::now();
        say!("== {name}");
        let outcome = experiments::run(name, &options, &|line| say!("{line}")).map_err(|e| CliError::new(1, format!("{name}: {e}")))?;
        say!("{name}: {:.0} s, written to {}", started.elapsed().as_secs_f64(), outcome.dir.display());
        say!(stdout; "{}", outcome.summary);
    }
    Ok(())
}
