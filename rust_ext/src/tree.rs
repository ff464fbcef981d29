//! The neutral query tree (`covet/database/orm/sql/tree.py`) as plain Rust types.
//!
//! Barrier: this module knows the *structure* of a statement, nothing about Python and nothing
//! about SQL text. Node kinds and the closed vocabularies (functions, operators, constants, join
//! kinds) are enums, so an unknown one is refused while the tree is being built; identifiers stay
//! strings and are checked by the compiler when it quotes them, exactly where the reference does.

/// How many selects and expressions may nest inside each other.
///
/// The reference spends at least three Python frames on every two levels (an EXISTS in a WHERE
/// in an EXISTS: `expr`, `_expr`, `select`), so at Python's default recursion limit of 1000 it
/// gives up before about 666 levels; this bound accepts every tree it can compile there. It also
/// keeps a hostile tree from overflowing the Rust stack: reading a level costs at most about a
/// kilobyte of stack, compiling one far less.
pub const MAX_DEPTH: usize = 700;

/// One statement: the root of every tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    Select(Box<Select>),
    Insert(Insert),
    Update(Update),
    Delete(Delete),
}

/// `("select", distinct, columns, from_, joins, where, group_by, having, order_by, limit, offset)`
#[derive(Debug, Clone, PartialEq)]
pub struct Select {
    pub distinct: bool,
    pub columns: Vec<SelectColumn>,
    /// `None`: no FROM clause at all (a row of scalar subqueries); then there are no joins.
    pub from: Option<TableRef>,
    pub joins: Vec<Join>,
    pub filter: Option<Expr>,
    pub group_by: Vec<Expr>,
    pub having: Option<Expr>,
    pub order_by: Vec<OrderBy>,
    pub limit: Option<Expr>,
    pub offset: Option<Expr>,
}

impl Select {
    /// `SELECT  FROM from`: no columns, no clauses; fill in the fields wanted.
    pub fn new(from: Option<TableRef>) -> Select {
        Select {
            distinct: false,
            columns: Vec::new(),
            from,
            joins: Vec::new(),
            filter: None,
            group_by: Vec::new(),
            having: None,
            order_by: Vec::new(),
            limit: None,
            offset: None,
        }
    }
}

/// `(expr, alias | None)` in a select list.
#[derive(Debug, Clone, PartialEq)]
pub struct SelectColumn {
    pub expr: Expr,
    pub alias: Option<String>,
}

/// `("table", name, alias | None)` or `("subquery", select, alias)`.
#[derive(Debug, Clone, PartialEq)]
pub enum TableRef {
    Table { name: String, alias: Option<String> },
    Subquery { select: Box<Select>, alias: String },
}

/// `(kind, table ref, on expr)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Join {
    pub kind: JoinKind,
    pub table: TableRef,
    pub on: Expr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinKind {
    Inner,
    Left,
}

impl JoinKind {
    /// The kind spelled as in the tree (`"INNER"` / `"LEFT"`), which is also its SQL keyword.
    pub fn from_name(name: &str) -> Option<JoinKind> {
        match name {
            "INNER" => Some(JoinKind::Inner),
            "LEFT" => Some(JoinKind::Left),
            _ => None,
        }
    }

    pub fn keyword(self) -> &'static str {
        match self {
            JoinKind::Inner => "INNER",
            JoinKind::Left => "LEFT",
        }
    }
}

/// `(expr, descending)` in ORDER BY.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderBy {
    pub expr: Expr,
    pub descending: bool,
}

/// `("insert", table, columns, rows, returning)`.
///
/// With no columns the statement is `DEFAULT VALUES` and must have exactly one row; the reference
/// never looks inside that row, so a tree builder only needs to say how many rows there were.
#[derive(Debug, Clone, PartialEq)]
pub struct Insert {
    pub table: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Expr>>,
    pub returning: Vec<String>,
}

/// `("update", table, sets, where | None)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    pub table: String,
    pub sets: Vec<(String, Expr)>,
    pub filter: Option<Expr>,
}

/// `("delete", table, where | None)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Delete {
    pub table: String,
    pub filter: Option<Expr>,
}

/// A Python `int` (never a `bool`). Most fit an `i64`; larger ones keep their decimal text so that
/// they are written exactly as Python's `str(n)` writes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Integer {
    Small(i64),
    /// Decimal text (optionally `-`-signed) of an integer outside the `i64` range.
    Big(String),
}

