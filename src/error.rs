//! The library's error type: every variant carries what a user needs to fix the input
//! (file, line, column, value, what was expected). Exit codes: 2 for bad input or usage,
//! 1 for internal failures.

use std::path::PathBuf;

/// Errors from loading, validating, computing and writing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A row could not be used and the bad-row policy is `error`.
    #[error("{file}: {place} {line}, column '{column}': {reason}: {value:?} (expected {expected})")]
    BadRow {
        file: String,
        /// "line" for text files, "row" for Parquet/IPC.
        place: &'static str,
        line: u64,
        column: String,
        value: String,
        reason: String,
        expected: String,
    },
    /// A required column is not in the file.
    #[error("{file}: no column '{column}' for the {role}; the file has columns: {available}{hint}")]
    MissingColumn {
        file: String,
        column: String,
        role: &'static str,
        available: String,
        hint: String,
    },
    /// The input as a whole is unusable (empty, corrupt, wrong type, not found).
    #[error("{file}: {message}")]
    Input { file: String, message: String },
    /// Bad flags, config or arguments.
    #[error("{0}")]
    Usage(String),
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A computation cannot be carried out on this data (e.g. a sum overflows).
    #[error("{0}")]
    Data(String),
    /// Another run holds the output directory's lock (a failure to retry, exit code 1).
    #[error("{0}")]
    Locked(String),
    /// The cluster could not be reached or the job failed on it (exit code 3: retry or
    /// check the cluster; the input is not at fault).
    #[error("{0}")]
    Cluster(String),
    /// A failure inside polars that is not the user's input.
    #[error("internal error (polars): {0}")]
    Polars(#[from] polars::error::PolarsError),
}

impl Error {
    /// The process exit code for this error: 2 for bad input or usage, 3 for a cluster
    /// failure, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Polars(_) | Error::Locked(_) => 1,
            Error::Cluster(_) => 3,
            Error::Io { source, .. }
                if !matches!(
                    source.kind(),
                    std::io::ErrorKind::NotFound
                        | std::io::ErrorKind::PermissionDenied
                        | std::io::ErrorKind::InvalidData
                        | std::io::ErrorKind::UnexpectedEof
                        | std::io::ErrorKind::IsADirectory
                        | std::io::ErrorKind::NotADirectory
                        | std::io::ErrorKind::ReadOnlyFilesystem
                ) =>
            {
                1
            }
            _ => 2,
        }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub fn input(file: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Input {
            file: file.into(),
            message: message.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
