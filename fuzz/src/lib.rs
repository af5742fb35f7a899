//! What the fuzz targets run (see `checks`), shared with the corpus replay test.
#![forbid(unsafe_code)]

pub mod checks;
