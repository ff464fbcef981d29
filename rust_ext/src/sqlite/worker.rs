//! The worker thread of one native connection: the jobs ([`Op`]) and their results ([`Output`]),
//! the queue, cancellation and interrupts, and the inline fast path ([`Worker::try_fetch`]).

use rusqlite::types::Value;
use rusqlite::InterruptHandle;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};

use super::{Engine, EngineError, ErrorClass, Inline, Progress, SqlSet, INLINE_BUDGET};

// jobs and results ----------------------------------------------------------------------------
/// Rows in row-major order: `values.len() == ncols * number of rows`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RowSet {
    pub ncols: usize,
    pub values: Vec<Value>,
    /// The column names, when asked for.
    pub columns: Option<Vec<String>>,
}

impl RowSet {
    pub fn len(&self) -> usize {
        self.values.len().checked_div(self.ncols).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The rows as slices.
    pub fn rows(&self) -> impl Iterator<Item = &[Value]> {
        self.values.chunks(self.ncols.max(1))
    }
}

/// What a job sends back.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    Unit,
    /// `execute`: rows affected (INSERT/UPDATE/DELETE/REPLACE), rows returned, or 0.
    Count(i64),
    Rows(RowSet),
    /// A cursor's chunk; `cursor` is 0 once `done` (the cursor is closed then).
    Chunk {
        cursor: u64,
        rows: RowSet,
        done: bool,
    },
}

/// One request to the worker.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Open {
        path: String,
        pragmas: Vec<String>,
    },
    Fetch {
        sql: String,
        params: Vec<Value>,
        limit: Option<usize>,
        columns: bool,
    },
    Execute {
        sql: String,
        params: Vec<Value>,
    },
    ExecuteMany {
        sql: String,
        rows: Vec<Vec<Value>>,
    },
    /// BEGIN/COMMIT/ROLLBACK/SAVEPOINT...; `ROLLBACK` outside a transaction is a no-op.
    Control {
        sql: String,
    },
    CursorOpen {
        sql: String,
        params: Vec<Value>,
        chunk: usize,
    },
    CursorFetch {
        cursor: u64,
        chunk: usize,
    },
    CursorClose {
        cursor: u64,
    },
    /// Resolves once every job queued before it has finished.
    Ping,
    Close,
}

// the worker ------------------------------------------------------------------------------------
/// Runs on the worker thread when it exits.
pub type ExitHook = Box<dyn FnOnce() + Send>;

/// Receives a job's result on the worker thread.
pub type Reply = Box<dyn FnOnce(Result<Output, EngineError>) + Send>;

struct Job {
    seq: u64,
    op: Op,
    reply: Reply,
}

#[derive(Default)]
struct Sched {
    /// The job running now, [`INLINE`] for an inline statement, 0 for none.
    running: u64,
    started: u64,
    cancelled: HashSet<u64>,
}

/// `Sched::running` while a statement runs inline (never a job number).
const INLINE: u64 = u64::MAX;

/// Counters of the inline fast path, per connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InlineStats {
    /// Statements answered on the calling thread (including those that failed there).
    pub inline: u64,
    /// Statements the fast path handed back to be run as jobs, whatever the reason.
    pub queued: u64,
    /// Inline runs the budget stopped (then run as jobs, and remembered).
    pub overran: u64,
    /// Statement texts remembered as "run it as a job".
    pub remembered: usize,
}

/// State shared by the worker thread and the threads that submit, cancel, interrupt and run
/// statements inline.
pub struct Shared {
    sched: Mutex<Sched>,
    /// The connection: locked by the worker for each job, and by an inline statement.
    engine: Mutex<Option<Engine>>,
    /// Jobs submitted and not finished; the fast path only runs when there are none.
    pending: AtomicUsize,
    pub(super) progress: Arc<Progress>,
    pub(super) interrupt: Mutex<Option<InterruptHandle>>,
    in_transaction: AtomicBool,
    open: AtomicBool,
    alive: AtomicBool,
    last_insert_rowid: AtomicI64,
    /// VM instructions an inline statement may run; 0 turns the fast path off.
    budget: AtomicU32,
    /// Statements that overran the budget or may not run inline: straight to the worker.
    to_worker: Mutex<SqlSet>,
    inline_runs: AtomicU64,
    queued: AtomicU64,
    overran: AtomicU64,
}

