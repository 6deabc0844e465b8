//! Load options: which column plays which role, how to read the files, the money
//! settings, and how to treat bad rows. The config file's `[input]` table and the
//! command line both fill these in.

use std::path::PathBuf;
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

    /// How a user maps this role: the command-line flag and the config file's key
    /// (library users set the same field of [`ColumnNames`]).
    pub fn setting(self) -> &'static str {
        match self {
            Role::Customer => "--customer-col or [columns] customer",
            Role::Time => "--time-col or [columns] time",
            Role::Amount => "--amount-col or [columns] amount",
            Role::Quantity => "--quantity-col or [columns] quantity",
            Role::UnitPrice => "--unit-price-col or [columns] unit_price",
            Role::Order => "--order-col or [columns] order",
            Role::Cost => "--cost-col or [columns] cost",
            Role::Category => "--category-col or [columns] category",
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
    /// Accept inputs without a usable row (an empty batch of a streaming read); by
    /// default that is an error.
    pub allow_empty: bool,
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
            allow_empty: false,
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