impl Integer {
    /// Whether the value is at least 1 (a valid parameter index).
    pub fn is_positive(&self) -> bool {
        match self {
            Integer::Small(n) => *n >= 1,
            Integer::Big(text) => !text.starts_with('-'),
        }
    }
}

/// `("const", "TRUE" | "FALSE" | "NULL")`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Const {
    True,
    False,
    Null,
}

impl Const {
    pub fn from_name(name: &str) -> Option<Const> {
        match name {
            "TRUE" => Some(Const::True),
            "FALSE" => Some(Const::False),
            "NULL" => Some(Const::Null),
            _ => None,
        }
    }

    pub fn keyword(self) -> &'static str {
        match self {
            Const::True => "TRUE",
            Const::False => "FALSE",
            Const::Null => "NULL",
        }
    }
}

/// The SQL functions of `tree.FUNCTIONS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Count,
    Sum,
    Avg,
    Min,
    Max,
    Lower,
    Upper,
    Length,
    Coalesce,
    Abs,
    /// Takes no arguments and is spelled per dialect; its `args` and `distinct` are never read.
    Random,
}

impl Function {
    pub fn from_name(name: &str) -> Option<Function> {
        Some(match name {
            "COUNT" => Function::Count,
            "SUM" => Function::Sum,
            "AVG" => Function::Avg,
            "MIN" => Function::Min,
            "MAX" => Function::Max,
            "LOWER" => Function::Lower,
            "UPPER" => Function::Upper,
            "LENGTH" => Function::Length,
            "COALESCE" => Function::Coalesce,
            "ABS" => Function::Abs,
            "RANDOM" => Function::Random,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Function::Count => "COUNT",
            Function::Sum => "SUM",
            Function::Avg => "AVG",
            Function::Min => "MIN",
            Function::Max => "MAX",
            Function::Lower => "LOWER",
            Function::Upper => "UPPER",
            Function::Length => "LENGTH",
            Function::Coalesce => "COALESCE",
            Function::Abs => "ABS",
            Function::Random => "RANDOM",
        }
    }
}

/// The operators of `tree.BINARY_OPERATORS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Concat,
}

impl BinaryOp {
    pub fn from_symbol(symbol: &str) -> Option<BinaryOp> {
        Some(match symbol {
            "=" => BinaryOp::Eq,
            "<>" => BinaryOp::Ne,
            "<" => BinaryOp::Lt,
            "<=" => BinaryOp::Le,
            ">" => BinaryOp::Gt,
            ">=" => BinaryOp::Ge,
            "+" => BinaryOp::Add,
            "-" => BinaryOp::Sub,
            "*" => BinaryOp::Mul,
            "/" => BinaryOp::Div,
            "%" => BinaryOp::Mod,
            "||" => BinaryOp::Concat,
            _ => return None,
        })
    }

    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Eq => "=",
            BinaryOp::Ne => "<>",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Mod => "%",
            BinaryOp::Concat => "||",
        }
    }
}

/// The types of `tree.CAST_TYPES`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CastType {
    BigInt,
    DoublePrecision,
    Numeric,
    Text,
}

impl CastType {
    pub fn from_name(name: &str) -> Option<CastType> {
        Some(match name {
            "BIGINT" => CastType::BigInt,
            "DOUBLE PRECISION" => CastType::DoublePrecision,
            "NUMERIC" => CastType::Numeric,
            "TEXT" => CastType::Text,
            _ => return None,
        })
    }

    /// The type as written in the tree, which is also its SQL spelling.
    pub fn name(self) -> &'static str {
        match self {
            CastType::BigInt => "BIGINT",
            CastType::DoublePrecision => "DOUBLE PRECISION",
            CastType::Numeric => "NUMERIC",
            CastType::Text => "TEXT",
        }
    }
}

/// What an `IN` tests against.
#[derive(Debug, Clone, PartialEq)]
pub enum InItems {
    /// A parenthesised list; empty means the whole test is a constant (see [`Expr::InEmpty`]).
    Values(Vec<Expr>),
    Select(Box<Select>),
}

