//! The Python boundary: the only pyo3-aware code.
//!
//! `compile_sql(tree, dialect)` reads the Python tuple tree straight into the plain Rust tree of
//! `tree.rs` (tuples are downcast and read in place, strings through `PyString::to_str`), hands it
//! to the compiler, and turns a [`CompileError`] into `ValueError`.
//!
//! The reference compiler is duck-typed Python, so its behaviour on *odd* trees is part of the
//! contract too. This conversion reads a tree exactly as far as the reference does, and in the
//! same way:
//!
//! * a position that the reference iterates or unpacks also takes a `list` or a `str` (a string
//!   acting as the sequence of its characters); a node (`e[0]`) likewise;
//! * nodes the reference reads by index (`param`, `const`, `int`, `and`, `or`, `not`, `star`,
//!   `subquery`) may carry extra trailing fields; nodes it unpacks must have exactly their fields;
//! * flags are Python truth values; positions tested with `if x:` before use (`group_by`,
//!   `order_by`, `returning`, `sets`, `whens`, insert `columns`, `and`/`or` children, `in` items)
//!   treat any false value as empty;
//! * what the reference never reads is not read here: a nested select's tag (under `exists`,
//!   `subquery` and a FROM subquery), the operand of an empty `IN`, the arguments of `RANDOM`,
//!   and the rows of a column-less INSERT beyond counting them.

use std::borrow::Cow;

use pyo3::exceptions::{PyRecursionError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyInt, PyList, PyString, PyTuple};

use crate::compile::compile;
use crate::dialect::Dialect;
use crate::errors::CompileError;
use crate::tree::{
    BinaryOp, CastType, Const, Delete, Expr, Function, InItems, Insert, Integer, Join, JoinKind,
    OrderBy, Select, SelectColumn, Statement, TableRef, Update, MAX_DEPTH,
};

impl From<CompileError> for PyErr {
    fn from(err: CompileError) -> PyErr {
        match err {
            CompileError::TooDeep => PyRecursionError::new_err(err.to_string()),
            err => PyValueError::new_err(err.to_string()),
        }
    }
}

/// Compile one statement tree to SQL text for `dialect` (`'sqlite'` or `'postgresql'`).
#[pyfunction]
pub fn compile_sql(tree: &Bound<'_, PyAny>, dialect: &Bound<'_, PyAny>) -> PyResult<String> {
    let dialect = dialect_of(dialect)?;
    let statement = Reader { depth: 0 }.statement(tree)?;
    Ok(compile(&statement, dialect)?)
}

