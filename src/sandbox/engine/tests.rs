//! Engine tests beyond the recorded conformance cases.

use super::*;
