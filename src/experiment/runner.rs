//! Running a sweep (the driver; its types and plan are in `sweep.rs`): its
//! pending runs one after another, or several at once on one machine, each
//! on its own share of the cores. A run's results do not
//! depend on its thread count, so `--jobs` changes the wall time only.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::events::{SweepEvent, run_events};
use super::files::{self, SweepFile};
use super::sweep::{PlannedRun, SweepConfig, SweepError, SweepRow, plan};
use crate::arch::presets::Family;
use crate::data::Dataset;
use crate::train::TrainConfig;
use crate::train::events::{Command, Event, EventSender, Outbox};
use crate::train::events::{RunRequest, Wake};
use crate::train::worker::{RunHandle, spawn_worker};
use crate::train::{RunStatus, train};

/// How many runs at once a sweep uses when not told. Measured on a 2-core
/// machine (`scripts/bench_jobs.sh`, docs/BENCHMARKS.md): two runs at once
/// on one core each finish a 2 x 2 sweep in 0.74x the time of one at a
/// time on both cores for small nets (digits) and 0.96x for conv nets on
/// fashion-mini, never slower, with the same results. So two on the CPU
/// (each on half the cores); GPU runs share one device and go one at a time.
pub fn default_jobs(config: &SweepConfig) -> usize {
    if config.train.backend != crate::backend::BackendChoice::Cpu {
        return 1;
    }
    let cores = config.train.threads.unwrap_or_else(crate::util::threads::available);
    cores.clamp(1, 2)
}

/// Runs a sweep from the calling thread (its runs one after another, or up
/// to `config.jobs` at once); returns its rows. A stop command ends the
/// runs in progress and the sweep.
pub fn run_sweep(
    config: &SweepConfig,
    data: Option<Arc<Dataset>>,
    commands: &Receiver<Command>,
    events: &Outbox<SweepEvent>,
) -> Result<Vec<SweepRow>, SweepError> {
    config.train.check()?;
    crate::util::threads::check(config.train.threads)?;
    let data = match data {
        Some(d) => d,
        None => {
            events.send(SweepEvent::Preparing("loading data".into()));
            Arc::new(Dataset::load(&config.train.data)?)
        }
    };
    let plan = plan(config, data.shape(), data.classes())?;
    for notice in &plan.notices {
        events.send(SweepEvent::Note(notice.clone()));
    }
    let file = SweepFile::new(config, &plan);
    files::begin(&config.out, &file, config.resume)?;
    let rows = files::rows_so_far(&config.out, &file)?;
    files::write_csv(&config.out, &rows)?;
    for row in rows.iter().filter(|r| r.status != RunStatus::Pending) {
        // Kept from before (resume): finished, or another process is on it.
        events.send(SweepEvent::Row(row.clone()));
    }
    let sweep = Sweep { config, file: &file, data, rows: std::sync::Mutex::new(rows) };
    let stopped = sweep.run(commands, events)?;
    events.send(SweepEvent::Finished { stopped });
    let rows = sweep.rows.into_inner().unwrap_or_else(|e| e.into_inner());
    Ok(rows.into_iter().filter(|r| r.status != RunStatus::Pending).collect())
}

/// The request that trains planned run `run` of a sweep.
pub(super) fn request(
    run: &PlannedRun,
    config: &SweepConfig,
    data: &Arc<Dataset>,
    threads: Option<usize>,
) -> Result<RunRequest, SweepError> {
    let family = Family::from_prefix(&run.family).ok_or_else(|| SweepError::UnknownFamily(run.family.clone()))?;
    Ok(RunRequest {
        arch: family.build(run.size, data.shape())?,
        config: TrainConfig { seed: run.seed, threads, ..config.train.clone() },
        data: Some(data.clone()),
        out: Some(config.out.join(&run.dir)),
        init_weights: None,
    })
}

/// Starts a sweep on a worker thread.
pub fn spawn_sweep(config: SweepConfig, data: Option<Arc<Dataset>>, wake: Option<Wake>) -> std::io::Result<RunHandle<SweepEvent>> {
    spawn_worker("depthlab-sweep", config.train.threads, wake, move |commands, events| {
        if let Err(reason) = run_sweep(&config, data, &commands, &events) {
            events.send(SweepEvent::Failed(reason.to_string()));
            events.send(SweepEvent::Finished { stopped: true });
        }
    })
}

/// A sweep in progress: its settings, plan, data and rows so far.
pub(super) struct Sweep<'a> {
    pub config: &'a SweepConfig,
    pub file: &'a SweepFile,
    pub data: Arc<Dataset>,
    pub rows: Mutex<Vec<SweepRow>>,
}

