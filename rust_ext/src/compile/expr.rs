//! Expressions. A compound expression (see [`Expr::is_compound`]) is parenthesised when it sits
//! inside another expression, and only then.

use std::fmt::Write as _;

use super::{Result, Writer};
use crate::errors::CompileError;
use crate::tree::{Expr, Function, InItems, Integer};

impl Writer<'_> {
    /// `keyword` and the expression, when there is one (WHERE, HAVING, LIMIT).
    pub(super) fn clause(&mut self, keyword: &str, e: Option<&Expr>) -> Result {
        if let Some(e) = e {
            self.out.push_str(keyword);
            self.expr(e, false)?;
        }
        Ok(())
    }

    /// Write `e`; `nested` says it is an operand of another expression.
    pub(super) fn expr(&mut self, e: &Expr, nested: bool) -> Result {
        self.enter()?;
        let wrap = nested && e.is_compound();
        if wrap {
            self.out.push('(');
        }
        self.expr_body(e)?;
        if wrap {
            self.out.push(')');
        }
        self.leave();
        Ok(())
    }

    fn expr_body(&mut self, e: &Expr) -> Result {
        match e {
            Expr::Col { table, name } => {
                if let Some(table) = table {
                    self.ident(table)?;
                    self.out.push('.');
                }
                self.ident(name)?;
            }
            Expr::Param(i) => {
                if !i.is_positive() {
                    return Err(CompileError::InvalidParamIndex(integer_text(i)));
                }
                self.out.push(self.dialect.placeholder);
                self.integer(i);
            }
            Expr::Star => self.out.push('*'),
            Expr::Const(c) => self.out.push_str(c.keyword()),
            Expr::Int(n) => self.integer(n),
            Expr::Func {
                name: Function::Random,
                ..
            } => self.out.push_str(self.dialect.random),
            Expr::Func {
                name,
                args,
                distinct,
            } => {
                self.out.push_str(name.name());
                self.out
                    .push_str(if *distinct { "(DISTINCT " } else { "(" });
                self.comma_list(args, |w, a| w.expr(a, false))?;
                self.out.push(')');
            }
            Expr::Binary { op, left, right } => {
                self.expr(left, true)?;
                self.out.push(' ');
                self.out.push_str(op.symbol());
                self.out.push(' ');
                self.expr(right, true)?;
            }
            Expr::And(children) => self.connective(children, " AND ", "TRUE")?,
            Expr::Or(children) => self.connective(children, " OR ", "FALSE")?,
            Expr::Not(inner) => {
                self.out.push_str("NOT ");
                self.expr(inner, true)?;
            }
            Expr::IsNull { expr, negated } => {
                self.expr(expr, true)?;
                self.out
                    .push_str(if *negated { " IS NOT NULL" } else { " IS NULL" });
            }
            Expr::InEmpty { negated } => self.empty_in(*negated),
            Expr::In {
                expr,
                items,
                negated,
            } => {
                let op = if *negated { " NOT IN (" } else { " IN (" };
                match items {
                    InItems::Values(values) if values.is_empty() => self.empty_in(*negated),
                    InItems::Values(values) => {
                        self.expr(expr, true)?;
                        self.out.push_str(op);
                        self.comma_list(values, |w, v| w.expr(v, false))?;
                        self.out.push(')');
                    }
                    InItems::Select(select) => {
                        self.expr(expr, true)?;
                        self.out.push_str(op);
                        self.select(select)?;
                        self.out.push(')');
                    }
                }
            }
            Expr::Like {
                expr,
                pattern,
                case_insensitive,
            } => {
                if *case_insensitive && !self.dialect.has_ilike {
                    self.out.push_str("lower(");
                    self.expr(expr, false)?;
                    self.out.push_str(") LIKE lower(");
                    self.expr(pattern, false)?;
                    self.out.push(')');
                } else {
                    self.expr(expr, true)?;
                    self.out.push_str(if *case_insensitive {
                        " ILIKE "
                    } else {
                        " LIKE "
                    });
                    self.expr(pattern, true)?;
                }
                self.out.push_str(" ESCAPE '\\'");
            }
            Expr::Regex {
                expr,
                pattern,
                case_insensitive,
            } => {
                if self.dialect.has_regex_operators {
                    self.expr(expr, true)?;
                    self.out
                        .push_str(if *case_insensitive { " ~* " } else { " ~ " });
                    self.expr(pattern, true)?;
                } else {
                    self.out.push_str(if *case_insensitive {
                        "covet_iregexp("
                    } else {
                        "covet_regexp("
                    });
                    self.expr(pattern, false)?;
                    self.out.push_str(", ");
                    self.expr(expr, false)?;
                    self.out.push(')');
                }
            }
            Expr::Case { whens, default } => {
                if whens.is_empty() {
                    return Err(CompileError::CaseWithoutWhen);
                }
                self.out.push_str("CASE");
                for (condition, result) in whens {
                    self.out.push_str(" WHEN ");
                    self.expr(condition, false)?;
                    self.out.push_str(" THEN ");
                    self.expr(result, false)?;
                }
                if let Some(default) = default {
                    self.out.push_str(" ELSE ");
                    self.expr(default, false)?;
                }
                self.out.push_str(" END");
            }
            Expr::Exists { select, negated } => {
                self.out
                    .push_str(if *negated { "NOT EXISTS (" } else { "EXISTS (" });
                self.select(select)?;
                self.out.push(')');
            }
            Expr::Subquery(select) => {
                self.out.push('(');
                self.select(select)?;
                self.out.push(')');
            }
            Expr::Cast { expr, to } => {
                self.out.push_str("CAST(");
                self.expr(expr, false)?;
                self.out.push_str(" AS ");
                self.out.push_str(to.name());
                self.out.push(')');
            }
            Expr::Same { left, right } => {
                self.expr(left, true)?;
                self.out.push_str(self.dialect.null_safe_equal);
                self.expr(right, true)?;
            }
        }
        Ok(())
    }

    /// `AND` / `OR` over `children`, each parenthesised if compound; `empty` when there are none.
    fn connective(&mut self, children: &[Expr], separator: &str, empty: &str) -> Result {
        if children.is_empty() {
            self.out.push_str(empty);
            return Ok(());
        }
        for (i, child) in children.iter().enumerate() {
            if i > 0 {
                self.out.push_str(separator);
            }
            self.expr(child, true)?;
        }
        Ok(())
    }

    /// `x IN ()` is never true, `x NOT IN ()` always is.
    fn empty_in(&mut self, negated: bool) {
        self.out.push_str(if negated { "TRUE" } else { "FALSE" });
    }

    fn integer(&mut self, n: &Integer) {
        match n {
            // Writing to a String cannot fail.
            Integer::Small(n) => {
                let _ = write!(self.out, "{n}");
            }
            Integer::Big(text) => self.out.push_str(text),
        }
    }
}

