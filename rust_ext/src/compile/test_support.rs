//! Small builders and assertions for the compiler's unit tests.

use super::compile;
use crate::dialect::{POSTGRESQL, SQLITE};
use crate::errors::CompileError;
use crate::tree::*;

pub fn col(table: Option<&str>, name: &str) -> Expr {
    Expr::Col {
        table: table.map(str::to_owned),
        name: name.to_owned(),
    }
}

pub fn param(i: i64) -> Expr {
    Expr::Param(Integer::Small(i))
}

pub fn star() -> Expr {
    Expr::Star
}

pub fn func(name: Function, args: Vec<Expr>, distinct: bool) -> Expr {
    Expr::Func {
        name,
        args,
        distinct,
    }
}

pub fn bin(op: BinaryOp, left: Expr, right: Expr) -> Expr {
    Expr::Binary {
        op,
        left: Box::new(left),
        right: Box::new(right),
    }
}

pub fn table(name: &str, alias: Option<&str>) -> TableRef {
    TableRef::Table {
        name: name.to_owned(),
        alias: alias.map(str::to_owned),
    }
}

pub fn select(columns: Vec<(Expr, Option<&str>)>, from: TableRef) -> Select {
    let mut select = Select::new(Some(from));
    select.columns = columns
        .into_iter()
        .map(|(expr, alias)| SelectColumn {
            expr,
            alias: alias.map(str::to_owned),
        })
        .collect();
    select
}

/// Assert the SQLite and PostgreSQL text of `stmt`.
#[track_caller]
pub fn both(stmt: &Statement, sqlite: &str, postgresql: &str) {
    assert_eq!(compile(stmt, &SQLITE).unwrap(), sqlite, "sqlite");
    assert_eq!(
        compile(stmt, &POSTGRESQL).unwrap(),
        postgresql,
        "postgresql"
    );
}

/// The error `stmt` is refused with, which must be the same on both dialects.
#[track_caller]
pub fn err(stmt: &Statement) -> CompileError {
    let sqlite = compile(stmt, &SQLITE).unwrap_err();
    assert_eq!(compile(stmt, &POSTGRESQL).unwrap_err(), sqlite);
    sqlite
}

const EXPR_PREFIX: &str = "DELETE FROM \"t\" WHERE ";

fn in_delete(e: &Expr) -> Statement {
    Statement::Delete(Delete {
        table: "t".into(),
        filter: Some(e.clone()),
    })
}

/// The SQLite text of one expression, compiled as a DELETE's WHERE clause.
pub fn compile_expr(e: &Expr) -> Result<String, CompileError> {
    compile(&in_delete(e), &SQLITE).map(|s| s[EXPR_PREFIX.len()..].to_owned())
}

/// Assert the SQLite and PostgreSQL text of one top-level expression.
#[track_caller]
pub fn both_expr(e: &Expr, sqlite: &str, postgresql: &str) {
    both(
        &in_delete(e),
        &format!("{EXPR_PREFIX}{sqlite}"),
        &format!("{EXPR_PREFIX}{postgresql}"),
    );
}

#[track_caller]
pub fn err_expr(e: &Expr) -> CompileError {
    err(&in_delete(e))
}