impl Sweep<'_> {
    /// Trains every pending run; returns whether the sweep was stopped.
    pub fn run(&self, commands: &Receiver<Command>, events: &Outbox<SweepEvent>) -> Result<bool, SweepError> {
        let pending: Vec<usize> =
            self.lock_rows().iter().enumerate().filter(|(_, r)| r.status == RunStatus::Pending).map(|(i, _)| i).collect();
        let jobs = match self.config.jobs {
            0 => default_jobs(self.config),
            n => n,
        }
        .min(pending.len())
        .max(1);
        if jobs == 1 {
            return self.one_at_a_time(&pending, commands, events);
        }
        self.at_once(&pending, jobs, commands, events)
    }

    fn lock_rows(&self) -> std::sync::MutexGuard<'_, Vec<SweepRow>> {
        self.rows.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records run `index`'s summary: its row, sweep.csv, the events.
    fn finish(
        &self,
        index: usize,
        summary: crate::train::Summary,
        run: &EventSender,
        events: &Outbox<SweepEvent>,
    ) -> Result<RunStatus, SweepError> {
        let row = SweepRow::of(&self.file.runs[index], summary.status, Some(&summary), &self.config.out);
        {
            let mut rows = self.lock_rows();
            rows[index] = row.clone();
            files::write_csv(&self.config.out, &rows)?;
        }
        run.send(Event::Finished(Box::new(summary.clone())));
        events.send(SweepEvent::Row(row));
        Ok(summary.status)
    }

    fn announce(&self, index: usize, events: &Outbox<SweepEvent>) {
        let run = &self.file.runs[index];
        events.send(SweepEvent::RunStarted {
            index,
            total: self.file.runs.len(),
            label: format!("{} seed {}", run.arch, run.seed),
            dir: self.config.out.join(&run.dir),
        });
    }

    fn one_at_a_time(&self, pending: &[usize], commands: &Receiver<Command>, events: &Outbox<SweepEvent>) -> Result<bool, SweepError> {
        for &index in pending {
            self.announce(index, events);
            let request = request(&self.file.runs[index], self.config, &self.data, self.config.train.threads)?;
            let run = run_events(events, index);
            let summary = train(request, commands, &run);
            if self.finish(index, summary, &run, events)? == RunStatus::Stopped {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// `jobs` runs at once, each on its own pool of its share of the cores;
    /// commands (stop, pause, learning rate) go to every run in progress.
    fn at_once(
        &self,
        pending: &[usize],
        jobs: usize,
        commands: &Receiver<Command>,
        events: &Outbox<SweepEvent>,
    ) -> Result<bool, SweepError> {
        let share = crate::util::threads::resolve(self.config.train.threads).div_ceil(jobs).max(1);
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let lanes_done = AtomicUsize::new(0);
        let active: Mutex<Vec<(usize, Sender<Command>)>> = Mutex::new(Vec::new());
        let failure: Mutex<Option<SweepError>> = Mutex::new(None);
        std::thread::scope(|scope| {
            for lane in 0..jobs {
                let (next, stop, active, failure, lanes_done) = (&next, &stop, &active, &failure, &lanes_done);
                let spawned = std::thread::Builder::new().name(format!("depthlab-sweep-{lane}")).spawn_scoped(scope, move || {
                    let result = self.lane(pending, share, next, stop, active, events);
                    if let Err(e) = result {
                        stop.store(true, Ordering::SeqCst);
                        *failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
                    }
                    lanes_done.fetch_add(1, Ordering::SeqCst);
                });
                if let Err(e) = spawned {
                    stop.store(true, Ordering::SeqCst);
                    *failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(SweepError::Thread(e));
                    lanes_done.fetch_add(1, Ordering::SeqCst);
                }
            }
            // This thread passes commands on until every lane is done.
            while lanes_done.load(Ordering::SeqCst) < jobs {
                let command = match commands.recv_timeout(Duration::from_millis(50)) {
                    Ok(c) => c,
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => Command::Stop,
                };
                if command == Command::Stop {
                    stop.store(true, Ordering::SeqCst);
                }
                for (_, tx) in active.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                    // A run that just ended no longer listens.
                    let _ = tx.send(command.clone());
                }
                if command == Command::Stop {
                    // Later commands cannot restart anything.
                    while lanes_done.load(Ordering::SeqCst) < jobs {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            }
        });
        if let Some(e) = failure.into_inner().unwrap_or_else(|e| e.into_inner()) {
            return Err(e);
        }
        Ok(stop.load(Ordering::SeqCst))
    }

    /// One lane: takes pending runs until none is left or the sweep stops.
    fn lane(
        &self,
        pending: &[usize],
        share: usize,
        next: &AtomicUsize,
        stop: &AtomicBool,
        active: &Mutex<Vec<(usize, Sender<Command>)>>,
        events: &Outbox<SweepEvent>,
    ) -> Result<(), SweepError> {
        let pool = crate::util::threads::pool(Some(share), "depthlab-sweep-compute")?;
        loop {
            let k = next.fetch_add(1, Ordering::SeqCst);
            let Some(&index) = pending.get(k) else {
                return Ok(());
            };
            let (tx, rx) = mpsc::channel();
            active.lock().unwrap_or_else(|e| e.into_inner()).push((index, tx));
            // Checked after joining `active`: a stop sent meanwhile either
            // finds this run there or is seen here.
            if stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            self.announce(index, events);
            let request = request(&self.file.runs[index], self.config, &self.data, Some(share))?;
            let run = run_events(events, index);
            // The pool's thread owns the command receiver and borrows the sender.
            let lane_run = &run;
            let summary = crate::kernels::team::install(&pool, move || train(request, &rx, lane_run));
            active.lock().unwrap_or_else(|e| e.into_inner()).retain(|(i, _)| *i != index);
            if self.finish(index, summary, &run, events)? == RunStatus::Stopped {
                stop.store(true, Ordering::SeqCst);
            }
            if stop.load(Ordering::SeqCst) {
                return Ok(());
            }
        }
    }
}
