//! FHIR R4 folders (placeholder until the adapter lands).

use std::path::Path;

use super::ehr::{EhrError, EhrLoad};

/// Reads a FHIR folder.
pub fn load(path: &Path, _dictionary: Option<&Path>) -> Result<EhrLoad, EhrError> {
    Err(EhrError::Format {
        path: path.to_path_buf(),
        line: None,
        message: "the FHIR adapter is not built yet".into(),
    })
}
