//! The native SQLite executor: one worker thread per connection.
//!
//! Which SQLite: by default the system `libsqlite3`, dynamically linked: the very library
//! Python's `sqlite3` module (and so the aiosqlite engine) loads. One copy of SQLite per process
//! matters: SQLite's POSIX file locks are per process, and only one library copy's bookkeeping
//! sees another connection's locks. With two copies, a `BEGIN IMMEDIATE` of one is invisible to
//! the other, and closing a file in one drops the other's locks (sqlite.org/howtocorrupt.html,
//! 2.2.1). The cargo feature `bundled-sqlite` compiles SQLite from source instead, for systems
//! without a `libsqlite3`; then never open the same database file with this engine and with
//! Python's `sqlite3` in one process. Needs SQLite 3.35 or newer (RETURNING).
//!
//! Plain Rust, no Python: [`Engine`] owns one `rusqlite` connection and runs statements through
//! the C API directly (a small cache of prepared statements, `?NNN` parameters bound by position,
//! cursors kept open between chunks); [`Worker`] runs an `Engine` on its own thread and takes
//! [`Op`]s over a channel, each with a [`Reply`] callback that receives the [`Output`] or an
//! [`EngineError`]. `sqlite_bindings.rs` turns replies into resolved asyncio futures.
//!
//! The inline fast path ([`Worker::try_fetch`], [`Worker::try_cursor_open`]): the engine lives in
//! a `Mutex` that the worker takes for each job and that the calling thread may take instead, to
//! run a query at once without a job. It does so only when the connection is idle: a count of
//! pending jobs (up at submit, down when the job is done, before its reply) is zero and
//! `try_lock` succeeds; so a statement never overtakes a queued one (a `CursorClose`, a `Ping`).
//! Only a read-only query runs inline: `sqlite3_stmt_readonly`, and it starts with `SELECT`,
//! `WITH` or `VALUES` (so never transaction control, `PRAGMA`, `ATTACH`), and it has no
//! `OP_Count` (a whole-table `count(*)` walks the table in one VM instruction). It runs under a
//! budget of VM instructions ([`INLINE_BUDGET`], chosen by measurement, see `sqlite/inline.rs`):
//! the progress handler, which also carries cancellation ([`Progress`]), stops it when the
//! budget is spent. A stopped read-only statement leaves nothing behind: SQLite rolls nothing
//! back for an interrupted read (`sqlite3VdbeHalt`), so a transaction stays open with its writes
//! (tested). The caller then submits the statement as a job, and the connection remembers its
//! text in a bounded [`SqlSet`] (as it does the texts that may not run inline) so that it goes
//! straight to the worker next time. Inline, the busy handler is off: a query that would wait for
//! another connection's lock is retried as a job instead ([`Inline::Busy`]), where the busy
//! timeout applies; the timeout is restored after each inline run (read with `PRAGMA
//! busy_timeout`, again after any PRAGMA ran). `in_transaction` and `last_insert_rowid` are
//! published after inline runs as after jobs. An inline statement counts as running for
//! [`Worker::interrupt`]; [`Worker::cancel`] only knows jobs.
//!
//! Behaviour mirrors CPython's `sqlite3` module, which the reference engine (aiosqlite) uses, so
//! that both engines are interchangeable: the same error classes ([`ErrorClass`], with the
//! extended result code and its `SQLITE_*` name), the same checks (parameter count, one statement
//! at a time, `executemany` only for DML), `rowcount` only for INSERT/UPDATE/DELETE/REPLACE, TEXT
//! decoded strictly as UTF-8. The SQL functions `lower`/`upper` (Unicode case mapping like
//! Python's `str.lower`/`str.upper`), `covet_regexp`, `covet_iregexp` and `regexp`, and the
//! collation `covet_decimal` ([`decimal_collation`]) are registered natively.
//!
//! Regular expressions use the `regex` crate, not Python's `re`. The common syntax is the same
//! (classes, `\d \w \s \b` with Unicode semantics, `(?i)`, `(?P<name>...)`, lazy quantifiers);
//! Python's `\Z` is translated to `\z`. Not supported: look-around (`(?=` `(?!` `(?<=` `(?<!`),
//! back-references (`\1`, `(?P=name)`), atomic groups and possessive quantifiers: such a pattern
//! is an error ("invalid regular expression"), an `OperationalError` like a failing Python
//! function. Python's `$` also matches before a final newline; here `$` is only the end of text.
//!
//! Cancellation: [`Worker::cancel`] skips a job that has not started and interrupts a running one
//! (`sqlite3_interrupt` plus a progress handler that keeps interrupting that job, so an interrupt
//! that arrives between two statements of the job is not lost).
//!
//! Layout: this file holds the engine (statements, the cache, cursors, inline runs);
//! `sqlite/errors.rs` the error classes and result-code names, `sqlite/functions.rs` the SQL
//! functions and the collation, `sqlite/worker.rs` the jobs, the thread, its queue and the fast
//! path's admission, `sqlite/inline.rs` the budget, the progress state and the remembered
//! statements, `sqlite/tests.rs` the tests.