impl Default for Shared {
    fn default() -> Self {
        Shared {
            sched: Mutex::default(),
            engine: Mutex::new(None),
            pending: AtomicUsize::new(0),
            progress: Arc::default(),
            interrupt: Mutex::new(None),
            in_transaction: AtomicBool::new(false),
            open: AtomicBool::new(false),
            alive: AtomicBool::new(false),
            last_insert_rowid: AtomicI64::new(0),
            budget: AtomicU32::new(INLINE_BUDGET),
            to_worker: Mutex::default(),
            inline_runs: AtomicU64::new(0),
            queued: AtomicU64::new(0),
            overran: AtomicU64::new(0),
        }
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// Mark `seq` as running; false when it was cancelled before it started.
    fn begin(&self, seq: u64) -> bool {
        let mut sched = lock(&self.sched);
        sched.running = seq;
        sched.started = seq;
        self.progress.clear_abort();
        !sched.cancelled.remove(&seq)
    }

    fn end(&self) {
        lock(&self.sched).running = 0;
    }

    fn interrupt_running(&self) {
        self.progress.abort();
        if let Some(handle) = lock(&self.interrupt).as_ref() {
            handle.interrupt();
        }
    }

    /// Publish the connection state the Python side reads without a job.
    fn publish(&self, engine: Option<&Engine>) {
        match engine {
            Some(e) => {
                self.in_transaction
                    .store(e.in_transaction(), Ordering::SeqCst);
                self.last_insert_rowid
                    .store(e.last_insert_rowid(), Ordering::SeqCst);
            }
            None => self.in_transaction.store(false, Ordering::SeqCst),
        }
    }

    fn hand_back<T>(&self) -> Option<T> {
        self.queued.fetch_add(1, Ordering::Relaxed);
        None
    }
}

/// A connection's worker thread and the sending end of its queue. Dropping it lets the thread
/// finish the queued jobs, close the connection and exit.
pub struct Worker {
    sender: Sender<Job>,
    shared: Arc<Shared>,
    next_seq: AtomicU64,
}

impl Worker {
    /// Start the thread (no connection yet: submit [`Op::Open`] first).
    pub fn spawn() -> std::io::Result<Worker> {
        Worker::spawn_with(None)
    }

    /// [`Worker::spawn`], with `on_exit` run on the worker thread as its last act (after the
    /// connection is closed).
    pub fn spawn_with(on_exit: Option<ExitHook>) -> std::io::Result<Worker> {
        let (sender, receiver) = mpsc::channel();
        let shared = Arc::new(Shared::default());
        shared.alive.store(true, Ordering::SeqCst);
        let thread_shared = Arc::clone(&shared);
        let spawned = std::thread::Builder::new()
            .name("covet-sqlite".into())
            .spawn(move || {
                worker_loop(&receiver, &thread_shared);
                if let Some(hook) = on_exit {
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(hook));
                }
                thread_shared.alive.store(false, Ordering::SeqCst);
            });
        if let Err(e) = spawned {
            shared.alive.store(false, Ordering::SeqCst);
            return Err(e);
        }
        Ok(Worker {
            sender,
            shared,
            next_seq: AtomicU64::new(0),
        })
    }

    /// Queue a job; its number (for [`Worker::cancel`]). When the worker is gone the reply is
    /// called at once, on this thread, with a "closed" error.
    pub fn submit(&self, op: Op, reply: Reply) -> u64 {
        let seq = self.next_seq.fetch_add(1, Ordering::SeqCst) + 1;
        self.shared.pending.fetch_add(1, Ordering::SeqCst);
        if let Err(mpsc::SendError(job)) = self.sender.send(Job { seq, op, reply }) {
            self.shared.pending.fetch_sub(1, Ordering::SeqCst);
            (job.reply)(Err(EngineError::closed()));
        }
        seq
    }

