//! Tensor files by hand: safetensors and NumPy `.npy`, encoded and decoded in memory.
//!
//! Sites hold frozen-encoder features for the image–text jobs in one of these two
//! formats (DESIGN section 4.4), and the jobs exchange model weights as safetensors bytes.
//! Both formats are a small header followed by little-endian row-major numbers, so they
//! are implemented here rather than pulled in as dependencies. This module is pure: the
//! caller reads the file and hands over its bytes, or writes the bytes it gets back.
//!
//! - [`read_safetensors`] / [`write_safetensors`]: the Hugging Face format
//!   (<https://github.com/huggingface/safetensors>, "Format" section).
//! - [`read_npy`] / [`write_npy`]: NumPy's format versions 1.0, 2.0 and 3.0
//!   (NEP 1, `numpy.lib.format`).
//!
//! Readers validate everything that would otherwise turn into an out-of-bounds read or a
//! silent misinterpretation (header length, offsets, byte lengths against shapes, dtypes)
//! and every error names the tensor it is about. Values are not checked: NaN or infinite
//! features are the data adapter's business, because it knows which rows they are in.

mod npy;
mod safetensors;

pub use npy::{read_npy, write_npy, write_npy_f32};
pub use safetensors::{
    SafetensorsFile, read_safetensors, read_safetensors_file, write_safetensors,
    write_safetensors_with_metadata,
};

use std::fmt;

/// Element type of a tensor as stored in a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dtype {
    /// IEEE 754 binary32.
    F32,
    /// IEEE 754 binary64.
    F64,
    /// Signed 64-bit integer.
    I64,
    /// Signed 32-bit integer.
    I32,
    /// Unsigned byte.
    U8,
    /// One byte, zero is false.
    Bool,
}

impl Dtype {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Dtype::F32 | Dtype::I32 => 4,
            Dtype::F64 | Dtype::I64 => 8,
            Dtype::U8 | Dtype::Bool => 1,
        }
    }

    /// The name safetensors uses (`F32`, `BOOL`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Dtype::F32 => "F32",
            Dtype::F64 => "F64",
            Dtype::I64 => "I64",
            Dtype::I32 => "I32",
            Dtype::U8 => "U8",
            Dtype::Bool => "BOOL",
        }
    }

    /// Parses a safetensors dtype name; `None` for types Silo does not read (F16, BF16,
    /// I8, U16, ...).
    pub fn parse(name: &str) -> Option<Dtype> {
        Some(match name {
            "F32" => Dtype::F32,
            "F64" => Dtype::F64,
            "I64" => Dtype::I64,
            "I32" => Dtype::I32,
            "U8" => Dtype::U8,
            "BOOL" => Dtype::Bool,
            _ => return None,
        })
    }
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The elements of a tensor, row-major, in their stored type.
#[derive(Clone, Debug, PartialEq)]
pub enum TensorData {
    /// `F32` elements.
    F32(Vec<f32>),
    /// `F64` elements.
    F64(Vec<f64>),
    /// `I64` elements.
    I64(Vec<i64>),
    /// `I32` elements.
    I32(Vec<i32>),
    /// `U8` elements.
    U8(Vec<u8>),
    /// `BOOL` elements.
    Bool(Vec<bool>),
}

impl TensorData {
    /// The element type.
    pub fn dtype(&self) -> Dtype {
        match self {
            TensorData::F32(_) => Dtype::F32,
            TensorData::F64(_) => Dtype::F64,
            TensorData::I64(_) => Dtype::I64,
            TensorData::I32(_) => Dtype::I32,
            TensorData::U8(_) => Dtype::U8,
            TensorData::Bool(_) => Dtype::Bool,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            TensorData::F32(v) => v.len(),
            TensorData::F64(v) => v.len(),
            TensorData::I64(v) => v.len(),
            TensorData::I32(v) => v.len(),
            TensorData::U8(v) => v.len(),
            TensorData::Bool(v) => v.len(),
        }
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Decodes `bytes` (a whole number of elements) as `dtype`, in the given byte order.
    fn decode(dtype: Dtype, bytes: &[u8], big_endian: bool) -> TensorData {
        macro_rules! numbers {
            ($t:ty, $n:literal) => {
                bytes
                    .chunks_exact($n)
                    .map(|c| {
                        let b: [u8; $n] = c.try_into().expect("chunks_exact yields whole chunks");
                        if big_endian {
                            <$t>::from_be_bytes(b)
                        } else {
                            <$t>::from_le_bytes(b)
                        }
                    })
                    .collect()
            };
        }
        match dtype {
            Dtype::F32 => TensorData::F32(numbers!(f32, 4)),
            Dtype::F64 => TensorData::F64(numbers!(f64, 8)),
            Dtype::I64 => TensorData::I64(numbers!(i64, 8)),
            Dtype::I32 => TensorData::I32(numbers!(i32, 4)),
            Dtype::U8 => TensorData::U8(bytes.to_vec()),
            Dtype::Bool => TensorData::Bool(bytes.iter().map(|&b| b != 0).collect()),
        }
    }
}

/// One named tensor read from a file.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    /// Its name in the file (for `.npy`, the name the caller gave).
    pub name: String,
    /// Its shape; `[]` is a scalar (one element).
    pub shape: Vec<usize>,
    /// Its elements, row-major.
    pub data: TensorData,
}