mod errors;
mod functions;
mod inline;
mod worker;

pub use errors::{error_name, EngineError, ErrorClass};
pub use functions::{
    decimal_collation, py_float_repr, text_of, translate_pattern, RegexCache, COLLATIONS, FUNCTIONS,
};
pub use inline::{Inline, Progress, SqlSet, INLINE_BUDGET, PROGRESS_OPS, REMEMBERED};
pub use worker::{ExitHook, InlineStats, Op, Output, Reply, RowSet, Shared, Worker};

use functions::register_functions;

use rusqlite::types::Value;
use rusqlite::{ffi, InterruptHandle};
use rusqlite::{Connection, OpenFlags};
use std::collections::HashMap;
use std::ffi::{c_char, c_int, CStr};
use std::ptr::{self, NonNull};
use std::sync::Arc;

const STATEMENT_CACHE: usize = 256;

// statements --------------------------------------------------------------------------------------
struct Stmt(NonNull<ffi::sqlite3_stmt>);

impl Stmt {
    fn ptr(&self) -> *mut ffi::sqlite3_stmt {
        self.0.as_ptr()
    }
}

impl Drop for Stmt {
    fn drop(&mut self) {
        // SAFETY: the statement was prepared on this engine's connection, which outlives it
        // (Engine drops its statements before the connection), and it is finalized once.
        unsafe { ffi::sqlite3_finalize(self.ptr()) };
    }
}

struct Prepared {
    stmt: Stmt,
    is_dml: bool,
    /// May run inline: a read-only query (see [`inline_eligible`]).
    inline: bool,
    /// A PRAGMA: it may have changed the busy timeout.
    is_pragma: bool,
}

struct Cursor {
    stmt: Stmt,
}

fn column_count(stmt: *mut ffi::sqlite3_stmt) -> usize {
    // SAFETY: a live statement.
    usize::try_from(unsafe { ffi::sqlite3_column_count(stmt) }).unwrap_or(0)
}

/// CPython's `lstrip_sql`: skip whitespace and comments; None when only those remain.
fn lstrip_sql(sql: &[u8]) -> Option<&[u8]> {
    let mut i = 0;
    while i < sql.len() {
        match sql[i] {
            b' ' | b'\t' | b'\x0c' | b'\n' | b'\r' => i += 1,
            b'-' if sql.get(i + 1) == Some(&b'-') => {
                match sql[i + 2..].iter().position(|&c| c == b'\n') {
                    Some(n) => i += 2 + n + 1,
                    None => return None,
                }
            }
            b'/' if sql.get(i + 1) == Some(&b'*') => {
                match sql[i + 2..].windows(2).position(|w| w == b"*/") {
                    Some(n) => i += 2 + n + 2,
                    None => return None,
                }
            }
            0 => return None,
            _ => return Some(&sql[i..]),
        }
    }
    None
}

fn no_rows(columns: bool) -> RowSet {
    RowSet {
        columns: columns.then(Vec::new),
        ..RowSet::default()
    }
}

/// A failed inline run: retried as a job when it only failed for want of a lock.
fn busy_or_done<T>(e: EngineError) -> Inline<T> {
    if e.code.is_some_and(|c| c & 0xff == ffi::SQLITE_BUSY) {
        Inline::Busy
    } else {
        Inline::Done(Err(e))
    }
}

/// CPython's notion of a statement whose `rowcount` counts: it starts with one of these words.
fn is_dml(sql: &str) -> bool {
    lstrip_sql(sql.as_bytes()).is_some_and(|p| {
        ["insert", "update", "delete", "replace"]
            .iter()
            .any(|kw| p.len() >= kw.len() && p[..kw.len()].eq_ignore_ascii_case(kw.as_bytes()))
    })
}

