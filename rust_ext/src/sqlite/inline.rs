//! The pieces of the inline fast path that need no connection: the progress state that bounds an
//! inline statement (and carries cancellation), the bounded memory of statements that go to the
//! worker, and the outcome of an inline attempt. See the parent module for the whole story.

use std::collections::{HashSet, VecDeque};
use std::ffi::c_int;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use super::EngineError;

/// SQLite calls the progress handler about every this many VM instructions.
pub const PROGRESS_OPS: c_int = 1000;

/// The default budget of an inline statement, in SQLite VM instructions.
///
/// How long the event loop is held, measured (2 shared cores, system SQLite 3.40) as the time
/// `try_fetch` takes to give up on queries that overrun, on a 200,000-row table of ~230-byte
/// rows: with 5,000 instructions, 0.1–0.2 ms for tight loops (recursive CTE, integer filters,
/// ORDER BY, GROUP BY), 0.3–0.7 ms when every row's text is searched (LIKE, instr, GLOB,
/// `lower`, `covet_regexp`, json), 1.0 ms at worst warm and 1.3 ms at worst with a cold page
/// cache (a new connection reading its pages). 10,000 instructions doubled that (worst 2.2 ms),
/// beyond the 1–2 ms the event loop may be held. What fits in 5,000: a primary-key lookup (~30
/// instructions), a filtered page of 100 rows (~2,000), up to ~500 narrow rows; a statement
/// that needs more costs 0.3 ms or more anyway, next to which the job's thread hop (~35 µs) is
/// small. Statements that overran are remembered, so the wasted time is paid once per
/// connection and statement text.
pub const INLINE_BUDGET: u32 = 5_000;

/// How many statement texts a connection remembers as "run it on the worker".
pub const REMEMBERED: usize = 128;

const OFF: u32 = u32::MAX;

/// What the progress handler looks at: the cancellation flag (any job) and the budget (inline
/// statements only). Shared by the connection's worker and the threads that cancel; only the
/// thread that holds the connection arms and disarms the budget.
#[derive(Debug)]
pub struct Progress {
    abort: AtomicBool,
    /// Progress-handler calls left before an inline statement is stopped; `OFF` for jobs.
    left: AtomicU32,
    overran: AtomicBool,
}

impl Default for Progress {
    fn default() -> Self {
        Progress {
            abort: AtomicBool::new(false),
            left: AtomicU32::new(OFF),
            overran: AtomicBool::new(false),
        }
    }
}

impl Progress {
    /// The progress handler: true stops the running statement (`SQLITE_INTERRUPT`).
    pub fn tick(&self) -> bool {
        if self.abort.load(Ordering::Relaxed) {
            return true;
        }
        let left = self.left.load(Ordering::Relaxed);
        if left == OFF {
            return false;
        }
        if left == 0 {
            self.overran.store(true, Ordering::Relaxed);
            return true;
        }
        self.left.store(left - 1, Ordering::Relaxed);
        false
    }

    /// Let the next statement run about `ops` VM instructions (at least one handler period).
    pub fn arm(&self, ops: u32) {
        let ticks = ops.div_ceil(PROGRESS_OPS as u32).clamp(1, OFF - 1);
        self.overran.store(false, Ordering::Relaxed);
        self.left.store(ticks, Ordering::Relaxed);
    }

    /// No budget: the statement runs until it ends or is cancelled.
    pub fn disarm(&self) {
        self.left.store(OFF, Ordering::Relaxed);
    }

    /// The budget stopped the statement since the last [`Progress::arm`].
    pub fn overran(&self) -> bool {
        self.overran.load(Ordering::Relaxed)
    }

    /// Stop whatever runs now (a cancelled or interrupted job), until [`Progress::clear_abort`].
    pub fn abort(&self) {
        self.abort.store(true, Ordering::SeqCst);
    }

    pub fn clear_abort(&self) {
        self.abort.store(false, Ordering::SeqCst);
    }
}

/// A bounded set of SQL texts; when full, the oldest entry makes room.
#[derive(Debug)]
pub struct SqlSet {
    cap: usize,
    set: HashSet<String>,
    order: VecDeque<String>,
}

impl Default for SqlSet {
    fn default() -> Self {
        SqlSet::new(REMEMBERED)
    }
}

impl SqlSet {
    pub fn new(cap: usize) -> Self {
        SqlSet {
            cap: cap.max(1),
            set: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    pub fn contains(&self, sql: &str) -> bool {
        !self.set.is_empty() && self.set.contains(sql)
    }

    pub fn insert(&mut self, sql: &str) {
        if self.set.contains(sql) {
            return;
        }
        while self.set.len() >= self.cap {
            match self.order.pop_front() {
                Some(oldest) => {
                    self.set.remove(&oldest);
                }
                None => break,
            }
        }
        self.set.insert(sql.to_owned());
        self.order.push_back(sql.to_owned());
    }

    pub fn len(&self) -> usize {
        self.set.len()
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }
}

/// How an inline attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Inline<T> {
    /// It ran (or failed) on the calling thread: what the job would have answered.
    Done(Result<T, EngineError>),
    /// Not a read-only query (`SELECT`/`WITH`/`VALUES` that `sqlite3_stmt_readonly` accepts):
    /// nothing ran; run it as a job.
    Ineligible,
    /// The budget stopped it; a read-only statement leaves nothing behind: run it as a job.
    Overran,
    /// It would have waited for another connection's lock: run it as a job (which may wait).
    Busy,
}