impl Tensor {
    /// The stored element type.
    pub fn dtype(&self) -> Dtype {
        self.data.dtype()
    }

    /// Number of elements (the product of the shape).
    pub fn numel(&self) -> usize {
        self.data.len()
    }

    /// The elements as `f32`. Every dtype converts: `F64` and large integers round to the
    /// nearest `f32` (an `F64` beyond the `f32` range becomes infinite, which the caller's
    /// finiteness check then reports), booleans become 0 and 1.
    pub fn to_f32(&self) -> Vec<f32> {
        match &self.data {
            TensorData::F32(v) => v.clone(),
            TensorData::F64(v) => v.iter().map(|&x| x as f32).collect(),
            TensorData::I64(v) => v.iter().map(|&x| x as f32).collect(),
            TensorData::I32(v) => v.iter().map(|&x| x as f32).collect(),
            TensorData::U8(v) => v.iter().map(|&x| f32::from(x)).collect(),
            TensorData::Bool(v) => v.iter().map(|&x| f32::from(u8::from(x))).collect(),
        }
    }

    /// The elements as `i64`. Integer and boolean dtypes always convert; a floating-point
    /// tensor converts only when every element is an integer in the `i64` range (labels
    /// are sometimes saved as floats), otherwise [`TensorFileError::NotInteger`] names the
    /// first element that is not.
    pub fn to_i64(&self) -> Result<Vec<i64>, TensorFileError> {
        fn floats(name: &str, v: impl Iterator<Item = f64>) -> Result<Vec<i64>, TensorFileError> {
            // 2^63 is exactly representable; i64::MAX is not, so compare with the bound.
            const LIMIT: f64 = 9_223_372_036_854_775_808.0;
            v.enumerate()
                .map(|(index, x)| {
                    if x.fract() == 0.0 && (-LIMIT..LIMIT).contains(&x) {
                        Ok(x as i64)
                    } else {
                        Err(TensorFileError::NotInteger {
                            tensor: name.to_string(),
                            index,
                            value: x,
                        })
                    }
                })
                .collect()
        }
        Ok(match &self.data {
            TensorData::F32(v) => floats(&self.name, v.iter().map(|&x| f64::from(x)))?,
            TensorData::F64(v) => floats(&self.name, v.iter().copied())?,
            TensorData::I64(v) => v.clone(),
            TensorData::I32(v) => v.iter().map(|&x| i64::from(x)).collect(),
            TensorData::U8(v) => v.iter().map(|&x| i64::from(x)).collect(),
            TensorData::Bool(v) => v.iter().map(|&x| i64::from(x)).collect(),
        })
    }
}

/// A tensor to write: its shape and borrowed row-major elements. Writers produce `F32`
/// and `I64`, the two types Silo's files need (features and weights; labels and splits).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TensorRef<'a> {
    /// `F32` elements.
    F32 {
        /// The shape; its product must equal `data.len()`.
        shape: &'a [usize],
        /// Row-major elements.
        data: &'a [f32],
    },
    /// `I64` elements.
    I64 {
        /// The shape; its product must equal `data.len()`.
        shape: &'a [usize],
        /// Row-major elements.
        data: &'a [i64],
    },
}

impl<'a> TensorRef<'a> {
    /// The shape.
    pub fn shape(&self) -> &'a [usize] {
        match *self {
            TensorRef::F32 { shape, .. } | TensorRef::I64 { shape, .. } => shape,
        }
    }

    /// The element type.
    pub fn dtype(&self) -> Dtype {
        match self {
            TensorRef::F32 { .. } => Dtype::F32,
            TensorRef::I64 { .. } => Dtype::I64,
        }
    }

    /// Number of elements.
    fn len(&self) -> usize {
        match self {
            TensorRef::F32 { data, .. } => data.len(),
            TensorRef::I64 { data, .. } => data.len(),
        }
    }

    /// Appends the elements, little-endian.
    ///
    /// # Panics
    /// If the shape's product is not the number of elements (a caller bug: the writers
    /// would otherwise produce a file no reader accepts).
    fn write_le(&self, name: &str, out: &mut Vec<u8>) {
        let numel: usize = self.shape().iter().product();
        assert_eq!(
            numel,
            self.len(),
            "tensor {name:?}: shape {:?} holds {numel} elements but {} were given",
            self.shape(),
            self.len()
        );
        match self {
            TensorRef::F32 { data, .. } => data
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            TensorRef::I64 { data, .. } => data
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        }
    }
}

