//! DataFrames across the Python boundary through the Arrow PyCapsule interface
//! (`__arrow_c_stream__`), which polars, pyarrow and pandas ≥ 2.2 speak: no copy of the
//! column buffers either way, and no dependence on the private layout of one version of
//! the polars Python package.

use std::ffi::CStr;

use custvalue::polars::prelude::*;
use polars_arrow::array::{Array, StructArray};
use polars_arrow::datatypes::{ArrowDataType, Field as ArrowField};
use polars_arrow::ffi::{ArrowArrayStream, ArrowArrayStreamReader, export_iterator};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyCapsuleMethods};

const STREAM: &CStr = c"arrow_array_stream";

/// A frame exported to Python: `polars.DataFrame(frame)` takes it over through
/// `__arrow_c_stream__` (once).
#[pyclass(module = "custvalue._native", name = "ArrowFrame")]
pub struct ArrowFrame(Option<DataFrame>);

impl ArrowFrame {
    pub fn new(df: DataFrame) -> ArrowFrame {
        ArrowFrame(Some(df))
    }
}

#[pymethods]
impl ArrowFrame {
    #[pyo3(signature = (requested_schema = None))]
    fn __arrow_c_stream__<'py>(
        &mut self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let _ = requested_schema;
        let mut df = self
            .0
            .take()
            .ok_or_else(|| PyValueError::new_err("this frame was already taken"))?;
        df.rechunk_mut();
        let compat = CompatLevel::newest();
        let fields: Vec<ArrowField> = df
            .columns()
            .iter()
            .map(|c| c.field().to_arrow(compat))
            .collect();
        let dtype = ArrowDataType::Struct(fields);
        let batches: Vec<PolarsResult<Box<dyn Array>>> = df
            .iter_chunks(compat, false)
            .map(|batch| {
                let len = batch.height();
                let arrays = batch.into_arrays();
                Ok(Box::new(StructArray::new(dtype.clone(), len, arrays, None)) as Box<dyn Array>)
            })
            .collect();
        let stream = export_iterator(
            Box::new(batches.into_iter()),
            ArrowField::new("".into(), dtype, false),
        );
        PyCapsule::new_with_value(py, stream, STREAM)
    }
}

/// Imports a frame from any object with `__arrow_c_stream__` (a polars or pyarrow
/// table; pandas ≥ 2.2). The stream is moved out of the capsule, which keeps an empty one.
pub fn import_frame(obj: &Bound<'_, PyAny>) -> PyResult<DataFrame> {
    if !obj.hasattr("__arrow_c_stream__")? {
        return Err(PyTypeError::new_err(format!(
            "expected a path, a list of paths or a DataFrame, got {}",
            obj.get_type().name()?
        )));
    }
    let capsule = obj.call_method0("__arrow_c_stream__")?;
    let capsule = capsule.cast::<PyCapsule>()?;
    let ptr = capsule
        .pointer_checked(Some(STREAM))?
        .cast::<ArrowArrayStream>();
    // SAFETY: the capsule named arrow_array_stream holds an ArrowArrayStream (the
    // PyCapsule interface); replacing it with an empty one moves it out, so the
    // capsule's destructor finds nothing to release.
    let stream = unsafe { std::ptr::replace(ptr.as_ptr(), ArrowArrayStream::empty()) };
    let bad = |e: PolarsError| PyValueError::new_err(format!("cannot read the frame: {e}"));
    // SAFETY: the stream came from its producer unreleased.
    let mut reader = unsafe { ArrowArrayStreamReader::try_new(Box::new(stream)) }.map_err(bad)?;
    let fields = match reader.field().dtype() {
        ArrowDataType::Struct(fields) => fields.clone(),
        other => {
            return Err(PyTypeError::new_err(format!(
                "expected a stream of record batches, got {other:?}"
            )));
        }
    };
    let mut columns: Vec<Vec<Box<dyn Array>>> = vec![Vec::new(); fields.len()];
    let mut height = 0usize;
    // SAFETY: the reader's stream is valid until it ends.
    while let Some(batch) = unsafe { reader.next() } {
        let batch = batch.map_err(bad)?;
        let batch = batch
            .as_any()
            .downcast_ref::<StructArray>()
            .ok_or_else(|| PyTypeError::new_err("expected a stream of record batches"))?;
        height += batch.len();
        for (k, values) in batch.values().iter().enumerate() {
            columns[k].push(values.clone());
        }
    }
    let columns = fields
        .iter()
        .zip(columns)
        .map(|(field, chunks)| {
            let chunks = if chunks.is_empty() {
                vec![polars_arrow::array::new_empty_array(field.dtype().clone())]
            } else {
                chunks
            };
            Series::try_from((field, chunks)).map(Column::from)
        })
        .collect::<PolarsResult<Vec<Column>>>()
        .map_err(bad)?;
    DataFrame::new(height, columns).map_err(bad)
}
