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
use std::ptr;

use pyo3::exceptions::{PyIndexError, PyRecursionError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{
    timezone_utc, PyBool, PyBytes, PyDate, PyDateTime, PyDict, PyFloat, PyInt, PyList, PyString,
    PyTime, PyTuple, PyType, PyTzInfo,
};
use pyo3::{ffi, intern};

use crate::compile::compile;
use crate::decode;
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

// -- row decoding -----------------------------------------------------------------------------
//
// `RowPlan(...)` is built once per query from plain data (`covet/database/orm/hydrate.py` makes
// it); `decode_rows(plan, rows)` then turns one batch of driver rows into results. The text
// parsing lives in `decode.rs`; what is here is only the Python side of it. Every native
// conversion handles the value types it knows (exact `str` mostly) and hands anything else to
// the field's own Python converter, which the plan always carries: odd values get exactly the
// reference's result or its exception.

/// What a plan produces per row.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Model,
    Dict,
    Tuple,
    Flat,
}

/// How one column's value is converted.
enum Convert {
    /// `bool(v)`.
    Bool,
    /// `Decimal(str(v))` (`repr` for a float), rounded by `context.quantize(d, quantum)`.
    Decimal {
        decimal: Py<PyAny>,
        quantum: Py<PyAny>,
        quantize: Py<PyAny>,
    },
    /// Text to an aware UTC `datetime`.
    DateTime,
    /// Text to a `date`.
    Date,
    /// Text to a naive `time`.
    Time,
    /// Text to `uuid.UUID`, built as `UUID.__init__` builds it (its `int` and `is_safe` slots).
    Uuid {
        class: Py<PyType>,
        is_safe: Py<PyAny>,
    },
    /// `loads(v)` for `str` and `bytes`.
    Json { loads: Py<PyAny> },
    /// Only the Python converter.
    Python,
}

/// One `(index, kind, extra, fallback)` converter spec.
struct Conversion {
    index: usize,
    convert: Convert,
    /// The field's Python converter: used for whatever the native path does not read.
    fallback: Py<PyAny>,
}

/// A `select_related` model inside the row.
struct Related {
    cache_name: Py<PyString>,
    /// The related model's first column in the row.
    start: usize,
    /// Its primary key's position among its own columns: NULL there means "no related row".
    pk: usize,
    plan: Py<RowPlan>,
}

/// How to decode the rows of one query; see `covet/_covet_rs.pyi`.
#[pyclass(frozen, module = "covet._covet_rs")]
pub struct RowPlan {
    mode: Mode,
    names: Vec<Py<PyString>>,
    conversions: Vec<Conversion>,
    model: Option<Py<PyType>>,
    related: Vec<Related>,
}