    /// Whether an inline attempt for `sql` could run now: the fast path is on, no job is
    /// pending and `sql` is not remembered as one for the worker. A cheap check before the
    /// parameters are converted; [`Worker::try_fetch`] checks again.
    pub fn may_inline(&self, sql: &str) -> bool {
        let shared = &self.shared;
        let ok = shared.budget.load(Ordering::Relaxed) != 0
            && shared.pending.load(Ordering::SeqCst) == 0
            && !lock(&shared.to_worker).contains(sql);
        if !ok {
            shared.queued.fetch_add(1, Ordering::Relaxed);
        }
        ok
    }

    /// The inline fast path of [`Op::Fetch`]: run the query on this thread when the connection
    /// is idle (no job queued or running) and it is a read-only query, under the budget. None:
    /// submit it as a job instead (nothing ran, or nothing that matters: see [`Inline`]).
    pub fn try_fetch(
        &self,
        sql: &str,
        params: &[Value],
        limit: Option<usize>,
        columns: bool,
    ) -> Option<Result<RowSet, EngineError>> {
        self.try_inline(sql, |engine, budget| {
            engine.fetch_inline(sql, params, limit, columns, budget)
        })
    }

    /// The inline fast path of [`Op::CursorOpen`] (see [`Worker::try_fetch`]): the first chunk;
    /// the cursor's later chunks are jobs.
    pub fn try_cursor_open(
        &self,
        sql: &str,
        params: &[Value],
        chunk: usize,
    ) -> Option<Result<(u64, RowSet, bool), EngineError>> {
        self.try_inline(sql, |engine, budget| {
            engine.cursor_open_inline(sql, params, chunk, budget)
        })
    }

