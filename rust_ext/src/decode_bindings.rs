//! The Python side of row decoding: the `RowPlan` class and `decode_rows`.
//!
//! `RowPlan(...)` is built once per query shape from plain data (`covet/database/orm/hydrate.py`
//! makes it and keeps it on its own plan); `decode_rows(plan, rows)` then turns one batch of
//! driver rows into results, the twin of the pure-Python reference decoder in `hydrate.py`. The
//! text parsing lives in `decode.rs` (plain Rust); this file is only the pyo3 glue. The compiler's
//! glue is in `bindings.rs`, the SQLite executor's in `sqlite_bindings.rs`.
//!
//! What a plan prepares once: the names as interned strings, each converter's kind, and for the
//! `'model'` and `'dict'` modes a *template* dict (every name, then `_persisted` and the
//! `select_related` cache names, in the order the reference inserts them). A full row's dict is a
//! `PyDict_Copy` of it (the right size at once, never resized) whose values are then replaced:
//! written straight into the copy's entries where the dict layout is known and checked (CPython
//! 3.11 and 3.12; see `Template`), through `PyDict_SetItem` otherwise. A row shorter than the
//! names gets a dict grown from empty with only the names it has, as `zip` does.
//!
//! Per row, nothing is copied that need not be: a tuple row's values are read where they are
//! (borrowed), other rows (lists, asyncpg `Record`s and other sequences by length and index, any
//! other iterable by iteration) are read once into a scratch vector; converted values replace
//! their column in that view, in the order of the plan's converters, as the reference converts
//! them. Instances of plain model classes are allocated with `tp_alloc` and get their `__dict__`
//! set once (`PyObject_GenericSetDict`), which is what `cls.__new__(cls)` followed by
//! `obj.__dict__ = values` amounts to for them; a class that customises `__new__`,
//! `__setattr__`, allocation or the `__dict__` slot takes the general route (its own `tp_new`,
//! then `setattr`), as does every class on Python 3.13 and later.
//!
//! Every native conversion handles the value types it knows (exact `str` mostly) and hands
//! anything else to the field's own Python converter, which the plan always carries: odd values
//! get exactly the reference's result or its exception. Errors come in the reference's order too:
//! the reference converts every row of a batch before it builds any result (and with
//! `select_related` makes every top-level instance before it looks up any related key), so when
//! building a row fails (a short row), the remaining rows are still read and converted, and the
//! first error among them wins.

use std::ptr;

use pyo3::exceptions::{PyIndexError, PyOverflowError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::{
    timezone_utc, PyBool, PyBytes, PyDate, PyDateTime, PyDict, PyFloat, PyInt, PyList, PyString,
    PyTime, PyTuple, PyType, PyTzInfo,
};
use pyo3::{ffi, intern};

use crate::decode;

/// Add `RowPlan` and `decode_rows` to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(decode_rows, m)?)?;
    m.add_function(wrap_pyfunction!(pg_date, m)?)?;
    m.add_function(wrap_pyfunction!(pg_timestamp, m)?)?;
    m.add_function(wrap_pyfunction!(pg_timestamptz, m)?)?;
    m.add_class::<RowPlan>()?;
    Ok(())
}

// asyncpg `tuple`-format decoders (covet/database/adapters/pg_codecs.py has the reference) -------
fn pg_value(data: &Bound<'_, PyTuple>) -> PyResult<i64> {
    data.get_item(0)?.extract()
}

fn out_of_range() -> PyErr {
    PyOverflowError::new_err("date value out of range")
}

/// `(days since 2000-01-01,)` as a date; PostgreSQL's infinities (the int32 extremes) as
/// `date.max`/`date.min`.
#[pyfunction]
fn pg_date<'py>(data: &Bound<'py, PyTuple>) -> PyResult<Bound<'py, PyDate>> {
    let py = data.py();
    let days = pg_value(data)?;
    let d = match decode::pg_date(days) {
        Some(d) => d,
        None if days == i64::from(i32::MAX) => decode::Date {
            year: 9999,
            month: 12,
            day: 31,
        },
        None if days == i64::from(i32::MIN) => decode::Date {
            year: 1,
            month: 1,
            day: 1,
        },
        None => return Err(out_of_range()),
    };
    PyDate::new(py, d.year, d.month, d.day)
}

