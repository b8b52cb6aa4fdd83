//! Filter expressions (message field 43): decoded once per request, then
//! evaluated against each record the request touches
//! (`../shared/reference/batch-and-expressions.md` §4–§5).
//!
//! Interface shared by the single-record commands, batch rows, queries and
//! background jobs. Until the evaluator lands, every filter is refused as
//! unsupported (result 16), never ignored.

use crate::sandbox::store::{Digest, Record};

/// A filter expression decoded from field 43.
#[derive(Debug, Clone)]
pub struct Filter {
    _wire: Vec<u8>,
}

/// Why a filter cannot be used.
#[derive(Debug, Clone, PartialEq)]
pub enum FilterError {
    /// The server cannot build it: result 4 (parameter error).
    Build(String),
    /// An op, CDT call or value type the sandbox does not evaluate: result 16.
    Unsupported(String),
}

impl FilterError {
    /// The result code a request answers with.
    pub fn result_code(&self) -> u8 {
        match self {
            FilterError::Build(_) => 4,
            FilterError::Unsupported(_) => 16,
        }
    }
}

/// The record a filter looks at.
pub struct Subject<'a> {
    pub ns: &'a str,
    pub digest: &'a Digest,
    pub record: &'a Record,
}

impl Filter {
    /// Decodes field 43: a filter the server cannot build is `Build`, one
    /// using what the sandbox does not evaluate is `Unsupported`.
    pub fn parse(wire: &[u8]) -> Result<Filter, FilterError> {
        let _ = Filter {
            _wire: wire.to_vec(),
        };
        Err(FilterError::Unsupported(
            "filter expressions are not evaluated yet".into(),
        ))
    }

    /// Whether `subject` passes (unknown counts as false).
    pub fn matches(&self, _subject: &Subject) -> Result<bool, FilterError> {
        Err(FilterError::Unsupported(
            "filter expressions are not evaluated yet".into(),
        ))
    }
}
