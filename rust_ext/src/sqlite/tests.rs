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