fn starts_with_word(sql: &str, words: &[&str]) -> bool {
    lstrip_sql(sql.as_bytes()).is_some_and(|p| {
        words.iter().any(|kw| {
            p.len() >= kw.len()
                && p[..kw.len()].eq_ignore_ascii_case(kw.as_bytes())
                && !p
                    .get(kw.len())
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
        })
    })
}

/// A statement the inline fast path may run: a query (`SELECT`, `WITH`, `VALUES`) that SQLite
/// calls read-only. Transaction control, `PRAGMA`, `ATTACH` and the like are read-only to
/// SQLite but change the connection: they always run as jobs, as does anything that writes.
fn inline_eligible(stmt: *mut ffi::sqlite3_stmt, sql: &str) -> bool {
    // SAFETY: a live statement.
    let readonly = unsafe { ffi::sqlite3_stmt_readonly(stmt) } != 0;
    readonly && starts_with_word(sql, &["select", "with", "values"])
}

// the engine --------------------------------------------------------------------------------------
/// One open connection and its prepared statements; used by one thread at a time.
pub struct Engine {
    // Field order matters: statements are finalized before the connection closes.
    cache: HashMap<String, (Prepared, u64)>,
    cursors: HashMap<u64, Cursor>,
    next_cursor: u64,
    tick: u64,
    /// The busy timeout in ms, as of the last PRAGMA; None: read it again.
    busy_ms: Option<c_int>,
    /// The busy timeout to restore while an inline run has the busy handler off.
    busy_saved: Option<c_int>,
    progress: Arc<Progress>,
    db: *mut ffi::sqlite3,
    conn: Connection,
}

// SAFETY: the connection is opened with SQLITE_OPEN_NO_MUTEX (SQLite's multi-thread mode; rusqlite
// refuses to open anything when the library is built single-threaded): it may be used from any
// thread, one thread at a time. `&mut Engine` is that exclusive use; the worker keeps the engine
// in a Mutex, which the inline fast path takes too. The raw pointers (`db`, the statements) are
// this connection's and move with it.
unsafe impl Send for Engine {}