fn integer_text(n: &Integer) -> String {
    match n {
        Integer::Small(n) => n.to_string(),
        Integer::Big(text) => text.clone(),
    }
}

#[cfg(test)]
mod tests {
    use crate::compile::test_support::*;
    use crate::errors::CompileError;
    use crate::tree::*;

    fn lit(n: i64) -> Expr {
        Expr::Int(Integer::Small(n))
    }

    #[test]
    fn columns_params_and_literals() {
        both_expr(&col(None, "x"), r#""x""#, r#""x""#);
        both_expr(&col(Some("t"), "x"), r#""t"."x""#, r#""t"."x""#);
        both_expr(
            &col(Some("a\"b"), "c\"\"d"),
            r#""a""b"."c""""d""#,
            r#""a""b"."c""""d""#,
        );
        both_expr(&param(12), "?12", "$12");
        both_expr(&star(), "*", "*");
        both_expr(&Expr::Const(Const::True), "TRUE", "TRUE");
        both_expr(&Expr::Const(Const::False), "FALSE", "FALSE");
        both_expr(&Expr::Const(Const::Null), "NULL", "NULL");
        both_expr(&lit(-5), "-5", "-5");
        both_expr(
            &lit(i64::MIN),
            "-9223372036854775808",
            "-9223372036854775808",
        );
        let big = Expr::Int(Integer::Big("123456789012345678901234567890".into()));
        both_expr(
            &big,
            "123456789012345678901234567890",
            "123456789012345678901234567890",
        );
        let big = Expr::Param(Integer::Big("123456789012345678901234567890".into()));
        both_expr(
            &big,
            "?123456789012345678901234567890",
            "$123456789012345678901234567890",
        );
    }

    #[test]
    fn functions() {
        both_expr(
            &func(Function::Count, vec![star()], false),
            "COUNT(*)",
            "COUNT(*)",
        );
        both_expr(
            &func(Function::Count, vec![col(None, "x")], true),
            r#"COUNT(DISTINCT "x")"#,
            r#"COUNT(DISTINCT "x")"#,
        );
        both_expr(
            &func(Function::Coalesce, vec![col(None, "x"), param(1)], false),
            r#"COALESCE("x", ?1)"#,
            r#"COALESCE("x", $1)"#,
        );
        both_expr(&func(Function::Max, vec![], false), "MAX()", "MAX()");
        // RANDOM ignores its arguments, as the reference does.
        both_expr(
            &func(Function::Random, vec![star()], true),
            "RANDOM()",
            "random()",
        );
    }

    #[test]
    fn binary_nesting_and_parentheses() {
        let sum = bin(BinaryOp::Add, col(None, "a"), lit(1));
        let e = bin(
            BinaryOp::Mul,
            sum.clone(),
            bin(BinaryOp::Concat, param(1), param(2)),
        );
        both_expr(&e, r#"("a" + 1) * (?1 || ?2)"#, r#"("a" + 1) * ($1 || $2)"#);
        // Not compound: functions, columns, case and subqueries are never wrapped.
        let e = bin(
            BinaryOp::Lt,
            func(Function::Abs, vec![sum], false),
            param(1),
        );
        both_expr(&e, r#"ABS("a" + 1) < ?1"#, r#"ABS("a" + 1) < $1"#);
    }

    #[test]
    fn connectives() {
        let a = bin(BinaryOp::Eq, col(None, "a"), param(1));
        let b = bin(BinaryOp::Ne, col(None, "b"), param(2));
        let e = Expr::Or(vec![
            Expr::And(vec![a.clone(), b.clone()]),
            Expr::Not(Box::new(a)),
        ]);
        both_expr(
            &e,
            r#"(("a" = ?1) AND ("b" <> ?2)) OR (NOT ("a" = ?1))"#,
            r#"(("a" = $1) AND ("b" <> $2)) OR (NOT ("a" = $1))"#,
        );
        both_expr(&Expr::And(vec![]), "TRUE", "TRUE");
        both_expr(&Expr::Or(vec![]), "FALSE", "FALSE");
        // An empty AND is still compound, so still wrapped when nested.
        both_expr(
            &Expr::Not(Box::new(Expr::And(vec![]))),
            "NOT (TRUE)",
            "NOT (TRUE)",
        );
    }

    #[test]
    fn null_tests_and_in() {
        let x = col(None, "x");
        both_expr(
            &Expr::IsNull {
                expr: Box::new(x.clone()),
                negated: false,
            },
            r#""x" IS NULL"#,
            r#""x" IS NULL"#,
        );
        both_expr(
            &Expr::IsNull {
                expr: Box::new(Expr::Not(Box::new(x.clone()))),
                negated: true,
            },
            r#"(NOT "x") IS NOT NULL"#,
            r#"(NOT "x") IS NOT NULL"#,
        );
        let e = Expr::In {
            expr: Box::new(x.clone()),
            items: InItems::Values(vec![param(1), lit(2)]),
            negated: true,
        };
        both_expr(&e, r#""x" NOT IN (?1, 2)"#, r#""x" NOT IN ($1, 2)"#);
        let sub = select(vec![(col(None, "id"), None)], table("t", None));
        let e = Expr::In {
            expr: Box::new(x.clone()),
            items: InItems::Select(Box::new(sub)),
            negated: false,
        };
        both_expr(
            &e,
            r#""x" IN (SELECT "id" FROM "t")"#,
            r#""x" IN (SELECT "id" FROM "t")"#,
        );
        both_expr(&Expr::InEmpty { negated: false }, "FALSE", "FALSE");
        both_expr(&Expr::InEmpty { negated: true }, "TRUE", "TRUE");
        let e = Expr::In {
            expr: Box::new(x),
            items: InItems::Values(vec![]),
            negated: true,
        };
        both_expr(&e, "TRUE", "TRUE");
        both_expr(
            &Expr::Not(Box::new(Expr::InEmpty { negated: false })),
            "NOT (FALSE)",
            "NOT (FALSE)",
        );
    }

    #[test]
    fn like_and_regex() {
        let x = || Box::new(col(None, "x"));
        let p = || Box::new(param(1));
        both_expr(
            &Expr::Like {
                expr: x(),
                pattern: p(),
                case_insensitive: false,
            },
            r#""x" LIKE ?1 ESCAPE '\'"#,
            r#""x" LIKE $1 ESCAPE '\'"#,
        );
        both_expr(
            &Expr::Like {
                expr: x(),
                pattern: p(),
                case_insensitive: true,
            },
            r#"lower("x") LIKE lower(?1) ESCAPE '\'"#,
            r#""x" ILIKE $1 ESCAPE '\'"#,
        );
        let concat = || Box::new(bin(BinaryOp::Concat, param(1), param(2)));
        both_expr(
            &Expr::Like {
                expr: x(),
                pattern: concat(),
                case_insensitive: true,
            },
            r#"lower("x") LIKE lower(?1 || ?2) ESCAPE '\'"#,
            r#""x" ILIKE ($1 || $2) ESCAPE '\'"#,
        );
        both_expr(
            &Expr::Regex {
                expr: x(),
                pattern: p(),
                case_insensitive: false,
            },
            r#"covet_regexp(?1, "x")"#,
            r#""x" ~ $1"#,
        );
        both_expr(
            &Expr::Regex {
                expr: x(),
                pattern: concat(),
                case_insensitive: true,
            },
            r#"covet_iregexp(?1 || ?2, "x")"#,
            r#""x" ~* ($1 || $2)"#,
        );
    }

    #[test]
    fn case_exists_subquery() {
        let e = Expr::Case {
            whens: vec![
                (bin(BinaryOp::Gt, col(None, "n"), lit(0)), param(1)),
                (Expr::Const(Const::True), param(2)),
            ],
            default: Some(Box::new(Expr::Const(Const::Null))),
        };
        both_expr(
            &e,
            r#"CASE WHEN "n" > 0 THEN ?1 WHEN TRUE THEN ?2 ELSE NULL END"#,
            r#"CASE WHEN "n" > 0 THEN $1 WHEN TRUE THEN $2 ELSE NULL END"#,
        );
        let e = Expr::Case {
            whens: vec![(param(1), param(2))],
            default: None,
        };
        both_expr(&e, "CASE WHEN ?1 THEN ?2 END", "CASE WHEN $1 THEN $2 END");
        let sub = || Box::new(select(vec![(lit(1), None)], table("t", None)));
        both_expr(
            &Expr::Exists {
                select: sub(),
                negated: false,
            },
            r#"EXISTS (SELECT 1 FROM "t")"#,
            r#"EXISTS (SELECT 1 FROM "t")"#,
        );
        both_expr(
            &Expr::Not(Box::new(Expr::Exists {
                select: sub(),
                negated: true,
            })),
            r#"NOT (NOT EXISTS (SELECT 1 FROM "t"))"#,
            r#"NOT (NOT EXISTS (SELECT 1 FROM "t"))"#,
        );
        both_expr(
            &bin(BinaryOp::Eq, Expr::Subquery(sub()), lit(1)),
            r#"(SELECT 1 FROM "t") = 1"#,
            r#"(SELECT 1 FROM "t") = 1"#,
        );
    }

    #[test]
    fn cast_and_null_safe_equality() {
        let cast = |e: Expr, to: CastType| Expr::Cast {
            expr: Box::new(e),
            to,
        };
        both_expr(
            &cast(col(None, "x"), CastType::DoublePrecision),
            r#"CAST("x" AS DOUBLE PRECISION)"#,
            r#"CAST("x" AS DOUBLE PRECISION)"#,
        );
        // The operand is never wrapped, and a cast is not compound itself.
        let sum = bin(BinaryOp::Add, col(None, "x"), param(1));
        both_expr(
            &bin(BinaryOp::Lt, cast(sum.clone(), CastType::Numeric), lit(2)),
            r#"CAST("x" + ?1 AS NUMERIC) < 2"#,
            r#"CAST("x" + $1 AS NUMERIC) < 2"#,
        );
        let same = |l: Expr, r: Expr| Expr::Same {
            left: Box::new(l),
            right: Box::new(r),
        };
        both_expr(
            &same(col(None, "x"), param(1)),
            r#""x" IS ?1"#,
            r#""x" IS NOT DISTINCT FROM $1"#,
        );
        both_expr(
            &Expr::Not(Box::new(same(sum, cast(param(2), CastType::Text)))),
            r#"NOT (("x" + ?1) IS CAST(?2 AS TEXT))"#,
            r#"NOT (("x" + $1) IS NOT DISTINCT FROM CAST($2 AS TEXT))"#,
        );
    }

    #[test]
    fn errors() {
        assert_eq!(
            err_expr(&param(0)),
            CompileError::InvalidParamIndex("0".into())
        );
        assert_eq!(
            err_expr(&Expr::Param(Integer::Small(-1))),
            CompileError::InvalidParamIndex("-1".into())
        );
        assert_eq!(
            err_expr(&Expr::Param(Integer::Big("-99999999999999999999".into()))),
            CompileError::InvalidParamIndex("-99999999999999999999".into())
        );
        assert_eq!(
            err_expr(&Expr::Case {
                whens: vec![],
                default: None
            }),
            CompileError::CaseWithoutWhen
        );
        assert_eq!(
            err_expr(&col(None, "")),
            CompileError::InvalidIdentifier("''".into())
        );
        assert_eq!(
            err_expr(&col(Some("a\0"), "b")),
            CompileError::InvalidIdentifier("'a\\x00'".into())
        );
        // Errors deep inside are found too.
        let deep = Expr::Not(Box::new(Expr::And(vec![star(), col(None, "")])));
        assert!(matches!(
            err_expr(&deep),
            CompileError::InvalidIdentifier(_)
        ));
    }

    #[test]
    fn depth_is_bounded() {
        // Debug builds use far bigger frames than the release extension; give them room.
        std::thread::Builder::new()
            .stack_size(64 << 20)
            .spawn(deep_trees)
            .unwrap()
            .join()
            .unwrap();
    }

    fn deep_trees() {
        let mut e = col(None, "x");
        for _ in 0..MAX_DEPTH - 10 {
            e = Expr::Not(Box::new(e));
        }
        assert!(compile_expr(&e).is_ok());
        for _ in 0..20 {
            e = Expr::Not(Box::new(e));
        }
        assert_eq!(err_expr(&e), CompileError::TooDeep);
    }
}
