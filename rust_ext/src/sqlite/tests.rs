//! Unit tests of the native SQLite executor (`sqlite.rs`): the engine alone, then the worker.

use super::*;
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

fn mem() -> Engine {
    Engine::open(":memory:", &["PRAGMA foreign_keys = ON".into()], None).unwrap()
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

fn one(engine: &mut Engine, sql: &str, params: &[Value]) -> Value {
    let rows = engine.fetch(sql, params, None, false).unwrap();
    assert_eq!(rows.len(), 1, "{sql}");
    rows.values[0].clone()
}

#[test]
fn fetch_binds_numbered_parameters_by_position() {
    let mut e = mem();
    let rows = e
        .fetch("SELECT ?2, ?1, ?1", &[text("a"), text("b")], None, true)
        .unwrap();
    assert_eq!(rows.values, vec![text("b"), text("a"), text("a")]);
    assert_eq!(rows.columns.unwrap(), vec!["?2", "?1", "?1"]);
    let values = [
        Value::Null,
        Value::Integer(-7),
        Value::Real(1.5),
        Value::Blob(vec![0, 1]),
        Value::Blob(vec![]),
    ];
    let rows = e
        .fetch("SELECT ?1, ?2, ?3, ?4, ?5", &values, None, false)
        .unwrap();
    assert_eq!(rows.values, values.to_vec());
    assert_eq!(
        one(&mut e, "SELECT ?1", &[text("nul\0inside ✓")]),
        text("nul\0inside ✓")
    );
}

#[test]
fn parameter_count_and_single_statement_checks() {
    let mut e = mem();
    let err = e
        .fetch(
            "SELECT ?1",
            &[Value::Integer(1), Value::Integer(2)],
            None,
            false,
        )
        .unwrap_err();
    assert_eq!(err.class, ErrorClass::Programming);
    assert!(err.message.starts_with(
        "Incorrect number of bindings supplied. The current statement uses 1, and there are 2"
    ));
    let err = e.execute("SELECT 1; SELECT 2", &[]).unwrap_err();
    assert_eq!(err.message, "You can only execute one statement at a time.");
    assert_eq!(
        e.execute("SELECT 1; -- fine\n /* also */ ", &[]).unwrap(),
        1
    );
    assert_eq!(e.execute("  -- nothing at all", &[]).unwrap(), 0);
    assert_eq!(
        e.execute("SELECT 1\0", &[]).unwrap_err().class,
        ErrorClass::Programming
    );
}

#[test]
fn execute_counts_like_python_rowcount() {
    let mut e = mem();
    assert_eq!(
        e.execute(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE)",
            &[]
        )
        .unwrap(),
        0
    );
    assert_eq!(
        e.execute("INSERT INTO t (name) VALUES ('a'), ('b'), ('c')", &[])
            .unwrap(),
        3
    );
    assert_eq!(e.last_insert_rowid(), 3);
    assert_eq!(
        e.execute(
            "  update t SET name = name || 'x' WHERE id > ?1",
            &[Value::Integer(1)]
        )
        .unwrap(),
        2
    );
    assert_eq!(e.execute("CREATE INDEX i ON t (name)", &[]).unwrap(), 0); // not stale changes()
    assert_eq!(e.execute("SELECT * FROM t", &[]).unwrap(), 3);
    assert_eq!(
        e.execute("DELETE FROM t WHERE id = 1 RETURNING id", &[])
            .unwrap(),
        1
    );
}

#[test]
fn errors_carry_cpython_classes_and_extended_codes() {
    let mut e = mem();
    e.execute(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)",
        &[],
    )
    .unwrap();
    e.execute("INSERT INTO t (name) VALUES ('a')", &[]).unwrap();
    let err = e
        .execute("INSERT INTO t (name) VALUES ('a')", &[])
        .unwrap_err();
    assert_eq!(
        (err.class, err.name().as_deref()),
        (ErrorClass::Integrity, Some("SQLITE_CONSTRAINT_UNIQUE"))
    );
    assert_eq!(err.message, "UNIQUE constraint failed: t.name");
    let err = e
        .execute("INSERT INTO t (name) VALUES (NULL)", &[])
        .unwrap_err();
    assert_eq!(err.name().as_deref(), Some("SQLITE_CONSTRAINT_NOTNULL"));
    let err = e.execute("SELEC 1", &[]).unwrap_err();
    assert_eq!((err.class, err.code), (ErrorClass::Operational, Some(1)));
    assert_eq!(err.message, "near \"SELEC\": syntax error");
    let err = e
        .fetch("SELECT * FROM nowhere", &[], None, false)
        .unwrap_err();
    assert_eq!(err.message, "no such table: nowhere");
    assert_eq!(
        error_name(2067).as_deref(),
        Some("SQLITE_CONSTRAINT_UNIQUE")
    );
    assert_eq!(error_name(5).as_deref(), Some("SQLITE_BUSY"));
    assert_eq!(error_name(9999), None);
    assert_eq!(ErrorClass::for_code(20), ErrorClass::Integrity);
    assert_eq!(ErrorClass::for_code(25), ErrorClass::Interface);
}

