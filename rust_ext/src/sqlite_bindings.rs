//! The Python face of the native SQLite executor (`sqlite.rs`).
//!
//! One of the three glue modules (with `bindings.rs` for the compiler and `decode_bindings.rs`
//! for row decoding; see `lib.rs`). Like them it only converts; the engine logic is plain Rust
//! in `sqlite.rs`.
//!
//! `NativeConnection(path, pragmas)` starts the connection's worker thread. Every job method
//! takes an asyncio future and its loop, converts the parameters (int, float, str, bytes,
//! None; bool as int) on the calling thread, queues the job and returns its number at once. The
//! worker runs the statement without the GIL, then takes the GIL once to build the result (rows
//! as tuples of int/float/str/bytes/None) and hands it to the loop with
//! `loop.call_soon_threadsafe`; the callback sets the future's result unless it is already done
//! (cancelled). Failures arrive as the exceptions CPython's `sqlite3` raises (`sqlite3.IntegrityError`
//! with `sqlite_errorcode`/`sqlite_errorname`, ...), so the adapter translates them exactly as it
//! translates aiosqlite's.
//!
//! The fast path: `try_fetch(sql, params, limit, columns)` and `try_cursor_open(sql, params,
//! chunk)` take no future. When the connection is idle and the statement is a read-only query
//! (see `sqlite.rs`), they run it at once on the calling thread, the GIL released while SQLite
//! works, and return what the job's future would resolve to (raising the same exceptions);
//! otherwise they return None, having run nothing that matters, and the caller submits the job
//! as usual. A statement text that cannot go inline is checked before its parameters are
//! converted. `stats()` counts inline and queued statements and overruns; the constructor's
//! `inline_budget` (VM instructions, 0 = off) bounds an inline run.
//!
//! `cancel(number)` skips a queued job and interrupts a running one; `interrupt()` interrupts the
//! running statement (a job, or a statement running inline on another thread); both are safe
//! from any thread. Once the interpreter starts shutting down
//! (`atexit`), workers stop calling into Python. A worker thread keeps one Python thread state
//! from its first reply until it exits, instead of making one per reply.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pyo3::exceptions::{PyMemoryError, PyOSError, PyOverflowError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::{
    PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyMemoryView, PyModule, PyString, PyTuple,
};
use pyo3::{intern, IntoPyObjectExt};
use rusqlite::types::Value;

use crate::sqlite::{
    EngineError, ErrorClass, Op, Output, Reply, RowSet, Worker, COLLATIONS, FUNCTIONS,
    INLINE_BUDGET,
};

static SHUTTING_DOWN: AtomicBool = AtomicBool::new(false);
/// Worker threads between "may I call into Python?" and leaving Python again.
static IN_PYTHON: AtomicUsize = AtomicUsize::new(0);
static SQLITE3: GILOnceCell<Py<PyModule>> = GILOnceCell::new();
static RESOLVE: GILOnceCell<PyObject> = GILOnceCell::new();
static REJECT: GILOnceCell<PyObject> = GILOnceCell::new();

/// Register `NativeConnection`, `sqlite_version()`, `SQLITE_FUNCTIONS`, `SQLITE_COLLATIONS` and
/// `SQLITE_BUNDLED` (built with the `bundled-sqlite` feature) on the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativeConnection>()?;
    m.add_function(wrap_pyfunction!(sqlite_version, m)?)?;
    let functions: Vec<(&str, i32)> = FUNCTIONS.to_vec();
    m.add("SQLITE_FUNCTIONS", functions)?;
    m.add("SQLITE_COLLATIONS", COLLATIONS.to_vec())?;
    m.add("SQLITE_BUNDLED", cfg!(feature = "bundled-sqlite"))?;
    let shutdown = wrap_pyfunction!(_sqlite_shutdown, m)?;
    m.py()
        .import("atexit")?
        .call_method1("register", (shutdown,))?;
    Ok(())
}

/// The version of the bundled SQLite library (e.g. `'3.54.1'`).
#[pyfunction]
fn sqlite_version() -> &'static str {
    rusqlite::version()
}