impl Engine {
    /// Open `path` (a file name, or `:memory:`; not a URI), run `pragmas` in order and register
    /// the SQL functions. The progress handler follows `progress` (a new one when None): its
    /// cancellation flag and the inline budget.
    pub fn open(
        path: &str,
        pragmas: &[String],
        progress: Option<Arc<Progress>>,
    ) -> Result<Self, EngineError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)?;
        register_functions(&conn)?;
        let progress = progress.unwrap_or_default();
        let handler = Arc::clone(&progress);
        conn.progress_handler(PROGRESS_OPS, Some(move || handler.tick()));
        // SAFETY: the handle stays valid as long as `conn`, which the engine owns.
        let db = unsafe { conn.handle() };
        let mut engine = Engine {
            cache: HashMap::new(),
            cursors: HashMap::new(),
            next_cursor: 0,
            tick: 0,
            busy_ms: None,
            busy_saved: None,
            progress,
            db,
            conn,
        };
        for pragma in pragmas {
            engine.execute(pragma, &[])?;
        }
        Ok(engine)
    }

    /// Interrupts this connection's running statement from any thread (`sqlite3_interrupt`).
    pub fn interrupt_handle(&self) -> InterruptHandle {
        self.conn.get_interrupt_handle()
    }

    /// Close the connection, finalizing every statement first.
    pub fn close(mut self) -> Result<(), EngineError> {
        self.cache.clear();
        self.cursors.clear();
        let Engine { conn, .. } = self;
        conn.close().map_err(|(_, e)| EngineError::from(e))
    }

    /// True inside BEGIN ... COMMIT (SQLite is not in autocommit mode).
    pub fn in_transaction(&self) -> bool {
        // SAFETY: `db` is this engine's open connection.
        unsafe { ffi::sqlite3_get_autocommit(self.db) == 0 }
    }

    pub fn last_insert_rowid(&self) -> i64 {
        self.conn.last_insert_rowid()
    }

    /// Run one job.
    pub fn run(&mut self, op: Op) -> Result<Output, EngineError> {
        match op {
            Op::Fetch {
                sql,
                params,
                limit,
                columns,
            } => self.fetch(&sql, &params, limit, columns).map(Output::Rows),
            Op::Execute { sql, params } => self.execute(&sql, &params).map(Output::Count),
            Op::ExecuteMany { sql, rows } => self.execute_many(&sql, &rows).map(|()| Output::Unit),
            Op::Control { sql } => self.control(&sql).map(|()| Output::Unit),
            Op::CursorOpen { sql, params, chunk } => self
                .cursor_open(&sql, &params, chunk)
                .map(|(cursor, rows, done)| Output::Chunk { cursor, rows, done }),
            Op::CursorFetch { cursor, chunk } => {
                self.cursor_fetch(cursor, chunk)
                    .map(|(rows, done)| Output::Chunk {
                        cursor: if done { 0 } else { cursor },
                        rows,
                        done,
                    })
            }
            Op::CursorClose { cursor } => {
                self.cursors.remove(&cursor);
                Ok(Output::Unit)
            }
            Op::Ping => Ok(Output::Unit),
            Op::Open { .. } => Err(EngineError::new(
                ErrorClass::Programming,
                "the connection is already open",
            )),
            Op::Close => Err(EngineError::new(
                ErrorClass::Programming,
                "close is handled by the worker",
            )),
        }
    }

    /// Run a query; its rows (at most `limit`), and its column names when `columns`.
    pub fn fetch(
        &mut self,
        sql: &str,
        params: &[Value],
        limit: Option<usize>,
        columns: bool,
    ) -> Result<RowSet, EngineError> {
        let Some(prep) = self.take(sql)? else {
            return Ok(no_rows(columns));
        };
        let result = self.fetch_prepared(&prep, params, limit, columns);
        self.give_back(sql, prep);
        result
    }

    /// [`Engine::fetch`] for the inline fast path: only a read-only query runs, for at most
    /// about `budget` VM instructions, and it never waits for another connection's lock (the
    /// busy handler is off meanwhile). See [`Inline`] for what else can happen.
    pub fn fetch_inline(
        &mut self,
        sql: &str,
        params: &[Value],
        limit: Option<usize>,
        columns: bool,
        budget: u32,
    ) -> Inline<RowSet> {
        if !self.inline_begin() {
            return Inline::Busy;
        }
        let out = match self.take(sql) {
            Err(e) => busy_or_done(e),
            Ok(None) => Inline::Done(Ok(no_rows(columns))),
            Ok(Some(prep)) if !prep.inline => {
                // `PRAGMA busy_timeout` compiles the current timeout (0 here) into the
                // statement: the job prepares its own.
                if !prep.is_pragma {
                    self.give_back(sql, prep);
                }
                Inline::Ineligible
            }
            Ok(Some(prep)) => {
                self.progress.arm(budget);
                let result = self.fetch_prepared(&prep, params, limit, columns);
                self.progress.disarm();
                self.give_back(sql, prep);
                self.verdict(result)
            }
        };
        self.inline_end();
        out
    }

    fn fetch_prepared(
        &self,
        prep: &Prepared,
        params: &[Value],
        limit: Option<usize>,
        columns: bool,
    ) -> Result<RowSet, EngineError> {
        self.bind(&prep.stmt, params)?;
        let (mut rows, _) = self.step_rows(&prep.stmt, limit.unwrap_or(usize::MAX))?;
        if columns {
            rows.columns = Some(self.column_names(&prep.stmt));
        }
        Ok(rows)
    }

    /// Run a statement: rows affected for INSERT/UPDATE/DELETE/REPLACE, rows returned when it
    /// returns rows, else 0.
    pub fn execute(&mut self, sql: &str, params: &[Value]) -> Result<i64, EngineError> {
        let Some(prep) = self.take(sql)? else {
            return Ok(0);
        };
        let result = self.bind(&prep.stmt, params).and_then(|()| {
            let stmt = prep.stmt.ptr();
            let mut returned = 0i64;
            while self.step(stmt)? {
                returned += 1;
                for i in 0..column_count(stmt) {
                    // Rows are counted, not returned, but read as sqlite3 reads them: bad UTF-8
                    // text is the same error here as in a fetch.
                    // SAFETY: a statement positioned on a row.
                    if unsafe { ffi::sqlite3_column_type(stmt, i as c_int) } == ffi::SQLITE_TEXT {
                        self.column(stmt, i)?;
                    }
                }
            }
            Ok(if column_count(stmt) > 0 {
                returned
            } else if prep.is_dml {
                // SAFETY: `db` is this engine's open connection.
                unsafe { i64::from(ffi::sqlite3_changes(self.db)) }
            } else {
                0
            })
        });
        self.give_back(sql, prep);
        result
    }

    /// Run a DML statement once per parameter row; atomically (in its own `BEGIN IMMEDIATE`)
    /// when no transaction is open.
    pub fn execute_many(&mut self, sql: &str, rows: &[Vec<Value>]) -> Result<(), EngineError> {
        let Some(prep) = self.take(sql)? else {
            return Ok(());
        };
        let stmt = prep.stmt.ptr();
        // SAFETY: a live statement of this connection.
        if unsafe { ffi::sqlite3_stmt_readonly(stmt) } != 0 {
            self.give_back(sql, prep);
            return Err(EngineError::new(
                ErrorClass::Programming,
                "executemany() can only execute DML statements.",
            ));
        }
        let own_transaction = !self.in_transaction();
        if own_transaction {
            if let Err(e) = self.execute("BEGIN IMMEDIATE", &[]) {
                self.give_back(sql, prep);
                return Err(e);
            }
        }
        let mut result = Ok(());
        for row in rows {
            result = self.bind(&prep.stmt, row).and_then(|()| {
                while self.step(stmt)? {}
                Ok(())
            });
            // SAFETY: a live statement of this connection.
            unsafe { ffi::sqlite3_reset(stmt) };
            if result.is_err() {
                break;
            }
        }
        self.give_back(sql, prep);
        if own_transaction {
            if result.is_ok() {
                result = self.execute("COMMIT", &[]).map(|_| ());
            }
            if result.is_err() && self.in_transaction() {
                let _ = self.execute("ROLLBACK", &[]);
            }
        }
        result
    }

    /// Run a transaction-control statement; `ROLLBACK` with no transaction open does nothing
    /// (an interrupted write may already have rolled back).
    pub fn control(&mut self, sql: &str) -> Result<(), EngineError> {
        if sql == "ROLLBACK" && !self.in_transaction() {
            return Ok(());
        }
        self.execute(sql, &[]).map(|_| ())
    }

    /// Start a query and return its first `chunk` rows; the cursor id is 0 when it is already
    /// exhausted (`done`).
    pub fn cursor_open(
        &mut self,
        sql: &str,
        params: &[Value],
        chunk: usize,
    ) -> Result<(u64, RowSet, bool), EngineError> {
        let Some(prep) = self.prepare(sql)? else {
            return Ok((0, RowSet::default(), true));
        };
        self.note(&prep);
        self.bind(&prep.stmt, params)?;
        let (rows, done) = self.step_rows(&prep.stmt, chunk.max(1))?;
        Ok(self.keep_cursor(prep, rows, done))
    }

    /// [`Engine::cursor_open`] for the inline fast path, as [`Engine::fetch_inline`]: the first
    /// chunk is read under the budget; the cursor then stays open for jobs to read on.
    pub fn cursor_open_inline(
        &mut self,
        sql: &str,
        params: &[Value],
        chunk: usize,
        budget: u32,
    ) -> Inline<(u64, RowSet, bool)> {
        if !self.inline_begin() {
            return Inline::Busy;
        }
        let out = match self.prepare(sql) {
            Err(e) => busy_or_done(e),
            Ok(None) => Inline::Done(Ok((0, RowSet::default(), true))),
            Ok(Some(prep)) if !prep.inline => Inline::Ineligible,
            Ok(Some(prep)) => {
                self.progress.arm(budget);
                let result = self
                    .bind(&prep.stmt, params)
                    .and_then(|()| self.step_rows(&prep.stmt, chunk.max(1)));
                self.progress.disarm();
                match self.verdict(result) {
                    Inline::Done(Ok((rows, done))) => {
                        Inline::Done(Ok(self.keep_cursor(prep, rows, done)))
                    }
                    Inline::Done(Err(e)) => Inline::Done(Err(e)),
                    Inline::Overran => Inline::Overran,
                    Inline::Busy => Inline::Busy,
                    Inline::Ineligible => Inline::Ineligible,
                }
            }
        };
        self.inline_end();
        out
    }

    fn keep_cursor(&mut self, prep: Prepared, rows: RowSet, done: bool) -> (u64, RowSet, bool) {
        if done {
            return (0, rows, true);
        }
        self.next_cursor += 1;
        self.cursors
            .insert(self.next_cursor, Cursor { stmt: prep.stmt });
        (self.next_cursor, rows, false)
    }

    /// The next `chunk` rows of a cursor; it is closed once `done` (or on error). An unknown
    /// cursor is exhausted.
    pub fn cursor_fetch(
        &mut self,
        cursor: u64,
        chunk: usize,
    ) -> Result<(RowSet, bool), EngineError> {
        let Some(cur) = self.cursors.remove(&cursor) else {
            return Ok((RowSet::default(), true));
        };
        let (rows, done) = self.step_rows(&cur.stmt, chunk.max(1))?;
        if !done {
            self.cursors.insert(cursor, cur);
        }
        Ok((rows, done))
    }

    pub fn open_cursors(&self) -> usize {
        self.cursors.len()
    }

    // internals -------------------------------------------------------------------------------
    /// Start an inline run: the busy handler off (its timeout saved); false when the timeout
    /// cannot be read.
    fn inline_begin(&mut self) -> bool {
        let Some(ms) = self.busy_timeout() else {
            return false;
        };
        self.busy_saved = Some(ms);
        // SAFETY: `db` is this engine's open connection; 0 removes the busy handler.
        unsafe { ffi::sqlite3_busy_timeout(self.db, 0) };
        true
    }

    /// End an inline run: no budget, the busy timeout back.
    fn inline_end(&mut self) {
        self.progress.disarm();
        if let Some(ms) = self.busy_saved.take() {
            // SAFETY: `db` is this engine's open connection.
            unsafe { ffi::sqlite3_busy_timeout(self.db, ms) };
        }
    }

    /// [`Engine::inline_end`] for an inline run that could not finish (it panicked).
    pub fn inline_abandoned(&mut self) {
        self.inline_end();
    }

    /// The connection's busy timeout (ms), read again after any PRAGMA statement ran.
    fn busy_timeout(&mut self) -> Option<c_int> {
        if self.busy_ms.is_none() {
            let prep = self.prepare("PRAGMA busy_timeout").ok()??;
            let stmt = prep.stmt.ptr();
            if self.step(stmt).ok()? {
                // SAFETY: a statement positioned on a row of one integer column.
                self.busy_ms = Some(unsafe { ffi::sqlite3_column_int(stmt, 0) });
            }
        }
        self.busy_ms
    }

    /// What an inline run's result means: stopped by the budget, blocked by a lock, or final.
    fn verdict<T>(&self, result: Result<T, EngineError>) -> Inline<T> {
        match result {
            Err(_) if self.progress.overran() => Inline::Overran,
            Err(e) => busy_or_done(e),
            ok => Inline::Done(ok),
        }
    }

    /// Bookkeeping for a statement about to run: a PRAGMA may change the busy timeout.
    fn note(&mut self, prep: &Prepared) {
        if prep.is_pragma {
            self.busy_ms = None;
        }
    }

    fn error(&self, rc: c_int) -> EngineError {
        // SAFETY: `db` is this engine's open connection; errmsg returns a NUL-terminated string.
        let (ext, msg) = unsafe {
            let ext = ffi::sqlite3_extended_errcode(self.db);
            let msg = CStr::from_ptr(ffi::sqlite3_errmsg(self.db))
                .to_string_lossy()
                .into_owned();
            (ext, msg)
        };
        let code = if ext & 0xff == rc & 0xff { ext } else { rc };
        EngineError::sqlite(code, msg)
    }

    fn prepare(&self, sql: &str) -> Result<Option<Prepared>, EngineError> {
        if sql.as_bytes().contains(&0) {
            return Err(EngineError::new(
                ErrorClass::Programming,
                "the query contains a null character",
            ));
        }
        let len = c_int::try_from(sql.len())
            .map_err(|_| EngineError::new(ErrorClass::Data, "query string is too large"))?;
        let mut stmt: *mut ffi::sqlite3_stmt = ptr::null_mut();
        let mut tail: *const c_char = ptr::null();
        // SAFETY: `sql` is valid for `len` bytes; out-pointers are valid.
        let rc = unsafe {
            ffi::sqlite3_prepare_v2(self.db, sql.as_ptr().cast(), len, &mut stmt, &mut tail)
        };
        if rc != ffi::SQLITE_OK {
            return Err(self.error(rc));
        }
        let Some(stmt) = NonNull::new(stmt) else {
            return Ok(None);
        }; // only whitespace/comments
        let stmt = Stmt(stmt);
        let consumed = if tail.is_null() {
            sql.len()
        } else {
            tail as usize - sql.as_ptr() as usize
        };
        if lstrip_sql(&sql.as_bytes()[consumed.min(sql.len())..]).is_some() {
            return Err(EngineError::new(
                ErrorClass::Programming,
                "You can only execute one statement at a time.",
            ));
        }
        let inline = inline_eligible(stmt.ptr(), sql) && !self.counts_whole_table(sql);
        Ok(Some(Prepared {
            stmt,
            is_dml: is_dml(sql),
            inline,
            is_pragma: starts_with_word(sql, &["pragma"]),
        }))
    }

    /// Whether `sql` (one query, known to prepare) counts a whole table with `OP_Count`: one VM
    /// instruction that walks every page of the table, which the inline budget cannot stop.
    fn counts_whole_table(&self, sql: &str) -> bool {
        let has_word = sql
            .as_bytes()
            .windows(5)
            .any(|w| w.eq_ignore_ascii_case(b"count"));
        if !has_word {
            return false;
        }
        let explain = format!("EXPLAIN {sql}");
        let Ok(Some(prep)) = self.prepare(&explain) else {
            return true; // unknown: not inline
        };
        let stmt = prep.stmt.ptr();
        while let Ok(true) = self.step(stmt) {
            // SAFETY: a statement positioned on a row; EXPLAIN's column 1 is the opcode name.
            let opcode = unsafe {
                let p = ffi::sqlite3_column_text(stmt, 1);
                if p.is_null() {
                    continue;
                }
                CStr::from_ptr(p.cast())
            };
            if opcode.to_bytes() == b"Count" {
                return true;
            }
        }
        false
    }

    /// A cached statement (taken out of the cache while in use), or a newly prepared one.
    fn take(&mut self, sql: &str) -> Result<Option<Prepared>, EngineError> {
        let prep = match self.cache.remove(sql) {
            Some((prep, _)) => Some(prep),
            None => self.prepare(sql)?,
        };
        if let Some(prep) = &prep {
            self.note(prep);
        }
        Ok(prep)
    }

    fn give_back(&mut self, sql: &str, prep: Prepared) {
        // SAFETY: a live statement of this connection; reset releases its locks.
        unsafe {
            ffi::sqlite3_reset(prep.stmt.ptr());
        }
        if self.cache.len() >= STATEMENT_CACHE {
            if let Some(oldest) = self
                .cache
                .iter()
                .min_by_key(|(_, (_, t))| *t)
                .map(|(k, _)| k.clone())
            {
                self.cache.remove(&oldest);
            }
        }
        self.tick += 1;
        self.cache.insert(sql.to_owned(), (prep, self.tick));
    }

    fn bind(&self, stmt: &Stmt, params: &[Value]) -> Result<(), EngineError> {
        let stmt = stmt.ptr();
        // SAFETY: a live statement of this connection; every pointer passed is valid for the
        // length given, and SQLITE_TRANSIENT makes SQLite copy it.
        unsafe {
            let needed = usize::try_from(ffi::sqlite3_bind_parameter_count(stmt)).unwrap_or(0);
            if needed != params.len() {
                return Err(EngineError::new(
                    ErrorClass::Programming,
                    format!(
                        "Incorrect number of bindings supplied. The current statement uses {needed}, and there are {} supplied.",
                        params.len()
                    ),
                ));
            }
            for (i, value) in params.iter().enumerate() {
                let idx = (i + 1) as c_int;
                let rc = match value {
                    Value::Null => ffi::sqlite3_bind_null(stmt, idx),
                    Value::Integer(n) => ffi::sqlite3_bind_int64(stmt, idx, *n),
                    Value::Real(x) => ffi::sqlite3_bind_double(stmt, idx, *x),
                    Value::Text(s) => ffi::sqlite3_bind_text64(
                        stmt,
                        idx,
                        s.as_ptr().cast(),
                        s.len() as u64,
                        ffi::SQLITE_TRANSIENT(),
                        ffi::SQLITE_UTF8 as u8,
                    ),
                    Value::Blob(b) if b.is_empty() => ffi::sqlite3_bind_zeroblob(stmt, idx, 0),
                    Value::Blob(b) => ffi::sqlite3_bind_blob64(
                        stmt,
                        idx,
                        b.as_ptr().cast(),
                        b.len() as u64,
                        ffi::SQLITE_TRANSIENT(),
                    ),
                };
                if rc != ffi::SQLITE_OK {
                    return Err(self.error(rc));
                }
            }
        }
        Ok(())
    }

    /// One step: true for a row, false when done.
    fn step(&self, stmt: *mut ffi::sqlite3_stmt) -> Result<bool, EngineError> {
        // SAFETY: a live statement of this connection.
        match unsafe { ffi::sqlite3_step(stmt) } {
            ffi::SQLITE_ROW => Ok(true),
            ffi::SQLITE_DONE => Ok(false),
            rc => Err(self.error(rc)),
        }
    }

    /// Step up to `max` rows; `done` when the statement finished.
    fn step_rows(&self, stmt: &Stmt, max: usize) -> Result<(RowSet, bool), EngineError> {
        let stmt = stmt.ptr();
        // Columns are counted after the first step: a statement re-prepared there (the schema
        // changed since it was cached, e.g. `SELECT *` after ADD COLUMN) may have more.
        let mut rows = RowSet::default();
        let mut count = 0;
        let mut done = false;
        while count < max {
            if !self.step(stmt)? {
                done = true;
                break;
            }
            if count == 0 {
                rows.ncols = column_count(stmt);
            }
            count += 1;
            for i in 0..rows.ncols {
                rows.values.push(self.column(stmt, i)?);
            }
        }
        if count == 0 {
            rows.ncols = column_count(stmt);
        }
        Ok((rows, done))
    }

    fn column(&self, stmt: *mut ffi::sqlite3_stmt, i: usize) -> Result<Value, EngineError> {
        let idx = i as c_int;
        // SAFETY: a statement positioned on a row; the text/blob pointers are valid for the
        // byte counts SQLite reports until the next step, and are copied at once.
        unsafe {
            Ok(match ffi::sqlite3_column_type(stmt, idx) {
                ffi::SQLITE_INTEGER => Value::Integer(ffi::sqlite3_column_int64(stmt, idx)),
                ffi::SQLITE_FLOAT => Value::Real(ffi::sqlite3_column_double(stmt, idx)),
                ffi::SQLITE_TEXT => {
                    let p = ffi::sqlite3_column_text(stmt, idx);
                    let n = usize::try_from(ffi::sqlite3_column_bytes(stmt, idx)).unwrap_or(0);
                    let bytes = if p.is_null() {
                        &[][..]
                    } else {
                        std::slice::from_raw_parts(p, n)
                    };
                    match std::str::from_utf8(bytes) {
                        Ok(s) => Value::Text(s.to_owned()),
                        Err(_) => {
                            let name = self.column_names_ptr(stmt).swap_remove(i);
                            return Err(EngineError::new(
                                ErrorClass::Operational,
                                format!(
                                    "Could not decode to UTF-8 column '{name}' with text '{}'",
                                    String::from_utf8_lossy(bytes)
                                ),
                            ));
                        }
                    }
                }
                ffi::SQLITE_BLOB => {
                    let p = ffi::sqlite3_column_blob(stmt, idx).cast::<u8>();
                    let n = usize::try_from(ffi::sqlite3_column_bytes(stmt, idx)).unwrap_or(0);
                    Value::Blob(if p.is_null() {
                        Vec::new()
                    } else {
                        std::slice::from_raw_parts(p, n).to_vec()
                    })
                }
                _ => Value::Null,
            })
        }
    }

    fn column_names(&self, stmt: &Stmt) -> Vec<String> {
        self.column_names_ptr(stmt.ptr())
    }

    fn column_names_ptr(&self, stmt: *mut ffi::sqlite3_stmt) -> Vec<String> {
        // SAFETY: a live statement; names are NUL-terminated and copied at once.
        unsafe {
            let n = ffi::sqlite3_column_count(stmt);
            (0..n)
                .map(|i| {
                    let p = ffi::sqlite3_column_name(stmt, i);
                    if p.is_null() {
                        String::new()
                    } else {
                        CStr::from_ptr(p).to_string_lossy().into_owned()
                    }
                })
                .collect()
        }
    }
}

#[cfg(test)]
mod tests;
