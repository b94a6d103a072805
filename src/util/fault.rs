//! Fault injection for the reliability tests: `DEPTHLAB_FAULT=ACTION:POINT`
//! makes the named point of a run misbehave, so the tests can check that a
//! bug or a kill at that moment still leaves a truthful run folder.
//!
//! Actions: `panic` (a bug: the point panics), `stall` (the point waits
//! a minute, so a test can kill the process exactly there) and `full` (an
//! I/O point fails as a full disk does). Points: `command` (a command-line
//! command starts), `step` (every training step), `save` (every model save,
//! after the scratch file is written and before it is renamed), `write`
//! (an I/O point: every file written whole, before its scratch file is
//! made), `written` (every file written whole, after its scratch file is
//! synced and before the rename). Unset, every point is a no-op.

use std::sync::OnceLock;

fn fault() -> Option<&'static (String, String)> {
    static FAULT: OnceLock<Option<(String, String)>> = OnceLock::new();
    FAULT
        .get_or_init(|| {
            let text = std::env::var("DEPTHLAB_FAULT").ok()?;
            let (action, point) = text.split_once(':')?;
            Some((action.to_string(), point.to_string()))
        })
        .as_ref()
}

/// Misbehaves as `DEPTHLAB_FAULT` says when it names `point`.
pub fn point(point: &str) {
    let Some((action, at)) = fault() else {
        return;
    };
    if at != point {
        return;
    }
    match action.as_str() {
        "panic" => panic!("fault injected at '{point}' (DEPTHLAB_FAULT)"),
        "stall" => std::thread::sleep(std::time::Duration::from_secs(60)),
        _ => {}
    }
}

/// An I/O point: fails with "no space left on device" when `DEPTHLAB_FAULT`
/// is `full:POINT`, else misbehaves as [`point`] does.
pub fn io(at: &str) -> std::io::Result<()> {
    if fault().is_some_and(|(action, p)| action == "full" && p == at) {
        return Err(std::io::Error::new(std::io::ErrorKind::StorageFull, format!("no space left on device (fault injected at '{at}')")));
    }
    point(at);
    Ok(())
}

/// The message a panic carried, in words.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into())
}