#[test]
fn invalid_utf8_text_is_an_operational_error() {
    let mut e = mem();
    let err = e
        .fetch("SELECT CAST(x'ff' AS TEXT) AS bad", &[], None, false)
        .unwrap_err();
    assert_eq!(err.class, ErrorClass::Operational);
    assert!(
        err.message
            .starts_with("Could not decode to UTF-8 column 'bad'"),
        "{}",
        err.message
    );
    assert_eq!(
        e.execute("SELECT CAST(x'ff' AS TEXT)", &[])
            .unwrap_err()
            .class,
        ErrorClass::Operational
    );
}

#[test]
fn execute_many_is_atomic_outside_a_transaction() {
    let mut e = mem();
    e.execute(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE)",
        &[],
    )
    .unwrap();
    let ins = "INSERT INTO t (id, name) VALUES (?1, ?2)";
    let rows = |names: &[&str]| -> Vec<Vec<Value>> {
        names
            .iter()
            .enumerate()
            .map(|(i, n)| vec![Value::Integer(i as i64 + 1), text(n)])
            .collect()
    };
    let err = e.execute_many(ins, &rows(&["a", "b", "a"])).unwrap_err();
    assert_eq!(err.class, ErrorClass::Integrity);
    assert!(!e.in_transaction());
    assert_eq!(
        one(&mut e, "SELECT count(*) FROM t", &[]),
        Value::Integer(0)
    );
    e.execute_many(ins, &rows(&["a", "b", "c"])).unwrap();
    assert_eq!(
        one(&mut e, "SELECT count(*) FROM t", &[]),
        Value::Integer(3)
    );
    let err = e
        .execute_many("SELECT ?1", &[vec![Value::Integer(1)]])
        .unwrap_err();
    assert_eq!(
        err.message,
        "executemany() can only execute DML statements."
    );
    // Inside a transaction it joins it.
    e.control("BEGIN IMMEDIATE").unwrap();
    e.execute_many("DELETE FROM t WHERE id = ?1", &[vec![Value::Integer(1)]])
        .unwrap();
    assert!(e.in_transaction());
    e.control("ROLLBACK").unwrap();
    e.control("ROLLBACK").unwrap(); // no transaction: nothing to do
    assert_eq!(
        one(&mut e, "SELECT count(*) FROM t", &[]),
        Value::Integer(3)
    );
}

#[test]
fn cursors_fetch_in_chunks_and_interleave_with_statements() {
    let mut e = mem();
    e.execute("CREATE TABLE t (x INTEGER)", &[]).unwrap();
    let rows: Vec<Vec<Value>> = (1..=25).map(|i| vec![Value::Integer(i)]).collect();
    e.execute_many("INSERT INTO t VALUES (?1)", &rows).unwrap();
    let (id, first, done) = e
        .cursor_open("SELECT x FROM t ORDER BY x", &[], 10)
        .unwrap();
    assert!(!done && id != 0 && first.len() == 10);
    let (id2, other, done2) = e
        .cursor_open("SELECT x FROM t WHERE x > ?1", &[Value::Integer(23)], 10)
        .unwrap();
    assert_eq!((id2, other.len(), done2), (0, 2, true));
    assert_eq!(
        one(&mut e, "SELECT count(*) FROM t", &[]),
        Value::Integer(25)
    );
    let (second, done) = e.cursor_fetch(id, 10).unwrap();
    assert!(!done && second.values[0] == Value::Integer(11));
    let (third, done) = e.cursor_fetch(id, 10).unwrap();
    assert!(done && third.len() == 5);
    assert_eq!(e.open_cursors(), 0);
    assert!(e.cursor_fetch(id, 10).unwrap().1);
    let (id, _, _) = e.cursor_open("SELECT x FROM t", &[], 1).unwrap();
    e.run(Op::CursorClose { cursor: id }).unwrap();
    assert_eq!(e.open_cursors(), 0);
}

