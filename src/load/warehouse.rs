//! Columns of Parquet/IPC exports that this polars build cannot turn into a frame column,
//! read through polars' Arrow arrays instead: DECIMAL (what BigQuery NUMERIC, Snowflake
//! NUMBER(38,2), Spark's DecimalType and dbt models write for money) and 8- and 16-bit
//! unsigned integers.
//!
//! polars reads DECIMAL only with its `dtype-decimal` feature, which would rebuild the
//! whole polars stack; the Parquet decoder (polars-parquet) and the IPC reader
//! (polars-arrow) that the build already compiles decode these columns into Arrow arrays,
//! and the unscaled integers are kept as they are: money is rescaled to minor units once,
//! from the exact value, by [`money::Decimal::to_minor`] (half away from zero). An integer
//! column (scale 0, small unsigned) whose values fit 64 bits joins the batch's frame as
//! an ordinary `Int64` column, so ids, order ids and amounts read as integers do.
//!
//! Not for: the columns polars reads itself (see `columnar`).

use std::io::{Cursor, Seek, SeekFrom};
use std::sync::Arc;

use polars::datatypes::ArrowDataType;
use polars_arrow::array::{Array, PrimitiveArray};

use super::*;

/// A used column of a Parquet/IPC file read beside polars, as found in the schema.
#[derive(Debug, Clone)]
pub(super) struct SideColumn {
    pub(super) name: String,
    field: ArrowField,
    /// Decimal places of the stored integers (0 for unsigned integers).
    scale: u8,
}

/// The DECIMAL precision an `i128` holds.
const MAX_PRECISION: usize = 38;

/// The used columns of `schema` read beside polars; an error for a used column no reader
/// of this build decodes (polars would panic on it): DECIMAL of more than 38 digits.
pub(super) fn side_columns(
    file: &str,
    schema: &ArrowSchema,
    wanted: &[String],
) -> Result<Vec<SideColumn>> {
    let mut side = Vec::new();
    for name in wanted {
        let Some(field) = schema.get(name.as_str()) else {
            continue;
        };
        let scale = match field.dtype() {
            ArrowDataType::Decimal256(p, s) => {
                return Err(too_wide(file, name, *p, *s));
            }
            ArrowDataType::Decimal(p, s)
            | ArrowDataType::Decimal32(p, s)
            | ArrowDataType::Decimal64(p, s) => {
                if *p > MAX_PRECISION || *s > MAX_PRECISION {
                    return Err(too_wide(file, name, *p, *s));
                }
                *s as u8
            }
            ArrowDataType::UInt8 | ArrowDataType::UInt16 => 0,
            _ => continue,
        };
        side.push(SideColumn {
            name: name.clone(),
            field: field.clone(),
            scale,
        });
    }
    Ok(side)
}

fn too_wide(file: &str, name: &str, precision: usize, scale: usize) -> Error {
    Error::input(
        file,
        format!(
            "column {name:?} is DECIMAL({precision},{scale}), wider than the \
             {MAX_PRECISION} digits read: cast it to DECIMAL(38,{}) or to text",
            scale.min(MAX_PRECISION)
        ),
    )
}

/// The values of one side column over a run of rows: unscaled integers and the scale.
#[derive(Debug, Clone, Default)]
pub(super) struct DecimalColumn {
    values: Vec<i128>,
    /// Empty when no value is null.
    valid: Vec<bool>,
    scale: u8,
}

impl DecimalColumn {
    fn new(scale: u8) -> DecimalColumn {
        DecimalColumn {
            scale,
            ..DecimalColumn::default()
        }
    }

    fn len(&self) -> usize {
        self.values.len()
    }

    /// Appends an array of integers (the unscaled values of a DECIMAL).
    fn extend(&mut self, array: &dyn Array) -> PolarsResult<()> {
        fn ints<T: polars_arrow::types::NativeType + Into<i128>>(
            out: &mut DecimalColumn,
            array: &dyn Array,
        ) -> bool {
            let Some(a) = array.as_any().downcast_ref::<PrimitiveArray<T>>() else {
                return false;
            };
            let before = out.values.len();
            out.values.extend(a.values().iter().map(|&v| v.into()));
            match a.validity().filter(|v| v.unset_bits() > 0) {
                Some(valid) => {
                    out.valid.resize(before, true);
                    out.valid.extend((0..a.len()).map(|i| valid.get_bit(i)));
                }
                None if !out.valid.is_empty() => out.valid.resize(out.values.len(), true),
                None => {}
            }
            true
        }
        let read = ints::<i128>(self, array)
            || ints::<i64>(self, array)
            || ints::<i32>(self, array)
            || ints::<u16>(self, array)
            || ints::<u8>(self, array);
        if read {
            Ok(())
        } else {
            Err(polars_err!(ComputeError: "unexpected array of {:?}", array.dtype()))
        }
    }

    fn slice(&self, start: usize, len: usize) -> DecimalColumn {
        let end = (start + len).min(self.len());
        let start = start.min(end);
        DecimalColumn {
            values: self.values[start..end].to_vec(),
            valid: if self.valid.is_empty() {
                Vec::new()
            } else {
                self.valid[start..end].to_vec()
            },
            scale: self.scale,
        }
    }