fn pg_datetime<'py>(
    data: &Bound<'py, PyTuple>,
    tz: Option<&Bound<'py, PyTzInfo>>,
) -> PyResult<Bound<'py, PyDateTime>> {
    let micros = pg_value(data)?;
    let v = match decode::pg_timestamp(micros) {
        Some(v) => v,
        None if micros == i64::MAX => decode::DateTime {
            date: decode::Date {
                year: 9999,
                month: 12,
                day: 31,
            },
            time: decode::Time {
                hour: 23,
                minute: 59,
                second: 59,
                microsecond: 999_999,
            },
        },
        None if micros == i64::MIN => decode::DateTime {
            date: decode::Date {
                year: 1,
                month: 1,
                day: 1,
            },
            time: decode::Time {
                hour: 0,
                minute: 0,
                second: 0,
                microsecond: 0,
            },
        },
        None => return Err(out_of_range()),
    };
    let (d, t) = (v.date, v.time);
    PyDateTime::new(
        data.py(),
        d.year,
        d.month,
        d.day,
        t.hour,
        t.minute,
        t.second,
        t.microsecond,
        tz,
    )
}

/// `(microseconds since 2000-01-01 00:00,)` as a naive datetime; the int64 extremes
/// ('infinity') as `datetime.max`/`datetime.min`.
#[pyfunction]
fn pg_timestamp<'py>(data: &Bound<'py, PyTuple>) -> PyResult<Bound<'py, PyDateTime>> {
    pg_datetime(data, None)
}

/// `(microseconds since 2000-01-01 00:00 UTC,)` as an aware datetime in UTC; the int64 extremes
/// ('infinity') as `datetime.max`/`datetime.min` in UTC.
#[pyfunction]
fn pg_timestamptz<'py>(data: &Bound<'py, PyTuple>) -> PyResult<Bound<'py, PyDateTime>> {
    let utc = timezone_utc(data.py());
    pg_datetime(data, Some(&utc))
}

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
    /// The key of each leading column, interned (exact `str` names).
    names: Vec<Py<PyString>>,
    conversions: Vec<Conversion>,
    model: Option<Py<PyType>>,
    related: Vec<Related>,
    /// Modes `'model'` and `'dict'`: the dict every full row's dict is copied from.
    template: Option<Template>,
    /// `_persisted` is also a column name: a copied template must have it set to True again.
    persisted_is_a_name: bool,
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
        let py = names.py();
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
            .map(|name| Ok(interned(name?.downcast_into::<PyString>()?).unbind()))
            .collect::<PyResult<Vec<_>>>()?;
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
                    cache_name: interned(cache_name).unbind(),
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
        let persisted = intern!(py, "_persisted");
        let mut persisted_is_a_name = false;
        let template = match mode {
            Mode::Model | Mode::Dict => {
                let mut keys: Vec<&Bound<'_, PyString>> =
                    names.iter().map(|n| n.bind(py)).collect();
                for name in &keys {
                    persisted_is_a_name |= name.as_any().eq(persisted)?;
                }
                if mode == Mode::Model {
                    keys.push(persisted);
                    keys.extend(related_plans.iter().map(|rel| rel.cache_name.bind(py)));
                }
                Some(Template::new(py, &keys, names.len(), mode == Mode::Model)?)
            }
            Mode::Tuple | Mode::Flat => None,
        };
        Ok(RowPlan {
            mode,
            names,
            conversions,
            model: model.map(|m| m.clone().unbind()),
            related: related_plans,
            template,
            persisted_is_a_name,
        })
    }
}