#[test]
fn functions_follow_python_semantics() {
    let mut e = mem();
    assert_eq!(
        one(&mut e, "SELECT lower(?1)", &[text("ÀÉÎ ΔΩ ΟΔΟΣ İ")]),
        text("àéî δω οδος i\u{307}")
    );
    assert_eq!(
        one(&mut e, "SELECT upper(?1)", &[text("straße ﬁ")]),
        text("STRASSE FI")
    );
    assert_eq!(one(&mut e, "SELECT lower(NULL)", &[]), Value::Null);
    assert_eq!(one(&mut e, "SELECT lower(12)", &[]), text("12"));
    assert_eq!(one(&mut e, "SELECT lower(1e20)", &[]), text("1e+20"));
    assert_eq!(
        one(
            &mut e,
            "SELECT covet_regexp(?1, ?2)",
            &[text("^ab+c$"), text("abbbc")]
        ),
        Value::Integer(1)
    );
    assert_eq!(
        one(
            &mut e,
            "SELECT covet_regexp(?1, ?2)",
            &[text("^ab+c$"), text("ABBBC")]
        ),
        Value::Integer(0)
    );
    assert_eq!(
        one(
            &mut e,
            "SELECT covet_iregexp(?1, ?2)",
            &[text("^ab+c$"), text("ABBBC")]
        ),
        Value::Integer(1)
    );
    assert_eq!(
        one(
            &mut e,
            "SELECT covet_iregexp(?1, ?2)",
            &[text("^σ"), text("Σx")]
        ),
        Value::Integer(1)
    );
    assert_eq!(
        one(&mut e, "SELECT covet_regexp('a', NULL)", &[]),
        Value::Null
    );
    assert_eq!(
        one(&mut e, "SELECT 'xyz' REGEXP 'x.z'", &[]),
        Value::Integer(1)
    );
    assert_eq!(
        one(&mut e, "SELECT covet_regexp('end\\Z', 'the end')", &[]),
        Value::Integer(1)
    );
    let err = e
        .fetch("SELECT covet_regexp('(?<=a)b', 'ab')", &[], None, false)
        .unwrap_err();
    assert_eq!(err.class, ErrorClass::Operational);
    assert!(
        err.message.contains("invalid regular expression"),
        "{}",
        err.message
    );
}

#[test]
fn python_float_repr() {
    for (x, s) in [
        (1.0, "1.0"),
        (0.1, "0.1"),
        (-2.5, "-2.5"),
        (1e16, "1e+16"),
        (1e15, "1000000000000000.0"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (1.5e300, "1.5e+300"),
        (123.456, "123.456"),
        (-0.0, "-0.0"),
        (f64::INFINITY, "inf"),
        (2.5e-7, "2.5e-07"),
        (12345678.9, "12345678.9"),
    ] {
        assert_eq!(py_float_repr(x), s, "{x}");
    }
}

#[test]
fn lstrip_and_dml_detection() {
    assert_eq!(lstrip_sql(b"  -- c\n /* d */ x"), Some(&b"x"[..]));
    assert_eq!(lstrip_sql(b" /* open"), None);
    assert!(is_dml(" /* c */ INSERT INTO t VALUES (1)"));
    assert!(is_dml("replace into t values (1)"));
    assert!(!is_dml(
        "WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x"
    ));
    assert!(!is_dml("SELECT 1"));
}

// the worker ----------------------------------------------------------------------------------
type Got = Result<Output, EngineError>;

fn reply_to(tx: &std::sync::mpsc::Sender<Got>) -> Reply {
    let tx = tx.clone();
    Box::new(move |r| {
        let _ = tx.send(r);
    })
}

fn recv(rx: &std::sync::mpsc::Receiver<Got>) -> Got {
    rx.recv_timeout(Duration::from_secs(20)).expect("no reply")
}

const SLOW: &str = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300000000) SELECT count(*) FROM c";