fn dialect_of(obj: &Bound<'_, PyAny>) -> PyResult<&'static Dialect> {
    if let Ok(name) = obj.downcast::<PyString>() {
        if let Ok(name) = name.to_str() {
            return Ok(Dialect::from_name(name)?);
        }
    } else {
        // The reference looks the dialect up in a dict: an unhashable one is a TypeError there.
        obj.hash()?;
    }
    Err(refuse(CompileError::UnknownDialect, obj))
}

/// A tuple read in place, or one made from a list or a string (rare, and only for odd trees).
type Tuple<'b, 'py> = Cow<'b, Bound<'py, PyTuple>>;

fn repr(obj: &Bound<'_, PyAny>) -> String {
    match obj.repr() {
        Ok(text) => text.to_string(),
        Err(_) => format!("<{} object>", type_name(obj)),
    }
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map_or_else(|_| "?".to_owned(), |name| name.to_string())
}

// The error constructors are out of line: only refused trees reach them, and keeping their
// formatting out of the recursive readers keeps each level of nesting small in stack.

/// `error(repr(obj))` as a Python exception.
#[cold]
#[inline(never)]
fn refuse(error: fn(String) -> CompileError, obj: &Bound<'_, PyAny>) -> PyErr {
    error(repr(obj)).into()
}

#[cold]
#[inline(never)]
fn malformed(why: &str) -> PyErr {
    CompileError::Malformed(why.to_owned()).into()
}

#[cold]
#[inline(never)]
fn not_a_sequence(obj: &Bound<'_, PyAny>) -> PyErr {
    CompileError::Malformed(format!("expected a tuple, got {}", type_name(obj))).into()
}

#[cold]
#[inline(never)]
fn wrong_length(what: &str, exact: bool, n: usize, got: usize) -> PyErr {
    let why = if exact {
        format!("{what} has {n} fields, got {got}")
    } else {
        format!("{what} needs {n} fields, got {got}")
    };
    CompileError::Malformed(why).into()
}

#[cold]
#[inline(never)]
fn too_deep() -> PyErr {
    CompileError::TooDeep.into()
}

/// The text of a `str` object, if it is one (and is valid Unicode).
fn text<'b>(obj: &'b Bound<'_, PyAny>) -> Option<&'b str> {
    obj.downcast::<PyString>().ok()?.to_str().ok()
}

/// What kind of expression node a tag names.
#[derive(Clone, Copy)]
enum ExprKind {
    Col,
    Param,
    Star,
    Const,
    Int,
    Func,
    Bin,
    And,
    Or,
    Not,
    IsNull,
    In,
    Like,
    Regex,
    Case,
    Exists,
    Subquery,
    Cast,
    Same,
}

impl ExprKind {
    fn from_tag(tag: &str) -> Option<ExprKind> {
        Some(match tag {
            "col" => ExprKind::Col,
            "param" => ExprKind::Param,
            "star" => ExprKind::Star,
            "const" => ExprKind::Const,
            "int" => ExprKind::Int,
            "func" => ExprKind::Func,
            "bin" => ExprKind::Bin,
            "and" => ExprKind::And,
            "or" => ExprKind::Or,
            "not" => ExprKind::Not,
            "isnull" => ExprKind::IsNull,
            "in" => ExprKind::In,
            "like" => ExprKind::Like,
            "regex" => ExprKind::Regex,
            "case" => ExprKind::Case,
            "exists" => ExprKind::Exists,
            "subquery" => ExprKind::Subquery,
            "cast" => ExprKind::Cast,
            "same" => ExprKind::Same,
            _ => return None,
        })
    }
}

/// Reads one tree; `depth` bounds the recursion like [`MAX_DEPTH`] does in the compiler.
struct Reader {
    depth: usize,
}

impl Reader {
    fn enter(&mut self) -> PyResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(too_deep());
        }
        Ok(())
    }

    // -- shapes -----------------------------------------------------------------------------

    /// `obj` as a sequence: a tuple in place, or a list or string copied into a tuple.
    fn seq<'b, 'py>(obj: &'b Bound<'py, PyAny>) -> PyResult<Tuple<'b, 'py>> {
        if let Ok(tuple) = obj.downcast::<PyTuple>() {
            return Ok(Cow::Borrowed(tuple));
        }
        if let Ok(list) = obj.downcast::<PyList>() {
            return Ok(Cow::Owned(list.to_tuple()));
        }
        if obj.is_instance_of::<PyString>() {
            // `tuple(s)`: the characters, exactly as Python iterates them.
            let chars = obj.py().get_type::<PyTuple>().call1((obj,))?;
            return Ok(Cow::Owned(chars.downcast_into::<PyTuple>()?));
        }
        Err(not_a_sequence(obj))
    }

    /// A sequence in a position the reference tests for truth first: false means empty.
    fn seq_if_true<'b, 'py>(obj: &'b Bound<'py, PyAny>) -> PyResult<Option<Tuple<'b, 'py>>> {
        if obj.is_truthy()? {
            Ok(Some(Self::seq(obj)?))
        } else {
            Ok(None)
        }
    }

    /// A record the reference unpacks into exactly `n` names.
    fn record<'b, 'py>(
        obj: &'b Bound<'py, PyAny>,
        n: usize,
        what: &str,
    ) -> PyResult<Tuple<'b, 'py>> {
        let tuple = Self::seq(obj)?;
        Self::arity(&tuple, n, what)?;
        Ok(tuple)
    }

    /// A node: a sequence whose first item is its tag.
    fn node<'b, 'py>(obj: &'b Bound<'py, PyAny>) -> PyResult<Tuple<'b, 'py>> {
        let tuple = Self::seq(obj)?;
        if tuple.is_empty() {
            return Err(malformed("a node has no kind"));
        }
        Ok(tuple)
    }

    /// Exactly `n` fields, for what the reference unpacks.
    fn arity(tuple: &Bound<'_, PyTuple>, n: usize, what: &str) -> PyResult<()> {
        if tuple.len() != n {
            return Err(wrong_length(what, true, n, tuple.len()));
        }
        Ok(())
    }

    /// At least `n` fields, for nodes the reference reads by index up to `e[n - 1]`.
    fn at_least(tuple: &Bound<'_, PyTuple>, n: usize, what: &str) -> PyResult<()> {
        if tuple.len() < n {
            return Err(wrong_length(what, false, n, tuple.len()));
        }
        Ok(())
    }

    fn each<'py, T>(
        &mut self,
        tuple: &Bound<'py, PyTuple>,
        mut read: impl FnMut(&mut Self, &Bound<'py, PyAny>) -> PyResult<T>,
    ) -> PyResult<Vec<T>> {
        let mut out = Vec::with_capacity(tuple.len());
        for item in tuple.iter_borrowed() {
            out.push(read(self, &item)?);
        }
        Ok(out)
    }

    fn each_if_true<'py, T>(
        &mut self,
        obj: &Bound<'py, PyAny>,
        read: impl FnMut(&mut Self, &Bound<'py, PyAny>) -> PyResult<T>,
    ) -> PyResult<Vec<T>> {
        match Self::seq_if_true(obj)? {
            Some(tuple) => self.each(&tuple, read),
            None => Ok(Vec::new()),
        }
    }

    // -- leaves -----------------------------------------------------------------------------

    fn ident(obj: &Bound<'_, PyAny>) -> PyResult<String> {
        match text(obj) {
            Some(name) => Ok(name.to_owned()),
            None => Err(refuse(CompileError::InvalidIdentifier, obj)),
        }
    }

    fn opt_ident(obj: &Bound<'_, PyAny>) -> PyResult<Option<String>> {
        if obj.is_none() {
            Ok(None)
        } else {
            Self::ident(obj).map(Some)
        }
    }

    /// A Python `int` that is not a `bool`.
    fn integer(obj: &Bound<'_, PyAny>, invalid: fn(String) -> CompileError) -> PyResult<Integer> {
        if !obj.is_instance_of::<PyInt>() || obj.is_instance_of::<PyBool>() {
            return Err(refuse(invalid, obj));
        }
        match obj.extract::<i64>() {
            Ok(n) => Ok(Integer::Small(n)),
            // Beyond i64: Python's own decimal text (which also enforces its digit limit).
            Err(_) => Ok(Integer::Big(obj.str()?.to_str()?.to_owned())),
        }
    }

    // -- statements -------------------------------------------------------------------------

    fn statement(&mut self, obj: &Bound<'_, PyAny>) -> PyResult<Statement> {
        let node = Self::node(obj)?;
        let tag = node.get_borrowed_item(0)?;
        Ok(match text(&tag) {
            Some("select") => Statement::Select(self.select(obj)?),
            Some("insert") => Statement::Insert(self.insert(&node)?),
            Some("update") => Statement::Update(self.update(&node)?),
            Some("delete") => Statement::Delete(self.delete(&node)?),
            _ => return Err(refuse(CompileError::UnknownStatement, &tag)),
        })
    }

    /// A select; its tag is not looked at (the reference does not look at it either when a
    /// select is nested under `exists`, `subquery` or FROM).
    #[inline(never)]
    fn select(&mut self, obj: &Bound<'_, PyAny>) -> PyResult<Box<Select>> {
        self.enter()?;
        let s = Self::record(obj, 11, "a select")?;
        // Filled in place on the heap: a `Select` is a few hundred bytes, and keeping it out of
        // this frame keeps each level of nested subqueries cheap in stack.
        let mut select = Box::new(Select::new(None));
        select.distinct = s.get_borrowed_item(1)?.is_truthy()?;
        select.columns = self.each(&*Self::seq(&*s.get_borrowed_item(2)?)?, Self::select_column)?;
        let from = s.get_borrowed_item(3)?;
        select.from = if from.is_none() {
            None
        } else {
            Some(self.table_ref(&from)?)
        };
        select.joins = self.each(&*Self::seq(&*s.get_borrowed_item(4)?)?, Self::join)?;
        select.filter = self.opt_expr(&*s.get_borrowed_item(5)?)?;
        select.group_by = self.each_if_true(&*s.get_borrowed_item(6)?, Self::expr)?;
        select.having = self.opt_expr(&*s.get_borrowed_item(7)?)?;
        select.order_by = self.each_if_true(&*s.get_borrowed_item(8)?, Self::order_by)?;
        select.limit = self.opt_expr(&*s.get_borrowed_item(9)?)?;
        select.offset = self.opt_expr(&*s.get_borrowed_item(10)?)?;
        self.depth -= 1;
        Ok(select)
    }

    #[inline(never)]
    fn select_column(&mut self, obj: &Bound<'_, PyAny>) -> PyResult<SelectColumn> {
        let c = Self::record(obj, 2, "a select column")?;
        Ok(SelectColumn {
            expr: self.expr(&*c.get_borrowed_item(0)?)?,
            alias: Self::opt_ident(&*c.get_borrowed_item(1)?)?,
        })
    }

    #[inline(never)]
    fn order_by(&mut self, obj: &Bound<'_, PyAny>) -> PyResult<OrderBy> {
        let o = Self::record(obj, 2, "an order_by term")?;
        Ok(OrderBy {
            expr: self.expr(&*o.get_borrowed_item(0)?)?,
            descending: o.get_borrowed_item(1)?.is_truthy()?,
        })
    }

    #[inline(never)]
    fn join(&mut self, obj: &Bound<'_, PyAny>) -> PyResult<Join> {
        let j = Self::record(obj, 3, "a join")?;
        let kind = j.get_borrowed_item(0)?;
        let Some(kind) = text(&kind).and_then(JoinKind::from_name) else {
            return Err(refuse(CompileError::UnknownJoinKind, &kind));
        };
        Ok(Join {
            kind,
            table: self.table_ref(&*j.get_borrowed_item(1)?)?,
            on: self.expr(&*j.get_borrowed_item(2)?)?,
        })
    }

    #[inline(never)]
    fn table_ref(&mut self, obj: &Bound<'_, PyAny>) -> PyResult<TableRef> {
        let node = Self::node(obj)?;
        let tag = node.get_borrowed_item(0)?;
        match text(&tag) {
            Some("table") => {
                Self::arity(&node, 3, "a table reference")?;
                Ok(TableRef::Table {
                    name: Self::ident(&*node.get_borrowed_item(1)?)?,
                    alias: Self::opt_ident(&*node.get_borrowed_item(2)?)?,
                })
            }
            Some("subquery") => {
                Self::arity(&node, 3, "a subquery reference")?;
                Ok(TableRef::Subquery {
                    select: self.select(&*node.get_borrowed_item(1)?)?,
                    alias: Self::ident(&*node.get_borrowed_item(2)?)?,
                })
            }
            _ => Err(refuse(CompileError::UnknownTableRef, &tag)),
        }
    }

    fn insert(&mut self, i: &Bound<'_, PyTuple>) -> PyResult<Insert> {
        Self::arity(i, 5, "an insert")?;
        let table = Self::ident(&*i.get_borrowed_item(1)?)?;
        let columns = i.get_borrowed_item(2)?;
        let rows = i.get_borrowed_item(3)?;
        let rows = Self::seq(&rows)?;
        let (columns, rows) = match Self::seq_if_true(&columns)? {
            Some(columns) => (
                self.each(&columns, |_, c| Self::ident(c))?,
                self.each(&rows, |r, row| {
                    let row = Self::seq(row)?;
                    r.each(&row, Self::expr)
                })?,
            ),
            // DEFAULT VALUES: the reference only counts the rows.
            None => (Vec::new(), (0..rows.len()).map(|_| Vec::new()).collect()),
        };
        let returning = self.each_if_true(&*i.get_borrowed_item(4)?, |_, c| Self::ident(c))?;
        Ok(Insert {
            table,
            columns,
            rows,
            returning,
        })
    }

    fn update(&mut self, u: &Bound<'_, PyTuple>) -> PyResult<Update> {
        Self::arity(u, 4, "an update")?;
        Ok(Update {
            table: Self::ident(&*u.get_borrowed_item(1)?)?,
            sets: self.each_if_true(&*u.get_borrowed_item(2)?, |r, set| {
                let set = Self::record(set, 2, "an update assignment")?;
                Ok((
                    Self::ident(&*set.get_borrowed_item(0)?)?,
                    r.expr(&*set.get_borrowed_item(1)?)?,
                ))
            })?,
            filter: self.opt_expr(&*u.get_borrowed_item(3)?)?,
        })
    }

    fn delete(&mut self, d: &Bound<'_, PyTuple>) -> PyResult<Delete> {
        Self::arity(d, 3, "a delete")?;
        Ok(Delete {
            table: Self::ident(&*d.get_borrowed_item(1)?)?,
            filter: self.opt_expr(&*d.get_borrowed_item(2)?)?,
        })
    }

    // -- expressions ------------------------------------------------------------------------
    //
    // One function per node kind, kept out of line: the recursion goes through `expr` and the
    // one kind being read, so each level of nesting costs a few hundred bytes of stack rather
    // than the frame of a function that could read every kind.

    fn opt_expr(&mut self, obj: &Bound<'_, PyAny>) -> PyResult<Option<Expr>> {
        if obj.is_none() {
            Ok(None)
        } else {
            self.expr(obj).map(Some)
        }
    }

    fn boxed(&mut self, obj: &Bound<'_, PyAny>) -> PyResult<Box<Expr>> {
        self.expr(obj).map(Box::new)
    }

    fn expr(&mut self, obj: &Bound<'_, PyAny>) -> PyResult<Expr> {
        self.enter()?;
        let e = Self::node(obj)?;
        let e = match Self::expr_kind(&e)? {
            ExprKind::Col => Self::col(&e),
            ExprKind::Param => Self::param(&e),
            ExprKind::Star => Ok(Expr::Star),
            ExprKind::Const => Self::constant(&e),
            ExprKind::Int => Self::int(&e),
            ExprKind::Func => self.func(&e),
            ExprKind::Bin => self.binary(&e),
            ExprKind::And => self.connective(&e).map(Expr::And),
            ExprKind::Or => self.connective(&e).map(Expr::Or),
            ExprKind::Not => self.not(&e),
            ExprKind::IsNull => self.is_null(&e),
            ExprKind::In => self.in_(&e),
            ExprKind::Like => self.pattern(&e, true),
            ExprKind::Regex => self.pattern(&e, false),
            ExprKind::Case => self.case(&e),
            ExprKind::Exists => self.exists(&e),
            ExprKind::Subquery => self.subquery(&e),
            ExprKind::Cast => self.cast(&e),
            ExprKind::Same => self.same(&e),
        }?;
        self.depth -= 1;
        Ok(e)
    }

    fn expr_kind(e: &Bound<'_, PyTuple>) -> PyResult<ExprKind> {
        let tag = e.get_borrowed_item(0)?;
        match text(&tag).and_then(ExprKind::from_tag) {
            Some(kind) => Ok(kind),
            None => Err(refuse(CompileError::UnknownExpression, &tag)),
        }
    }

    fn col(e: &Bound<'_, PyTuple>) -> PyResult<Expr> {
        Self::arity(e, 3, "a 'col' node")?;
        Ok(Expr::Col {
            table: Self::opt_ident(&*e.get_borrowed_item(1)?)?,
            name: Self::ident(&*e.get_borrowed_item(2)?)?,
        })
    }

    fn param(e: &Bound<'_, PyTuple>) -> PyResult<Expr> {
        Self::at_least(e, 2, "a 'param' node")?;
        let i = e.get_borrowed_item(1)?;
        Ok(Expr::Param(Self::integer(
            &i,
            CompileError::InvalidParamIndex,
        )?))
    }

    fn constant(e: &Bound<'_, PyTuple>) -> PyResult<Expr> {
        Self::at_least(e, 2, "a 'const' node")?;
        let c = e.get_borrowed_item(1)?;
        match text(&c).and_then(Const::from_name) {
            Some(c) => Ok(Expr::Const(c)),
            None => Err(refuse(CompileError::UnknownConstant, &c)),
        }
    }

    fn int(e: &Bound<'_, PyTuple>) -> PyResult<Expr> {
        Self::at_least(e, 2, "an 'int' node")?;
        let n = e.get_borrowed_item(1)?;
        Ok(Expr::Int(Self::integer(&n, CompileError::InvalidInteger)?))
    }

    #[inline(never)]
    fn func(&mut self, e: &Bound<'_, PyTuple>) -> PyResult<Expr> {
        Self::arity(e, 4, "a 'func' node")?;
        let name = e.get_borrowed_item(1)?;
        let Some(name) = text(&name).and_then(Function::from_name) else {
            return Err(refuse(CompileError::UnknownFunction, &name));
        };
        if name == Function::Random {
            return Ok(Expr::Func {
                name,
                args: Vec::new(),
                distinct: false,
            });
        }
        Ok(Expr::Func {
            name,
            args: self.each(&*Self::seq(&*e.get_borrowed_item(2)?)?, Self::expr)?,
            distinct: e.get_borrowed_item(3)?.is_truthy()?,
        })
    }

    #[inline(never)]
    fn binary(&mut self, e: &Bound<'_, PyTuple>) -> PyResult<Expr> {
        Self::arity(e, 4, "a 'bin' node")?;
        let op = e.get_borrowed_item(1)?;
        let Some(op) = text(&op).and_then(BinaryOp::from_symbol) else {
            return Err(refuse(CompileError::UnknownOperator, &op));
        };
        Ok(Expr::Binary {
            op,
            left: self.boxed(&*e.get_borrowed_item(2)?)?,
            right: self.boxed(&*e.get_borrowed_item(3)?)?,
        })
    }

    /// The children of an `and` / `or`.
    #[inline(never)]
    fn connective(&mut self, e: &Bound<'_, PyTuple>) -> PyResult<Vec<Expr>> {
        Self::at_least(e, 2, "an 'and' or 'or' node")?;
        self.each_if_true(&*e.get_borrowed_item(1)?, Self::expr)
    }

    #[inline(never)]
    fn not(&mut self, e: &Bound<'_, PyTuple>) -> PyResult<Expr> {
        Self::at_least(e, 2, "a 'not' node")?;
        Ok(Expr::Not(self.boxed(&*e.get_borrowed_item(1)?)?))
    }

    #[inline(never)]
    fn is_null(&mut self, e: &Bound<'_, PyTuple>) -> PyResult<Expr> {
        Self::arity(e, 3, "an 'isnull' node")?;
        Ok(Expr::IsNull {
            expr: self.boxed(&*e.get_borrowed_item(1)?)?,
            negated: e.get_borrowed_item(2)?.is_truthy()?,
        })
    }

    #[inline(never)]
    fn in_(&mut self, e: &Bound<'_, PyTuple>) -> PyResult<Expr> {
        Self::arity(e, 4, "an 'in' node")?;
        let negated = e.get_borrowed_item(3)?.is_truthy()?;
        let items = e.get_borrowed_item(2)?;
        let Some(values) = Self::seq_if_true(&items)? else {
            return Ok(Expr::InEmpty { negated });
        };
        let items = if text(&*values.get_borrowed_item(0)?) == Some("select") {
            InItems::Select(self.select(&items)?)
        } else {
            InItems::Values(self.each(&values, Self::expr)?)
        };
        Ok(Expr::In {
            expr: self.boxed(&*e.get_borrowed_item(1)?)?,
            items,
            negated,
        })
    }

    /// `like` (`is_like`) or `regex`.
    #[inline(never)]
    fn pattern(&mut self, e: &Bound<'_, PyTuple>, is_like: bool) -> PyResult<Expr> {
        Self::arity(e, 4, "a 'like' or 'regex' node")?;
        let expr = self.boxed(&*e.get_borrowed_item(1)?)?;
        let pattern = self.boxed(&*e.get_borrowed_item(2)?)?;
        let case_insensitive = e.get_borrowed_item(3)?.is_truthy()?;
        Ok(if is_like {
            Expr::Like {
                expr,
                pattern,
                case_insensitive,
            }
        } else {
            Expr::Regex {
                expr,
                pattern,
                case_insensitive,
            }
        })
    }

    #[inline(never)]
    fn case(&mut self, e: &Bound<'_, PyTuple>) -> PyResult<Expr> {
        Self::arity(e, 3, "a 'case' node")?;
        let whens = self.each_if_true(&*e.get_borrowed_item(1)?, |r, w| {
            let w = Self::record(w, 2, "a WHEN")?;
            Ok((
                r.expr(&*w.get_borrowed_item(0)?)?,
                r.expr(&*w.get_borrowed_item(1)?)?,
            ))
        })?;
        let default = e.get_borrowed_item(2)?;
        let default = if default.is_none() {
            None
        } else {
            Some(self.boxed(&default)?)
        };
        Ok(Expr::Case { whens, default })
    }

    #[inline(never)]
    fn exists(&mut self, e: &Bound<'_, PyTuple>) -> PyResult<Expr> {
        Self::arity(e, 3, "an 'exists' node")?;
        Ok(Expr::Exists {
            select: self.select(&*e.get_borrowed_item(1)?)?,
            negated: e.get_borrowed_item(2)?.is_truthy()?,
        })
    }

    #[inline(never)]
    fn subquery(&mut self, e: &Bound<'_, PyTuple>) -> PyResult<Expr> {
        Self::at_least(e, 2, "a 'subquery' node")?;
        Ok(Expr::Subquery(self.select(&*e.get_borrowed_item(1)?)?))
    }

    /// The type is checked before the operand is read, as the reference does.
    #[inline(never)]
    fn cast(&mut self, e: &Bound<'_, PyTuple>) -> PyResult<Expr> {
        Self::arity(e, 3, "a 'cast' node")?;
        let to = e.get_borrowed_item(2)?;
        let Some(to) = text(&to).and_then(CastType::from_name) else {
            return Err(refuse(CompileError::UnknownCastType, &to));
        };
        Ok(Expr::Cast {
            expr: self.boxed(&*e.get_borrowed_item(1)?)?,
            to,
        })
    }

    #[inline(never)]
    fn same(&mut self, e: &Bound<'_, PyTuple>) -> PyResult<Expr> {
        Self::arity(e, 3, "a 'same' node")?;
        Ok(Expr::Same {
            left: self.boxed(&*e.get_borrowed_item(1)?)?,
            right: self.boxed(&*e.get_borrowed_item(2)?)?,
        })
    }
}
