//! The compile error: every way a tree can be refused.
//!
//! Messages say what the reference's `ValueError` messages say. Offending values are carried as
//! text already spelled the way Python's `repr()` spells them (the bindings use the real `repr`;
//! plain Rust callers use [`py_repr`]), so one message can name a Python object or a Rust string.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompileError {
    /// The dialect is neither `"sqlite"` nor `"postgresql"`.
    UnknownDialect(String),
    /// The root is not a select, insert, update or delete.
    UnknownStatement(String),
    UnknownTableRef(String),
    UnknownJoinKind(String),
    UnknownExpression(String),
    UnknownConstant(String),
    UnknownFunction(String),
    UnknownOperator(String),
    UnknownCastType(String),
    /// Empty, containing NUL, or not a string at all.
    InvalidIdentifier(String),
    /// Not an `int`, a `bool`, or less than 1.
    InvalidParamIndex(String),
    /// Not an `int`, or a `bool`.
    InvalidInteger(String),
    InsertWithoutColumnsNeedsOneRow,
    UpdateWithoutColumns,
    CaseWithoutWhen,
    JoinsWithoutFrom,
    /// The tree has the wrong shape: a node with the wrong number of fields, a value of the wrong
    /// type where a tuple was expected, and so on.
    Malformed(String),
    /// More than [`crate::tree::MAX_DEPTH`] nested levels. The reference raises `RecursionError`
    /// for such trees, so the bindings do too.
    TooDeep,
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompileError::UnknownDialect(d) => {
                write!(f, "unknown dialect {d}; expected 'sqlite' or 'postgresql'")
            }
            CompileError::UnknownStatement(k) => write!(f, "unknown statement node {k}"),
            CompileError::UnknownTableRef(k) => write!(f, "unknown table reference {k}"),
            CompileError::UnknownJoinKind(k) => write!(f, "unknown join kind {k}"),
            CompileError::UnknownExpression(k) => write!(f, "unknown expression node {k}"),
            CompileError::UnknownConstant(c) => write!(f, "unknown constant {c}"),
            CompileError::UnknownFunction(n) => write!(f, "unknown SQL function {n}"),
            CompileError::UnknownOperator(o) => write!(f, "unknown operator {o}"),
            CompileError::UnknownCastType(t) => write!(f, "unknown cast type {t}"),
            CompileError::InvalidIdentifier(n) => write!(f, "invalid SQL identifier: {n}"),
            CompileError::InvalidParamIndex(i) => write!(f, "invalid parameter index {i}"),
            CompileError::InvalidInteger(n) => write!(f, "invalid integer literal {n}"),
            CompileError::InsertWithoutColumnsNeedsOneRow => {
                f.write_str("an INSERT without columns takes exactly one row")
            }
            CompileError::UpdateWithoutColumns => {
                f.write_str("an UPDATE needs at least one column")
            }
            CompileError::CaseWithoutWhen => f.write_str("a CASE needs at least one WHEN"),
            CompileError::JoinsWithoutFrom => {
                f.write_str("a SELECT without FROM cannot have joins")
            }
            CompileError::Malformed(why) => write!(f, "malformed query tree: {why}"),
            CompileError::TooDeep => write!(
                f,
                "query tree nested too deeply (more than {} levels)",
                crate::tree::MAX_DEPTH
            ),
        }
    }
}

impl std::error::Error for CompileError {}

/// A string spelled as Python's `repr()` spells it, for error messages: single quotes unless the
/// text holds a `'` and no `"`, backslash escapes for the quote, `\`, `\t`, `\n`, `\r` and other
/// control characters.
pub fn py_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repr_matches_python() {
        assert_eq!(py_repr(""), "''");
        assert_eq!(py_repr("abc"), "'abc'");
        assert_eq!(py_repr("a\0b"), "'a\\x00b'");
        assert_eq!(py_repr("it's"), "\"it's\"");
        assert_eq!(py_repr("'\""), "'\\'\"'");
        assert_eq!(py_repr("a\\b\n"), "'a\\\\b\\n'");
        assert_eq!(py_repr("\u{85}"), "'\\x85'");
    }

    #[test]
    fn messages_match_reference() {
        assert_eq!(
            CompileError::UnknownFunction(py_repr("NOW")).to_string(),
            "unknown SQL function 'NOW'"
        );
        assert_eq!(
            CompileError::InvalidIdentifier(py_repr("")).to_string(),
            "invalid SQL identifier: ''"
        );
        assert_eq!(
            CompileError::UnknownDialect(py_repr("mysql")).to_string(),
            "unknown dialect 'mysql'; expected 'sqlite' or 'postgresql'"
        );
        assert_eq!(
            CompileError::Malformed("x".into()).to_string(),
            "malformed query tree: x"
        );
    }
}
