//! Errors of the native SQLite executor, described the way CPython's `sqlite3` raises them.

use rusqlite::ffi;

/// The exception class CPython's `sqlite3` raises for the same failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    Interface,
    Database,
    Internal,
    Operational,
    Programming,
    Integrity,
    Data,
    /// Python's `OverflowError` (an integer too large to bind).
    Overflow,
    /// Python's `MemoryError` (`SQLITE_NOMEM`).
    Memory,
}

impl ErrorClass {
    /// The class name in Python's `sqlite3` module (or in builtins for overflow and memory).
    pub fn name(self) -> &'static str {
        match self {
            ErrorClass::Interface => "InterfaceError",
            ErrorClass::Database => "DatabaseError",
            ErrorClass::Internal => "InternalError",
            ErrorClass::Operational => "OperationalError",
            ErrorClass::Programming => "ProgrammingError",
            ErrorClass::Integrity => "IntegrityError",
            ErrorClass::Data => "DataError",
            ErrorClass::Overflow => "OverflowError",
            ErrorClass::Memory => "MemoryError",
        }
    }

    /// CPython's mapping of a primary result code to an exception class.
    pub fn for_code(code: i32) -> ErrorClass {
        match code & 0xff {
            ffi::SQLITE_INTERNAL | ffi::SQLITE_NOTFOUND => ErrorClass::Internal,
            ffi::SQLITE_NOMEM => ErrorClass::Memory,
            ffi::SQLITE_ERROR
            | ffi::SQLITE_PERM
            | ffi::SQLITE_ABORT
            | ffi::SQLITE_BUSY
            | ffi::SQLITE_LOCKED
            | ffi::SQLITE_READONLY
            | ffi::SQLITE_INTERRUPT
            | ffi::SQLITE_IOERR
            | ffi::SQLITE_FULL
            | ffi::SQLITE_CANTOPEN
            | ffi::SQLITE_PROTOCOL
            | ffi::SQLITE_EMPTY
            | ffi::SQLITE_SCHEMA => ErrorClass::Operational,
            ffi::SQLITE_TOOBIG => ErrorClass::Data,
            ffi::SQLITE_CONSTRAINT | ffi::SQLITE_MISMATCH => ErrorClass::Integrity,
            ffi::SQLITE_MISUSE | ffi::SQLITE_RANGE => ErrorClass::Interface,
            _ => ErrorClass::Database,
        }
    }
}

/// A failure, described the way CPython's `sqlite3` would raise it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineError {
    pub class: ErrorClass,
    /// The extended result code, when SQLite reported the error.
    pub code: Option<i32>,
    pub message: String,
}

impl EngineError {
    pub fn new(class: ErrorClass, message: impl Into<String>) -> Self {
        EngineError {
            class,
            code: None,
            message: message.into(),
        }
    }

    /// An error SQLite reported with (extended) result code `code`.
    pub fn sqlite(code: i32, message: impl Into<String>) -> Self {
        EngineError {
            class: ErrorClass::for_code(code),
            code: Some(code),
            message: message.into(),
        }
    }

    /// The connection is closed (or was never opened).
    pub fn closed() -> Self {
        EngineError::new(ErrorClass::Operational, "the SQLite connection is closed")
    }

    /// The job was cancelled before it started.
    pub fn cancelled() -> Self {
        EngineError::sqlite(ffi::SQLITE_INTERRUPT, "interrupted")
    }

    /// `SQLITE_CONSTRAINT_UNIQUE` and the like, for `code`.
    pub fn name(&self) -> Option<String> {
        self.code.and_then(error_name)
    }
}

impl std::fmt::Display for EngineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.class.name(), self.message)
    }
}

impl std::error::Error for EngineError {}

impl From<rusqlite::Error> for EngineError {
    fn from(err: rusqlite::Error) -> Self {
        match err {
            rusqlite::Error::SqliteFailure(e, msg) => EngineError::sqlite(
                e.extended_code,
                msg.unwrap_or_else(|| ffi::code_to_str(e.extended_code).to_string()),
            ),
            other => EngineError::new(ErrorClass::Operational, other.to_string()),
        }
    }
}

