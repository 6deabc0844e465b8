//! Options: how to read the input (column mapping, CSV dialect, time format, money) and
//! the TOML config file that carries the same keys for repeatable runs.
//!
//! Precedence: command-line flags over the config file over the defaults. Unknown keys
//! in the config file are errors that name the key, so a typo never goes unnoticed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::money::Ratio;
use crate::time::TimeFormat;

/// The column that plays each role. `None` means the default name; an optional role whose
/// default-named column is absent is simply not used, but a name the user gave must exist.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnNames {
    pub customer: Option<String>,
    pub time: Option<String>,
    pub amount: Option<String>,
    pub quantity: Option<String>,
    pub unit_price: Option<String>,
    pub order: Option<String>,
    pub cost: Option<String>,
    pub category: Option<String>,
}

/// The roles a column can play, with their default names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Customer,
    Time,
    Amount,
    Quantity,
    UnitPrice,
    Order,
    Cost,
    Category,
}

impl Role {
    pub fn default_name(self) -> &'static str {
        match self {
            Role::Customer => "customer_id",
            Role::Time => "ts",
            Role::Amount => "amount",
            Role::Quantity => "quantity",
            Role::UnitPrice => "unit_price",
            Role::Order => "order_id",
            Role::Cost => "cost",
            Role::Category => "category",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Role::Customer => "customer id",
            Role::Time => "time",
            Role::Amount => "amount",
            Role::Quantity => "quantity",
            Role::UnitPrice => "unit price",
            Role::Order => "order id",
            Role::Cost => "cost",
            Role::Category => "category",
        }
    }

    pub fn flag(self) -> &'static str {
        match self {
            Role::Customer => "--customer-col",
            Role::Time => "--time-col",
            Role::Amount => "--amount-col",
            Role::Quantity => "--quantity-col",
            Role::UnitPrice => "--unit-price-col",
            Role::Order => "--order-col",
            Role::Cost => "--cost-col",
            Role::Category => "--category-col",
        }
    }
}

impl ColumnNames {
    /// The name given for a role, if the user gave one.
    pub fn given(&self, role: Role) -> Option<&str> {
        match role {
            Role::Customer => self.customer.as_deref(),
            Role::Time => self.time.as_deref(),
            Role::Amount => self.amount.as_deref(),
            Role::Quantity => self.quantity.as_deref(),
            Role::UnitPrice => self.unit_price.as_deref(),
            Role::Order => self.order.as_deref(),
            Role::Cost => self.cost.as_deref(),
            Role::Category => self.category.as_deref(),
        }
    }

    /// The name to look for.
    pub fn name(&self, role: Role) -> &str {
        self.given(role).unwrap_or(role.default_name())
    }

    /// Fills roles not set here from `other`.
    pub fn or(self, other: ColumnNames) -> ColumnNames {
        ColumnNames {
            customer: self.customer.or(other.customer),
            time: self.time.or(other.time),
            amount: self.amount.or(other.amount),
            quantity: self.quantity.or(other.quantity),
            unit_price: self.unit_price.or(other.unit_price),
            order: self.order.or(other.order),
            cost: self.cost.or(other.cost),
            category: self.category.or(other.category),
        }
    }
}

/// Customer-id typing (JOB.md: ids keep their type; CSV ids are text unless declared).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdType {
    /// Text for CSV; the column's own type for Parquet/IPC.
    #[default]
    Auto,
    Text,
    Int,
}

/// What to do with a row that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum BadRowPolicy {
    /// Stop at the first bad row with exit code 2.
    #[default]
    Error,
    /// Count and report bad rows, go on with the rest.
    Skip,
    /// Like skip, and write every rejected row with its line and reason to this CSV file.
    Quarantine(PathBuf),
}

impl std::str::FromStr for BadRowPolicy {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "error" => Ok(BadRowPolicy::Error),
            "skip" => Ok(BadRowPolicy::Skip),
            _ => match s.strip_prefix("quarantine=") {
                Some(path) if !path.is_empty() => Ok(BadRowPolicy::Quarantine(path.into())),
                _ => Err(format!(
                    "unknown bad-row policy {s:?}: use error, skip or quarantine=FILE"
                )),
            },
        }
    }
}