#[test]
fn worker_runs_jobs_in_order_and_closes() {
    let worker = Worker::spawn().unwrap();
    let (tx, rx) = channel();
    worker.submit(
        Op::Fetch {
            sql: "SELECT 1".into(),
            params: vec![],
            limit: None,
            columns: false,
        },
        reply_to(&tx),
    );
    assert_eq!(recv(&rx).unwrap_err(), EngineError::closed()); // not opened yet
    worker.submit(
        Op::Open {
            path: ":memory:".into(),
            pragmas: vec![],
        },
        reply_to(&tx),
    );
    worker.submit(
        Op::Control {
            sql: "BEGIN".into(),
        },
        reply_to(&tx),
    );
    worker.submit(
        Op::Execute {
            sql: "CREATE TABLE t (x)".into(),
            params: vec![],
        },
        reply_to(&tx),
    );
    for _ in 0..3 {
        recv(&rx).unwrap();
    }
    assert!(worker.is_open() && worker.in_transaction());
    worker.submit(
        Op::Control {
            sql: "COMMIT".into(),
        },
        reply_to(&tx),
    );
    recv(&rx).unwrap();
    assert!(!worker.in_transaction());
    worker.submit(Op::Close, reply_to(&tx));
    assert_eq!(recv(&rx).unwrap(), Output::Unit);
    let deadline = Instant::now() + Duration::from_secs(5);
    while worker.is_alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(!worker.is_alive() && !worker.is_open());
    worker.submit(Op::Ping, reply_to(&tx));
    assert_eq!(recv(&rx).unwrap_err(), EngineError::closed());
}

#[test]
fn cancel_skips_queued_jobs_and_interrupts_running_ones() {
    let worker = Worker::spawn().unwrap();
    let (tx, rx) = channel();
    worker.submit(
        Op::Open {
            path: ":memory:".into(),
            pragmas: vec![],
        },
        reply_to(&tx),
    );
    recv(&rx).unwrap();
    let started = Instant::now();
    let slow = worker.submit(
        Op::Fetch {
            sql: SLOW.into(),
            params: vec![],
            limit: None,
            columns: false,
        },
        reply_to(&tx),
    );
    let queued = worker.submit(
        Op::Execute {
            sql: "SELECT 1".into(),
            params: vec![],
        },
        reply_to(&tx),
    );
    worker.cancel(queued);
    std::thread::sleep(Duration::from_millis(50));
    worker.cancel(slow);
    let err = recv(&rx).unwrap_err();
    assert_eq!(
        (err.class, err.message.as_str()),
        (ErrorClass::Operational, "interrupted")
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(recv(&rx).unwrap_err(), EngineError::cancelled()); // skipped, never ran
    worker.submit(
        Op::Execute {
            sql: "SELECT 1".into(),
            params: vec![],
        },
        reply_to(&tx),
    );
    assert_eq!(recv(&rx).unwrap(), Output::Count(1)); // the next job is not interrupted
    worker.cancel(1); // long finished: ignored
    worker.submit(
        Op::Fetch {
            sql: SLOW.into(),
            params: vec![],
            limit: None,
            columns: false,
        },
        reply_to(&tx),
    );
    std::thread::sleep(Duration::from_millis(50));
    worker.interrupt();
    assert_eq!(recv(&rx).unwrap_err().message, "interrupted");
}

#[test]
fn decimal_collation_compares_exact_numbers_then_text() {
    use std::cmp::Ordering::{Equal, Greater, Less};
    for (a, b, want) in [
        ("10", "9", Greater),
        ("10.0", "10", Equal),
        ("-0", "0.0", Equal),
        ("0e5", "0", Equal),
        (
            "12345678901234567890.1234567891",
            "12345678901234567890.1234567890",
            Greater,
        ),
        ("-1.50", "-1.5", Equal),
        ("-2", "-1.5", Less),
        ("1.5e-3", ".0015", Equal),
        ("+.5e1", "5", Equal),
        (" 2 ", "2", Equal),
        ("1_0", "10", Equal),
        ("1e3", "999.9", Greater),
        ("-inf", "-1e999", Less),
        ("Infinity", "1e999999999999999999", Greater),
        ("inf", "INF", Equal),
        ("1", "NaN", Equal),
        ("abc", "10", Greater),
        ("1e", "1", Greater),
        ("", "0", Less),
        ("1.", "1", Equal),
        ("1 0", "10", Less),
    ] {
        assert_eq!(decimal_collation(a, b), want, "{a} vs {b}");
        assert_eq!(decimal_collation(b, a), want.reverse(), "{b} vs {a}");
    }
    let mut e = mem();
    e.execute("CREATE TABLE d (x TEXT COLLATE covet_decimal)", &[])
        .unwrap();
    let rows: Vec<Vec<Value>> = ["10", "9", "-1", "1e1", "0.5"]
        .iter()
        .map(|v| vec![text(v)])
        .collect();
    e.execute_many("INSERT INTO d VALUES (?1)", &rows).unwrap();
    let sorted = e
        .fetch("SELECT x FROM d ORDER BY x, rowid", &[], None, false)
        .unwrap();
    assert_eq!(
        sorted.values,
        ["-1", "0.5", "9", "10", "1e1"].map(text).to_vec()
    );
    assert_eq!(
        one(&mut e, "SELECT count(*) FROM d WHERE x = '10.00'", &[]),
        Value::Integer(2)
    );
}

#[test]
fn cached_statements_follow_schema_changes() {
    let mut e = mem();
    e.execute("CREATE TABLE t (a)", &[]).unwrap();
    e.execute("INSERT INTO t VALUES (1)", &[]).unwrap();
    assert_eq!(
        e.fetch("SELECT * FROM t", &[], None, true).unwrap().ncols,
        1
    );
    e.execute("ALTER TABLE t ADD COLUMN b DEFAULT 2", &[])
        .unwrap();
    let rows = e.fetch("SELECT * FROM t", &[], None, true).unwrap();
    assert_eq!(
        (rows.ncols, rows.values.clone()),
        (2, vec![Value::Integer(1), Value::Integer(2)])
    );
    assert_eq!(rows.columns.unwrap(), vec!["a", "b"]);
    let empty = e
        .fetch("SELECT * FROM t WHERE a > 5", &[], None, true)
        .unwrap();
    assert_eq!((empty.ncols, empty.len()), (2, 0));
}

// the inline fast path ------------------------------------------------------------------------
fn file_engine(dir: &std::path::Path, name: &str, pragmas: &[&str]) -> Engine {
    let path = dir.join(name);
    let pragmas: Vec<String> = pragmas.iter().map(|p| (*p).to_owned()).collect();
    Engine::open(path.to_str().unwrap(), &pragmas, None).unwrap()
}

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "covet-inline-{tag}-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn count_of(e: &mut Engine, table: &str) -> i64 {
    match one(e, &format!("SELECT count(*) FROM {table} WHERE 1"), &[]) {
        Value::Integer(n) => n,
        v => panic!("{v:?}"),
    }
}

