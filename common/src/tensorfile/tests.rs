//! Round trips, byte-exact files checked against what the reference writers produce
//! (`safetensors.numpy.save` 0.8 and `np.save` of NumPy 2.4), and every validation error.

use super::*;

/// `safetensors.numpy.save({"a": np.array([1.0, -2.0], dtype=np.float32)})`.
const ST_ONE: &[u8] = b"8\x00\x00\x00\x00\x00\x00\x00{\x22a\x22:{\x22dtype\x22:\x22F32\x22,\x22shape\x22:[2],\x22data_offsets\x22:[0,8]}}  \x00\x00\x80?\x00\x00\x00\xc0";

/// `save({"label": int64 [3, 1], "x": float32 [[0.5], [1.5]]}, metadata={"k": "v"})`.
const ST_TWO: &[u8] = b"\x90\x00\x00\x00\x00\x00\x00\x00{\x22__metadata__\x22:{\x22k\x22:\x22v\x22},\x22label\x22:{\x22dtype\x22:\x22I64\x22,\x22shape\x22:[2],\x22data_offsets\x22:[0,16]},\x22x\x22:{\x22dtype\x22:\x22F32\x22,\x22shape\x22:[2,1],\x22data_offsets\x22:[16,24]}}   \x03\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00?\x00\x00\xc0?";

/// `np.save(f, np.array([1.0, -2.0], dtype='<f4'))`.
const NPY_F32: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }                                                            \x0a\x00\x00\x80?\x00\x00\x00\xc0";

/// `np.save(f, np.array([[7, -8]], dtype='<i8'))`.
const NPY_I64: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '<i8', 'fortran_order': False, 'shape': (1, 2), }                                                          \x0a\x07\x00\x00\x00\x00\x00\x00\x00\xf8\xff\xff\xff\xff\xff\xff\xff";

/// `np.save(f, np.array([[1, 2, 3], [4, 5, 6]], dtype='>i4'))`.
const NPY_BIG_ENDIAN: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '>i4', 'fortran_order': False, 'shape': (2, 3), }                                                          \x0a\x00\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00\x03\x00\x00\x00\x04\x00\x00\x00\x05\x00\x00\x00\x06";

/// `np.save(f, np.asfortranarray([[1., 2., 3.], [4., 5., 6.]]))`.
const NPY_FORTRAN: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }                                                           \x0a\x00\x00\x00\x00\x00\x00\xf0?\x00\x00\x00\x00\x00\x00\x10@\x00\x00\x00\x00\x00\x00\x00@\x00\x00\x00\x00\x00\x00\x14@\x00\x00\x00\x00\x00\x00\x08@\x00\x00\x00\x00\x00\x00\x18@";

/// `np.save(f, np.asfortranarray(np.arange(12).reshape(2, 3, 2).astype('<i4')))`.
const NPY_FORTRAN_3D: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '<i4', 'fortran_order': True, 'shape': (2, 3, 2), }                                                        \x0a\x00\x00\x00\x00\x06\x00\x00\x00\x02\x00\x00\x00\x08\x00\x00\x00\x04\x00\x00\x00\x0a\x00\x00\x00\x01\x00\x00\x00\x07\x00\x00\x00\x03\x00\x00\x00\x09\x00\x00\x00\x05\x00\x00\x00\x0b\x00\x00\x00";

/// `format.write_array(f, np.array([1, 0, 1], dtype='|u1'), version=(3, 0))`.
const NPY_V3_U8: &[u8] = b"\x93NUMPY\x03\x00t\x00\x00\x00{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }                                                          \x0a\x01\x00\x01";

/// `format.write_array(f, np.array([True, False]), version=(2, 0))`.
const NPY_V2_BOOL: &[u8] = b"\x93NUMPY\x02\x00t\x00\x00\x00{'descr': '|b1', 'fortran_order': False, 'shape': (2,), }                                                          \x0a\x01\x00";

/// `np.save(f, np.array(2.5))`: a scalar.
const NPY_SCALAR: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': False, 'shape': (), }                                                              \x0a\x00\x00\x00\x00\x00\x00\x04@";

// --- safetensors -------------------------------------------------------------------------