/// One expression node.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// `("col", alias | None, name)`
    Col { table: Option<String>, name: String },
    /// `("param", i)`; the compiler refuses `i < 1`.
    Param(Integer),
    /// `("star",)`
    Star,
    /// `("const", ...)`
    Const(Const),
    /// `("int", n)`
    Int(Integer),
    /// `("func", NAME, args, distinct)`
    Func {
        name: Function,
        args: Vec<Expr>,
        distinct: bool,
    },
    /// `("bin", OP, left, right)`
    Binary {
        op: BinaryOp,
        left: Box<Expr>,
        right: Box<Expr>,
    },
    /// `("and", children)`; empty is `TRUE`.
    And(Vec<Expr>),
    /// `("or", children)`; empty is `FALSE`.
    Or(Vec<Expr>),
    /// `("not", expr)`
    Not(Box<Expr>),
    /// `("isnull", expr, negated)`
    IsNull { expr: Box<Expr>, negated: bool },
    /// `("in", expr, items, negated)` with a non-empty list or a select.
    In {
        expr: Box<Expr>,
        items: InItems,
        negated: bool,
    },
    /// `("in", expr, (), negated)`: constant `FALSE` (`TRUE` when negated). The reference never
    /// compiles the operand of an empty `IN`, so it is not kept (and not checked).
    InEmpty { negated: bool },
    /// `("like", expr, pattern, case_insensitive)`
    Like {
        expr: Box<Expr>,
        pattern: Box<Expr>,
        case_insensitive: bool,
    },
    /// `("regex", expr, pattern, case_insensitive)`
    Regex {
        expr: Box<Expr>,
        pattern: Box<Expr>,
        case_insensitive: bool,
    },
    /// `("case", whens, else | None)`; the compiler refuses an empty `whens`.
    Case {
        whens: Vec<(Expr, Expr)>,
        default: Option<Box<Expr>>,
    },
    /// `("exists", select, negated)`
    Exists { select: Box<Select>, negated: bool },
    /// `("subquery", select)`: a scalar subquery.
    Subquery(Box<Select>),
    /// `("cast", expr, TYPE)`: `CAST(expr AS TYPE)`; not compound, so never wrapped.
    Cast { expr: Box<Expr>, to: CastType },
    /// `("same", left, right)`: NULL-safe equality (`IS NOT DISTINCT FROM`, or SQLite's `IS`).
    Same { left: Box<Expr>, right: Box<Expr> },
}

impl Expr {
    /// The kinds the reference wraps in parentheses when they appear inside another expression
    /// (its `_COMPOUND`): decided by the kind alone, whatever text the node turns into.
    pub fn is_compound(&self) -> bool {
        matches!(
            self,
            Expr::Binary { .. }
                | Expr::And(_)
                | Expr::Or(_)
                | Expr::Not(_)
                | Expr::IsNull { .. }
                | Expr::In { .. }
                | Expr::InEmpty { .. }
                | Expr::Like { .. }
                | Expr::Regex { .. }
                | Expr::Exists { .. }
                | Expr::Same { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocabularies_round_trip() {
        for name in [
            "COUNT", "SUM", "AVG", "MIN", "MAX", "LOWER", "UPPER", "LENGTH", "COALESCE", "ABS",
            "RANDOM",
        ] {
            assert_eq!(Function::from_name(name).map(Function::name), Some(name));
        }
        for op in [
            "=", "<>", "<", "<=", ">", ">=", "+", "-", "*", "/", "%", "||",
        ] {
            assert_eq!(BinaryOp::from_symbol(op).map(BinaryOp::symbol), Some(op));
        }
        for c in ["TRUE", "FALSE", "NULL"] {
            assert_eq!(Const::from_name(c).map(Const::keyword), Some(c));
        }
        for k in ["INNER", "LEFT"] {
            assert_eq!(JoinKind::from_name(k).map(JoinKind::keyword), Some(k));
        }
        for c in ["BIGINT", "DOUBLE PRECISION", "NUMERIC", "TEXT"] {
            assert_eq!(CastType::from_name(c).map(CastType::name), Some(c));
        }
    }

    #[test]
    fn vocabularies_are_case_sensitive_and_closed() {
        assert_eq!(Function::from_name("count"), None);
        assert_eq!(Function::from_name("NOW"), None);
        assert_eq!(BinaryOp::from_symbol("=="), None);
        assert_eq!(BinaryOp::from_symbol("LIKE"), None);
        assert_eq!(Const::from_name("true"), None);
        assert_eq!(JoinKind::from_name("RIGHT"), None);
        assert_eq!(JoinKind::from_name("inner"), None);
        assert_eq!(CastType::from_name("text"), None);
        assert_eq!(CastType::from_name("INTEGER"), None);
    }

    #[test]
    fn integer_sign() {
        assert!(Integer::Small(1).is_positive());
        assert!(!Integer::Small(0).is_positive());
        assert!(!Integer::Small(-3).is_positive());
        assert!(Integer::Big("99999999999999999999".into()).is_positive());
        assert!(!Integer::Big("-99999999999999999999".into()).is_positive());
    }
}