/// A row dict's template: every key of the row's dict, in the order the reference inserts them,
/// each with its placeholder value (None, and True for `_persisted`).
///
/// A full row's dict is a `PyDict_Copy` of it: the right size at once, never resized. Where the
/// CPython dict layout is known (3.11 and 3.12) and the template is checked to be laid out as
/// expected, the row's values are then written straight into the copy's entries (the copy is
/// new and unseen, so only its values change); otherwise they go in through `PyDict_SetItem`.
struct Template {
    dict: Py<PyDict>,
    /// The entry of each key given to `Template::new` (a repeated key: its first entry), when
    /// values may be written into the entries.
    slots: Option<Vec<usize>>,
    /// The template's key table shape; a copy with another shape is filled through the API.
    shape: KeysShape,
}

impl Template {
    /// `keys` in order (repeats allowed: a repeated key keeps its first place, as in a dict);
    /// in a model's template the key after the names is `_persisted`, whose placeholder is True.
    fn new(
        py: Python<'_>,
        keys: &[&Bound<'_, PyString>],
        names: usize,
        model: bool,
    ) -> PyResult<Template> {
        let dict = PyDict::new(py);
        for (i, key) in keys.iter().enumerate() {
            if model && i == names {
                dict.set_item(key, true)?;
            } else {
                dict.set_item(key, py.None())?;
            }
        }
        let distinct: Vec<Bound<'_, PyAny>> = dict.keys().iter().collect();
        let mut slots = Vec::with_capacity(keys.len());
        for key in keys {
            let mut at = None;
            for (j, k) in distinct.iter().enumerate() {
                if k.eq(key)? {
                    at = Some(j);
                    break;
                }
            }
            slots.push(
                at.ok_or_else(|| PyValueError::new_err("a row plan key is not in its dict"))?,
            );
        }
        let shape = KeysShape::of(py, &dict, &distinct);
        let slots = shape.is_some().then_some(slots);
        Ok(Template {
            dict: dict.unbind(),
            slots,
            shape: shape.unwrap_or_default(),
        })
    }
}

/// The header of a CPython 3.11 / 3.12 dict key table (`struct _dictkeysobject` in
/// `Include/internal/pycore_dict.h`); the hash index (`dk_indices`, `1 << log2_index_bytes`
/// bytes) and then the entries follow it.
#[repr(C)]
struct KeysHeader {
    refcnt: ffi::Py_ssize_t,
    log2_size: u8,
    log2_index_bytes: u8,
    kind: u8,
    version: u32,
    usable: ffi::Py_ssize_t,
    nentries: ffi::Py_ssize_t,
}

/// An entry of a string-keyed table (`PyDictUnicodeEntry`).
#[repr(C)]
struct UnicodeEntry {
    key: *mut ffi::PyObject,
    value: *mut ffi::PyObject,
}

/// `DICT_KEYS_UNICODE`: a combined table whose keys are all exact `str`.
const DICT_KEYS_UNICODE: u8 = 1;

/// The shape of a combined string-keyed key table: copies of a template share it.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
struct KeysShape {
    log2_size: u8,
    log2_index_bytes: u8,
    entries: usize,
}

/// Whether this interpreter's dicts have the layout `KeysHeader` describes.
static KNOWN_DICT_LAYOUT: GILOnceCell<bool> = GILOnceCell::new();

impl KeysShape {
    /// The shape of `dict`'s table if its entries hold exactly `keys`, in order (checked entry
    /// by entry, so a layout other than the expected one is refused, not misread).
    fn of(
        py: Python<'_>,
        dict: &Bound<'_, PyDict>,
        keys: &[Bound<'_, PyAny>],
    ) -> Option<KeysShape> {
        let known = *KNOWN_DICT_LAYOUT.get_or_init(py, || {
            let v = py.version_info();
            ((3, 11)..(3, 13)).contains(&(v.major, v.minor))
        });
        if !known {
            return None;
        }
        // SAFETY: on CPython 3.11 and 3.12 a dict's table starts with `KeysHeader`; `table`
        // checks the header before it computes anything from it.
        unsafe {
            let (shape, entries) = table(dict.as_ptr())?;
            if shape.entries != keys.len() {
                return None;
            }
            for (j, key) in keys.iter().enumerate() {
                if (*entries.add(j)).key != key.as_ptr() {
                    return None;
                }
            }
            Some(shape)
        }
    }
}

/// The shape and entries of a combined string-keyed dict with no deleted entries, or None.
///
/// # Safety
/// `dict` is a live exact dict, on an interpreter with the `KeysHeader` layout.
unsafe fn table(dict: *mut ffi::PyObject) -> Option<(KeysShape, *mut UnicodeEntry)> {
    let d = dict as *mut ffi::PyDictObject;
    let keys = (*d).ma_keys as *mut KeysHeader;
    if !(*d).ma_values.is_null() || keys.is_null() {
        return None;
    }
    let k = &*keys;
    let usable = (1isize << k.log2_size.min(30)) * 2 / 3;
    let sane = k.kind == DICT_KEYS_UNICODE
        && k.log2_size <= 30
        && k.log2_index_bytes >= k.log2_size
        && k.log2_index_bytes <= k.log2_size + 3
        && k.nentries == (*d).ma_used
        && k.nentries >= 0
        && k.nentries <= usable;
    if !sane {
        return None;
    }
    let entries = (keys as *mut u8)
        .add(std::mem::size_of::<KeysHeader>() + (1usize << k.log2_index_bytes))
        as *mut UnicodeEntry;
    let shape = KeysShape {
        log2_size: k.log2_size,
        log2_index_bytes: k.log2_index_bytes,
        entries: k.nentries as usize,
    };
    Some((shape, entries))
}

/// Whether a dict holding `value` must be tracked by the garbage collector (CPython's
/// `_PyObject_GC_MAY_BE_TRACKED`, which `PyDict_SetItem` applies).
///
/// # Safety
/// `value` is a live object.
unsafe fn may_be_tracked(value: *mut ffi::PyObject) -> bool {
    if (*ffi::Py_TYPE(value)).tp_flags & ffi::Py_TPFLAGS_HAVE_GC == 0
        || ffi::PyObject_IS_GC(value) == 0
    {
        return false;
    }
    ffi::PyTuple_CheckExact(value) == 0 || ffi::PyObject_GC_IsTracked(value) != 0
}

/// A row's new dict while it is filled.
struct RowDict<'py> {
    dict: Bound<'py, PyDict>,
    /// The entries of a template copy that values are written into; null: `PyDict_SetItem`.
    entries: *mut UnicodeEntry,
    /// Some value written into `entries` needs the dict tracked.
    track: bool,
}

impl<'py> RowDict<'py> {
    /// A copy of `template`.
    fn copy(template: &Template, py: Python<'py>) -> PyResult<RowDict<'py>> {
        // SAFETY: the template is a live dict; `PyDict_Copy` returns a new reference or null.
        let dict = unsafe {
            Bound::from_owned_ptr_or_err(py, ffi::PyDict_Copy(template.dict.as_ptr()))?
                .downcast_into_unchecked::<PyDict>()
        };
        let mut entries = ptr::null_mut();
        if template.slots.is_some() {
            // SAFETY: `slots` is only set where the layout is known; the copy is an exact dict.
            if let Some((shape, e)) = unsafe { table(dict.as_ptr()) } {
                if shape == template.shape {
                    entries = e;
                }
            }
        }
        Ok(RowDict {
            dict,
            entries,
            track: false,
        })
    }

    /// An empty dict, filled through the API.
    fn empty(py: Python<'py>) -> RowDict<'py> {
        RowDict {
            dict: PyDict::new(py),
            entries: ptr::null_mut(),
            track: false,
        }
    }

    /// `dict[key] = value`, where `slot` is the key's entry in the template.
    fn set(
        &mut self,
        slot: usize,
        key: *mut ffi::PyObject,
        value: *mut ffi::PyObject,
    ) -> PyResult<()> {
        if self.entries.is_null() {
            return set_item(&self.dict, key, value);
        }
        // SAFETY: `entries` holds the template's entries (same shape, checked in `copy`), and
        // `slot` is one of them; the entry owns a reference to its value.
        unsafe {
            let entry = self.entries.add(slot);
            ffi::Py_INCREF(value);
            let old = std::mem::replace(&mut (*entry).value, value);
            self.track |= may_be_tracked(value);
            ffi::Py_DECREF(old);
        }
        Ok(())
    }

    /// The filled dict.
    fn finish(self) -> Bound<'py, PyDict> {
        if self.track {
            // SAFETY: a live dict, tracked only if it is not yet.
            unsafe {
                if ffi::PyObject_GC_IsTracked(self.dict.as_ptr()) == 0 {
                    ffi::PyObject_GC_Track(self.dict.as_ptr().cast());
                }
            }
        }
        self.dict
    }
}

/// An exact `str` as its interned twin (attribute lookups then compare pointers); a subclass
/// instance as it is.
fn interned(name: Bound<'_, PyString>) -> Bound<'_, PyString> {
    if name.is_exact_instance_of::<PyString>() {
        if let Ok(text) = name.to_str() {
            return PyString::intern(name.py(), text);
        }
    }
    name
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

/// Decode one batch of rows (tuples, lists, asyncpg records, any sequences or iterables).
#[pyfunction]
pub fn decode_rows<'py>(
    plan: &Bound<'py, RowPlan>,
    rows: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyList>> {
    let py = rows.py();
    let plan = plan.get();
    let mut decoder = Decoder {
        py,
        utc: timezone_utc(py),
        no_args: PyTuple::empty(py),
        persisted: intern!(py, "_persisted").clone(),
        converting: !plan.conversions.is_empty(),
        columns: Vec::new(),
        owned: Vec::new(),
    };
    let kinds = Kinds::of(py, plan)?;
    let mut out = Vec::with_capacity(rows.len().unwrap_or(0));
    if let Ok(list) = rows.downcast::<PyList>() {
        decoder.all(plan, &kinds, list.iter().map(Ok), &mut out)?;
    } else if let Ok(tuple) = rows.downcast::<PyTuple>() {
        decoder.all(plan, &kinds, tuple.iter().map(Ok), &mut out)?;
    } else {
        decoder.all(plan, &kinds, rows.try_iter()?, &mut out)?;
    }
    PyList::new(py, out)
}

/// Per call: how each model of the plan (the top one, then its `select_related` tree) is made.
struct Kinds {
    /// `tp_alloc` and `PyObject_GenericSetDict` give the same instance as `__new__` + setattr.
    plain: bool,
    related: Vec<Kinds>,
}

impl Kinds {
    fn of(py: Python<'_>, plan: &RowPlan) -> PyResult<Kinds> {
        let plain = match &plan.model {
            Some(model) => plain_instances(model.bind(py))?,
            None => false,
        };
        let related = plan
            .related
            .iter()
            .map(|rel| Kinds::of(py, rel.plan.get()))
            .collect::<PyResult<_>>()?;
        Ok(Kinds { plain, related })
    }
}

/// The `__set__` function of the `__dict__` descriptor of a class made by `class` statements
/// (CPython's `subtype_setdict`), as an address; None where instances are always made through
/// `tp_new` (Python 3.13 and later keep instance values inline, set up by `object.__new__`).
static DICT_SETTER: GILOnceCell<Option<usize>> = GILOnceCell::new();

fn dict_setter(py: Python<'_>) -> PyResult<Option<usize>> {
    DICT_SETTER
        .get_or_try_init(py, || {
            if py.version_info() >= (3, 13) {
                return Ok(None);
            }
            let probe = py.get_type::<PyType>().call1((
                "_CovetProbe",
                PyTuple::empty(py),
                PyDict::new(py),
            ))?;
            let probe = probe.downcast::<PyType>()?;
            // SAFETY: `probe` is a live type; the lookup only reads it.
            Ok(unsafe { getset_setter(type_lookup(probe, intern!(py, "__dict__"))) })
        })
        .copied()
}

/// Whether `cls.__new__(cls)` then `obj.__dict__ = d` is exactly `tp_alloc` then
/// `PyObject_GenericSetDict`: `object.__new__` (only checks abstractness and sets up the
/// instance values the new dict replaces), default allocation, the generic `__setattr__`, and the
/// `__dict__` descriptor every Python class gets, with no built-in base that keeps a dict.
/// Checked per call: a class may be changed after it is made.
fn plain_instances(cls: &Bound<'_, PyType>) -> PyResult<bool> {
    let py = cls.py();
    let Some(setter) = dict_setter(py)? else {
        return Ok(false);
    };
    let tp = cls.as_type_ptr();
    // SAFETY: `tp` and its bases are live type objects (held by `cls`); only read.
    unsafe {
        let object_new = (*ptr::addr_of!(ffi::PyBaseObject_Type)).tp_new;
        let generic_alloc: ffi::allocfunc = ffi::PyType_GenericAlloc;
        let generic_setattr: ffi::setattrofunc = ffi::PyObject_GenericSetAttr;
        if (*tp).tp_new.map(|f| f as usize) != object_new.map(|f| f as usize)
            || (*tp).tp_alloc.map(|f| f as usize) != Some(generic_alloc as usize)
            || (*tp).tp_setattro.map(|f| f as usize) != Some(generic_setattr as usize)
            || (*tp).tp_flags & ffi::Py_TPFLAGS_IS_ABSTRACT != 0
            || (*tp).tp_dictoffset == 0
        {
            return Ok(false);
        }
        let mut base = (*tp).tp_base;
        while !base.is_null() {
            if (*base).tp_flags & ffi::Py_TPFLAGS_HEAPTYPE == 0 && (*base).tp_dictoffset != 0 {
                return Ok(false);
            }
            base = (*base).tp_base;
        }
        Ok(getset_setter(type_lookup(cls, intern!(py, "__dict__"))) == Some(setter))
    }
}

/// `name` in the `__dict__` of the first class of `cls.__mro__` that has it (borrowed), or null.
///
/// # Safety
/// The result is borrowed from a class dict: use it before running any Python code.
unsafe fn type_lookup(cls: &Bound<'_, PyType>, name: &Bound<'_, PyString>) -> *mut ffi::PyObject {
    let mro = (*cls.as_type_ptr()).tp_mro;
    if mro.is_null() || ffi::PyTuple_Check(mro) == 0 {
        return ptr::null_mut();
    }
    for i in 0..ffi::PyTuple_GET_SIZE(mro) {
        let klass = ffi::PyTuple_GET_ITEM(mro, i) as *mut ffi::PyTypeObject;
        let dict = (*klass).tp_dict;
        if dict.is_null() {
            continue;
        }
        let found = ffi::PyDict_GetItemWithError(dict, name.as_ptr());
        if !found.is_null() {
            return found;
        }
        if !ffi::PyErr_Occurred().is_null() {
            ffi::PyErr_Clear();
            return ptr::null_mut();
        }
    }
    ptr::null_mut()
}

/// The address of a getset descriptor's setter; None for anything else.
///
/// # Safety
/// `descr` is null or a live object.
unsafe fn getset_setter(descr: *mut ffi::PyObject) -> Option<usize> {
    if descr.is_null() || ffi::Py_TYPE(descr) != ptr::addr_of_mut!(ffi::PyGetSetDescr_Type) {
        return None;
    }
    let getset = (*(descr as *mut ffi::PyGetSetDescrObject)).d_getset;
    if getset.is_null() {
        return None;
    }
    (*getset).set.map(|f| f as usize)
}

/// What every row of one `decode_rows` call needs, and the current row.
struct Decoder<'py> {
    py: Python<'py>,
    utc: Bound<'py, PyTzInfo>,
    no_args: Bound<'py, PyTuple>,
    persisted: Bound<'py, PyString>,
    /// The plan converts: the reference then reads the row as a list.
    converting: bool,
    /// The current row's values, converted ones included: borrowed from a tuple row or from
    /// `owned`.
    columns: Vec<*mut ffi::PyObject>,
    /// The current row's values read out of a non-tuple row, and its converted values.
    owned: Vec<Bound<'py, PyAny>>,
}

impl<'py> Decoder<'py> {
    /// Decode every row of `rows` into `out`.
    fn all(
        &mut self,
        plan: &RowPlan,
        kinds: &Kinds,
        mut rows: impl Iterator<Item = PyResult<Bound<'py, PyAny>>>,
        out: &mut Vec<Bound<'py, PyAny>>,
    ) -> PyResult<()> {
        while let Some(row) = rows.next() {
            let row = row?;
            self.load(plan, &row)?;
            match self.build(plan, kinds, &row) {
                Ok(result) => out.push(result),
                Err(err) => {
                    // The reference reads (with converters: converts) every row before it builds
                    // any result, or, with `select_related`, makes every top-level instance
                    // before it reads any related primary key: an error the remaining rows meet
                    // there comes first.
                    if self.converting || !plan.related.is_empty() {
                        for row in rows {
                            self.load(plan, &row?)?;
                        }
                    }
                    return Err(err);
                }
            }
        }
        Ok(())
    }

    /// Read `row`'s values into `columns` and convert them.
    fn load(&mut self, plan: &RowPlan, row: &Bound<'py, PyAny>) -> PyResult<()> {
        self.columns.clear();
        self.owned.clear();
        if let Ok(tuple) = row.downcast::<PyTuple>() {
            // Borrowed: a tuple's items live as long as the tuple, which the caller holds.
            self.columns
                .extend(tuple.as_slice().iter().map(Bound::as_ptr));
        } else {
            if let Ok(list) = row.downcast::<PyList>() {
                self.owned.extend(list.iter());
            // SAFETY: `row` is a live object.
            } else if unsafe { ffi::PySequence_Check(row.as_ptr()) } == 1 {
                for i in 0..row.len()? {
                    // SAFETY: as above; `i` is not negative.
                    let item =
                        unsafe { ffi::PySequence_GetItem(row.as_ptr(), i as ffi::Py_ssize_t) };
                    // SAFETY: a new reference or null with the error set.
                    self.owned
                        .push(unsafe { Bound::from_owned_ptr_or_err(self.py, item)? });
                }
            } else {
                for item in row.try_iter()? {
                    self.owned.push(item?);
                }
            }
            self.columns.extend(self.owned.iter().map(Bound::as_ptr));
        }
        for c in &plan.conversions {
            let Some(&value) = self.columns.get(c.index) else {
                return Err(PyIndexError::new_err("list index out of range"));
            };
            // SAFETY: `None` is immortal enough for a pointer comparison.
            if value == unsafe { ffi::Py_None() } {
                continue;
            }
            // SAFETY: `value` is live: borrowed from the row or held in `owned`.
            let value = unsafe { Bound::from_borrowed_ptr(self.py, value) };
            let converted = self.convert(c, &value)?;
            self.columns[c.index] = converted.as_ptr();
            self.owned.push(converted);
        }
        Ok(())
    }

    /// The result for the loaded row.
    fn build(
        &self,
        plan: &RowPlan,
        kinds: &Kinds,
        row: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        match plan.mode {
            Mode::Flat => self.column(row, 0),
            Mode::Tuple => {
                if !self.converting && row.is_exact_instance_of::<PyTuple>() {
                    return Ok(row.clone()); // `tuple(t) is t`
                }
                // SAFETY: the pointers are live (see `columns`); `PyTuple::new` takes new
                // references to them.
                let items = self
                    .columns
                    .iter()
                    .map(|&p| unsafe { Bound::from_borrowed_ptr(self.py, p) });
                Ok(PyTuple::new(self.py, items)?.into_any())
            }
            Mode::Dict => Ok(self.dict(plan, 0)?.0.finish().into_any()),
            Mode::Model => self.instance(plan, kinds, row, 0),
        }
    }

    /// The value at `index`, as the reference reads `row[index]` after converting.
    fn column(&self, row: &Bound<'py, PyAny>, index: usize) -> PyResult<Bound<'py, PyAny>> {
        match self.columns.get(index) {
            // SAFETY: live, see `columns`.
            Some(&p) => Ok(unsafe { Bound::from_borrowed_ptr(self.py, p) }),
            // Converted rows are lists in the reference.
            None if self.converting => Err(PyIndexError::new_err("list index out of range")),
            // The row's own answer (its IndexError, or a value a sequence finds past its length).
            None => row.get_item(index),
        }
    }

    /// `dict(zip(names, columns[offset:]))`, and whether it is a copy of the full template
    /// (every name was in the row, so `_persisted` and the cache names are there too).
    fn dict(&self, plan: &RowPlan, offset: usize) -> PyResult<(RowDict<'py>, bool)> {
        let values = self.columns.get(offset..).unwrap_or(&[]);
        if let Some(template) = plan
            .template
            .as_ref()
            .filter(|_| values.len() >= plan.names.len())
        {
            let mut dict = RowDict::copy(template, self.py)?;
            let slots = template.slots.as_deref().unwrap_or(&[]);
            for (j, (name, &value)) in plan.names.iter().zip(values).enumerate() {
                dict.set(slots.get(j).copied().unwrap_or(0), name.as_ptr(), value)?;
            }
            return Ok((dict, true));
        }
        // A short row: only the names it has, as `zip` stops (the dict grows from empty, keeping
        // its string-only keys; `_PyDict_NewPresized` would not on CPython 3.11).
        let mut dict = RowDict::empty(self.py);
        for (name, &value) in plan.names.iter().zip(values) {
            dict.set(0, name.as_ptr(), value)?;
        }
        Ok((dict, false))
    }

    /// `Model._from_db(dict(...))` for the model whose columns start at `offset`, with its
    /// `select_related` models cached on it.
    fn instance(
        &self,
        plan: &RowPlan,
        kinds: &Kinds,
        row: &Bound<'py, PyAny>,
        offset: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = self.py;
        let (mut dict, full) = self.dict(plan, offset)?;
        // Slots of the keys after the names (meaningful only for a template copy).
        let slots = match (&plan.template, full) {
            (Some(t), true) => t.slots.as_deref().unwrap_or(&[]),
            _ => &[],
        };
        let slot = |i: usize| slots.get(plan.names.len() + i).copied().unwrap_or(0);
        if !full || plan.persisted_is_a_name {
            // SAFETY: `True` is a live object.
            dict.set(slot(0), self.persisted.as_ptr(), unsafe { ffi::Py_True() })?;
        }
        for (i, (rel, sub)) in plan.related.iter().zip(&kinds.related).enumerate() {
            let pk = self.column(row, rel.start + rel.pk)?;
            let cache_name = rel.cache_name.as_ptr();
            if pk.is_none() {
                dict.set(slot(1 + i), cache_name, py.None().as_ptr())?;
            } else {
                let nested = self.instance(rel.plan.get(), sub, row, rel.start)?;
                dict.set(slot(1 + i), cache_name, nested.as_ptr())?;
            }
        }
        let dict = dict.finish();
        let Some(model) = &plan.model else {
            return Err(PyValueError::new_err(
                "a row plan in mode 'model' has no model",
            ));
        };
        let model = model.bind(py);
        if kinds.plain {
            let tp = model.as_type_ptr();
            // SAFETY: `plain_instances` checked that `tp_alloc` is `PyType_GenericAlloc` and
            // that the `__dict__` slot is the standard one; the new object is owned here.
            unsafe {
                let obj = Bound::from_owned_ptr_or_err(py, ffi::PyType_GenericAlloc(tp, 0))?;
                if ffi::PyObject_GenericSetDict(obj.as_ptr(), dict.as_ptr(), ptr::null_mut()) != 0 {
                    return Err(PyErr::fetch(py));
                }
                Ok(obj)
            }
        } else {
            let obj = self.new_object(model)?;
            obj.setattr(intern!(py, "__dict__"), dict)?;
            Ok(obj)
        }
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

/// `dict[key] = value` for borrowed pointers.
fn set_item(
    dict: &Bound<'_, PyDict>,
    key: *mut ffi::PyObject,
    value: *mut ffi::PyObject,
) -> PyResult<()> {
    // SAFETY: `dict` is a dict; `key` and `value` are live objects (`PyDict_SetItem` takes its
    // own references).
    if unsafe { ffi::PyDict_SetItem(dict.as_ptr(), key, value) } == 0 {
        Ok(())
    } else {
        Err(PyErr::fetch(dict.py()))
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
