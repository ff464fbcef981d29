//! `covet._covet_rs`: the Rust core of CovetPy.
//!
//! `tree`, `dialect`, `errors`, `compile` and `decode` are plain Rust, tested by `cargo test`;
//! `bindings` is the only code that knows Python. This file only declares the modules and
//! registers the Python module.

pub mod compile;
pub mod decode;
pub mod dialect;
pub mod errors;
pub mod sqlite;
pub mod tree;

mod bindings;
mod sqlite_bindings; // pyo3 glue of the SQLite executor (kept apart from bindings.rs)

use pyo3::prelude::*;

#[pymodule]
fn _covet_rs(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(bindings::compile_sql, m)?)?;
    m.add_function(wrap_pyfunction!(bindings::decode_rows, m)?)?;
    m.add_class::<bindings::RowPlan>()?;
    sqlite_bindings::register(m)?;
    Ok(())
}
