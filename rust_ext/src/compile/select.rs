//! SELECT: the select list, FROM and JOINs, the clauses, ORDER BY with NULL placement, and
//! LIMIT/OFFSET.

use super::{Result, Writer};
use crate::errors::CompileError;
use crate::tree::{OrderBy, Select, SelectColumn, TableRef};

impl Writer<'_> {
    pub(super) fn select(&mut self, s: &Select) -> Result {
        self.enter()?;
        self.out.push_str(if s.distinct {
            "SELECT DISTINCT "
        } else {
            "SELECT "
        });
        self.comma_list(&s.columns, Self::select_column)?;
        match &s.from {
            Some(from) => {
                self.out.push_str(" FROM ");
                self.table_ref(from)?;
            }
            None if !s.joins.is_empty() => return Err(CompileError::JoinsWithoutFrom),
            None => {}
        }
        for join in &s.joins {
            self.out.push(' ');
            self.out.push_str(join.kind.keyword());
            self.out.push_str(" JOIN ");
            self.table_ref(&join.table)?;
            self.out.push_str(" ON ");
            self.expr(&join.on, false)?;
        }
        self.clause(" WHERE ", s.filter.as_ref())?;
        if !s.group_by.is_empty() {
            self.out.push_str(" GROUP BY ");
            self.comma_list(&s.group_by, |w, e| w.expr(e, false))?;
        }
        self.clause(" HAVING ", s.having.as_ref())?;
        if !s.order_by.is_empty() {
            self.out.push_str(" ORDER BY ");
            self.comma_list(&s.order_by, Self::order_by)?;
        }
        self.clause(" LIMIT ", s.limit.as_ref())?;
        if let Some(offset) = &s.offset {
            if s.limit.is_none() {
                self.out.push_str(self.dialect.limit_for_bare_offset);
            }
            self.out.push_str(" OFFSET ");
            self.expr(offset, false)?;
        }
        self.leave();
        Ok(())
    }

    fn select_column(&mut self, c: &SelectColumn) -> Result {
        self.expr(&c.expr, false)?;
        self.alias(c.alias.as_deref())
    }

    fn order_by(&mut self, o: &OrderBy) -> Result {
        self.expr(&o.expr, false)?;
        self.out.push_str(if o.descending {
            self.dialect.descending
        } else {
            self.dialect.ascending
        });
        Ok(())
    }

    pub(super) fn table_ref(&mut self, r: &TableRef) -> Result {
        match r {
            TableRef::Table { name, alias } => self.ident_as(name, alias.as_deref()),
            TableRef::Subquery { select, alias } => {
                self.out.push('(');
                self.select(select)?;
                self.out.push_str(") AS ");
                self.ident(alias)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::compile::test_support::*;
    use crate::tree::*;

    #[test]
    fn minimal_select() {
        let s = select(vec![(star(), None)], table("t", None));
        both(
            &Statement::Select(Box::new(s)),
            r#"SELECT * FROM "t""#,
            r#"SELECT * FROM "t""#,
        );
    }

    #[test]
    fn every_clause() {
        let mut s = select(
            vec![
                (col(Some("a"), "id"), None),
                (func(Function::Count, vec![star()], false), Some("n")),
            ],
            table("author", Some("a")),
        );
        s.distinct = true;
        s.joins = vec![Join {
            kind: JoinKind::Left,
            table: table("book", Some("b")),
            on: bin(
                BinaryOp::Eq,
                col(Some("b"), "author_id"),
                col(Some("a"), "id"),
            ),
        }];
        s.filter = Some(bin(BinaryOp::Gt, col(Some("a"), "age"), param(1)));
        s.group_by = vec![col(Some("a"), "id")];
        s.having = Some(bin(
            BinaryOp::Ge,
            func(Function::Count, vec![star()], false),
            param(2),
        ));
        s.order_by = vec![
            OrderBy {
                expr: col(Some("a"), "name"),
                descending: false,
            },
            OrderBy {
                expr: col(None, "n"),
                descending: true,
            },
        ];
        s.limit = Some(param(3));
        s.offset = Some(param(4));
        let stmt = Statement::Select(Box::new(s));
        both(
            &stmt,
            concat!(
                r#"SELECT DISTINCT "a"."id", COUNT(*) AS "n" FROM "author" AS "a" "#,
                r#"LEFT JOIN "book" AS "b" ON "b"."author_id" = "a"."id" WHERE "a"."age" > ?1 "#,
                r#"GROUP BY "a"."id" HAVING COUNT(*) >= ?2 "#,
                r#"ORDER BY "a"."name" ASC NULLS LAST, "n" DESC NULLS FIRST LIMIT ?3 OFFSET ?4"#
            ),
            concat!(
                r#"SELECT DISTINCT "a"."id", COUNT(*) AS "n" FROM "author" AS "a" "#,
                r#"LEFT JOIN "book" AS "b" ON "b"."author_id" = "a"."id" WHERE "a"."age" > $1 "#,
                r#"GROUP BY "a"."id" HAVING COUNT(*) >= $2 "#,
                r#"ORDER BY "a"."name" ASC, "n" DESC LIMIT $3 OFFSET $4"#
            ),
        );
    }

    #[test]
    fn offset_without_limit() {
        let mut s = select(vec![(star(), None)], table("t", None));
        s.offset = Some(param(1));
        both(
            &Statement::Select(Box::new(s)),
            r#"SELECT * FROM "t" LIMIT -1 OFFSET ?1"#,
            r#"SELECT * FROM "t" OFFSET $1"#,
        );
    }

    #[test]
    fn inner_join_and_subquery_in_from() {
        let inner = select(vec![(col(None, "id"), Some("x"))], table("t", None));
        let mut s = select(
            vec![(col(Some("s"), "x"), None)],
            TableRef::Subquery {
                select: Box::new(inner),
                alias: "s".into(),
            },
        );
        s.joins = vec![Join {
            kind: JoinKind::Inner,
            table: table("u", None),
            on: Expr::Const(Const::True),
        }];
        both(
            &Statement::Select(Box::new(s)),
            r#"SELECT "s"."x" FROM (SELECT "id" AS "x" FROM "t") AS "s" INNER JOIN "u" ON TRUE"#,
            r#"SELECT "s"."x" FROM (SELECT "id" AS "x" FROM "t") AS "s" INNER JOIN "u" ON TRUE"#,
        );
    }

    #[test]
    fn empty_select_list_is_written_as_is() {
        // The reference does not refuse it; neither does the compiler.
        let s = select(vec![], table("t", None));
        both(
            &Statement::Select(Box::new(s)),
            r#"SELECT  FROM "t""#,
            r#"SELECT  FROM "t""#,
        );
    }

    #[test]
    fn select_without_from() {
        let sub = select(
            vec![(func(Function::Count, vec![star()], false), None)],
            table("t", None),
        );
        let mut s = select(
            vec![(Expr::Subquery(Box::new(sub)), Some("n"))],
            table("x", None),
        );
        s.from = None;
        both(
            &Statement::Select(Box::new(s.clone())),
            r#"SELECT (SELECT COUNT(*) FROM "t") AS "n""#,
            r#"SELECT (SELECT COUNT(*) FROM "t") AS "n""#,
        );
        s.joins = vec![Join {
            kind: JoinKind::Inner,
            table: table("u", None),
            on: Expr::Const(Const::True),
        }];
        assert_eq!(
            err(&Statement::Select(Box::new(s))),
            crate::errors::CompileError::JoinsWithoutFrom
        );
    }

    #[test]
    fn bad_aliases_are_refused() {
        let s = select(vec![(star(), Some(""))], table("t", None));
        assert_eq!(
            err(&Statement::Select(Box::new(s))),
            crate::errors::CompileError::InvalidIdentifier("''".into())
        );
        let s = select(vec![(star(), None)], table("t", Some("a\0")));
        assert!(matches!(
            err(&Statement::Select(Box::new(s))),
            crate::errors::CompileError::InvalidIdentifier(_)
        ));
        let inner = select(vec![(star(), None)], table("t", None));
        let s = select(
            vec![(star(), None)],
            TableRef::Subquery {
                select: Box::new(inner),
                alias: String::new(),
            },
        );
        assert!(matches!(
            err(&Statement::Select(Box::new(s))),
            crate::errors::CompileError::InvalidIdentifier(_)
        ));
    }
}