/// Everything the loader needs to know.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Files, directories are refused; glob patterns (`data/*.parquet`) are expanded.
    pub inputs: Vec<String>,
    pub columns: ColumnNames,
    pub delimiter: u8,
    pub has_header: bool,
    pub quote: u8,
    pub time_format: TimeFormat,
    pub customer_id_type: IdType,
    /// Decimals of the currency's minor unit (2 = cents).
    pub currency_decimals: u32,
    /// Day number of the as-of date; `None` = the day after the latest transaction.
    pub as_of: Option<i32>,
    /// Profit = amount × margin where there is no cost.
    pub margin: Ratio,
    pub on_bad_rows: BadRowPolicy,
    /// How many rejected rows to keep as examples in the report.
    pub max_examples: usize,
    /// Told how far loading has got; none by default.
    pub progress: LoadObserver,
    /// Rows of each Parquet/IPC input to read, counted from 0 at the file's first row;
    /// `None` reads them all. Rows outside the range are neither read nor counted, and
    /// messages still number rows from the start of the file. CSV inputs ignore it.
    pub row_range: Option<std::ops::Range<u64>>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            inputs: Vec::new(),
            columns: ColumnNames::default(),
            delimiter: b',',
            has_header: true,
            quote: b'"',
            time_format: TimeFormat::Iso,
            customer_id_type: IdType::Auto,
            currency_decimals: 2,
            as_of: None,
            margin: Ratio::ONE,
            on_bad_rows: BadRowPolicy::Error,
            max_examples: 5,
            progress: LoadObserver::default(),
            row_range: None,
        }
    }
}

impl LoadOptions {
    /// Options for the given input paths, everything else default.
    pub fn new<S: Into<String>>(inputs: impl IntoIterator<Item = S>) -> LoadOptions {
        LoadOptions {
            inputs: inputs.into_iter().map(Into::into).collect(),
            ..LoadOptions::default()
        }
    }
}

/// A callback told how far loading has got (see [`LoadProgress`]), or none.
///
/// The loader calls it from the loading thread every 64k rows or so and once at the end
/// of each file, so it may draw directly. Any two observers compare equal and print only
/// whether they are set: an observer changes how loading is watched, never what it does.
#[derive(Clone, Default)]
pub struct LoadObserver(Option<Arc<dyn Fn(LoadProgress) + Send + Sync>>);

impl LoadObserver {
    pub fn new(f: impl Fn(LoadProgress) + Send + Sync + 'static) -> LoadObserver {
        LoadObserver(Some(Arc::new(f)))
    }

    pub fn is_set(&self) -> bool {
        self.0.is_some()
    }

    /// Tells the callback, if there is one.
    pub fn notify(&self, progress: LoadProgress) {
        if let Some(f) = &self.0 {
            f(progress);
        }
    }
}

impl std::fmt::Debug for LoadObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_set() {
            "LoadObserver(set)"
        } else {
            "LoadObserver(none)"
        })
    }
}

impl PartialEq for LoadObserver {
    fn eq(&self, _: &LoadObserver) -> bool {
        true
    }
}

/// How far loading has got, summed over every input file. Counts only grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadProgress {
    /// Bytes of the input files read so far: for gzip files the compressed bytes
    /// consumed; for Parquet/IPC, each file's bytes credited as its rows are converted.
    pub bytes: u64,
    /// Size of all input files together.
    pub total_bytes: u64,
    /// Rows read so far (used and rejected).
    pub rows: u64,
    /// The file being read, counted from 0.
    pub file: usize,
    pub files: usize,
}

/// The `[input]` table of a config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputConfig {
    pub files: Option<Vec<String>>,
    pub delimiter: Option<String>,
    pub header: Option<bool>,
    pub quote: Option<String>,
    pub time_format: Option<String>,
    pub customer_id_type: Option<IdType>,
    pub currency_decimals: Option<u32>,
    pub as_of: Option<String>,
    pub margin: Option<toml::Value>,
    pub on_bad_rows: Option<String>,
}

/// A whole config file. Sections for the analyses live in their own modules and are
/// added here as they appear.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub input: InputConfig,
    #[serde(default)]
    pub columns: ColumnNames,
    #[serde(default)]
    pub rfm: crate::segments::RfmSettings,
    #[serde(default)]
    pub deciles: crate::segments::DecileSettings,
    #[serde(default)]
    pub best: crate::best::BestRule,
    #[serde(default)]
    pub lifecycle: crate::lifecycle::LifecycleRules,
    #[serde(default)]
    pub run: crate::run::RunSettings,
}

impl ConfigFile {
    /// The analysis sections.
    pub fn analysis(&self) -> crate::segments::AnalysisSettings {
        crate::segments::AnalysisSettings {
            rfm: self.rfm.clone(),
            deciles: self.deciles.clone(),
            best: self.best.clone(),
            lifecycle: self.lifecycle,
        }
    }

    /// Reads and checks a TOML config file; errors name the file and the offending key.
    pub fn read(path: &Path) -> Result<ConfigFile> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        toml::from_str(&text).map_err(|e| {
            Error::Usage(format!(
                "{}: {}",
                path.display(),
                e.to_string().trim_end().replace('\n', "\n  ")
            ))
        })
    }
}

