//! OMOP-CDM CSV folders (placeholder until the adapter lands).

use std::path::Path;

use super::ehr::{EhrError, EhrLoad};

/// Reads an OMOP folder.
pub fn load(path: &Path, _privacy_unit: &str) -> Result<EhrLoad, EhrError> {
    Err(EhrError::Format {
        path: path.to_path_buf(),
        line: None,
        message: "the OMOP adapter is not built yet".into(),
    })
}