    /// The cell of row `i`.
    pub(super) fn cell(&self, i: usize) -> Cell<'_> {
        if self.valid.get(i) == Some(&false) {
            Cell::Null
        } else {
            Cell::Decimal(&self.values[i], self.scale)
        }
    }

    /// The unscaled values and their scale, when no value is null.
    pub(super) fn plain(&self) -> Option<(&[i128], u8)> {
        self.valid
            .iter()
            .all(|&v| v)
            .then_some((self.values.as_slice(), self.scale))
    }

    /// The values as 64-bit integers, when the scale is 0 and every value fits.
    fn as_int64(&self) -> Option<Vec<Option<i64>>> {
        if self.scale != 0 {
            return None;
        }
        (0..self.len())
            .map(|i| match self.cell(i) {
                Cell::Decimal(&v, _) => i64::try_from(v).ok().map(Some),
                _ => Some(None),
            })
            .collect()
    }

    /// The values as decimal text (an id or category stored as a DECIMAL with decimals).
    fn as_text(&self) -> StringChunked {
        (0..self.len())
            .map(|i| match self.cell(i) {
                Cell::Null => None,
                cell => Some(cell.shown()),
            })
            .collect()
    }
}

/// The DECIMAL columns of one batch that stay out of its frame, by name; the frame holds
/// a column of nulls under each name, so the mapping finds it.
pub(super) type BatchDecimals = BTreeMap<String, Arc<DecimalColumn>>;

/// Adds the side columns of a batch of `df.height()` rows to its frame: as `Int64`
/// columns where they hold integers that fit, else as [`BatchDecimals`].
pub(super) fn attach(
    mut df: DataFrame,
    side: &[SideColumn],
    columns: Vec<DecimalColumn>,
) -> Result<(DataFrame, BatchDecimals)> {
    let n = df.height();
    let mut decimals = BatchDecimals::new();
    for (spec, values) in side.iter().zip(columns) {
        let name = PlSmallStr::from(spec.name.as_str());
        let column = match values.as_int64() {
            Some(ints) => Column::new(name, ints),
            None => {
                decimals.insert(spec.name.clone(), Arc::new(values));
                Column::full_null(name, n, &DataType::Null)
            }
        };
        df.with_column(column)?;
    }
    Ok((df, decimals))
}

impl Typed {
    /// How a DECIMAL column is read in `role`: as money by its exact value; as an id or
    /// category by its digits (integers) or text.
    pub(super) fn from_decimal(
        file: &str,
        name: &str,
        column: &Arc<DecimalColumn>,
        role: Role,
    ) -> Result<Typed> {
        match role {
            Role::Amount | Role::Quantity | Role::UnitPrice | Role::Cost => {
                Ok(Typed::Decimal(Arc::clone(column)))
            }
            Role::Time => Err(Error::input(
                file,
                format!("column '{name}' (time) holds DECIMAL numbers, which cannot hold a time"),
            )),
            _ if column.scale == 0 => Err(Error::input(
                file,
                format!(
                    "column '{name}' ({}) holds values beyond the 64-bit signed range",
                    role.describe()
                ),
            )),
            _ => Ok(Typed::Text(column.as_text())),
        }
    }
}

/// Reads the side columns of file rows `offset..offset + len` of the row groups of
/// `groups` (a Parquet footer cut down to them).
pub(super) fn read_parquet_side(
    path: &Path,
    groups: &FileMetadataRef,
    offset: usize,
    len: usize,
    side: &[SideColumn],
) -> PolarsResult<Vec<DecimalColumn>> {
    use polars_parquet::read::{BasicDecompressor, PageReader, column_iter_to_arrays};
    let mut file = File::open(path)?;
    let mut out = Vec::with_capacity(side.len());
    for spec in side {
        let mut column = DecimalColumn::new(spec.scale);
        for group in &groups.row_groups {
            let chunks: Vec<_> = group
                .columns_under_root_iter(&spec.name)
                .into_iter()
                .flatten()
                .collect();
            let [chunk] = chunks.as_slice() else {
                polars_bail!(ComputeError: "column {:?} is not a flat column", spec.name);
            };
            let range = chunk.byte_range();
            let mut bytes = vec![0u8; (range.end - range.start) as usize];
            file.seek(SeekFrom::Start(range.start))?;
            file.read_exact(&mut bytes)?;
            let pages = PageReader::new(Cursor::new(bytes.into()), chunk, Vec::new(), usize::MAX);
            let (arrays, _) = column_iter_to_arrays(
                vec![BasicDecompressor::new(pages, Vec::new())],
                vec![&chunk.descriptor().descriptor.primitive_type],
                spec.field.clone(),
                None,
            )?;
            for array in &arrays {
                column.extend(array.as_ref())?;
            }
        }
        out.push(column.slice(offset, len));
    }
    Ok(out)
}

/// Reads the side columns of the first `rows` rows of an Arrow IPC file (all of them
/// without a limit).
pub(super) fn read_ipc_side(
    path: &Path,
    rows: Option<usize>,
    side: &[SideColumn],
) -> PolarsResult<Vec<DecimalColumn>> {
    use polars_arrow::io::ipc::read::{FileReader, read_file_metadata};
    let mut out = Vec::with_capacity(side.len());
    for spec in side {
        let mut file = File::open(path)?;
        let metadata = read_file_metadata(&mut file)?;
        let index = metadata.schema.try_index_of(&spec.name)?;
        let mut column = DecimalColumn::new(spec.scale);
        for batch in FileReader::new(file, metadata, Some(vec![index]), rows) {
            for array in batch?.arrays() {
                column.extend(array.as_ref())?;
            }
        }
        out.push(column);
    }
    Ok(out)
}

/// The rows `start..start + len` of whole-file side columns.
pub(super) fn slice_side(
    columns: &[DecimalColumn],
    start: usize,
    len: usize,
) -> Vec<DecimalColumn> {
    columns.iter().map(|c| c.slice(start, len)).collect()
}