#[pymethods]
impl RowPlan {
    #[new]
    #[pyo3(signature = (mode, names, converters = None, model = None, related = None))]
    fn new(
        mode: &str,
        names: &Bound<'_, PyAny>,
        converters: Option<&Bound<'_, PyAny>>,
        model: Option<&Bound<'_, PyType>>,
        related: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<RowPlan> {
        let mode = match mode {
            "model" => Mode::Model,
            "dict" => Mode::Dict,
            "tuple" => Mode::Tuple,
            "flat" => Mode::Flat,
            _ => {
                return Err(PyValueError::new_err(format!(
                    "unknown row plan mode {mode:?}; expected 'model', 'dict', 'tuple' or 'flat'"
                )))
            }
        };
        if (mode == Mode::Model) != model.is_some() {
            return Err(PyValueError::new_err(
                "a row plan takes a model class in mode 'model', and only then",
            ));
        }
        let names = names
            .try_iter()?
            .map(|name| Ok(name?.downcast_into::<PyString>()?.unbind()))
            .collect::<PyResult<_>>()?;
        let mut conversions = Vec::new();
        if let Some(converters) = converters {
            for spec in converters.try_iter()? {
                conversions.push(conversion(&spec?)?);
            }
        }
        let mut related_plans = Vec::new();
        if let Some(related) = related {
            for item in related.try_iter()? {
                let (cache_name, start, pk, plan): (
                    Bound<'_, PyString>,
                    usize,
                    usize,
                    Py<RowPlan>,
                ) = item?.extract()?;
                if plan.get().mode != Mode::Model {
                    return Err(PyValueError::new_err(
                        "a related row plan must be in mode 'model'",
                    ));
                }
                related_plans.push(Related {
                    cache_name: cache_name.unbind(),
                    start,
                    pk,
                    plan,
                });
            }
        }
        if mode != Mode::Model && !related_plans.is_empty() {
            return Err(PyValueError::new_err(
                "only a mode 'model' row plan has related plans",
            ));
        }
        Ok(RowPlan {
            mode,
            names,
            conversions,
            model: model.map(|m| m.clone().unbind()),
            related: related_plans,
        })
    }
}

/// Read one `(index, kind, extra, fallback)` converter spec.
fn conversion(spec: &Bound<'_, PyAny>) -> PyResult<Conversion> {
    let (index, kind, extra, fallback): (usize, String, Bound<'_, PyAny>, Bound<'_, PyAny>) =
        spec.extract()?;
    if !fallback.is_callable() {
        return Err(PyTypeError::new_err(
            "a converter's fallback must be callable",
        ));
    }
    let convert = match kind.as_str() {
        "bool" => Convert::Bool,
        "decimal" => {
            let (quantum, context): (Bound<'_, PyAny>, Bound<'_, PyAny>) = extra.extract()?;
            Convert::Decimal {
                decimal: quantum.get_type().into_any().unbind(),
                quantize: context.getattr("quantize")?.unbind(),
                quantum: quantum.unbind(),
            }
        }
        "datetime" => Convert::DateTime,
        "date" => Convert::Date,
        "time" => Convert::Time,
        "uuid" => {
            let (class, is_safe): (Bound<'_, PyType>, Bound<'_, PyAny>) = extra.extract()?;
            Convert::Uuid {
                class: class.unbind(),
                is_safe: is_safe.unbind(),
            }
        }
        "json" => Convert::Json {
            loads: extra.unbind(),
        },
        "py" => Convert::Python,
        _ => {
            return Err(PyValueError::new_err(format!(
                "unknown converter kind {kind:?}; expected one of 'bool', 'decimal', 'datetime', \
                 'date', 'time', 'uuid', 'json', 'py'"
            )))
        }
    };
    Ok(Conversion {
        index,
        convert,
        fallback: fallback.unbind(),
    })
}

/// Decode one batch of rows (tuples, lists or any sequences, such as asyncpg records).
#[pyfunction]
pub fn decode_rows<'py>(
    plan: &Bound<'py, RowPlan>,
    rows: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyList>> {
    let py = rows.py();
    let plan = plan.get();
    let decoder = Decoder {
        py,
        utc: timezone_utc(py),
        no_args: PyTuple::empty(py),
    };
    let mut out = Vec::with_capacity(rows.len().unwrap_or(0));
    let mut values = Vec::new();
    if let Ok(list) = rows.downcast::<PyList>() {
        for row in list.iter() {
            out.push(decoder.row(plan, &row, &mut values)?);
        }
    } else {
        for row in rows.try_iter()? {
            out.push(decoder.row(plan, &row?, &mut values)?);
        }
    }
    PyList::new(py, out)
}

/// What every row of one `decode_rows` call needs.
struct Decoder<'py> {
    py: Python<'py>,
    utc: Bound<'py, PyTzInfo>,
    no_args: Bound<'py, PyTuple>,
}