/// Called at exit, before the interpreter finalizes: from now on workers drop their futures
/// instead of calling into Python, and those already on their way in are waited for (the GIL
/// released meanwhile, at most 2 s). A thread that waits for the GIL while Python 3.11 finalizes
/// is ended with `pthread_exit`, which aborts the process when the thread is a Rust one.
#[pyfunction]
fn _sqlite_shutdown(py: Python<'_>) {
    SHUTTING_DOWN.store(true, Ordering::SeqCst);
    py.allow_threads(|| {
        let deadline = Instant::now() + Duration::from_secs(2);
        while IN_PYTHON.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
}

/// Permission for a worker thread to call into Python, held until dropped; None once the
/// interpreter is shutting down.
struct InPython;

impl InPython {
    fn enter() -> Option<InPython> {
        IN_PYTHON.fetch_add(1, Ordering::SeqCst);
        if SHUTTING_DOWN.load(Ordering::SeqCst) {
            IN_PYTHON.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(InPython)
    }
}

impl Drop for InPython {
    fn drop(&mut self) {
        IN_PYTHON.fetch_sub(1, Ordering::SeqCst);
    }
}

#[pyfunction]
fn _resolve(fut: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) -> PyResult<()> {
    let py = fut.py();
    if !fut.call_method0(intern!(py, "done"))?.is_truthy()? {
        fut.call_method1(intern!(py, "set_result"), (value,))?;
    }
    Ok(())
}

#[pyfunction]
fn _reject(fut: &Bound<'_, PyAny>, exc: &Bound<'_, PyAny>) -> PyResult<()> {
    let py = fut.py();
    if !fut.call_method0(intern!(py, "done"))?.is_truthy()? {
        fut.call_method1(intern!(py, "set_exception"), (exc,))?;
    }
    Ok(())
}

fn callback<'py>(
    py: Python<'py>,
    cell: &'static GILOnceCell<PyObject>,
    resolve: bool,
) -> PyResult<&'py Bound<'py, PyAny>> {
    let f = cell.get_or_try_init(py, || -> PyResult<PyObject> {
        let f = if resolve {
            wrap_pyfunction!(_resolve, py)?
        } else {
            wrap_pyfunction!(_reject, py)?
        };
        Ok(f.into_any().unbind())
    })?;
    Ok(f.bind(py))
}

// Python -> values -------------------------------------------------------------------------------
fn sqlite3_module(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    Ok(SQLITE3
        .get_or_try_init(py, || py.import("sqlite3").map(Bound::unbind))?
        .bind(py))
}

/// The exception CPython's `sqlite3` would raise for `err`, as an instance.
fn exception<'py>(py: Python<'py>, err: &EngineError) -> Bound<'py, PyAny> {
    let made = match err.class {
        ErrorClass::Overflow => Ok(PyOverflowError::new_err(err.message.clone())
            .into_value(py)
            .into_bound(py)
            .into_any()),
        ErrorClass::Memory => Ok(PyMemoryError::new_err(err.message.clone())
            .into_value(py)
            .into_bound(py)
            .into_any()),
        class => (|| -> PyResult<Bound<'py, PyAny>> {
            let exc = sqlite3_module(py)?
                .getattr(class.name())?
                .call1((err.message.as_str(),))?;
            if let Some(code) = err.code {
                exc.setattr(intern!(py, "sqlite_errorcode"), code)?;
                exc.setattr(intern!(py, "sqlite_errorname"), err.name())?;
            }
            Ok(exc)
        })(),
    };
    made.unwrap_or_else(|e| e.into_value(py).into_bound(py).into_any())
}

fn raise(py: Python<'_>, err: &EngineError) -> PyErr {
    PyErr::from_value(exception(py, err))
}

fn to_value(v: &Bound<'_, PyAny>, position: usize) -> PyResult<Value> {
    if v.is_none() {
        Ok(Value::Null)
    } else if let Ok(s) = v.downcast::<PyString>() {
        Ok(Value::Text(s.to_str()?.to_owned()))
    } else if let Ok(n) = v.downcast::<PyInt>() {
        // bool is an int: True binds as 1, like sqlite3.
        n.extract::<i64>().map(Value::Integer).map_err(|_| {
            PyOverflowError::new_err("Python int too large to convert to SQLite INTEGER")
        })
    } else if let Ok(x) = v.downcast::<PyFloat>() {
        Ok(Value::Real(x.value()))
    } else if let Ok(b) = v.downcast::<PyBytes>() {
        Ok(Value::Blob(b.as_bytes().to_vec()))
    } else if let Ok(b) = v.downcast::<PyByteArray>() {
        Ok(Value::Blob(b.to_vec()))
    } else if v.is_instance_of::<PyMemoryView>() {
        let bytes = v.call_method0(intern!(v.py(), "tobytes"))?;
        Ok(Value::Blob(
            bytes.downcast::<PyBytes>()?.as_bytes().to_vec(),
        ))
    } else {
        let type_name = v.get_type().name()?;
        Err(raise(
            v.py(),
            &EngineError::new(
                ErrorClass::Programming,
                format!(
                    "Error binding parameter {}: type '{type_name}' is not supported",
                    position + 1
                ),
            ),
        ))
    }
}