#[test]
fn sql_set_is_bounded_and_forgets_the_oldest() {
    let mut set = SqlSet::new(3);
    assert!(set.is_empty() && !set.contains("a"));
    for sql in ["a", "b", "c", "b"] {
        set.insert(sql);
    }
    assert_eq!(set.len(), 3);
    set.insert("d");
    assert_eq!(set.len(), 3);
    assert!(!set.contains("a") && set.contains("b") && set.contains("c") && set.contains("d"));
    set.insert("e");
    assert!(!set.contains("b") && set.contains("e"));
    assert_eq!(SqlSet::default().len(), 0);
    let mut big = SqlSet::default();
    for i in 0..REMEMBERED + 10 {
        big.insert(&format!("SELECT {i}"));
    }
    assert_eq!(big.len(), REMEMBERED);
    assert!(!big.contains("SELECT 0") && big.contains(&format!("SELECT {}", REMEMBERED + 9)));
}

#[test]
fn progress_budget_counts_handler_calls_and_composes_with_abort() {
    let p = Progress::default();
    assert!((0..10_000).all(|_| !p.tick())); // no budget: never stops a job
    p.arm(3 * PROGRESS_OPS as u32);
    assert!(!p.tick() && !p.tick() && !p.tick());
    assert!(!p.overran());
    assert!(p.tick() && p.overran());
    p.disarm();
    assert!(!p.tick());
    p.arm(0); // at least one period
    assert!(!p.tick() && p.tick());
    p.arm(2500); // rounded up to whole periods
    assert!(!p.overran());
    assert!(!p.tick() && !p.tick() && !p.tick() && p.tick());
    p.disarm();
    p.abort(); // cancellation wins, and is not an overrun
    p.arm(10 * PROGRESS_OPS as u32);
    assert!(p.tick() && !p.overran());
    p.clear_abort();
    assert!(!p.tick());
}

