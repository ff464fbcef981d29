//! The worker thread of one native connection: the jobs ([`Op`]) and their results ([`Output`]),
//! the queue, cancellation and interrupts.

use rusqlite::types::Value;
use rusqlite::InterruptHandle;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{Engine, EngineError, ErrorClass};

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
    running: u64,
    started: u64,
    cancelled: HashSet<u64>,
}

/// State shared by the worker thread and the threads that submit, cancel and interrupt.
#[derive(Default)]
pub struct Shared {
    sched: Mutex<Sched>,
    pub(super) abort: AtomicBool,
    pub(super) interrupt: Mutex<Option<InterruptHandle>>,
    in_transaction: AtomicBool,
    open: AtomicBool,
    alive: AtomicBool,
    last_insert_rowid: AtomicI64,
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
        self.abort.store(false, Ordering::SeqCst);
        !sched.cancelled.remove(&seq)
    }

    fn end(&self) {
        lock(&self.sched).running = 0;
    }

    fn interrupt_running(&self) {
        self.abort.store(true, Ordering::SeqCst);
        if let Some(handle) = lock(&self.interrupt).as_ref() {
            handle.interrupt();
        }
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
        if let Err(mpsc::SendError(job)) = self.sender.send(Job { seq, op, reply }) {
            (job.reply)(Err(EngineError::closed()));
        }
        seq
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
            *engine = Some(Engine::open(&path, &pragmas, Some(shared))?);
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
    let mut engine: Option<Engine> = None;
    while let Ok(Job { seq, op, reply }) = receiver.recv() {
        let closing = matches!(op, Op::Close);
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
        if let Some(e) = engine.as_ref() {
            shared
                .in_transaction
                .store(e.in_transaction(), Ordering::SeqCst);
            shared
                .last_insert_rowid
                .store(e.last_insert_rowid(), Ordering::SeqCst);
        } else {
            shared.in_transaction.store(false, Ordering::SeqCst);
        }
        shared.end();
        let _ = catch_unwind(AssertUnwindSafe(|| reply(result)));
        if closing {
            break;
        }
    }
    shared.open.store(false, Ordering::SeqCst);
    *lock(&shared.interrupt) = None;
    drop(engine);
}
