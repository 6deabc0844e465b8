//! Keyword arguments (passed as a dict by the Python layer) into the library's options,
//! the way the command line's flags fill them in: defaults, then the config file, then
//! the arguments.

use std::path::PathBuf;

use custvalue::config::ConfigFile;
use custvalue::load::{check_decimals, parse_as_of, parse_margin, single_byte};
use custvalue::time::TimeFormat;
use custvalue::{AnalysisSettings, ColumnNames, Error, IdType, LoadOptions};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyDictMethods};

/// The keyword arguments of one call.
pub struct Args<'a, 'py>(pub &'a Bound<'py, PyDict>);

impl Args<'_, '_> {
    fn get(&self, key: &str) -> PyResult<Option<Bound<'_, PyAny>>> {
        Ok(self.0.get_item(key)?.filter(|v| !v.is_none()))
    }

    pub fn str(&self, key: &str) -> PyResult<Option<String>> {
        self.get(key)?
            .map(|v| v.extract::<String>())
            .transpose()
            .map_err(Into::into)
    }

    pub fn f64(&self, key: &str) -> PyResult<Option<f64>> {
        self.get(key)?
            .map(|v| v.extract::<f64>())
            .transpose()
            .map_err(Into::into)
    }

    pub fn u64(&self, key: &str) -> PyResult<Option<u64>> {
        self.get(key)?
            .map(|v| v.extract::<u64>())
            .transpose()
            .map_err(Into::into)
    }

    pub fn bool(&self, key: &str) -> PyResult<bool> {
        Ok(self
            .get(key)?
            .map(|v| v.is_truthy())
            .transpose()?
            .unwrap_or(false))
    }
}

/// Load options and analysis settings from the load arguments.
pub fn load_options(
    a: &Args,
    inputs: Vec<String>,
) -> PyResult<Result<(LoadOptions, AnalysisSettings), Error>> {
    let config = a.str("config")?;
    let columns = ColumnNames {
        customer: a.str("customer_col")?,
        time: a.str("time_col")?,
        amount: a.str("amount_col")?,
        quantity: a.str("quantity_col")?,
        unit_price: a.str("unit_price_col")?,
        order: a.str("order_col")?,
        cost: a.str("cost_col")?,
        category: a.str("category_col")?,
    };
    let delimiter = a.str("delimiter")?;
    let quote = a.str("quote")?;
    let no_header = a.bool("no_header")?;
    let time_format = a.str("time_format")?;
    let id_type = a.str("customer_id_type")?;
    let decimals = a.u64("currency_decimals")?;
    let as_of = a.str("as_of")?;
    let margin = a.str("margin")?;
    let on_bad_rows = a.str("on_bad_rows")?;
    Ok((|| {
        let mut opts = LoadOptions::default();
        let mut settings = AnalysisSettings::default();
        if let Some(path) = &config {
            let path = PathBuf::from(path);
            let cfg = ConfigFile::read(&path)?;
            cfg.input
                .apply(&mut opts)
                .map_err(|e| Error::Usage(format!("{}: [input] {e}", path.display())))?;
            settings = cfg.analysis();
            opts.columns = cfg.columns;
        }
        if !inputs.is_empty() {
            opts.inputs = inputs;
        }
        opts.columns = columns.or(opts.columns);
        if let Some(d) = &delimiter {
            opts.delimiter = single_byte("delimiter", d)?;
        }
        if no_header {
            opts.has_header = false;
        }
        if let Some(q) = &quote {
            opts.quote = single_byte("quote", q)?;
        }
        if let Some(f) = time_format {
            opts.time_format = TimeFormat::Custom(f);
        }
        if let Some(t) = &id_type {
            opts.customer_id_type = match t.as_str() {
                "auto" => IdType::Auto,
                "text" => IdType::Text,
                "int" => IdType::Int,
                other => {
                    return Err(Error::Usage(format!(
                        "customer_id_type must be auto, text or int, not {other:?}"
                    )));
                }
            };
        }
        if let Some(d) = decimals {
            opts.currency_decimals = check_decimals(u32::try_from(d).unwrap_or(u32::MAX))?;
        }
        if let Some(a) = &as_of {
            opts.as_of = Some(parse_as_of(a)?);
        }
        if let Some(m) = &margin {
            opts.margin = parse_margin(m)?;
        }
        if let Some(p) = &on_bad_rows {
            opts.on_bad_rows = p.parse().map_err(Error::Usage)?;
        }
        Ok((opts, settings))
    })())
}