fn to_values(params: &Bound<'_, PyAny>) -> PyResult<Vec<Value>> {
    if let Ok(t) = params.downcast::<PyTuple>() {
        t.iter().enumerate().map(|(i, v)| to_value(&v, i)).collect()
    } else if let Ok(l) = params.downcast::<PyList>() {
        l.iter().enumerate().map(|(i, v)| to_value(&v, i)).collect()
    } else {
        params
            .try_iter()?
            .enumerate()
            .map(|(i, v)| to_value(&v?, i))
            .collect()
    }
}

// values -> Python -------------------------------------------------------------------------------
fn value_to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Integer(n) => n.into_bound_py_any(py)?,
        Value::Real(x) => PyFloat::new(py, *x).into_any(),
        Value::Text(s) => PyString::new(py, s).into_any(),
        Value::Blob(b) => PyBytes::new(py, b).into_any(),
    })
}

fn rows_to_py<'py>(py: Python<'py>, rows: &RowSet) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    if rows.ncols == 0 {
        return Ok(list);
    }
    for row in rows.rows() {
        let items = row
            .iter()
            .map(|v| value_to_py(py, v))
            .collect::<PyResult<Vec<_>>>()?;
        list.append(PyTuple::new(py, items)?)?;
    }
    Ok(list)
}

