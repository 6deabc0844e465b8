use super::*;

/// Why a row was rejected. The key is stable and used in reports and quarantine files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RejectReason {
    MissingCustomer,
    BadCustomerId,
    MissingTime,
    BadTime,
    ImpossibleDate,
    AfterAsOf,
    MissingAmount,
    BadAmount,
    AmountOverflow,
    BadQuantity,
    BadUnitPrice,
    BadCost,
    WrongFieldCount,
    InvalidUtf8,
}

impl RejectReason {
    /// Every reason, in key order of the enum.
    pub const ALL: [RejectReason; 14] = [
        RejectReason::MissingCustomer,
        RejectReason::BadCustomerId,
        RejectReason::MissingTime,
        RejectReason::BadTime,
        RejectReason::ImpossibleDate,
        RejectReason::AfterAsOf,
        RejectReason::MissingAmount,
        RejectReason::BadAmount,
        RejectReason::AmountOverflow,
        RejectReason::BadQuantity,
        RejectReason::BadUnitPrice,
        RejectReason::BadCost,
        RejectReason::WrongFieldCount,
        RejectReason::InvalidUtf8,
    ];

    /// The reason whose [`key`](Self::key) is `key`.
    pub fn from_key(key: &str) -> Option<RejectReason> {
        Self::ALL.into_iter().find(|r| r.key() == key)
    }

    pub fn key(self) -> &'static str {
        match self {
            RejectReason::MissingCustomer => "missing_customer",
            RejectReason::BadCustomerId => "bad_customer_id",
            RejectReason::MissingTime => "missing_time",
            RejectReason::BadTime => "bad_time",
            RejectReason::ImpossibleDate => "impossible_date",
            RejectReason::AfterAsOf => "after_as_of",
            RejectReason::MissingAmount => "missing_amount",
            RejectReason::BadAmount => "bad_amount",
            RejectReason::AmountOverflow => "amount_overflow",
            RejectReason::BadQuantity => "bad_quantity",
            RejectReason::BadUnitPrice => "bad_unit_price",
            RejectReason::BadCost => "bad_cost",
            RejectReason::WrongFieldCount => "wrong_field_count",
            RejectReason::InvalidUtf8 => "invalid_utf8",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            RejectReason::MissingCustomer => "missing customer id",
            RejectReason::BadCustomerId => "bad customer id",
            RejectReason::MissingTime => "missing time",
            RejectReason::BadTime => "unparsable time",
            RejectReason::ImpossibleDate => "impossible date",
            RejectReason::AfterAsOf => "after the as-of date",
            RejectReason::MissingAmount => "missing amount",
            RejectReason::BadAmount => "bad amount",
            RejectReason::AmountOverflow => "amount too large",
            RejectReason::BadQuantity => "bad quantity",
            RejectReason::BadUnitPrice => "bad unit price",
            RejectReason::BadCost => "bad cost",
            RejectReason::WrongFieldCount => "wrong number of fields",
            RejectReason::InvalidUtf8 => "invalid UTF-8",
        }
    }
}

/// One rejected row, as reported.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub file: String,
    /// "line" (text files) or "row" (Parquet/IPC).
    pub place: &'static str,
    pub line: u64,
    pub column: String,
    pub value: String,
    pub reason: RejectReason,
    pub detail: String,
    pub expected: String,
}

impl Rejection {
    pub(super) fn into_error(self) -> Error {
        let reason = if self.detail.is_empty() {
            self.reason.describe().to_string()
        } else {
            format!("{}: {}", self.reason.describe(), self.detail)
        };
        Error::BadRow {
            file: self.file,
            place: self.place,
            line: self.line,
            column: self.column,
            value: self.value,
            reason,
            expected: self.expected,
        }
    }
}

/// Rows of one input file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileReport {
    pub path: String,
    pub bytes: u64,
    pub rows_read: u64,
    pub rows_used: u64,
    pub rows_rejected: u64,
}

/// What loading did: rows read, used and rejected (by reason), with the first examples.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadReport {
    pub files: Vec<FileReport>,
    pub rows_read: u64,
    pub rows_used: u64,
    pub rows_rejected: u64,
    pub rejected_by_reason: BTreeMap<RejectReason, u64>,
    pub examples: Vec<Rejection>,
    /// Where rejected rows were written, if quarantined.
    pub quarantine: Option<PathBuf>,
    /// As-of day number used.
    pub as_of: i32,
    /// Whether the as-of date was given (rather than derived from the data).
    pub as_of_given: bool,
}

impl LoadReport {
    /// Adds the row counts (read, used, rejected, by reason) of `other`.
    pub fn add_counts(&mut self, other: &LoadReport) {
        self.rows_read += other.rows_read;
        self.rows_used += other.rows_used;
        self.rows_rejected += other.rows_rejected;
        for (reason, n) in &other.rejected_by_reason {
            *self.rejected_by_reason.entry(*reason).or_insert(0) += n;
        }
    }

    /// One line: "read 1,000 rows from 2 files: 990 used, 10 rejected (bad amount: 10)".
    pub fn headline(&self) -> String {
        let mut s = format!(
            "read {} rows from {} file{}: {} used, {} rejected",
            crate::output::thousands(self.rows_read),
            self.files.len(),
            if self.files.len() == 1 { "" } else { "s" },
            crate::output::thousands(self.rows_used),
            crate::output::thousands(self.rows_rejected),
        );
        if !self.rejected_by_reason.is_empty() {
            let parts: Vec<String> = self
                .rejected_by_reason
                .iter()
                .map(|(r, n)| format!("{}: {}", r.describe(), crate::output::thousands(*n)))
                .collect();
            s.push_str(&format!(" ({})", parts.join(", ")));
        }
        s
    }
}
