//! What a sweep reports while it runs: the events of each of its runs,
//! tagged with the run they belong to, and the sweep's own progress. The
//! training worker knows only a run's [`Event`]s; a sweep wraps them here.

use std::path::PathBuf;

use super::sweep::SweepRow;
use crate::train::events::Event;
use crate::train::events::{EventSender, Outbox};

/// Sweep worker → UI (the window's Sweep tab, `depthlab sweep`'s terminal).
#[derive(Clone, Debug, PartialEq)]
pub enum SweepEvent {
    /// What the sweep does before its first run (loading data).
    Preparing(String),
    /// A note about the plan (a depth rounded to the nearest the family
    /// builds, a flag that does not apply to a family), before any run.
    Note(String),
    /// Run `index` of `total` (its index in the plan) started.
    RunStarted {
        index: usize,
        total: usize,
        label: String,
        /// The run folder.
        dir: PathBuf,
    },
    /// An event of run `run` (its index in the plan; several may run at once).
    Run { run: usize, event: Event },
    /// A run finished: its row of `sweep.csv`.
    Row(SweepRow),
    /// The sweep could not start or go on (a message says why).
    Failed(String),
    /// The sweep is over (all runs done, or stopped).
    Finished { stopped: bool },
}

/// The sender run `run` of a sweep trains with: its events reach the
/// sweep's channel tagged with its index.
pub(super) fn run_events(outbox: &Outbox<SweepEvent>, run: usize) -> EventSender {
    EventSender::wrapping(outbox.clone(), move |event| SweepEvent::Run { run, event })
}
