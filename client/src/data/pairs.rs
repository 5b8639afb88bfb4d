//! Image–text pair datasets (`kind = "pairs"`): frozen-encoder features for the
//! `contrastive_svd` and `dp_clip` jobs.
//!
//! Two layouts (DESIGN sections 4.4 and 7):
//! - `path` = one safetensors file with `image` `[n, d1]` and `text` `[n, d2]`, and optionally
//!   `label` `[n]` (class index), `split` `[n]` (0 = train, 1 = held-out test), `image_only`
//!   `[m1, d1]` and `text_only` `[m2, d2]` (unpaired rows); other tensors are ignored;
//! - `image` + `text` = two `.npy` files of `[n, d1]` and `[n, d2]`.
//!
//! Features of any stored numeric dtype are converted to `f32`, labels and splits to
//! `i64`. Everything a job would otherwise trip over is refused here, before anything is
//! charged, with the file and tensor named: shapes that are not 2-D, row counts that
//! disagree, unpaired dimensions that differ from the paired ones, labels below zero,
//! splits other than 0 and 1, and NaN or infinite features (with their row, counted from
//! 0 as NumPy indexes). One pair is the privacy unit.

use std::path::{Path, PathBuf};

use silo_common::tensorfile::{Dtype, Tensor, TensorFileError, read_npy, read_safetensors};

use crate::config::{DatasetConfig, DatasetKind};

/// A pairs dataset as loaded: row-major `f32` features and the optional extras.
#[derive(Clone, Debug, PartialEq)]
pub struct PairsData {
    /// Image features of the pairs, n×d1.
    pub image: Vec<f32>,
    /// Text features of the pairs, n×d2.
    pub text: Vec<f32>,
    /// Number of pairs.
    pub n: usize,
    /// Image dimension.
    pub d1: usize,
    /// Text dimension.
    pub d2: usize,
    /// Class index of each pair (≥ 0), when the file has `label`.
    pub label: Option<Vec<i64>>,
    /// 0 = train, 1 = held-out test, when the file has `split`.
    pub split: Option<Vec<i64>>,
    /// Unpaired image rows (m1×d1) and m1, when the file has `image_only`.
    pub image_only: Option<(Vec<f32>, usize)>,
    /// Unpaired text rows (m2×d2) and m2, when the file has `text_only`.
    pub text_only: Option<(Vec<f32>, usize)>,
    /// The stored dtype of `image`.
    pub image_dtype: Dtype,
    /// The stored dtype of `text`.
    pub text_dtype: Dtype,
    /// The files read.
    pub files: Vec<PathBuf>,
}

impl PairsData {
    /// Image features of pair `i`.
    pub fn image_row(&self, i: usize) -> &[f32] {
        &self.image[i * self.d1..(i + 1) * self.d1]
    }

    /// Text features of pair `i`.
    pub fn text_row(&self, i: usize) -> &[f32] {
        &self.text[i * self.d2..(i + 1) * self.d2]
    }

    /// Unpaired image rows (0 when there are none).
    pub fn image_only_rows(&self) -> usize {
        self.image_only.as_ref().map_or(0, |(_, m)| *m)
    }

    /// Unpaired text rows (0 when there are none).
    pub fn text_only_rows(&self) -> usize {
        self.text_only.as_ref().map_or(0, |(_, m)| *m)
    }

    /// Unpaired image row `i`.
    pub fn image_only_row(&self, i: usize) -> &[f32] {
        let (rows, _) = self.image_only.as_ref().expect("no image_only rows");
        &rows[i * self.d1..(i + 1) * self.d1]
    }

    /// Unpaired text row `i`.
    pub fn text_only_row(&self, i: usize) -> &[f32] {
        let (rows, _) = self.text_only.as_ref().expect("no text_only rows");
        &rows[i * self.d2..(i + 1) * self.d2]
    }

    /// Pairs in the training split: every pair when there is no `split`.
    pub fn train_indices(&self) -> Vec<usize> {
        match &self.split {
            Some(split) => (0..self.n).filter(|&i| split[i] == 0).collect(),
            None => (0..self.n).collect(),
        }
    }

    /// Pairs in the held-out test split: none when there is no `split`.
    pub fn test_indices(&self) -> Vec<usize> {
        match &self.split {
            Some(split) => (0..self.n).filter(|&i| split[i] == 1).collect(),
            None => Vec::new(),
        }
    }

    /// Number of distinct labels, when there are labels.
    pub fn classes(&self) -> Option<usize> {
        self.label.as_ref().map(|labels| {
            let mut distinct = labels.clone();
            distinct.sort_unstable();
            distinct.dedup();
            distinct.len()
        })
    }
}

