//! The Silo site daemon (`silo-site`).