#[test]
fn safetensors_writer_matches_the_reference_bytes() {
    let one = write_safetensors(&[(
        "a",
        TensorRef::F32 {
            shape: &[2],
            data: &[1.0, -2.0],
        },
    )]);
    assert_eq!(one, ST_ONE);
    let two = write_safetensors_with_metadata(
        &[
            (
                "label",
                TensorRef::I64 {
                    shape: &[2],
                    data: &[3, 1],
                },
            ),
            (
                "x",
                TensorRef::F32 {
                    shape: &[2, 1],
                    data: &[0.5, 1.5],
                },
            ),
        ],
        &[("k", "v")],
    );
    assert_eq!(two, ST_TWO);
}

#[test]
fn safetensors_reader_decodes_the_reference_bytes() {
    let file = read_safetensors_file(ST_TWO).unwrap();
    assert_eq!(file.metadata.get("k").map(String::as_str), Some("v"));
    assert_eq!(file.tensors.len(), 2);
    let label = file.get("label").unwrap();
    assert_eq!(label.shape, vec![2]);
    assert_eq!(label.data, TensorData::I64(vec![3, 1]));
    let x = file.get("x").unwrap();
    assert_eq!((x.dtype(), x.shape.clone()), (Dtype::F32, vec![2, 1]));
    assert_eq!(x.to_f32(), vec![0.5, 1.5]);
    assert_eq!(
        read_safetensors(ST_ONE).unwrap(),
        vec![Tensor {
            name: "a".into(),
            shape: vec![2],
            data: TensorData::F32(vec![1.0, -2.0]),
        }]
    );
}

/// A safetensors file from a hand-written header and buffer (no padding).
fn raw(header: &str, buffer: &[u8]) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(buffer);
    out
}

#[test]
fn safetensors_reads_every_supported_dtype() {
    let mut buffer = Vec::new();
    buffer.extend_from_slice(&2.5f64.to_le_bytes());
    buffer.extend_from_slice(&(-7i32).to_le_bytes());
    buffer.extend_from_slice(&[200, 1, 0]);
    let header = r#"{"f":{"dtype":"F64","shape":[],"data_offsets":[0,8]},"i":{"dtype":"I32","shape":[1],"data_offsets":[8,12]},"u":{"dtype":"U8","shape":[1,1],"data_offsets":[12,13]},"b":{"dtype":"BOOL","shape":[2],"data_offsets":[13,15]}}"#;
    let tensors = read_safetensors(&raw(header, &buffer)).unwrap();
    let names: Vec<&str> = tensors.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["f", "i", "u", "b"], "in file order");
    assert_eq!(tensors[0].data, TensorData::F64(vec![2.5]));
    assert_eq!(tensors[0].numel(), 1);
    assert_eq!(tensors[1].to_i64().unwrap(), vec![-7]);
    assert_eq!(tensors[2].to_f32(), vec![200.0]);
    assert_eq!(tensors[3].data, TensorData::Bool(vec![true, false]));
    assert_eq!(tensors[3].to_i64().unwrap(), vec![1, 0]);
}

#[test]
fn safetensors_round_trip_keeps_values_bit_for_bit() {
    let image: Vec<f32> = (0..12)
        .map(|i| (i as f32 - 5.5) * 0.1 + f32::EPSILON)
        .collect();
    let label: Vec<i64> = vec![i64::MIN, -1, 0, i64::MAX];
    let bytes = write_safetensors(&[
        (
            "image",
            TensorRef::F32 {
                shape: &[4, 3],
                data: &image,
            },
        ),
        (
            "label",
            TensorRef::I64 {
                shape: &[4],
                data: &label,
            },
        ),
        (
            "empty",
            TensorRef::F32 {
                shape: &[0, 3],
                data: &[],
            },
        ),
    ]);
    assert_eq!(bytes.len() % 8, 0, "header padded to 8 bytes");
    let tensors = read_safetensors(&bytes).unwrap();
    assert_eq!(tensors[0].data, TensorData::F32(image));
    assert_eq!(tensors[0].shape, vec![4, 3]);
    assert_eq!(tensors[1].data, TensorData::I64(label));
    assert_eq!(tensors[2].shape, vec![0, 3]);
    assert!(tensors[2].data.is_empty());
}