#[test]
fn inline_eligibility_is_read_only_queries() {
    let mut e = mem();
    e.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)", &[])
        .unwrap();
    e.execute("INSERT INTO t (v) VALUES ('a'), ('b')", &[])
        .unwrap();
    let b = INLINE_BUDGET;
    let got = e.fetch_inline(
        "SELECT v FROM t WHERE id = ?1",
        &[Value::Integer(2)],
        None,
        true,
        b,
    );
    let Inline::Done(Ok(rows)) = got else {
        panic!("{got:?}")
    };
    assert_eq!(
        (rows.values, rows.columns),
        (vec![text("b")], Some(vec!["v".into()]))
    );
    for sql in [
        " /* c */ with x(n) AS (VALUES (1)) SELECT n FROM x",
        "VALUES (1), (2)",
        "select count(*) from t where id > 0",
    ] {
        assert!(
            matches!(
                e.fetch_inline(sql, &[], None, false, b),
                Inline::Done(Ok(_))
            ),
            "{sql}"
        );
    }
    // Writes, transaction control, pragmas and whole-table counts are never run inline.
    for sql in [
        "INSERT INTO t (v) VALUES ('c') RETURNING id",
        "WITH x AS (SELECT 1) DELETE FROM t WHERE id IN (SELECT * FROM x) RETURNING id",
        "BEGIN",
        "SAVEPOINT s",
        "PRAGMA user_version",
        "PRAGMA busy_timeout",
        "SELECT count(*) FROM t",
        "SELECT COUNT(*) AS n FROM t",
    ] {
        assert_eq!(
            e.fetch_inline(sql, &[], None, false, b),
            Inline::Ineligible,
            "{sql}"
        );
    }
    assert!(!e.in_transaction());
    assert_eq!(count_of(&mut e, "t"), 2); // nothing was written
    assert_eq!(
        e.fetch("SELECT count(*) FROM t", &[], None, false)
            .unwrap()
            .values,
        vec![Value::Integer(2)]
    );
    // Only comments: nothing to run, like `fetch`.
    assert_eq!(
        e.fetch_inline("-- nothing", &[], None, true, b),
        Inline::Done(Ok(RowSet {
            columns: Some(vec![]),
            ..RowSet::default()
        }))
    );
}

#[test]
fn inline_errors_are_the_jobs_errors() {
    let mut e = mem();
    for (sql, params) in [
        ("SELEC 1", vec![]),
        ("SELECT * FROM nowhere", vec![]),
        ("SELECT ?1", vec![]),
        ("SELECT covet_regexp('(?<=a)b', 'ab')", vec![]),
        ("SELECT CAST(x'ff' AS TEXT) AS bad", vec![]),
        ("SELECT 1; SELECT 2", vec![]),
    ] {
        let job = e.fetch(sql, &params, None, false).unwrap_err();
        let inline = e.fetch_inline(sql, &params, None, false, INLINE_BUDGET);
        assert_eq!(inline, Inline::Done(Err(job)), "{sql}");
    }
}

#[test]
fn an_overrun_is_reported_and_leaves_the_transaction_alone() {
    let mut e = mem();
    e.execute("CREATE TABLE t (x INTEGER)", &[]).unwrap();
    e.control("BEGIN IMMEDIATE").unwrap();
    e.execute("INSERT INTO t VALUES (1)", &[]).unwrap();
    let long = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000) SELECT count(*) FROM c";
    assert_eq!(
        e.fetch_inline(long, &[], None, false, INLINE_BUDGET),
        Inline::Overran
    );
    // Only the read stopped: the transaction and its write are still there.
    assert!(e.in_transaction());
    let got = e.fetch_inline("SELECT x FROM t", &[], None, false, INLINE_BUDGET);
    assert_eq!(
        got,
        Inline::Done(Ok(RowSet {
            ncols: 1,
            values: vec![Value::Integer(1)],
            columns: None
        }))
    );
    // The same statement as a job (no budget) runs to the end.
    assert_eq!(one(&mut e, long, &[]), Value::Integer(2_000_000));
    e.control("ROLLBACK").unwrap();
    assert_eq!(count_of(&mut e, "t"), 0);
    // A bigger budget lets it through inline.
    let short = long.replace("2000000", "2000");
    assert!(matches!(
        e.fetch_inline(&short, &[], None, false, 1_000_000),
        Inline::Done(Ok(_))
    ));
}