impl<'py> Decoder<'py> {
    fn row(
        &self,
        plan: &RowPlan,
        row: &Bound<'py, PyAny>,
        values: &mut Vec<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        values.clear();
        if let Ok(tuple) = row.downcast::<PyTuple>() {
            values.extend(tuple.iter_borrowed().map(|v| v.to_owned()));
        } else if let Ok(list) = row.downcast::<PyList>() {
            values.extend(list.iter());
        } else {
            for i in 0..row.len()? {
                values.push(row.get_item(i)?);
            }
        }
        for c in &plan.conversions {
            let Some(value) = values.get(c.index) else {
                return Err(PyIndexError::new_err("list index out of range"));
            };
            if !value.is_none() {
                let converted = self.convert(c, value)?;
                values[c.index] = converted;
            }
        }
        match plan.mode {
            Mode::Flat => match values.first() {
                Some(value) => Ok(value.clone()),
                None => Err(PyIndexError::new_err("tuple index out of range")),
            },
            Mode::Tuple => Ok(PyTuple::new(self.py, values.drain(..))?.into_any()),
            Mode::Dict => Ok(self.dict(&plan.names, values, 0)?.into_any()),
            Mode::Model => self.instance(plan, values, 0),
        }
    }

    /// `dict(zip(names, values[offset:]))`.
    ///
    /// (Not `_PyDict_NewPresized`: on CPython 3.11 it makes a dict with general keys, slower to
    /// build and to read attributes from than the string-keyed dict that grows from empty.)
    fn dict(
        &self,
        names: &[Py<PyString>],
        values: &[Bound<'py, PyAny>],
        offset: usize,
    ) -> PyResult<Bound<'py, PyDict>> {
        let dict = PyDict::new(self.py);
        for (name, value) in names.iter().zip(values.iter().skip(offset)) {
            dict.set_item(name.bind(self.py), value)?;
        }
        Ok(dict)
    }