/// Why a tensor file was refused. Every variant about one tensor names it.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum TensorFileError {
    /// The file is shorter than the 8-byte header length of a safetensors file.
    #[error(
        "{len} byte(s) is too short for a safetensors file (it starts with an 8-byte header length)"
    )]
    TooShort {
        /// The file's length.
        len: usize,
    },
    /// The declared header length runs past the end of the file.
    #[error("the safetensors header length {header} exceeds the {available} byte(s) after it")]
    HeaderLength {
        /// The declared length.
        header: u64,
        /// Bytes after the length field.
        available: usize,
    },
    /// The safetensors header is not a UTF-8 JSON object of the expected shape.
    #[error("the safetensors header is not valid: {reason}")]
    Header {
        /// What is wrong.
        reason: String,
    },
    /// A safetensors header entry lacks a field or has one of the wrong type.
    #[error("tensor {tensor:?}: {reason}")]
    Entry {
        /// The tensor.
        tensor: String,
        /// What is wrong.
        reason: String,
    },
    /// The dtype is not one Silo reads.
    #[error(
        "tensor {tensor:?}: unsupported dtype {dtype:?} (supported: F32, F64, I64, I32, U8, BOOL)"
    )]
    UnsupportedDtype {
        /// The tensor.
        tensor: String,
        /// The dtype as written in the file.
        dtype: String,
    },
    /// A tensor's `data_offsets` point outside the data buffer.
    #[error(
        "tensor {tensor:?}: data_offsets [{start}, {end}] lie outside the {buffer}-byte data buffer"
    )]
    OffsetsOutOfBounds {
        /// The tensor.
        tensor: String,
        /// First byte.
        start: u64,
        /// One past the last byte.
        end: u64,
        /// Size of the data buffer.
        buffer: usize,
    },
    /// Tensors leave a gap or overlap: the format requires them to tile the buffer.
    #[error(
        "tensor {tensor:?}: data starts at byte {start} of the buffer but the previous tensor ends at byte {expected} (tensors must be contiguous and must not overlap)"
    )]
    NotContiguous {
        /// The tensor.
        tensor: String,
        /// Where it starts.
        start: u64,
        /// Where it should start.
        expected: u64,
    },
    /// Bytes after the last tensor that no tensor accounts for.
    #[error("the data buffer has {unused} byte(s) after the last tensor ({buffer} in all)")]
    TrailingBytes {
        /// Unaccounted bytes.
        unused: u64,
        /// Size of the data buffer.
        buffer: usize,
    },
    /// The stored bytes do not match the shape and dtype.
    #[error(
        "tensor {tensor:?}: shape {shape:?} of {dtype} needs {expected} byte(s) but {actual} are stored"
    )]
    ByteLength {
        /// The tensor.
        tensor: String,
        /// Its shape.
        shape: Vec<usize>,
        /// Its dtype.
        dtype: Dtype,
        /// product(shape) × dtype size.
        expected: u64,
        /// Bytes stored.
        actual: u64,
    },
    /// The file does not start with NumPy's magic string.
    #[error("not a .npy file (it does not start with \\x93NUMPY)")]
    NpyMagic,
    /// A `.npy` format version other than 1.0, 2.0 or 3.0.
    #[error(".npy format version {major}.{minor} is not supported (1.0, 2.0 and 3.0 are)")]
    NpyVersion {
        /// Major version byte.
        major: u8,
        /// Minor version byte.
        minor: u8,
    },
    /// The `.npy` header is truncated or its dictionary cannot be parsed.
    #[error("array {tensor:?}: bad .npy header: {reason}")]
    NpyHeader {
        /// The name the caller gave the array.
        tensor: String,
        /// What is wrong.
        reason: String,
    },
    /// A `.npy` `descr` Silo does not read (complex, float16, object, structured, ...).
    #[error(
        "array {tensor:?}: unsupported .npy dtype {descr:?} (supported: <f4, <f8, <i8, <i4, |u1, |b1 and their big-endian forms)"
    )]
    NpyDescr {
        /// The name the caller gave the array.
        tensor: String,
        /// The `descr` as written.
        descr: String,
    },
    /// A floating-point element that was asked for as an integer is not one.
    #[error("tensor {tensor:?}: element {index} is {value}, not an integer")]
    NotInteger {
        /// The tensor.
        tensor: String,
        /// Row-major index of the element.
        index: usize,
        /// Its value.
        value: f64,
    },
}

/// product(shape) × `size`, or `None` on overflow.
fn byte_length(shape: &[usize], size: usize) -> Option<u64> {
    shape
        .iter()
        .try_fold(size as u64, |acc, &d| acc.checked_mul(d as u64))
}

#[cfg(test)]
mod tests;
