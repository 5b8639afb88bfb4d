//! The safetensors format: an 8-byte little-endian header length N, N bytes of JSON
//! header, then one byte buffer that the tensors tile exactly.
//!
//! The header maps each tensor name to `{"dtype", "shape", "data_offsets": [start, end]}`
//! (offsets relative to the buffer) and may hold a `"__metadata__"` object of string
//! values. The reader enforces the format's rules (offsets in bounds, the tensors
//! contiguous, non-overlapping and covering the whole buffer, each byte range equal to
//! product(shape) × dtype size) because a file that breaks them is either corrupt or
//! crafted to make a reader misinterpret bytes.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{Dtype, Tensor, TensorData, TensorFileError, TensorRef, byte_length};

/// The key of the optional string-to-string metadata object in the header.
const METADATA: &str = "__metadata__";

/// A decoded safetensors file.
#[derive(Clone, Debug, PartialEq)]
pub struct SafetensorsFile {
    /// The tensors, in the order of their bytes in the file.
    pub tensors: Vec<Tensor>,
    /// The `__metadata__` object (empty when absent).
    pub metadata: BTreeMap<String, String>,
}

impl SafetensorsFile {
    /// The tensor called `name`, if any.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.iter().find(|t| t.name == name)
    }
}

/// Decodes a safetensors file's tensors (see [`read_safetensors_file`]).
pub fn read_safetensors(bytes: &[u8]) -> Result<Vec<Tensor>, TensorFileError> {
    read_safetensors_file(bytes).map(|f| f.tensors)
}

/// One header entry before its bytes are decoded.
struct Entry {
    name: String,
    dtype: Dtype,
    shape: Vec<usize>,
    start: u64,
    end: u64,
}

/// Decodes a safetensors file: every tensor (F32, F64, I64, I32, U8, BOOL) and the
/// metadata. Refuses a file whose header is malformed or whose offsets are out of bounds,
/// overlapping, leave a gap or disagree with the shape; each error names the tensor.
pub fn read_safetensors_file(bytes: &[u8]) -> Result<SafetensorsFile, TensorFileError> {
    let Some(len_bytes) = bytes.get(..8) else {
        return Err(TensorFileError::TooShort { len: bytes.len() });
    };
    let header_len = u64::from_le_bytes(len_bytes.try_into().expect("8 bytes"));
    let rest = &bytes[8..];
    if header_len > rest.len() as u64 {
        return Err(TensorFileError::HeaderLength {
            header: header_len,
            available: rest.len(),
        });
    }
    let (header, buffer) = rest.split_at(header_len as usize);
    let header: Value = serde_json::from_slice(header).map_err(|e| TensorFileError::Header {
        reason: e.to_string(),
    })?;
    let Value::Object(header) = header else {
        return Err(TensorFileError::Header {
            reason: "expected a JSON object".into(),
        });
    };

    let mut metadata = BTreeMap::new();
    let mut entries = Vec::with_capacity(header.len());
    for (name, value) in &header {
        if name == METADATA {
            metadata = parse_metadata(value)?;
            continue;
        }
        let entry = parse_entry(name, value)?;
        if entry.end > buffer.len() as u64 {
            return Err(TensorFileError::OffsetsOutOfBounds {
                tensor: entry.name,
                start: entry.start,
                end: entry.end,
                buffer: buffer.len(),
            });
        }
        entries.push(entry);
    }

    // The tensors must tile the buffer: sorted by offset, each starts where the last ended.
    entries.sort_by_key(|e| (e.start, e.end));
    let mut expected = 0u64;
    for e in &entries {
        if e.start != expected {
            return Err(TensorFileError::NotContiguous {
                tensor: e.name.clone(),
                start: e.start,
                expected,
            });
        }
        expected = e.end;
    }
    if expected != buffer.len() as u64 {
        return Err(TensorFileError::TrailingBytes {
            unused: buffer.len() as u64 - expected,
            buffer: buffer.len(),
        });
    }

    let tensors = entries
        .into_iter()
        .map(|e| Tensor {
            data: TensorData::decode(e.dtype, &buffer[e.start as usize..e.end as usize], false),
            name: e.name,
            shape: e.shape,
        })
        .collect();
    Ok(SafetensorsFile { tensors, metadata })
}