    /// `Model._from_db(dict(...))` for the model whose columns start at `offset`, with its
    /// `select_related` models cached on it.
    fn instance(
        &self,
        plan: &RowPlan,
        values: &[Bound<'py, PyAny>],
        offset: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = self.py;
        let dict = self.dict(&plan.names, values, offset)?;
        dict.set_item(intern!(py, "_persisted"), true)?;
        for rel in &plan.related {
            let Some(pk) = values.get(rel.start + rel.pk) else {
                return Err(PyIndexError::new_err("list index out of range"));
            };
            let cache_name = rel.cache_name.bind(py);
            if pk.is_none() {
                dict.set_item(cache_name, py.None())?;
            } else {
                dict.set_item(
                    cache_name,
                    self.instance(rel.plan.get(), values, rel.start)?,
                )?;
            }
        }
        let Some(model) = &plan.model else {
            return Err(PyValueError::new_err(
                "a row plan in mode 'model' has no model",
            ));
        };
        let obj = self.new_object(model.bind(py))?;
        obj.setattr(intern!(py, "__dict__"), dict)?;
        Ok(obj)
    }

    /// `cls.__new__(cls)`: the type's own `tp_new` with no arguments, as that call makes it.
    fn new_object(&self, cls: &Bound<'py, PyType>) -> PyResult<Bound<'py, PyAny>> {
        let tp = cls.as_type_ptr();
        // SAFETY: `tp` is a live type object (held by `cls`); `tp_new` is called with it, an
        // empty argument tuple and no keywords, exactly as `type.__call__` would call it.
        unsafe {
            let Some(new) = (*tp).tp_new else {
                return Err(PyTypeError::new_err(format!(
                    "cannot create '{}' instances",
                    cls.name()?
                )));
            };
            Bound::from_owned_ptr_or_err(self.py, new(tp, self.no_args.as_ptr(), ptr::null_mut()))
        }
    }

    fn convert(&self, c: &Conversion, value: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let py = self.py;
        let native = match &c.convert {
            Convert::Bool => return Ok(PyBool::new(py, value.is_truthy()?).to_owned().into_any()),
            Convert::Python => None,
            Convert::DateTime => match exact_text(value).and_then(decode::parse_datetime) {
                Some(v) => Some(self.datetime(v)?),
                None => None,
            },
            Convert::Date => match exact_text(value).and_then(decode::parse_date) {
                Some(d) => Some(PyDate::new(py, d.year, d.month, d.day)?.into_any()),
                None => None,
            },
            Convert::Time => match exact_text(value).and_then(decode::parse_time) {
                Some(t) => Some(
                    PyTime::new(py, t.hour, t.minute, t.second, t.microsecond, None)?.into_any(),
                ),
                None => None,
            },
            Convert::Uuid { class, is_safe } => {
                match exact_text(value).and_then(decode::parse_uuid) {
                    Some(n) => Some(self.uuid(class.bind(py), n, is_safe.bind(py))?),
                    None => None,
                }
            }
            Convert::Json { loads } => {
                if value.is_instance_of::<PyString>() || value.is_instance_of::<PyBytes>() {
                    Some(call(loads.bind(py), &[value])?)
                } else {
                    None
                }
            }
            Convert::Decimal {
                decimal,
                quantum,
                quantize,
            } => {
                let decimal = decimal.bind(py);
                let exact = if value.is_exact_instance_of::<PyString>() {
                    Some(call(decimal, &[value])?)
                } else if value.is_exact_instance_of::<PyFloat>() {
                    Some(call(decimal, &[&value.repr()?.into_any()])?)
                } else if value.is_exact_instance_of::<PyInt>() {
                    Some(call(decimal, &[&value.str()?.into_any()])?)
                } else if value.get_type().is(decimal) {
                    Some(value.clone())
                } else {
                    None
                };
                match exact {
                    Some(d) => Some(call(quantize.bind(py), &[&d, quantum.bind(py)])?),
                    None => None,
                }
            }
        };
        match native {
            Some(v) => Ok(v),
            None => call(c.fallback.bind(py), &[value]),
        }
    }

    fn datetime(&self, v: decode::DateTime) -> PyResult<Bound<'py, PyAny>> {
        let (d, t) = (v.date, v.time);
        let dt = PyDateTime::new(
            self.py,
            d.year,
            d.month,
            d.day,
            t.hour,
            t.minute,
            t.second,
            t.microsecond,
            Some(&self.utc),
        )?;
        Ok(dt.into_any())
    }

    /// `UUID(int=n)` without running `UUID.__init__`: `__init__` only checks its argument and
    /// sets the two slots, which is what happens here.
    fn uuid(
        &self,
        class: &Bound<'py, PyType>,
        n: u128,
        is_safe: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let obj = self.new_object(class)?;
        let int = n.into_pyobject(self.py)?;
        generic_setattr(&obj, intern!(self.py, "int"), &int)?;
        generic_setattr(&obj, intern!(self.py, "is_safe"), is_safe)?;
        Ok(obj)
    }
}

/// The text of an exact `str` (not a subclass, which may read differently).
fn exact_text<'a>(value: &'a Bound<'_, PyAny>) -> Option<&'a str> {
    if value.is_exact_instance_of::<PyString>() {
        value.downcast::<PyString>().ok()?.to_str().ok()
    } else {
        None
    }
}

/// `f(*args)` through vectorcall, without building an argument tuple.
fn call<'py>(f: &Bound<'py, PyAny>, args: &[&Bound<'py, PyAny>]) -> PyResult<Bound<'py, PyAny>> {
    // One spare slot in front lets the callee reuse the array for a bound method's `self`.
    let mut argv = [ptr::null_mut(); 3];
    assert!(args.len() < argv.len());
    for (slot, arg) in argv[1..].iter_mut().zip(args) {
        *slot = arg.as_ptr();
    }
    // SAFETY: `argv[1..=args.len()]` holds borrowed, live objects for the duration of the call.
    unsafe {
        let result = ffi::PyObject_Vectorcall(
            f.as_ptr(),
            argv.as_mut_ptr().add(1),
            args.len() | ffi::PY_VECTORCALL_ARGUMENTS_OFFSET,
            ptr::null_mut(),
        );
        Bound::from_owned_ptr_or_err(f.py(), result)
    }
}

/// `object.__setattr__(obj, name, value)`.
fn generic_setattr(
    obj: &Bound<'_, PyAny>,
    name: &Bound<'_, PyString>,
    value: &Bound<'_, PyAny>,
) -> PyResult<()> {
    // SAFETY: all three pointers are live objects borrowed for the call.
    let status =
        unsafe { ffi::PyObject_GenericSetAttr(obj.as_ptr(), name.as_ptr(), value.as_ptr()) };
    if status == 0 {
        Ok(())
    } else {
        Err(PyErr::fetch(obj.py()))
    }
}
