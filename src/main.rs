//! The `depthlab` binary: parse the command line, then run a command or open
//! the lab's window.

use clap::Parser;
use depthlab::cli::{self, Cli};

fn main() {
    depthlab::util::alloc::keep_freed_memory();
    let parsed = Cli::parse();
    let result = match parsed.command {
        Some(command) => cli::run(command),
        None => depthlab::app::scenes::Scene::from_options(parsed.scene.as_deref(), parsed.screenshot)
            .and_then(depthlab::app::run_native)
            .map_err(|e| cli::CliError::new(2, e)),
    };
    if let Err(e) = result {
        eprintln!("error: {}", e.message);
        std::process::exit(e.code);
    }
}