/// Why a pairs dataset was refused. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum PairsError {
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid safetensors or `.npy` file.
    #[error("{}: {source}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What the decoder found.
        #[source]
        source: TensorFileError,
    },
    /// A required tensor is absent.
    #[error("{}: no tensor {tensor:?} (the file has: {})", path.display(), found.join(", "))]
    Missing {
        /// The file.
        path: PathBuf,
        /// The tensor looked for.
        tensor: &'static str,
        /// The tensors the file has.
        found: Vec<String>,
    },
    /// A tensor has the wrong number of dimensions or no rows or columns.
    #[error("{}: tensor {tensor} has shape {shape:?}; expected {expected}", path.display())]
    Shape {
        /// The file.
        path: PathBuf,
        /// The tensor.
        tensor: &'static str,
        /// Its shape.
        shape: Vec<usize>,
        /// What was expected.
        expected: &'static str,
    },
    /// Two tensors that must agree on rows (pairs) or columns (dimensions) do not.
    #[error("{}: tensor {tensor} has {got} {what} but {other} has {expected}", path.display())]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// The tensor.
        tensor: &'static str,
        /// `rows` or `columns`.
        what: &'static str,
        /// Its count.
        got: usize,
        /// The tensor it must agree with.
        other: &'static str,
        /// That tensor's count.
        expected: usize,
    },
    /// A feature is NaN or infinite.
    #[error("{}: tensor {tensor} row {row} has a non-finite value ({value} in column {column})", path.display())]
    NonFinite {
        /// The file.
        path: PathBuf,
        /// The tensor.
        tensor: &'static str,
        /// Row (from 0).
        row: usize,
        /// Column (from 0).
        column: usize,
        /// The value after conversion to `f32`.
        value: f32,
    },
    /// A label or split value out of its range, or not an integer.
    #[error("{}: tensor {tensor} row {row}: {message}", path.display())]
    Value {
        /// The file.
        path: PathBuf,
        /// The tensor.
        tensor: &'static str,
        /// Row (from 0).
        row: usize,
        /// What is wrong.
        message: String,
    },
    /// The dataset config names no file to read.
    #[error("dataset {dataset}: {message}")]
    Config {
        /// The dataset.
        dataset: String,
        /// What is missing.
        message: String,
    },
}

