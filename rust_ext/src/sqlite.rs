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
//! Layout: this file holds the engine (statements, the cache, cursors); `sqlite/errors.rs` the
//! error classes and result-code names, `sqlite/functions.rs` the SQL functions and the
//! collation, `sqlite/worker.rs` the jobs, the thread and its queue, `sqlite/tests.rs` the tests.

mod errors;
mod functions;
mod worker;

pub use errors::{error_name, EngineError, ErrorClass};
pub use functions::{
    decimal_collation, py_float_repr, text_of, translate_pattern, RegexCache, COLLATIONS, FUNCTIONS,
};
pub use worker::{ExitHook, Op, Output, Reply, RowSet, Shared, Worker};

use functions::register_functions;
use worker::lock;

use rusqlite::ffi;
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags};
use std::collections::HashMap;
use std::ffi::{c_char, c_int, CStr};
use std::ptr::{self, NonNull};
use std::sync::atomic::Ordering;
use std::sync::Arc;

const STATEMENT_CACHE: usize = 256;
const PROGRESS_OPS: c_int = 1000;

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

/// CPython's notion of a statement whose `rowcount` counts: it starts with one of these words.
fn is_dml(sql: &str) -> bool {
    lstrip_sql(sql.as_bytes()).is_some_and(|p| {
        ["insert", "update", "delete", "replace"]
            .iter()
            .any(|kw| p.len() >= kw.len() && p[..kw.len()].eq_ignore_ascii_case(kw.as_bytes()))
    })
}

// the engine --------------------------------------------------------------------------------------
/// One open connection and its prepared statements; lives on one thread.
pub struct Engine {
    // Field order matters: statements are finalized before the connection closes.
    cache: HashMap<String, (Prepared, u64)>,
    cursors: HashMap<u64, Cursor>,
    next_cursor: u64,
    tick: u64,
    db: *mut ffi::sqlite3,
    conn: Connection,
}

impl Engine {
    /// Open `path` (a file name, or `:memory:`; not a URI), run `pragmas` in order and register
    /// the SQL functions. `shared`, when given, gets the interrupt handle and drives the progress
    /// handler.
    pub fn open(
        path: &str,
        pragmas: &[String],
        shared: Option<&Arc<Shared>>,
    ) -> Result<Self, EngineError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)?;
        register_functions(&conn)?;
        if let Some(shared) = shared {
            let abort = Arc::clone(shared);
            conn.progress_handler(
                PROGRESS_OPS,
                Some(move || abort.abort.load(Ordering::Relaxed)),
            );
            *lock(&shared.interrupt) = Some(conn.get_interrupt_handle());
        }
        // SAFETY: the handle stays valid as long as `conn`, which the engine owns.
        let db = unsafe { conn.handle() };
        let mut engine = Engine {
            cache: HashMap::new(),
            cursors: HashMap::new(),
            next_cursor: 0,
            tick: 0,
            db,
            conn,
        };
        for pragma in pragmas {
            engine.execute(pragma, &[])?;
        }
        Ok(engine)
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
            return Ok(RowSet {
                columns: columns.then(Vec::new),
                ..RowSet::default()
            });
        };
        let result = self.bind(&prep.stmt, params).and_then(|()| {
            let mut rows = self
                .step_rows(&prep.stmt, limit.unwrap_or(usize::MAX))
                .map(|(r, _)| r)?;
            if columns {
                rows.columns = Some(self.column_names(&prep.stmt));
            }
            Ok(rows)
        });
        self.give_back(sql, prep);
        result
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
        self.bind(&prep.stmt, params)?;
        let (rows, done) = self.step_rows(&prep.stmt, chunk.max(1))?;
        if done {
            return Ok((0, rows, true));
        }
        self.next_cursor += 1;
        self.cursors
            .insert(self.next_cursor, Cursor { stmt: prep.stmt });
        Ok((self.next_cursor, rows, false))
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
        Ok(Some(Prepared {
            stmt,
            is_dml: is_dml(sql),
        }))
    }

    /// A cached statement (taken out of the cache while in use), or a newly prepared one.
    fn take(&mut self, sql: &str) -> Result<Option<Prepared>, EngineError> {
        match self.cache.remove(sql) {
            Some((prep, _)) => Ok(Some(prep)),
            None => self.prepare(sql),
        }
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