    fn try_inline<T>(
        &self,
        sql: &str,
        run: impl FnOnce(&mut Engine, u32) -> Inline<T>,
    ) -> Option<Result<T, EngineError>> {
        use std::panic::{catch_unwind, AssertUnwindSafe};
        let shared = &self.shared;
        let budget = shared.budget.load(Ordering::Relaxed);
        if budget == 0 || shared.pending.load(Ordering::SeqCst) != 0 {
            return shared.hand_back();
        }
        if lock(&shared.to_worker).contains(sql) {
            return shared.hand_back();
        }
        let mut guard = match shared.engine.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => return shared.hand_back(),
        };
        // Checked again under the lock: a job submitted meanwhile is not overtaken.
        if shared.pending.load(Ordering::SeqCst) != 0 {
            return shared.hand_back();
        }
        let Some(engine) = guard.as_mut() else {
            shared.inline_runs.fetch_add(1, Ordering::Relaxed);
            return Some(Err(EngineError::closed()));
        };
        {
            let mut sched = lock(&shared.sched);
            sched.running = INLINE;
            shared.progress.clear_abort();
        }
        let out = match catch_unwind(AssertUnwindSafe(|| run(engine, budget))) {
            Ok(out) => out,
            Err(p) => {
                engine.inline_abandoned();
                Inline::Done(Err(EngineError::new(
                    ErrorClass::Internal,
                    format!("SQLite inline statement panicked: {}", panic_message(&*p)),
                )))
            }
        };
        shared.publish(Some(engine));
        shared.end();
        drop(guard);
        match out {
            Inline::Done(result) => {
                shared.inline_runs.fetch_add(1, Ordering::Relaxed);
                Some(result)
            }
            Inline::Overran => {
                shared.overran.fetch_add(1, Ordering::Relaxed);
                lock(&shared.to_worker).insert(sql);
                shared.hand_back()
            }
            Inline::Ineligible => {
                lock(&shared.to_worker).insert(sql);
                shared.hand_back()
            }
            Inline::Busy => shared.hand_back(),
        }
    }

    /// Set the inline budget (VM instructions); 0 turns the fast path off.
    pub fn set_inline_budget(&self, ops: u32) {
        self.shared.budget.store(ops, Ordering::Relaxed);
    }

    pub fn inline_budget(&self) -> u32 {
        self.shared.budget.load(Ordering::Relaxed)
    }

    pub fn stats(&self) -> InlineStats {
        let shared = &self.shared;
        InlineStats {
            inline: shared.inline_runs.load(Ordering::Relaxed),
            queued: shared.queued.load(Ordering::Relaxed),
            overran: shared.overran.load(Ordering::Relaxed),
            remembered: lock(&shared.to_worker).len(),
        }
    }

    /// Skip job `seq` if it has not started; interrupt it if it is running.
    pub fn cancel(&self, seq: u64) {
        let mut sched = lock(&self.shared.sched);
        if sched.running == seq {
            self.shared.interrupt_running();
        } else if seq > sched.started {
            sched.cancelled.insert(seq);
        }
    }

    /// Interrupt whatever statement is running now (`sqlite3_interrupt`); safe from any thread.
    pub fn interrupt(&self) {
        let sched = lock(&self.shared.sched);
        if sched.running != 0 {
            self.shared.interrupt_running();
        }
    }

    pub fn in_transaction(&self) -> bool {
        self.shared.in_transaction.load(Ordering::SeqCst)
    }

    /// Opened, not closed, and its thread is running.
    pub fn is_open(&self) -> bool {
        self.shared.open.load(Ordering::SeqCst) && self.is_alive()
    }

    pub fn is_alive(&self) -> bool {
        self.shared.alive.load(Ordering::SeqCst)
    }

    pub fn last_insert_rowid(&self) -> i64 {
        self.shared.last_insert_rowid.load(Ordering::SeqCst)
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

fn run_job(
    engine: &mut Option<Engine>,
    op: Op,
    shared: &Arc<Shared>,
) -> Result<Output, EngineError> {
    match op {
        Op::Open { path, pragmas } => {
            if engine.is_some() {
                return Err(EngineError::new(
                    ErrorClass::Programming,
                    "the connection is already open",
                ));
            }
            let opened = Engine::open(&path, &pragmas, Some(Arc::clone(&shared.progress)))?;
            *lock(&shared.interrupt) = Some(opened.interrupt_handle());
            *engine = Some(opened);
            shared.open.store(true, Ordering::SeqCst);
            Ok(Output::Unit)
        }
        Op::Close => {
            shared.open.store(false, Ordering::SeqCst);
            *lock(&shared.interrupt) = None;
            engine
                .take()
                .map_or(Ok(()), Engine::close)
                .map(|()| Output::Unit)
        }
        Op::Ping => Ok(Output::Unit),
        op => match engine.as_mut() {
            Some(e) => e.run(op),
            None => Err(EngineError::closed()),
        },
    }
}

fn worker_loop(receiver: &Receiver<Job>, shared: &Arc<Shared>) {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    while let Ok(Job { seq, op, reply }) = receiver.recv() {
        let closing = matches!(op, Op::Close);
        let result = {
            // Taken before `begin`: a job cancelled while an inline statement holds the
            // connection is still skipped.
            let mut engine = lock(&shared.engine);
            let result = if !shared.begin(seq) && !closing {
                Err(EngineError::cancelled())
            } else {
                catch_unwind(AssertUnwindSafe(|| run_job(&mut engine, op, shared))).unwrap_or_else(
                    |p| {
                        Err(EngineError::new(
                            ErrorClass::Internal,
                            format!("SQLite worker panicked: {}", panic_message(&*p)),
                        ))
                    },
                )
            };
            shared.publish(engine.as_ref());
            shared.end();
            result
        };
        // Before the reply: once its future is resolved, the next statement may go inline.
        shared.pending.fetch_sub(1, Ordering::SeqCst);
        let _ = catch_unwind(AssertUnwindSafe(|| reply(result)));
        if closing {
            break;
        }
    }
    shared.open.store(false, Ordering::SeqCst);
    *lock(&shared.interrupt) = None;
    let engine = lock(&shared.engine).take();
    drop(engine);
}