fn output_to_py(py: Python<'_>, out: Output) -> PyResult<Bound<'_, PyAny>> {
    Ok(match out {
        Output::Unit => py.None().into_bound(py),
        Output::Count(n) => n.into_bound_py_any(py)?,
        Output::Rows(rows) => {
            let list = rows_to_py(py, &rows)?;
            match &rows.columns {
                None => list.into_any(),
                Some(cols) => (PyList::new(py, cols)?, list).into_bound_py_any(py)?,
            }
        }
        Output::Chunk { cursor, rows, done } => {
            (cursor, rows_to_py(py, &rows)?, done).into_bound_py_any(py)?
        }
    })
}

/// The reply of one job: resolve `fut` on `event_loop`, thread-safely.
fn reply(fut: PyObject, event_loop: PyObject) -> Reply {
    Box::new(move |result: Result<Output, EngineError>| {
        let Some(_in_python) = InPython::enter() else {
            return; // the references are released whenever the GIL is next taken
        };
        keep_thread_state();
        // `move`: the future and the loop are released here, with the GIL.
        Python::with_gil(move |py| {
            let (resolve, value) = match result.map(|out| output_to_py(py, out)) {
                Ok(Ok(value)) => (true, value),
                Ok(Err(err)) => (false, err.into_value(py).into_bound(py).into_any()),
                Err(err) => (false, exception(py, &err)),
            };
            let cell = if resolve { &RESOLVE } else { &REJECT };
            let Ok(cb) = callback(py, cell, resolve) else {
                return;
            };
            // A closed loop has nobody waiting any more: nothing to report to.
            let _ = event_loop
                .bind(py)
                .call_method1(intern!(py, "call_soon_threadsafe"), (cb, fut, value));
        });
    })
}

thread_local! {
    static KEPT_THREAD_STATE: Cell<bool> = const { Cell::new(false) };
}

/// Give this worker thread a Python thread state that outlives one reply.
///
/// `Python::with_gil` on a thread without one creates a thread state and deletes it again at
/// the end (`PyGILState_Ensure`/`Release` counting to zero): about a third of a short
/// statement's round trip. Taking one extra `PyGILState_Ensure` and releasing only the GIL keeps
/// the count above zero, so later replies reuse the state; [`release_thread_state`] drops it when
/// the worker exits.
fn keep_thread_state() {
    // A reply can also run on the thread that submitted the job (the worker was gone), which
    // holds the GIL: leave that thread alone.
    // SAFETY: PyGILState_Check only reads the current thread state.
    if unsafe { ffi::PyGILState_Check() } != 0 {
        return;
    }
    KEPT_THREAD_STATE.with(|kept| {
        if !kept.get() {
            // SAFETY: a thread that does not hold the GIL (replies run outside `with_gil`).
            unsafe {
                ffi::PyGILState_Ensure();
                ffi::PyEval_SaveThread();
            }
            kept.set(true);
        }
    });
}

/// The worker's exit hook: delete the thread state [`keep_thread_state`] kept (not at exit).
fn release_thread_state() {
    let kept = KEPT_THREAD_STATE.with(|kept| kept.replace(false));
    let Some(_in_python) = kept.then(InPython::enter).flatten() else {
        return; // at exit the interpreter deletes every thread state itself
    };
    // SAFETY: the GIL is not held here; the counter is 1 (our extra Ensure): Ensure takes it to 2
    // with the GIL, Release(LOCKED) to 1 keeping the GIL, Release(UNLOCKED) to 0, which deletes
    // the thread state and releases the GIL.
    unsafe {
        ffi::PyGILState_Ensure();
        ffi::PyGILState_Release(ffi::PyGILState_STATE::PyGILState_LOCKED);
        ffi::PyGILState_Release(ffi::PyGILState_STATE::PyGILState_UNLOCKED);
    }
}

fn ignore() -> Reply {
    Box::new(|_| {})
}

/// One SQLite connection on its own worker thread (see the module docs).
#[pyclass(module = "covet._covet_rs", frozen)]
pub struct NativeConnection {
    worker: Worker,
    path: String,
    pragmas: Vec<String>,
}

#[pymethods]
impl NativeConnection {
    /// Start the worker thread; nothing is opened until `open`. `inline_budget`: the VM
    /// instructions an inline statement may run (0 turns the fast path off).
    #[new]
    #[pyo3(signature = (path, pragmas = Vec::new(), inline_budget = INLINE_BUDGET))]
    fn new(path: String, pragmas: Vec<String>, inline_budget: u32) -> PyResult<Self> {
        let worker = Worker::spawn_with(Some(Box::new(release_thread_state)))
            .map_err(|e| PyOSError::new_err(format!("cannot start a SQLite worker thread: {e}")))?;
        worker.set_inline_budget(inline_budget);
        Ok(NativeConnection {
            worker,
            path,
            pragmas,
        })
    }

    /// The fast path of `fetch`: when the connection is idle and `sql` is a read-only query,
    /// run it now on this thread (the GIL released) and return what the job would resolve to;
    /// otherwise return None, having run nothing that matters: then submit it with `fetch`.
    /// Failures raise the same exceptions as the job's future.
    #[pyo3(signature = (sql, params, limit = None, columns = false))]
    fn try_fetch(
        &self,
        py: Python<'_>,
        sql: &str,
        params: &Bound<'_, PyAny>,
        limit: Option<usize>,
        columns: bool,
    ) -> PyResult<PyObject> {
        if !self.worker.may_inline(sql) {
            return Ok(py.None());
        }
        let params = to_values(params)?;
        let worker = &self.worker;
        match py.allow_threads(|| worker.try_fetch(sql, &params, limit, columns)) {
            None => Ok(py.None()),
            Some(Ok(rows)) => Ok(output_to_py(py, Output::Rows(rows))?.unbind()),
            Some(Err(err)) => Err(raise(py, &err)),
        }
    }

    /// The fast path of `cursor_open`, as `try_fetch`: `(cursor, first rows, done)` or None.
    fn try_cursor_open(
        &self,
        py: Python<'_>,
        sql: &str,
        params: &Bound<'_, PyAny>,
        chunk: usize,
    ) -> PyResult<PyObject> {
        if !self.worker.may_inline(sql) {
            return Ok(py.None());
        }
        let params = to_values(params)?;
        let worker = &self.worker;
        match py.allow_threads(|| worker.try_cursor_open(sql, &params, chunk)) {
            None => Ok(py.None()),
            Some(Ok((cursor, rows, done))) => {
                Ok(output_to_py(py, Output::Chunk { cursor, rows, done })?.unbind())
            }
            Some(Err(err)) => Err(raise(py, &err)),
        }
    }

    /// Counters of the fast path: `inline` (statements answered on the calling thread),
    /// `queued` (handed to the worker instead), `overran` (stopped by the budget, then queued),
    /// `remembered` (statement texts sent straight to the worker), and `budget`.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let stats = self.worker.stats();
        let dict = PyDict::new(py);
        dict.set_item("inline", stats.inline)?;
        dict.set_item("queued", stats.queued)?;
        dict.set_item("overran", stats.overran)?;
        dict.set_item("remembered", stats.remembered)?;
        dict.set_item("budget", self.worker.inline_budget())?;
        Ok(dict)
    }

    /// Open the database and run the pragmas; resolves to None.
    fn open(&self, fut: PyObject, event_loop: PyObject) -> u64 {
        let op = Op::Open {
            path: self.path.clone(),
            pragmas: self.pragmas.clone(),
        };
        self.worker.submit(op, reply(fut, event_loop))
    }

    /// Run a query; resolves to a list of tuples, or to `(column names, rows)` with `columns`.
    #[pyo3(signature = (fut, event_loop, sql, params, limit = None, columns = false))]
    fn fetch(
        &self,
        fut: PyObject,
        event_loop: PyObject,
        sql: String,
        params: &Bound<'_, PyAny>,
        limit: Option<usize>,
        columns: bool,
    ) -> PyResult<u64> {
        let op = Op::Fetch {
            sql,
            params: to_values(params)?,
            limit,
            columns,
        };
        Ok(self.worker.submit(op, reply(fut, event_loop)))
    }

    /// Run a statement; resolves to rows affected (DML), rows returned, or 0.
    fn execute(
        &self,
        fut: PyObject,
        event_loop: PyObject,
        sql: String,
        params: &Bound<'_, PyAny>,
    ) -> PyResult<u64> {
        let op = Op::Execute {
            sql,
            params: to_values(params)?,
        };
        Ok(self.worker.submit(op, reply(fut, event_loop)))
    }

    /// Run a DML statement per parameter row (atomically outside a transaction); resolves to None.
    fn execute_many(
        &self,
        fut: PyObject,
        event_loop: PyObject,
        sql: String,
        rows: &Bound<'_, PyAny>,
    ) -> PyResult<u64> {
        let rows = rows
            .try_iter()?
            .map(|row| to_values(&row?))
            .collect::<PyResult<Vec<_>>>()?;
        Ok(self
            .worker
            .submit(Op::ExecuteMany { sql, rows }, reply(fut, event_loop)))
    }

    /// Run BEGIN/COMMIT/ROLLBACK/SAVEPOINT...; ROLLBACK outside a transaction does nothing.
    fn control(&self, fut: PyObject, event_loop: PyObject, sql: String) -> u64 {
        self.worker
            .submit(Op::Control { sql }, reply(fut, event_loop))
    }

    /// Start a query; resolves to `(cursor, first rows, done)` (cursor 0 once done).
    fn cursor_open(
        &self,
        fut: PyObject,
        event_loop: PyObject,
        sql: String,
        params: &Bound<'_, PyAny>,
        chunk: usize,
    ) -> PyResult<u64> {
        let op = Op::CursorOpen {
            sql,
            params: to_values(params)?,
            chunk,
        };
        Ok(self.worker.submit(op, reply(fut, event_loop)))
    }

    /// The next rows of a cursor; resolves to `(cursor, rows, done)`.
    fn cursor_fetch(&self, fut: PyObject, event_loop: PyObject, cursor: u64, chunk: usize) -> u64 {
        self.worker
            .submit(Op::CursorFetch { cursor, chunk }, reply(fut, event_loop))
    }

    /// Close a cursor (queued; nothing to await).
    fn cursor_close(&self, cursor: u64) {
        self.worker.submit(Op::CursorClose { cursor }, ignore());
    }

    /// Resolves to None once every job queued before it has finished.
    fn ping(&self, fut: PyObject, event_loop: PyObject) -> u64 {
        self.worker.submit(Op::Ping, reply(fut, event_loop))
    }

    /// Close after the queued jobs; without a future, nothing to await. The thread then exits.
    #[pyo3(signature = (fut = None, event_loop = None))]
    fn close(&self, fut: Option<PyObject>, event_loop: Option<PyObject>) -> u64 {
        let done = match (fut, event_loop) {
            (Some(fut), Some(event_loop)) => reply(fut, event_loop),
            _ => ignore(),
        };
        self.worker.submit(Op::Close, done)
    }

    /// Skip job `seq` if it has not started, interrupt it if it is running.
    fn cancel(&self, seq: u64) {
        self.worker.cancel(seq);
    }

    /// Interrupt the statement running now, if any (`sqlite3_interrupt`).
    fn interrupt(&self) {
        self.worker.interrupt();
    }

    /// Inside BEGIN ... COMMIT, as of the last finished job.
    #[getter]
    fn in_transaction(&self) -> bool {
        self.worker.in_transaction()
    }

    /// Opened, not closed, and the worker thread is running.
    #[getter]
    fn is_open(&self) -> bool {
        self.worker.is_open()
    }

    #[getter]
    fn is_alive(&self) -> bool {
        self.worker.is_alive()
    }

    #[getter]
    fn last_insert_rowid(&self) -> i64 {
        self.worker.last_insert_rowid()
    }

    #[getter]
    fn path(&self) -> &str {
        &self.path
    }

    fn __repr__(&self) -> String {
        let state = if self.worker.is_open() {
            "open"
        } else {
            "closed"
        };
        format!("<NativeConnection {:?} {state}>", self.path)
    }
}