/// The `SQLITE_*` name of a (primary or extended) result code, as in `sqlite_errorname`.
pub fn error_name(code: i32) -> Option<String> {
    #[rustfmt::skip]
    const PRIMARY: [&str; 29] = [
        "OK", "ERROR", "INTERNAL", "PERM", "ABORT", "BUSY", "LOCKED", "NOMEM", "READONLY",
        "INTERRUPT", "IOERR", "CORRUPT", "NOTFOUND", "FULL", "CANTOPEN", "PROTOCOL", "EMPTY",
        "SCHEMA", "TOOBIG", "CONSTRAINT", "MISMATCH", "MISUSE", "NOLFS", "AUTH", "FORMAT", "RANGE",
        "NOTADB", "NOTICE", "WARNING",
    ];
    // (primary code, [extended names by (code >> 8) - 1])
    #[rustfmt::skip]
    const EXTENDED: [(i32, &[&str]); 14] = [
        (1, &["ERROR_MISSING_COLLSEQ", "ERROR_RETRY", "ERROR_SNAPSHOT", "ERROR_RESERVESIZE",
              "ERROR_KEY", "ERROR_UNABLE"]),
        (4, &["ABORT_ROLLBACK"]),
        (5, &["BUSY_RECOVERY", "BUSY_SNAPSHOT", "BUSY_TIMEOUT"]),
        (6, &["LOCKED_SHAREDCACHE", "LOCKED_VTAB"]),
        (8, &["READONLY_RECOVERY", "READONLY_CANTLOCK", "READONLY_ROLLBACK",
              "READONLY_DBMOVED", "READONLY_CANTINIT", "READONLY_DIRECTORY"]),
        (10, &["IOERR_READ", "IOERR_SHORT_READ", "IOERR_WRITE", "IOERR_FSYNC",
               "IOERR_DIR_FSYNC", "IOERR_TRUNCATE", "IOERR_FSTAT", "IOERR_UNLOCK",
               "IOERR_RDLOCK", "IOERR_DELETE", "IOERR_BLOCKED", "IOERR_NOMEM", "IOERR_ACCESS",
               "IOERR_CHECKRESERVEDLOCK", "IOERR_LOCK", "IOERR_CLOSE", "IOERR_DIR_CLOSE",
               "IOERR_SHMOPEN", "IOERR_SHMSIZE", "IOERR_SHMLOCK", "IOERR_SHMMAP", "IOERR_SEEK",
               "IOERR_DELETE_NOENT", "IOERR_MMAP", "IOERR_GETTEMPPATH", "IOERR_CONVPATH",
               "IOERR_VNODE", "IOERR_AUTH", "IOERR_BEGIN_ATOMIC", "IOERR_COMMIT_ATOMIC",
               "IOERR_ROLLBACK_ATOMIC", "IOERR_DATA", "IOERR_CORRUPTFS", "IOERR_IN_PAGE",
               "IOERR_BADKEY", "IOERR_CODEC"]),
        (11, &["CORRUPT_VTAB", "CORRUPT_SEQUENCE", "CORRUPT_INDEX"]),
        (14, &["CANTOPEN_NOTEMPDIR", "CANTOPEN_ISDIR", "CANTOPEN_FULLPATH",
               "CANTOPEN_CONVPATH", "CANTOPEN_DIRTYWAL", "CANTOPEN_SYMLINK"]),
        (19, &["CONSTRAINT_CHECK", "CONSTRAINT_COMMITHOOK", "CONSTRAINT_FOREIGNKEY",
               "CONSTRAINT_FUNCTION", "CONSTRAINT_NOTNULL", "CONSTRAINT_PRIMARYKEY",
               "CONSTRAINT_TRIGGER", "CONSTRAINT_UNIQUE", "CONSTRAINT_VTAB",
               "CONSTRAINT_ROWID", "CONSTRAINT_PINNED", "CONSTRAINT_DATATYPE"]),
        (21, &["MISUSE_NO_LICENSE"]),
        (23, &["AUTH_USER"]),
        (27, &["NOTICE_RECOVER_WAL", "NOTICE_RECOVER_ROLLBACK", "NOTICE_RBU"]),
        (28, &["WARNING_AUTOINDEX"]),
        (0, &["OK_LOAD_PERMANENTLY", "OK_SYMLINK"]),
    ];
    let primary = code & 0xff;
    let sub = code >> 8;
    let name = if sub == 0 {
        PRIMARY.get(usize::try_from(primary).ok()?).copied()
    } else {
        let names = EXTENDED.iter().find(|(p, _)| *p == primary)?.1;
        names.get(usize::try_from(sub - 1).ok()?).copied()
    };
    name.map(|n| format!("SQLITE_{n}"))
}
