//! Filter expressions (message field 43): decoded once per request, then
//! evaluated against each record the request touches
//! (`../shared/reference/batch-and-expressions.md` §4–§5).
//!
//! How callers follow the server's rules (§5.1):
//! - **Single-record commands and a batch row's own filter**: make a
//!   [`RecordFilter`] from the field when the request arrives, then call
//!   [`RecordFilter::check`] only once the record is known to exist, under
//!   the key's lock. A missing record never looks at the filter, so even a
//!   filter that cannot be built does not matter then; on an existing record
//!   `check` answers 27 (false or unknown), 4 (cannot be built) or 16 (not
//!   evaluated by the sandbox).
//! - **A batch-wide filter, a query, a background job**: call
//!   [`Filter::parse`] up front and refuse the whole request with
//!   [`FilterError::result_code`] at once; then [`Filter::matches`] per
//!   record. A job's metadata stage asks [`Filter::fails_on_metadata`].
//!
//! `parse` compiles the msgpack tree into a postfix program (`build`),
//! with an explicit stack, so nesting is bounded only by the field's size;
//! literals (quoted lists, map literals) nest at most
//! [`read::MAX_LITERAL_DEPTH`] levels (deeper: 4).

mod build;
mod eval;
mod posix;
mod read;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use parking_lot::Mutex;

use crate::sandbox::store::{Digest, Record};

pub use read::MAX_LITERAL_DEPTH;

/// Filters built lately, by wire bytes: clients send the same few filters
/// over and over, and building one can compile a regex. Only filters that
/// built are kept, so each refusal is still logged.
static CACHE: LazyLock<Mutex<HashMap<Box<[u8]>, Filter>>> = LazyLock::new(Default::default);
const CACHED_FILTERS: usize = 256;
const CACHED_WIRE_MAX: usize = 4096;

/// The result code of a record the filter leaves out.
pub const FILTERED_OUT: u8 = 27;

/// A filter expression decoded from field 43.
#[derive(Debug, Clone)]
pub struct Filter {
    program: Arc<build::Program>,
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
    /// Refuses what the sandbox does not evaluate, with a warning naming it.
    pub(crate) fn unsupported(what: impl Into<String>) -> FilterError {
        let what = what.into();
        tracing::warn!("filter expression refused (16): {what}");
        FilterError::Unsupported(what)
    }

    /// The result code a request answers with.
    pub fn result_code(&self) -> u8 {
        match self {
            FilterError::Build(_) => 4,
            FilterError::Unsupported(_) => 16,
        }
    }
}

impl std::fmt::Display for FilterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FilterError::Build(why) => write!(f, "filter cannot be built: {why}"),
            FilterError::Unsupported(what) => {
                write!(f, "filter not evaluated by the sandbox: {what}")
            }
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
    /// using what the sandbox does not evaluate is `Unsupported` (logged).
    pub fn parse(wire: &[u8]) -> Result<Filter, FilterError> {
        let cacheable = wire.len() <= CACHED_WIRE_MAX;
        if cacheable && let Some(filter) = CACHE.lock().get(wire) {
            return Ok(filter.clone());
        }
        let filter = Filter {
            program: Arc::new(build::compile(wire)?),
        };
        if cacheable {
            let mut cache = CACHE.lock();
            if cache.len() >= CACHED_FILTERS {
                cache.clear();
            }
            cache.insert(wire.into(), filter.clone());
        }
        Ok(filter)
    }

    /// Whether `subject` passes (unknown counts as false). Every check
    /// happens in `parse`, so this never fails today.
    pub fn matches(&self, subject: &Subject) -> Result<bool, FilterError> {
        Ok(eval::run(&self.program, subject, false) == Some(true))
    }

    /// True when the record's metadata alone (set, key existence, digest,
    /// times, size; bins and key values unknown) already makes the filter
    /// false: a background job counts such a record in `recs-filtered-meta`.
    pub fn fails_on_metadata(&self, subject: &Subject) -> bool {
        eval::run(&self.program, subject, true) == Some(false)
    }
}

/// Field 43 of a single-record command (or a batch row's own filter),
/// kept as decoded until the record is known to exist.
#[derive(Debug, Clone, Default)]
pub struct RecordFilter(Option<Result<Filter, FilterError>>);

impl RecordFilter {
    /// No filter: every record passes.
    pub fn none() -> Self {
        RecordFilter(None)
    }

    /// Decodes the field if there is one; errors wait for [`Self::check`].
    pub fn from_field(field: Option<&[u8]>) -> Self {
        RecordFilter(field.map(Filter::parse))
    }

    /// A filter decoded elsewhere (e.g. a batch-wide one, already checked).
    pub fn from_filter(filter: Filter) -> Self {
        RecordFilter(Some(Ok(filter)))
    }

    pub fn is_none(&self) -> bool {
        self.0.is_none()
    }

    /// Call only for an existing record: `Err(code)` is the answer instead
    /// of the command (27 filtered out, 4 cannot be built, 16 not evaluated).
    pub fn check(&self, subject: &Subject) -> Result<(), u8> {
        match &self.0 {
            None => Ok(()),
            Some(Err(e)) => Err(e.result_code()),
            Some(Ok(filter)) => match filter.matches(subject) {
                Ok(true) => Ok(()),
                Ok(false) => Err(FILTERED_OUT),
                Err(e) => Err(e.result_code()),
            },
        }
    }
}
