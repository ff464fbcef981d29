//! `covet._covet_rs`: the Rust core of CovetPy.
//!
//! `tree`, `dialect`, `errors`, `compile`, `decode` and `sqlite` are plain Rust, tested by
//! `cargo test`. Only the glue modules know Python: `bindings` (`compile_sql`),
//! `decode_bindings` (`RowPlan`, `decode_rows`) and `sqlite_bindings` (the native SQLite
//! executor). This file only declares the modules and registers the Python module.

pub mod compile;
pub mod decode;
pub mod dialect;
pub mod errors;
pub mod sqlite;
pub mod tree;

mod bindings; // pyo3 glue of the SQL compiler
mod decode_bindings; // pyo3 glue of row decoding
mod sqlite_bindings; // pyo3 glue of the SQLite executor

use pyo3::prelude::*;

#[pymodule]
fn _covet_rs(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(bindings::compile_sql, m)?)?;
    decode_bindings::register(m)?;
    sqlite_bindings::register(m)?;
    Ok(())
}