#[test]
fn inline_cursor_open_keeps_the_cursor_for_jobs() {
    let mut e = mem();
    e.execute("CREATE TABLE t (x INTEGER)", &[]).unwrap();
    let rows: Vec<Vec<Value>> = (1..=25).map(|i| vec![Value::Integer(i)]).collect();
    e.execute_many("INSERT INTO t VALUES (?1)", &rows).unwrap();
    let Inline::Done(Ok((id, first, false))) =
        e.cursor_open_inline("SELECT x FROM t ORDER BY x", &[], 10, INLINE_BUDGET)
    else {
        panic!("not opened inline")
    };
    assert_eq!((first.len(), e.open_cursors()), (10, 1));
    let (rest, done) = e.cursor_fetch(id, 100).unwrap();
    assert!(done && rest.len() == 15 && e.open_cursors() == 0);
    let got = e.cursor_open_inline(
        "SELECT x FROM t WHERE x > ?1",
        &[Value::Integer(20)],
        10,
        INLINE_BUDGET,
    );
    assert!(matches!(got, Inline::Done(Ok((0, ref r, true))) if r.len() == 5));
    let long = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000) SELECT x FROM c WHERE x % 1000000 = 0";
    assert_eq!(
        e.cursor_open_inline(long, &[], 10, INLINE_BUDGET),
        Inline::Overran
    );
    assert_eq!(
        e.cursor_open_inline("DELETE FROM t RETURNING x", &[], 10, INLINE_BUDGET),
        Inline::Ineligible
    );
    assert_eq!(e.open_cursors(), 0);
    assert_eq!(count_of(&mut e, "t"), 25);
}

#[test]
fn inline_never_waits_for_a_lock_and_keeps_the_busy_timeout() {
    let dir = temp_dir("busy");
    let mut writer = file_engine(&dir, "b.db", &["PRAGMA journal_mode = DELETE"]);
    writer.execute("CREATE TABLE t (x INTEGER)", &[]).unwrap();
    writer.execute("INSERT INTO t VALUES (1)", &[]).unwrap();
    let mut reader = file_engine(&dir, "b.db", &["PRAGMA busy_timeout = 20000"]);
    assert_eq!(count_of(&mut reader, "t"), 1); // schema loaded
    writer.control("BEGIN EXCLUSIVE").unwrap();
    let started = Instant::now();
    assert_eq!(
        reader.fetch_inline("SELECT x FROM t", &[], None, false, INLINE_BUDGET),
        Inline::Busy
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "waited for the lock"
    );
    assert_eq!(
        one(&mut reader, "PRAGMA busy_timeout", &[]),
        Value::Integer(20000)
    );
    writer.control("ROLLBACK").unwrap();
    assert_eq!(
        reader.fetch_inline("SELECT x FROM t", &[], None, false, INLINE_BUDGET),
        Inline::Done(Ok(RowSet {
            ncols: 1,
            values: vec![Value::Integer(1)],
            columns: None
        }))
    );
    // A PRAGMA that changes the timeout is seen by the next inline run.
    reader.execute("PRAGMA busy_timeout = 1234", &[]).unwrap();
    assert!(matches!(
        reader.fetch_inline("SELECT 1", &[], None, false, INLINE_BUDGET),
        Inline::Done(Ok(_))
    ));
    assert_eq!(
        one(&mut reader, "PRAGMA busy_timeout", &[]),
        Value::Integer(1234)
    );
    drop((reader, writer));
    let _ = std::fs::remove_dir_all(&dir);
}

fn open_worker(
    path: &str,
) -> (
    Worker,
    std::sync::mpsc::Receiver<Got>,
    std::sync::mpsc::Sender<Got>,
) {
    let worker = Worker::spawn().unwrap();
    let (tx, rx) = channel();
    worker.submit(
        Op::Open {
            path: path.into(),
            pragmas: vec![],
        },
        reply_to(&tx),
    );
    recv(&rx).unwrap();
    (worker, rx, tx)
}

fn fetch_op(sql: &str) -> Op {
    Op::Fetch {
        sql: sql.into(),
        params: vec![],
        limit: None,
        columns: false,
    }
}

