//! `covet._covet_rs`: the Rust core of CovetPy.
//!
//! `tree`, `dialect`, `errors` and `compile` are plain Rust, tested by `cargo test`; `bindings`
//! is the only code that knows Python. This file only declares the modules and registers the
//! Python module.

pub mod compile;
pub mod dialect;
pub mod errors;
pub mod tree;

mod bindings;

use pyo3::prelude::*;

#[pymodule]
fn _covet_rs(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(bindings::compile_sql, m)?)?;
    Ok(())
}
