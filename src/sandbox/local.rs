//! Local sandbox directories (placeholder, filled in below).
