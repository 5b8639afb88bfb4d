//! NumPy's `.npy` format, versions 1.0, 2.0 and 3.0.
//!
//! Layout: the magic `\x93NUMPY`, a major and a minor version byte, the header length
//! (u16 little-endian in 1.0, u32 in 2.0 and 3.0), then the header: a Python dict literal
//! `{'descr': '<f4', 'fortran_order': False, 'shape': (n, d), }` padded with spaces and
//! ended by a newline, then the elements. Version 3.0 only allows a UTF-8 header.
//!
//! Big-endian arrays (`>f4`, ...) are converted, and Fortran-ordered arrays transposed to
//! row-major, on reading: both are what `np.save` writes for arrays that happen to be in
//! that layout, and refusing them would only send the operator back to NumPy.

use super::{Dtype, Tensor, TensorData, TensorFileError, TensorRef, byte_length};

const MAGIC: &[u8; 6] = b"\x93NUMPY";
/// NumPy aligns the data to this many bytes.
const ALIGN: usize = 64;
/// Spare header room NumPy leaves for the growth axis (`GROWTH_AXIS_MAX_DIGITS`).
const GROWTH_AXIS_MAX_DIGITS: usize = 21;

/// Decodes a `.npy` file into a tensor called `name` (the name only labels errors and the
/// result; callers use the file's role, such as `image`).
pub fn read_npy(name: &str, bytes: &[u8]) -> Result<Tensor, TensorFileError> {
    let header_err = |reason: String| TensorFileError::NpyHeader {
        tensor: name.to_string(),
        reason,
    };
    if bytes.len() < 8 || &bytes[..6] != MAGIC {
        return Err(TensorFileError::NpyMagic);
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let (len_size, utf8) = match (major, minor) {
        (1, 0) => (2, false),
        (2, 0) => (4, false),
        (3, 0) => (4, true),
        _ => return Err(TensorFileError::NpyVersion { major, minor }),
    };
    let start = 8 + len_size;
    let header_len = match bytes.get(8..start) {
        Some(&[a, b]) => u16::from_le_bytes([a, b]) as usize,
        Some(&[a, b, c, d]) => u32::from_le_bytes([a, b, c, d]) as usize,
        _ => return Err(header_err("the file ends inside the header length".into())),
    };
    let Some(header) = bytes.get(start..start + header_len) else {
        return Err(header_err(format!(
            "the header length {header_len} runs past the end of the file"
        )));
    };
    // Versions 1.0 and 2.0 are latin-1; anything NumPy writes there is ASCII.
    let header = if utf8 || header.is_ascii() {
        std::str::from_utf8(header).map_err(|_| header_err("the header is not UTF-8".into()))?
    } else {
        return Err(header_err("the header is not ASCII".into()));
    };
    let dict = Header::parse(header).map_err(header_err)?;
    let descr = dict
        .descr
        .ok_or_else(|| header_err("no 'descr' key".into()))?;
    let fortran = dict
        .fortran_order
        .ok_or_else(|| header_err("no 'fortran_order' key".into()))?;
    let shape = dict
        .shape
        .ok_or_else(|| header_err("no 'shape' key".into()))?;
    let (dtype, big_endian) = parse_descr(&descr).ok_or_else(|| TensorFileError::NpyDescr {
        tensor: name.to_string(),
        descr: descr.clone(),
    })?;

    let data = &bytes[start + header_len..];
    let expected = byte_length(&shape, dtype.size())
        .ok_or_else(|| header_err(format!("shape {shape:?} is too large")))?;
    if expected != data.len() as u64 {
        return Err(TensorFileError::ByteLength {
            tensor: name.to_string(),
            shape,
            dtype,
            expected,
            actual: data.len() as u64,
        });
    }
    let mut data = TensorData::decode(dtype, data, big_endian);
    if fortran && shape.len() > 1 {
        data = to_row_major(data, &shape);
    }
    Ok(Tensor {
        name: name.to_string(),
        shape,
        data,
    })
}

/// `descr` → (dtype, big-endian?) for the types Silo reads.
fn parse_descr(descr: &str) -> Option<(Dtype, bool)> {
    let (order, code) = descr.split_at_checked(1)?;
    let big_endian = match order {
        "<" | "|" | "=" => false,
        ">" => true,
        _ => return None,
    };
    let dtype = match code {
        "f4" => Dtype::F32,
        "f8" => Dtype::F64,
        "i8" => Dtype::I64,
        "i4" => Dtype::I32,
        "u1" => Dtype::U8,
        "b1" => Dtype::Bool,
        _ => return None,
    };
    Some((dtype, big_endian))
}

/// Reorders column-major (Fortran) elements of `shape` into row-major order.
fn to_row_major(data: TensorData, shape: &[usize]) -> TensorData {
    // Element at multi-index (i_0, ..., i_k) sits at Σ i_j · stride_j in Fortran order,
    // with stride_0 = 1 and stride_j = stride_{j-1} · shape_{j-1}.
    let mut strides = vec![1usize; shape.len()];
    for j in 1..shape.len() {
        strides[j] = strides[j - 1] * shape[j - 1];
    }
    let numel: usize = shape.iter().product();
    let mut index = vec![0usize; shape.len()];
    let mut order = Vec::with_capacity(numel);
    for _ in 0..numel {
        order.push(
            index
                .iter()
                .zip(&strides)
                .map(|(i, s)| i * s)
                .sum::<usize>(),
        );
        // Advance the row-major multi-index (last axis fastest).
        for j in (0..shape.len()).rev() {
            index[j] += 1;
            if index[j] < shape[j] {
                break;
            }
            index[j] = 0;
        }
    }
    fn gather<T: Copy>(v: &[T], order: &[usize]) -> Vec<T> {
        order.iter().map(|&i| v[i]).collect()
    }
    match data {
        TensorData::F32(v) => TensorData::F32(gather(&v, &order)),
        TensorData::F64(v) => TensorData::F64(gather(&v, &order)),
        TensorData::I64(v) => TensorData::I64(gather(&v, &order)),
        TensorData::I32(v) => TensorData::I32(gather(&v, &order)),
        TensorData::U8(v) => TensorData::U8(gather(&v, &order)),
        TensorData::Bool(v) => TensorData::Bool(gather(&v, &order)),
    }
}

/// The three keys of a `.npy` header dict.
#[derive(Debug, Default)]
struct Header {
    descr: Option<String>,
    fortran_order: Option<bool>,
    shape: Option<Vec<usize>>,
}

/// A Python literal as it appears in a `.npy` header.
enum Literal {
    Str(String),
    Bool(bool),
    Tuple(Vec<usize>),
}

impl Header {
    /// Parses the dict literal: string keys; string, boolean or integer-tuple values.
    fn parse(text: &str) -> Result<Header, String> {
        let mut p = Parser {
            s: text.as_bytes(),
            i: 0,
        };
        let mut header = Header::default();
        p.expect(b'{')?;
        loop {
            if p.eat(b'}') {
                break;
            }
            let key = match p.literal()? {
                Literal::Str(k) => k,
                _ => return Err(format!("expected a string key at byte {}", p.i)),
            };
            p.expect(b':')?;
            let value = p.literal()?;
            match (key.as_str(), value) {
                ("descr", Literal::Str(d)) => header.descr = Some(d),
                ("fortran_order", Literal::Bool(b)) => header.fortran_order = Some(b),
                ("shape", Literal::Tuple(s)) => header.shape = Some(s),
                ("descr" | "fortran_order" | "shape", _) => {
                    return Err(format!("'{key}' has a value of the wrong type"));
                }
                _ => return Err(format!("unexpected key '{key}'")),
            }
            if !p.eat(b',') {
                p.expect(b'}')?;
                break;
            }
        }
        p.skip_space();
        if p.i != p.s.len() {
            return Err(format!("unexpected text after the dict at byte {}", p.i));
        }
        Ok(header)
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn skip_space(&mut self) {
        while self.s.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
    }

    /// Consumes `c` (after whitespace) if it is next.
    fn eat(&mut self, c: u8) -> bool {
        self.skip_space();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!("expected '{}' at byte {}", c as char, self.i))
        }
    }

    fn literal(&mut self) -> Result<Literal, String> {
        self.skip_space();
        let rest = &self.s[self.i..];
        match rest.first() {
            Some(&q @ (b'\'' | b'"')) => {
                let end = rest[1..]
                    .iter()
                    .position(|&c| c == q)
                    .ok_or_else(|| format!("unterminated string at byte {}", self.i))?;
                let s = String::from_utf8_lossy(&rest[1..1 + end]).into_owned();
                self.i += end + 2;
                Ok(Literal::Str(s))
            }
            Some(b'(') => {
                self.i += 1;
                let mut dims = Vec::new();
                loop {
                    if self.eat(b')') {
                        break;
                    }
                    dims.push(self.integer()?);
                    if !self.eat(b',') {
                        self.expect(b')')?;
                        break;
                    }
                }
                Ok(Literal::Tuple(dims))
            }
            _ if rest.starts_with(b"True") => {
                self.i += 4;
                Ok(Literal::Bool(true))
            }
            _ if rest.starts_with(b"False") => {
                self.i += 5;
                Ok(Literal::Bool(false))
            }
            _ => Err(format!("unexpected value at byte {}", self.i)),
        }
    }

    /// A non-negative integer, with Python 2's optional `L` suffix.
    fn integer(&mut self) -> Result<usize, String> {
        self.skip_space();
        let start = self.i;
        while self.s.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
        let digits = std::str::from_utf8(&self.s[start..self.i]).expect("ASCII digits");
        let value = digits
            .parse()
            .map_err(|_| format!("expected a dimension at byte {start}"))?;
        if self.s.get(self.i) == Some(&b'L') {
            self.i += 1;
        }
        Ok(value)
    }
}