#[test]
fn worker_runs_idle_reads_inline_and_queues_behind_pending_jobs() {
    let (worker, rx, tx) = open_worker(":memory:");
    let got = worker.try_fetch("SELECT ?1", &[Value::Integer(7)], None, false);
    assert_eq!(
        got,
        Some(Ok(RowSet {
            ncols: 1,
            values: vec![Value::Integer(7)],
            columns: None
        }))
    );
    assert_eq!(
        worker.stats(),
        InlineStats {
            inline: 1,
            ..InlineStats::default()
        }
    );
    // A job is pending: the read waits its turn.
    let slow = worker.submit(fetch_op(SLOW), reply_to(&tx));
    assert!(worker.try_fetch("SELECT 1", &[], None, false).is_none());
    assert!(!worker.may_inline("SELECT 1"));
    worker.cancel(slow); // skipped or interrupted
    assert_eq!(recv(&rx).unwrap_err().message, "interrupted");
    // Idle again (the counter drops before the reply).
    assert!(worker.try_fetch("SELECT 1", &[], None, false).is_some());
    // Inside a transaction, an inline read sees its writes, and the state stays published.
    for sql in [
        "CREATE TABLE t (x INTEGER PRIMARY KEY)",
        "BEGIN IMMEDIATE",
        "INSERT INTO t VALUES (41)",
    ] {
        worker.submit(
            Op::Execute {
                sql: sql.into(),
                params: vec![],
            },
            reply_to(&tx),
        );
        recv(&rx).unwrap();
    }
    let got = worker
        .try_fetch("SELECT x FROM t", &[], None, false)
        .unwrap()
        .unwrap();
    assert_eq!(got.values, vec![Value::Integer(41)]);
    assert!(worker.in_transaction() && worker.last_insert_rowid() == 41);
    // Writes go to the worker, and are remembered.
    assert!(worker
        .try_fetch("INSERT INTO t VALUES (42) RETURNING x", &[], None, false)
        .is_none());
    assert!(!worker.may_inline("INSERT INTO t VALUES (42) RETURNING x"));
    // An overrun is remembered: next time it goes straight to the worker.
    let long = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000) SELECT count(*) FROM c";
    assert!(worker.try_fetch(long, &[], None, false).is_none());
    assert!(worker.in_transaction());
    let stats = worker.stats();
    assert_eq!((stats.overran, stats.remembered), (1, 2));
    assert!(worker.try_fetch(long, &[], None, false).is_none());
    assert_eq!(worker.stats().overran, 1);
    worker.submit(
        Op::Control {
            sql: "ROLLBACK".into(),
        },
        reply_to(&tx),
    );
    recv(&rx).unwrap();
    assert!(!worker.in_transaction());
    // Budget 0: the fast path is off.
    worker.set_inline_budget(0);
    assert!(worker.try_fetch("SELECT 1", &[], None, false).is_none());
    worker.set_inline_budget(INLINE_BUDGET);
    // Closed: the same error as a job's.
    worker.submit(Op::Close, reply_to(&tx));
    recv(&rx).unwrap();
    assert_eq!(
        worker.try_fetch("SELECT 1", &[], None, false),
        Some(Err(EngineError::closed()))
    );
}

#[test]
fn inline_statements_can_be_interrupted_from_another_thread() {
    let (worker, _rx, _tx) = open_worker(":memory:");
    let worker = Arc::new(worker);
    let other = Arc::clone(&worker);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopper = Arc::clone(&stop);
    let interrupter = std::thread::spawn(move || {
        while !stopper.load(std::sync::atomic::Ordering::SeqCst) {
            other.interrupt();
            std::thread::yield_now();
        }
    });
    // With no budget to speak of, the only way out is the interrupt.
    worker.set_inline_budget(u32::MAX - 1);
    let got = worker.try_fetch(SLOW, &[], None, false);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    interrupter.join().unwrap();
    let err = got.expect("ran inline").unwrap_err();
    assert_eq!(
        (err.class, err.message.as_str()),
        (ErrorClass::Operational, "interrupted")
    );
    assert_eq!(worker.stats().overran, 0);
    // The next statement is not interrupted.
    assert!(matches!(
        worker.try_fetch("SELECT 1", &[], None, false),
        Some(Ok(_))
    ));
}
