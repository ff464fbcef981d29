//! What differs between the SQL dialects, as data.
//!
//! The compiler never asks "is this PostgreSQL?"; it reads the spelling or capability it needs
//! from the dialect record (Django's feature flags, tortoise's `Capabilities`).

use crate::errors::{py_repr, CompileError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dialect {
    /// The name the Python side passes: `"sqlite"` or `"postgresql"`.
    pub name: &'static str,
    /// Written before a parameter's 1-based index: `$1` or `?1`.
    pub placeholder: char,
    /// The call `("func", "RANDOM", ...)` becomes.
    pub random: &'static str,
    /// Appended to an ascending ORDER BY term; both dialects put NULLs last.
    pub ascending: &'static str,
    /// Appended to a descending ORDER BY term; both dialects put NULLs first.
    pub descending: &'static str,
    /// Written before OFFSET when there is no LIMIT (SQLite needs one).
    pub limit_for_bare_offset: &'static str,
    /// The NULL-safe equality operator of `("same", l, r)`, with its surrounding spaces.
    pub null_safe_equal: &'static str,
    /// Has a case-insensitive `ILIKE`; otherwise both sides are lowered.
    pub has_ilike: bool,
    /// Has the `~` / `~*` operators; otherwise the `covet_regexp(pattern, text)` /
    /// `covet_iregexp(...)` functions the SQLite adapter registers.
    pub has_regex_operators: bool,
}

pub const SQLITE: Dialect = Dialect {
    name: "sqlite",
    placeholder: '?',
    random: "RANDOM()",
    ascending: " ASC NULLS LAST",
    descending: " DESC NULLS FIRST",
    limit_for_bare_offset: " LIMIT -1",
    null_safe_equal: " IS ",
    has_ilike: false,
    has_regex_operators: false,
};

pub const POSTGRESQL: Dialect = Dialect {
    name: "postgresql",
    placeholder: '$',
    random: "random()",
    ascending: " ASC",
    descending: " DESC",
    limit_for_bare_offset: "",
    null_safe_equal: " IS NOT DISTINCT FROM ",
    has_ilike: true,
    has_regex_operators: true,
};

impl Dialect {
    /// The dialect called `name`.
    pub fn from_name(name: &str) -> Result<&'static Dialect, CompileError> {
        match name {
            "sqlite" => Ok(&SQLITE),
            "postgresql" => Ok(&POSTGRESQL),
            _ => Err(CompileError::UnknownDialect(py_repr(name))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(Dialect::from_name("sqlite").unwrap().name, "sqlite");
        assert_eq!(Dialect::from_name("postgresql").unwrap().name, "postgresql");
        assert_eq!(
            Dialect::from_name("postgres"),
            Err(CompileError::UnknownDialect("'postgres'".into()))
        );
        assert!(Dialect::from_name("SQLite").is_err());
        assert!(Dialect::from_name("").is_err());
    }
}