/// Encodes `tensor` as a version 1.0 `.npy` file, C order, byte for byte as `np.save`
/// writes it (the same header padding, including its spare room for the growth axis).
///
/// # Panics
/// If the shape's product differs from the number of elements.
pub fn write_npy(tensor: TensorRef<'_>) -> Vec<u8> {
    let shape = tensor.shape();
    let descr = match tensor {
        TensorRef::F32 { .. } => "<f4",
        TensorRef::I64 { .. } => "<i8",
    };
    let dims = match shape {
        [d] => format!("({d},)"),
        _ => {
            let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
            format!("({})", dims.join(", "))
        }
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {dims}, }}");
    if let Some(first) = shape.first() {
        header
            .push_str(&" ".repeat(GROWTH_AXIS_MAX_DIGITS.saturating_sub(first.to_string().len())));
    }
    // Magic (6) + version (2) + length (2) + header + newline, padded as NumPy pads: up to
    // the next multiple of 64 (a whole 64 more when already aligned).
    let padding = ALIGN - (10 + header.len() + 1) % ALIGN;
    header.push_str(&" ".repeat(padding));
    header.push('\n');
    let header_len =
        u16::try_from(header.len()).expect("a header for fewer than 2000 dimensions fits in 1.0");
    let mut out = Vec::with_capacity(10 + header.len() + tensor.len() * tensor.dtype().size());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&header_len.to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    tensor.write_le("array", &mut out);
    out
}

/// Shorthand for [`write_npy`] of an `f32` array.
pub fn write_npy_f32(shape: &[usize], data: &[f32]) -> Vec<u8> {
    write_npy(TensorRef::F32 { shape, data })
}