#[test]
fn safetensors_refuses_a_short_file_or_a_header_past_the_end() {
    assert_eq!(
        read_safetensors(&[1, 0, 0]),
        Err(TensorFileError::TooShort { len: 3 })
    );
    let mut bytes = ST_ONE.to_vec();
    bytes[0] = 200;
    assert_eq!(
        read_safetensors(&bytes),
        Err(TensorFileError::HeaderLength {
            header: 200,
            available: ST_ONE.len() - 8,
        })
    );
    let err = read_safetensors(&raw("[1, 2]", &[])).unwrap_err();
    assert!(matches!(err, TensorFileError::Header { .. }), "{err}");
    let err = read_safetensors(&raw("{\"a\": ", &[])).unwrap_err();
    assert!(matches!(err, TensorFileError::Header { .. }), "{err}");
    let err = read_safetensors(&raw(r#"{"__metadata__":{"k":1}}"#, &[])).unwrap_err();
    assert!(err.to_string().contains("__metadata__"), "{err}");
}

#[test]
fn safetensors_errors_name_the_tensor() {
    let cases = [
        (
            r#"{"image":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}"#,
            4,
            "tensor \"image\": unsupported dtype \"F16\"",
        ),
        (
            r#"{"image":{"shape":[2],"data_offsets":[0,8]}}"#,
            8,
            "tensor \"image\": no string field \"dtype\"",
        ),
        (
            r#"{"image":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#,
            8,
            "tensor \"image\": \"shape\" must be",
        ),
        (
            r#"{"image":{"dtype":"F32","shape":[2],"data_offsets":[0]}}"#,
            8,
            "tensor \"image\": \"data_offsets\" must be",
        ),
        (
            r#"{"image":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#,
            8,
            "tensor \"image\": data_offsets [8, 0] end before they start",
        ),
        (
            r#"{"image":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#,
            8,
            "tensor \"image\": shape [3] of F32 needs 12 byte(s) but 8 are stored",
        ),
        (
            r#"{"image":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#,
            8,
            "tensor \"image\": data_offsets [0, 16] lie outside the 8-byte data buffer",
        ),
        (
            r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"text":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
            12,
            "tensor \"text\": data starts at byte 4 of the buffer but the previous tensor ends at byte 8",
        ),
        (
            r#"{"text":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
            8,
            "tensor \"text\": data starts at byte 4 of the buffer but the previous tensor ends at byte 0",
        ),
        (
            r#"{"image":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
            8,
            "the data buffer has 4 byte(s) after the last tensor (8 in all)",
        ),
    ];
    for (header, buffer, expected) in cases {
        let err = read_safetensors(&raw(header, &vec![0; buffer])).unwrap_err();
        assert!(
            err.to_string().contains(expected),
            "{header}\n got: {err}\nwant: {expected}"
        );
    }
    let err = read_safetensors(&raw(
        r#"{"image":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
        &[0; 8],
    ))
    .unwrap();
    assert_eq!(err[0].to_f32(), vec![0.0, 0.0]);
}

#[test]
fn to_i64_accepts_integral_floats_and_names_the_first_fraction() {
    let t = Tensor {
        name: "label".into(),
        shape: vec![3],
        data: TensorData::F32(vec![1.0, 2.0, 2.5]),
    };
    assert_eq!(
        t.to_i64(),
        Err(TensorFileError::NotInteger {
            tensor: "label".into(),
            index: 2,
            value: 2.5,
        })
    );
    let t = Tensor {
        data: TensorData::F64(vec![0.0, -3.0, f64::NAN]),
        ..t
    };
    assert!(
        t.to_i64()
            .unwrap_err()
            .to_string()
            .contains("element 2 is NaN")
    );
    let t = Tensor {
        data: TensorData::F64(vec![4.0, -3.0]),
        ..t
    };
    assert_eq!(t.to_i64().unwrap(), vec![4, -3]);
}

#[test]
#[should_panic(expected = "shape [2, 2] holds 4 elements but 3 were given")]
fn writers_refuse_a_shape_that_does_not_match_the_data() {
    write_safetensors(&[(
        "x",
        TensorRef::F32 {
            shape: &[2, 2],
            data: &[1.0, 2.0, 3.0],
        },
    )]);
}

// --- .npy --------------------------------------------------------------------------------

#[test]
fn npy_writer_matches_np_save() {
    assert_eq!(write_npy_f32(&[2], &[1.0, -2.0]), NPY_F32);
    assert_eq!(
        write_npy(TensorRef::I64 {
            shape: &[1, 2],
            data: &[7, -8],
        }),
        NPY_I64
    );
    // The header of a 1000 × 3 array has the same 128-byte prefix as np.save's.
    let big = write_npy_f32(&[1000, 3], &vec![1.5; 3000]);
    assert_eq!(big.len(), 128 + 12_000);
    assert_eq!(
        &big[..128],
        b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (1000, 3), }                                                       \x0a"
    );
}

#[test]
fn npy_reads_what_numpy_writes() {
    let t = read_npy("image", NPY_F32).unwrap();
    assert_eq!((t.name.as_str(), t.shape.clone()), ("image", vec![2]));
    assert_eq!(t.data, TensorData::F32(vec![1.0, -2.0]));

    let t = read_npy("label", NPY_I64).unwrap();
    assert_eq!(
        (t.shape.clone(), t.data),
        (vec![1, 2], TensorData::I64(vec![7, -8]))
    );

    let t = read_npy("x", NPY_BIG_ENDIAN).unwrap();
    assert_eq!(t.shape, vec![2, 3]);
    assert_eq!(
        t.data,
        TensorData::I32(vec![1, 2, 3, 4, 5, 6]),
        "byte-swapped"
    );

    let t = read_npy("x", NPY_FORTRAN).unwrap();
    assert_eq!(t.shape, vec![2, 3]);
    assert_eq!(
        t.data,
        TensorData::F64(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
        "transposed to row-major"
    );

    let t = read_npy("x", NPY_FORTRAN_3D).unwrap();
    assert_eq!(t.shape, vec![2, 3, 2]);
    assert_eq!(t.data, TensorData::I32((0..12).collect()));

    let t = read_npy("x", NPY_V3_U8).unwrap();
    assert_eq!(t.data, TensorData::U8(vec![1, 0, 1]));
    let t = read_npy("x", NPY_V2_BOOL).unwrap();
    assert_eq!(t.data, TensorData::Bool(vec![true, false]));
    let t = read_npy("x", NPY_SCALAR).unwrap();
    assert_eq!(
        (t.shape.is_empty(), t.data),
        (true, TensorData::F64(vec![2.5]))
    );
}

#[test]
fn npy_round_trip() {
    let data: Vec<f32> = (0..35).map(|i| i as f32 * -0.25).collect();
    let bytes = write_npy_f32(&[5, 7], &data);
    assert_eq!((bytes.len() - 4 * 35) % 64, 0, "data aligned to 64 bytes");
    let t = read_npy("text", &bytes).unwrap();
    assert_eq!(t.shape, vec![5, 7]);
    assert_eq!(t.data, TensorData::F32(data));
}

#[test]
fn npy_accepts_python2_headers_and_double_quotes() {
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    let header = "{\"descr\": \"<f4\", \"shape\": (1L, 1L), \"fortran_order\": False}\n";
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(&3.0f32.to_le_bytes());
    let t = read_npy("x", &bytes).unwrap();
    assert_eq!((t.shape, t.data), (vec![1, 1], TensorData::F32(vec![3.0])));
}

/// A `.npy` v1.0 file with `header` and `data`.
fn npy(header: &str, data: &[u8]) -> Vec<u8> {
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(data);
    bytes
}

#[test]
fn npy_errors_name_the_array() {
    assert_eq!(
        read_npy("image", b"PK\x03\x04"),
        Err(TensorFileError::NpyMagic)
    );
    let mut v4 = NPY_F32.to_vec();
    v4[6] = 4;
    assert_eq!(
        read_npy("image", &v4),
        Err(TensorFileError::NpyVersion { major: 4, minor: 0 })
    );
    assert!(matches!(
        read_npy("image", &NPY_F32[..40]),
        Err(TensorFileError::NpyHeader { .. })
    ));
    let cases = [
        (
            "{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }",
            4,
            "array \"image\": unsupported .npy dtype \"<f2\"",
        ),
        (
            "{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }",
            16,
            "unsupported .npy dtype \"<c8\"",
        ),
        (
            "{'descr': '<f4', 'shape': (2,), }",
            8,
            "array \"image\": bad .npy header: no 'fortran_order' key",
        ),
        (
            "{'descr': '<f4', 'fortran_order': 'no', 'shape': (2,), }",
            8,
            "'fortran_order' has a value of the wrong type",
        ),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 'y'}",
            8,
            "unexpected key 'x'",
        ),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2, -1), }",
            8,
            "expected a dimension",
        ),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }",
            8,
            "tensor \"image\": shape [3] of F32 needs 12 byte(s) but 8 are stored",
        ),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }",
            8,
            "needs 4 byte(s) but 8 are stored",
        ),
    ];
    for (header, data, expected) in cases {
        let err = read_npy("image", &npy(header, &vec![0; data])).unwrap_err();
        assert!(
            err.to_string().contains(expected),
            "{header}\n got: {err}\nwant: {expected}"
        );
    }
}
