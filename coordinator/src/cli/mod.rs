//! Command-line front end of `silo`.