/// Parses a one-character option (delimiter, quote); `\t` and `tab` mean a tab.
pub fn single_byte(what: &str, text: &str) -> Result<u8> {
    match text {
        "\\t" | "tab" | "\t" => Ok(b'\t'),
        s if s.len() == 1 && s.is_ascii() => Ok(s.as_bytes()[0]),
        _ => Err(Error::Usage(format!(
            "{what} must be a single ASCII character, got {text:?}"
        ))),
    }
}

/// Parses a margin given as text or a TOML number.
pub fn parse_margin(text: &str) -> Result<Ratio> {
    Ratio::parse(text).map_err(|e| Error::Usage(format!("margin {text:?}: {e}")))
}

impl InputConfig {
    /// Applies this table's settings onto `opts`.
    pub fn apply(&self, opts: &mut LoadOptions) -> Result<()> {
        if let Some(files) = &self.files {
            opts.inputs = files.clone();
        }
        let key = |k: &'static str| move |e: Error| Error::Usage(format!("{k}: {e}"));
        if let Some(d) = &self.delimiter {
            opts.delimiter = single_byte("delimiter", d)?;
        }
        if let Some(h) = self.header {
            opts.has_header = h;
        }
        if let Some(q) = &self.quote {
            opts.quote = single_byte("quote", q)?;
        }
        if let Some(f) = &self.time_format {
            opts.time_format = TimeFormat::Custom(f.clone());
        }
        if let Some(t) = self.customer_id_type {
            opts.customer_id_type = t;
        }
        if let Some(d) = self.currency_decimals {
            opts.currency_decimals = check_decimals(d).map_err(key("currency_decimals"))?;
        }
        if let Some(a) = &self.as_of {
            opts.as_of = Some(parse_as_of(a).map_err(key("as_of"))?);
        }
        if let Some(m) = &self.margin {
            let text = match m {
                toml::Value::String(s) => s.clone(),
                toml::Value::Float(f) => format!("{f}"),
                toml::Value::Integer(i) => i.to_string(),
                other => {
                    return Err(Error::Usage(format!(
                        "margin must be a number, got {other}"
                    )));
                }
            };
            opts.margin = parse_margin(&text).map_err(key("margin"))?;
        }
        if let Some(p) = &self.on_bad_rows {
            opts.on_bad_rows = p
                .parse()
                .map_err(|e| Error::Usage(format!("on_bad_rows: {e}")))?;
        }
        Ok(())
    }
}

pub fn check_decimals(d: u32) -> Result<u32> {
    if d > 6 {
        return Err(Error::Usage(format!(
            "currency decimals must be between 0 and 6, got {d}"
        )));
    }
    Ok(d)
}

pub fn parse_as_of(text: &str) -> Result<i32> {
    crate::time::parse_iso_date(text)
        .ok_or_else(|| Error::Usage(format!("as-of date {text:?} is not a date like 2024-12-31")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_named() {
        let err = toml::from_str::<ConfigFile>("[columns]\ncustomr = \"id\"\n").unwrap_err();
        assert!(err.to_string().contains("customr"), "{err}");
        let err = toml::from_str::<ConfigFile>("[input]\nheader = \"yes\"\n").unwrap_err();
        assert!(err.to_string().contains("header") || err.to_string().contains("bool"));
    }

    #[test]
    fn config_applies() {
        let cfg: ConfigFile = toml::from_str(
            "[input]\ndelimiter = \";\"\nmargin = 0.3\nas_of = \"1970-01-11\"\non_bad_rows = \"skip\"\n\
             [columns]\ncustomer = \"card\"\n",
        )
        .unwrap();
        let mut opts = LoadOptions::default();
        cfg.input.apply(&mut opts).unwrap();
        assert_eq!(opts.delimiter, b';');
        assert_eq!(opts.as_of, Some(10));
        assert_eq!(opts.on_bad_rows, BadRowPolicy::Skip);
        assert_eq!(opts.margin.apply(10).unwrap(), 3);
        assert_eq!(cfg.columns.name(Role::Customer), "card");
        assert_eq!(cfg.columns.name(Role::Time), "ts");
    }

    #[test]
    fn policies_parse() {
        assert_eq!("skip".parse::<BadRowPolicy>(), Ok(BadRowPolicy::Skip));
        assert_eq!(
            "quarantine=bad.csv".parse::<BadRowPolicy>(),
            Ok(BadRowPolicy::Quarantine("bad.csv".into()))
        );
        assert!("quarantine=".parse::<BadRowPolicy>().is_err());
        assert!("drop".parse::<BadRowPolicy>().is_err());
    }
}