/// Reads a `pairs` dataset (either layout) and checks it.
pub fn load(dataset: &DatasetConfig) -> Result<PairsData, PairsError> {
    if dataset.kind != DatasetKind::Pairs {
        return Err(PairsError::Config {
            dataset: dataset.name.clone(),
            message: format!("kind {} is not a pairs dataset", dataset.kind),
        });
    }
    match (&dataset.path, &dataset.image, &dataset.text) {
        (Some(path), None, None) => load_safetensors(path),
        (None, Some(image), Some(text)) => load_npy(image, text),
        _ => Err(PairsError::Config {
            dataset: dataset.name.clone(),
            message: "expected either path (a safetensors file) or image and text (.npy files)"
                .into(),
        }),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, PairsError> {
    std::fs::read(path).map_err(|source| PairsError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a safetensors file with `image`, `text` and the optional extras.
pub fn load_safetensors(path: &Path) -> Result<PairsData, PairsError> {
    let bytes = read(path)?;
    let tensors = read_safetensors(&bytes).map_err(|source| PairsError::Format {
        path: path.to_path_buf(),
        source,
    })?;
    drop(bytes);
    let find = |name: &str| tensors.iter().find(|t| t.name == name);
    let required = |name: &'static str| {
        find(name).ok_or_else(|| PairsError::Missing {
            path: path.to_path_buf(),
            tensor: name,
            found: tensors.iter().map(|t| t.name.clone()).collect(),
        })
    };
    let image = Matrix::new(path, "image", required("image")?)?;
    let text = Matrix::new(path, "text", required("text")?)?;
    image.same_rows(path, &text)?;
    let n = image.rows;
    let label = find("label")
        .map(|t| integers(path, "label", t, n, &image))
        .transpose()?;
    if let Some(labels) = &label
        && let Some(row) = labels.iter().position(|&l| l < 0)
    {
        return Err(value_error(
            path,
            "label",
            row,
            format!("{} is not a class index (expected 0 or more)", labels[row]),
        ));
    }
    let split = find("split")
        .map(|t| integers(path, "split", t, n, &image))
        .transpose()?;
    if let Some(split) = &split
        && let Some(row) = split.iter().position(|&s| s != 0 && s != 1)
    {
        return Err(value_error(
            path,
            "split",
            row,
            format!("{} is not 0 (train) or 1 (test)", split[row]),
        ));
    }
    let unpaired = |name: &'static str, paired: &Matrix| {
        find(name)
            .map(|t| {
                let m = Matrix::new_allow_empty(path, name, t)?;
                m.same_columns(path, paired)?;
                Ok((m.data, m.rows))
            })
            .transpose()
    };
    let image_only = unpaired("image_only", &image)?;
    let text_only = unpaired("text_only", &text)?;
    Ok(PairsData {
        n,
        d1: image.cols,
        d2: text.cols,
        image: image.data,
        text: text.data,
        label,
        split,
        image_only,
        text_only,
        image_dtype: image.dtype,
        text_dtype: text.dtype,
        files: vec![path.to_path_buf()],
    })
}

/// Reads two `.npy` files, `[n, d1]` image and `[n, d2]` text features.
pub fn load_npy(image_path: &Path, text_path: &Path) -> Result<PairsData, PairsError> {
    let decode = |path: &Path, name: &str| {
        read_npy(name, &read(path)?).map_err(|source| PairsError::Format {
            path: path.to_path_buf(),
            source,
        })
    };
    let image = Matrix::new(image_path, "image", &decode(image_path, "image")?)?;
    let text = Matrix::new(text_path, "text", &decode(text_path, "text")?)?;
    image.same_rows(text_path, &text)?;
    Ok(PairsData {
        n: image.rows,
        d1: image.cols,
        d2: text.cols,
        image: image.data,
        text: text.data,
        label: None,
        split: None,
        image_only: None,
        text_only: None,
        image_dtype: image.dtype,
        text_dtype: text.dtype,
        files: vec![image_path.to_path_buf(), text_path.to_path_buf()],
    })
}

fn value_error(path: &Path, tensor: &'static str, row: usize, message: String) -> PairsError {
    PairsError::Value {
        path: path.to_path_buf(),
        tensor,
        row,
        message,
    }
}

/// A checked 2-D feature tensor.
struct Matrix {
    name: &'static str,
    rows: usize,
    cols: usize,
    dtype: Dtype,
    data: Vec<f32>,
}

impl Matrix {
    /// A 2-D tensor with at least one row and one column and finite values.
    fn new(path: &Path, name: &'static str, t: &Tensor) -> Result<Matrix, PairsError> {
        let m = Matrix::new_allow_empty(path, name, t)?;
        if m.rows == 0 {
            return Err(PairsError::Shape {
                path: path.to_path_buf(),
                tensor: name,
                shape: t.shape.clone(),
                expected: "at least one row",
            });
        }
        Ok(m)
    }

    /// A 2-D tensor with at least one column and finite values (rows may be zero).
    fn new_allow_empty(path: &Path, name: &'static str, t: &Tensor) -> Result<Matrix, PairsError> {
        let (rows, cols) = match t.shape.as_slice() {
            &[rows, cols] if cols > 0 => (rows, cols),
            _ => {
                return Err(PairsError::Shape {
                    path: path.to_path_buf(),
                    tensor: name,
                    shape: t.shape.clone(),
                    expected: "a 2-D [rows, features] tensor with at least one feature",
                });
            }
        };
        let data = t.to_f32();
        if let Some(i) = data.iter().position(|v| !v.is_finite()) {
            return Err(PairsError::NonFinite {
                path: path.to_path_buf(),
                tensor: name,
                row: i / cols,
                column: i % cols,
                value: data[i],
            });
        }
        Ok(Matrix {
            name,
            rows,
            cols,
            dtype: t.dtype(),
            data,
        })
    }

    fn same_rows(&self, path: &Path, other: &Matrix) -> Result<(), PairsError> {
        if self.rows == other.rows {
            return Ok(());
        }
        Err(PairsError::Mismatch {
            path: path.to_path_buf(),
            tensor: other.name,
            what: "rows",
            got: other.rows,
            other: self.name,
            expected: self.rows,
        })
    }

    fn same_columns(&self, path: &Path, paired: &Matrix) -> Result<(), PairsError> {
        if self.cols == paired.cols {
            return Ok(());
        }
        Err(PairsError::Mismatch {
            path: path.to_path_buf(),
            tensor: self.name,
            what: "columns",
            got: self.cols,
            other: paired.name,
            expected: paired.cols,
        })
    }
}

/// A per-pair integer tensor (`label`, `split`): shape `[n]` or `[n, 1]`, integer-valued.
fn integers(
    path: &Path,
    name: &'static str,
    t: &Tensor,
    n: usize,
    image: &Matrix,
) -> Result<Vec<i64>, PairsError> {
    let rows = match t.shape.as_slice() {
        &[rows] | &[rows, 1] => rows,
        _ => {
            return Err(PairsError::Shape {
                path: path.to_path_buf(),
                tensor: name,
                shape: t.shape.clone(),
                expected: "[n] or [n, 1], one value per pair",
            });
        }
    };
    if rows != n {
        return Err(PairsError::Mismatch {
            path: path.to_path_buf(),
            tensor: name,
            what: "rows",
            got: rows,
            other: image.name,
            expected: n,
        });
    }
    t.to_i64().map_err(|e| match e {
        TensorFileError::NotInteger { index, value, .. } => {
            value_error(path, name, index, format!("{value} is not an integer"))
        }
        source => PairsError::Format {
            path: path.to_path_buf(),
            source,
        },
    })
}

#[cfg(test)]
mod tests;