fn parse_metadata(value: &Value) -> Result<BTreeMap<String, String>, TensorFileError> {
    let bad = || TensorFileError::Header {
        reason: format!("{METADATA} must be an object of strings"),
    };
    let Value::Object(map) = value else {
        return Err(bad());
    };
    map.iter()
        .map(|(k, v)| Ok((k.clone(), v.as_str().ok_or_else(bad)?.to_string())))
        .collect()
}

fn parse_entry(name: &str, value: &Value) -> Result<Entry, TensorFileError> {
    let bad = |reason: String| TensorFileError::Entry {
        tensor: name.to_string(),
        reason,
    };
    let Value::Object(fields) = value else {
        return Err(bad(
            "expected an object with dtype, shape and data_offsets".into()
        ));
    };
    let dtype_name = fields
        .get("dtype")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no string field \"dtype\"".into()))?;
    let dtype = Dtype::parse(dtype_name).ok_or_else(|| TensorFileError::UnsupportedDtype {
        tensor: name.to_string(),
        dtype: dtype_name.to_string(),
    })?;
    let shape = fields
        .get("shape")
        .and_then(Value::as_array)
        .and_then(|dims| {
            dims.iter()
                .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
                .collect::<Option<Vec<usize>>>()
        })
        .ok_or_else(|| bad("\"shape\" must be a list of non-negative integers".into()))?;
    let offsets = fields
        .get("data_offsets")
        .and_then(Value::as_array)
        .and_then(|o| match o.as_slice() {
            [a, b] => Some((a.as_u64()?, b.as_u64()?)),
            _ => None,
        })
        .ok_or_else(|| bad("\"data_offsets\" must be two non-negative integers".into()))?;
    let (start, end) = offsets;
    if end < start {
        return Err(bad(format!(
            "data_offsets [{start}, {end}] end before they start"
        )));
    }
    let expected = byte_length(&shape, dtype.size())
        .ok_or_else(|| bad(format!("shape {shape:?} is too large")))?;
    if expected != end - start {
        return Err(TensorFileError::ByteLength {
            tensor: name.to_string(),
            shape,
            dtype,
            expected,
            actual: end - start,
        });
    }
    Ok(Entry {
        name: name.to_string(),
        dtype,
        shape,
        start,
        end,
    })
}

/// Encodes `tensors` (in the given order) as a safetensors file without metadata.
///
/// # Panics
/// If a shape's product differs from its number of elements, or two tensors share a name.
pub fn write_safetensors(tensors: &[(&str, TensorRef<'_>)]) -> Vec<u8> {
    write_safetensors_with_metadata(tensors, &[])
}

/// Encodes `tensors` (in the given order, their bytes contiguous) and a `__metadata__`
/// object of `metadata` (omitted when empty). The header is padded with spaces to a
/// multiple of 8 bytes, as the reference implementation does, so the buffer is aligned.
///
/// # Panics
/// If a shape's product differs from its number of elements, or two tensors share a name
/// (or one is called `__metadata__`).
pub fn write_safetensors_with_metadata(
    tensors: &[(&str, TensorRef<'_>)],
    metadata: &[(&str, &str)],
) -> Vec<u8> {
    let mut names = std::collections::HashSet::new();
    for (name, _) in tensors {
        assert!(
            *name != METADATA && names.insert(*name),
            "tensor name {name:?} is reserved or used twice"
        );
    }
    let json = |s: &str| serde_json::to_string(s).expect("a string serialises");
    let mut header = String::from("{");
    if !metadata.is_empty() {
        let fields: Vec<String> = metadata
            .iter()
            .map(|(k, v)| format!("{}:{}", json(k), json(v)))
            .collect();
        header.push_str(&format!("{}:{{{}}}", json(METADATA), fields.join(",")));
    }
    let mut buffer = Vec::new();
    for (i, (name, tensor)) in tensors.iter().enumerate() {
        let start = buffer.len();
        tensor.write_le(name, &mut buffer);
        let shape: Vec<String> = tensor.shape().iter().map(usize::to_string).collect();
        if i > 0 || !metadata.is_empty() {
            header.push(',');
        }
        header.push_str(&format!(
            "{}:{{\"dtype\":\"{}\",\"shape\":[{}],\"data_offsets\":[{start},{}]}}",
            json(name),
            tensor.dtype(),
            shape.join(","),
            buffer.len()
        ));
    }
    header.push('}');
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    let mut out = Vec::with_capacity(8 + header.len() + buffer.len());
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&buffer);
    out
}
