//! The SQL compiler: a [`Statement`] in, SQL text for one [`Dialect`] out.
//!
//! Barrier: plain Rust, no Python. It never sees a value; parameters become numbered placeholders.
//! It must write byte for byte what `covet/database/orm/sql/reference.py` writes, and refuse what
//! it refuses; `tests/test_compiler.py` checks the two against each other.
//!
//! Everything is written into one `String`; each node appends its own text, so nothing is built
//! and then copied.

mod dml;
mod expr;
mod select;

use crate::dialect::Dialect;
use crate::errors::{py_repr, CompileError};
use crate::tree::{Statement, MAX_DEPTH};

/// Compile one statement.
///
/// # Errors
/// A [`CompileError`] when the tree holds an invalid identifier or parameter index, an empty
/// CASE or UPDATE, a column-less INSERT without exactly one row, or nests too deeply.
pub fn compile(
    statement: &Statement,
    dialect: &Dialect,
) -> std::result::Result<String, CompileError> {
    let mut writer = Writer {
        out: String::with_capacity(256),
        dialect,
        depth: 0,
    };
    match statement {
        Statement::Select(s) => writer.select(s)?,
        Statement::Insert(i) => writer.insert(i)?,
        Statement::Update(u) => writer.update(u)?,
        Statement::Delete(d) => writer.delete(d)?,
    }
    Ok(writer.out)
}

type Result<T = ()> = std::result::Result<T, CompileError>;

/// The output buffer and what every node needs while writing into it.
struct Writer<'d> {
    out: String,
    dialect: &'d Dialect,
    depth: usize,
}

impl Writer<'_> {
    /// Count one more level of nesting (selects and expressions); see [`MAX_DEPTH`].
    fn enter(&mut self) -> Result {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(CompileError::TooDeep);
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    /// Write `name` double-quoted with inner `"` doubled; the only place identifiers become SQL.
    fn ident(&mut self, name: &str) -> Result {
        if name.is_empty() || name.as_bytes().contains(&0) {
            return Err(CompileError::InvalidIdentifier(py_repr(name)));
        }
        self.out.push('"');
        if name.contains('"') {
            self.out.push_str(&name.replace('"', "\"\""));
        } else {
            self.out.push_str(name);
        }
        self.out.push('"');
        Ok(())
    }

    /// `ident`, then ` AS "alias"` when there is one.
    fn ident_as(&mut self, name: &str, alias: Option<&str>) -> Result {
        self.ident(name)?;
        self.alias(alias)
    }

    fn alias(&mut self, alias: Option<&str>) -> Result {
        if let Some(alias) = alias {
            self.out.push_str(" AS ");
            self.ident(alias)?;
        }
        Ok(())
    }

    /// Write `items` separated by `", "`, each with `write`.
    fn comma_list<T>(
        &mut self,
        items: &[T],
        mut write: impl FnMut(&mut Self, &T) -> Result,
    ) -> Result {
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.out.push_str(", ");
            }
            write(self, item)?;
        }
        Ok(())
    }

    /// A comma-separated list of identifiers.
    fn ident_list(&mut self, names: &[String]) -> Result {
        self.comma_list(names, |w, name| w.ident(name))
    }
}

#[cfg(test)]
mod test_support;
