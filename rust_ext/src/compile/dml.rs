//! INSERT, UPDATE and DELETE.

use super::{Result, Writer};
use crate::errors::CompileError;
use crate::tree::{Delete, Expr, Insert, Update};

impl Writer<'_> {
    pub(super) fn insert(&mut self, i: &Insert) -> Result {
        self.out.push_str("INSERT INTO ");
        self.ident(&i.table)?;
        if i.columns.is_empty() {
            if i.rows.len() != 1 {
                return Err(CompileError::InsertWithoutColumnsNeedsOneRow);
            }
            self.out.push_str(" DEFAULT VALUES");
        } else {
            // Like the reference, rows are not checked against the column count.
            self.out.push_str(" (");
            self.ident_list(&i.columns)?;
            self.out.push_str(") VALUES ");
            self.comma_list(&i.rows, |w, row: &Vec<Expr>| {
                w.out.push('(');
                w.comma_list(row, |w, e| w.expr(e, false))?;
                w.out.push(')');
                Ok(())
            })?;
        }
        if !i.returning.is_empty() {
            self.out.push_str(" RETURNING ");
            self.ident_list(&i.returning)?;
        }
        Ok(())
    }

    pub(super) fn update(&mut self, u: &Update) -> Result {
        if u.sets.is_empty() {
            return Err(CompileError::UpdateWithoutColumns);
        }
        self.out.push_str("UPDATE ");
        self.ident(&u.table)?;
        self.out.push_str(" SET ");
        self.comma_list(&u.sets, |w, (column, value)| {
            w.ident(column)?;
            w.out.push_str(" = ");
            w.expr(value, false)
        })?;
        self.clause(" WHERE ", u.filter.as_ref())
    }

    pub(super) fn delete(&mut self, d: &Delete) -> Result {
        self.out.push_str("DELETE FROM ");
        self.ident(&d.table)?;
        self.clause(" WHERE ", d.filter.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use crate::compile::test_support::*;
    use crate::errors::CompileError;
    use crate::tree::*;

    fn insert(columns: &[&str], rows: Vec<Vec<Expr>>, returning: &[&str]) -> Statement {
        Statement::Insert(Insert {
            table: "book".into(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows,
            returning: returning.iter().map(|c| c.to_string()).collect(),
        })
    }

    #[test]
    fn insert_rows_and_returning() {
        let stmt = insert(
            &["title", "pages"],
            vec![
                vec![param(1), param(2)],
                vec![param(3), Expr::Const(Const::Null)],
            ],
            &["id"],
        );
        both(
            &stmt,
            r#"INSERT INTO "book" ("title", "pages") VALUES (?1, ?2), (?3, NULL) RETURNING "id""#,
            r#"INSERT INTO "book" ("title", "pages") VALUES ($1, $2), ($3, NULL) RETURNING "id""#,
        );
    }

    #[test]
    fn insert_default_values() {
        let stmt = insert(&[], vec![vec![]], &["id", "created"]);
        let sql = r#"INSERT INTO "book" DEFAULT VALUES RETURNING "id", "created""#;
        both(&stmt, sql, sql);
        let sql = r#"INSERT INTO "book" DEFAULT VALUES"#;
        both(&insert(&[], vec![vec![]], &[]), sql, sql);
    }

    #[test]
    fn insert_without_columns_needs_one_row() {
        assert_eq!(
            err(&insert(&[], vec![], &[])),
            CompileError::InsertWithoutColumnsNeedsOneRow
        );
        assert_eq!(
            err(&insert(&[], vec![vec![], vec![]], &[])),
            CompileError::InsertWithoutColumnsNeedsOneRow
        );
    }

    #[test]
    fn insert_bad_identifiers() {
        assert!(matches!(
            err(&insert(&["ok", ""], vec![vec![param(1)]], &[])),
            CompileError::InvalidIdentifier(_)
        ));
        assert!(matches!(
            err(&insert(&["ok"], vec![vec![param(1)]], &["i\0d"])),
            CompileError::InvalidIdentifier(_)
        ));
    }

    #[test]
    fn update_and_delete() {
        let stmt = Statement::Update(Update {
            table: "t".into(),
            sets: vec![
                ("a".into(), param(1)),
                (
                    "b".into(),
                    bin(BinaryOp::Add, col(None, "b"), Expr::Int(Integer::Small(1))),
                ),
            ],
            filter: Some(bin(BinaryOp::Eq, col(None, "id"), param(2))),
        });
        both(
            &stmt,
            r#"UPDATE "t" SET "a" = ?1, "b" = "b" + 1 WHERE "id" = ?2"#,
            r#"UPDATE "t" SET "a" = $1, "b" = "b" + 1 WHERE "id" = $2"#,
        );
        let stmt = Statement::Delete(Delete {
            table: "t".into(),
            filter: None,
        });
        both(&stmt, r#"DELETE FROM "t""#, r#"DELETE FROM "t""#);
        let stmt = Statement::Delete(Delete {
            table: "t\"x".into(),
            filter: Some(param(7)),
        });
        both(
            &stmt,
            r#"DELETE FROM "t""x" WHERE ?7"#,
            r#"DELETE FROM "t""x" WHERE $7"#,
        );
    }

    #[test]
    fn update_needs_a_column() {
        let stmt = Statement::Update(Update {
            table: "t".into(),
            sets: vec![],
            filter: None,
        });
        assert_eq!(err(&stmt), CompileError::UpdateWithoutColumns);
    }
}
