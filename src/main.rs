//! The `depthlab` binary: parse the command line, then run a command or open
//! the lab's window.

use clap::Parser;
use depthlab::cli::{self, Cli};
use depthlab::util::fault::panic_message;

fn main() {
    depthlab::util::alloc::keep_freed_memory();
    depthlab::util::threads::flush_subnormals();
    quiet_device_probe();
    quiet_panics();
    let parsed = Cli::parse();
    if parsed.command.as_ref().is_some_and(|c| !c.trains()) {
        end_quietly_on_a_closed_pipe();
    }
    // A bug is reported as one and exits 1 (never Rust's 101 with a
    // backtrace hint): training runs catch their own and end as failed.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match parsed.command {
        Some(cli::Commands::Open(args)) => open_lab(&args.file),
        Some(command) => cli::run(command),
        None => match (&parsed.lab, &parsed.scene) {
            (Some(lab), None) => open_lab(lab),
            (Some(_), Some(_)) => Err(cli::CliError::new(2, "a lab file and --scene cannot be opened together")),
            _ => depthlab::app::scenes::Scene::from_options(parsed.scene.as_deref(), parsed.screenshot, parsed.window_size.as_deref())
                .map_err(|e| cli::CliError::new(2, e))
                .and_then(|scene| depthlab::app::run_native(scene, None).map_err(|e| cli::CliError::new(2, e))),
        },
    }))
    .unwrap_or_else(|panic| Err(cli::CliError::new(1, format!("internal error: {}", panic_message(panic.as_ref())))));
    if let Err(e) = result {
        eprintln!("error: {}", e.message);
        std::process::exit(e.code);
    }
}

/// Opens the window on a lab file, once it has been read and checked (a
/// file that is not a lab is an error here, not an empty window).
fn open_lab(file: &std::path::Path) -> Result<(), cli::CliError> {
    if !file.exists() && file.extension().is_none() && file.components().count() == 1 {
        return Err(cli::CliError::new(
            2,
            format!("'{}' is neither a command nor a lab file (depthlab --help lists the commands)", file.display()),
        ));
    }
    depthlab::app::lab::LabFile::read(file).map_err(|e| cli::CliError::new(e.exit_code(), e))?;
    depthlab::app::run_native(None, Some(file.to_path_buf())).map_err(|e| cli::CliError::new(2, e))
}

/// Without a session's runtime folder (`XDG_RUNTIME_DIR`: a cron job, a
/// container, ssh without a login session), Mesa's Vulkan device-select
/// layer tries to reach a Wayland compositor while the lab lists the GPU
/// adapters, and libwayland prints "error: XDG_RUNTIME_DIR is invalid or
/// not set" although nothing failed. The layer only orders the adapters,
/// and the lab picks one itself, so it is switched off (`NODEVICE_SELECT`)
/// in that case alone, unless the user set it.
fn quiet_device_probe() {
    #[cfg(target_os = "linux")]
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() && std::env::var_os("NODEVICE_SELECT").is_none() {
        // SAFETY: set at start-up, before any other thread exists.
        unsafe {
            std::env::set_var("NODEVICE_SELECT", "1");
        }
    }
}

/// A command whose output goes to a pipe that closed (`depthlab runs |
/// head`) ends there, quietly, as other command-line tools do: SIGPIPE
/// keeps its default action instead of Rust's, which turns the closed pipe
/// into a failed write (a panic in `println!`).
fn end_quietly_on_a_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: restores the default action of one signal at start-up, before
    // any thread that could write is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Panics print one line saying where the bug is, not Rust's panic text;
/// `DEPTHLAB_DEBUG=1` keeps the default report with its backtrace hint.
fn quiet_panics() {
    if std::env::var_os("DEPTHLAB_DEBUG").is_some() {
        return;
    }
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        let place = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        eprintln!(
            "depthlab: internal error in thread '{}'{place}: {} (please report it; DEPTHLAB_DEBUG=1 shows more)",
            thread.name().unwrap_or("unnamed"),
            panic_message(info.payload())
        );
    }));
}
