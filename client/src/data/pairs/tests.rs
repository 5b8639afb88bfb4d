//! The adapter on small hand-made files: both layouts, every refusal.

use silo_common::tensorfile::{TensorRef, write_npy_f32, write_safetensors};

use super::*;

fn file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn f32s(shape: &'static [usize], data: &'static [f32]) -> TensorRef<'static> {
    TensorRef::F32 { shape, data }
}

fn i64s(shape: &'static [usize], data: &'static [i64]) -> TensorRef<'static> {
    TensorRef::I64 { shape, data }
}

const IMAGE: &[f32] = &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
const TEXT: &[f32] = &[0.5, -0.5, 1.5];

#[test]
fn loads_a_safetensors_file_with_every_extra() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(
        dir.path(),
        "pairs.safetensors",
        &write_safetensors(&[
            ("image", f32s(&[3, 2], IMAGE)),
            ("text", f32s(&[3, 1], TEXT)),
            ("label", i64s(&[3], &[2, 0, 2])),
            ("split", i64s(&[3, 1], &[0, 1, 0])),
            ("image_only", f32s(&[1, 2], &[9.0, 8.0])),
            ("text_only", f32s(&[0, 1], &[])),
            ("notes", i64s(&[1], &[7])),
        ]),
    );
    let d = load_safetensors(&path).unwrap();
    assert_eq!((d.n, d.d1, d.d2), (3, 2, 1));
    assert_eq!(d.image_row(1), &[3.0, 4.0]);
    assert_eq!(d.text_row(2), &[1.5]);
    assert_eq!(d.classes(), Some(2));
    assert_eq!(d.train_indices(), vec![0, 2]);
    assert_eq!(d.test_indices(), vec![1]);
    assert_eq!((d.image_only_rows(), d.text_only_rows()), (1, 0));
    assert_eq!(d.image_only_row(0), &[9.0, 8.0]);
    assert_eq!((d.image_dtype, d.text_dtype), (Dtype::F32, Dtype::F32));
    assert_eq!(d.files, vec![path]);
}

#[test]
fn without_a_split_everything_is_train() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(
        dir.path(),
        "p.safetensors",
        &write_safetensors(&[
            ("image", f32s(&[3, 2], IMAGE)),
            ("text", f32s(&[3, 1], TEXT)),
        ]),
    );
    let d = load_safetensors(&path).unwrap();
    assert_eq!(d.train_indices(), vec![0, 1, 2]);
    assert!(d.test_indices().is_empty());
    assert_eq!((d.label.clone(), d.classes()), (None, None));
    assert_eq!(d.image_only, None);
}

#[test]
fn loads_two_npy_files() {
    let dir = tempfile::tempdir().unwrap();
    let image = file(dir.path(), "image.npy", &write_npy_f32(&[3, 2], IMAGE));
    let text = file(dir.path(), "text.npy", &write_npy_f32(&[3, 1], TEXT));
    let d = load_npy(&image, &text).unwrap();
    assert_eq!((d.n, d.d1, d.d2), (3, 2, 1));
    assert_eq!(d.text, TEXT);
    assert_eq!(d.files, vec![image.clone(), text]);

    let short = file(
        dir.path(),
        "short.npy",
        &write_npy_f32(&[2, 1], &[1.0, 2.0]),
    );
    let err = load_npy(&image, &short).unwrap_err().to_string();
    assert!(
        err.contains("short.npy: tensor text has 2 rows but image has 3"),
        "{err}"
    );
    let err = load_npy(&image, &dir.path().join("missing.npy")).unwrap_err();
    assert!(err.to_string().starts_with("cannot read "), "{err}");
    let not_npy = file(dir.path(), "x.npy", b"hello");
    let err = load_npy(&not_npy, &image).unwrap_err().to_string();
    assert!(err.contains("x.npy: not a .npy file"), "{err}");
}

#[test]
fn refuses_non_finite_features_naming_tensor_and_row() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = TEXT.to_vec();
    text[2] = f32::INFINITY;
    let path = file(
        dir.path(),
        "pairs.safetensors",
        &write_safetensors(&[
            ("image", f32s(&[3, 2], IMAGE)),
            (
                "text",
                TensorRef::F32 {
                    shape: &[3, 1],
                    data: &text,
                },
            ),
        ]),
    );
    let err = load_safetensors(&path).unwrap_err().to_string();
    assert!(
        err.ends_with(
            "pairs.safetensors: tensor text row 2 has a non-finite value (inf in column 0)"
        ),
        "{err}"
    );
    let mut image = IMAGE.to_vec();
    image[3] = f32::NAN;
    let npy = file(dir.path(), "image.npy", &write_npy_f32(&[3, 2], &image));
    let text = file(dir.path(), "text.npy", &write_npy_f32(&[3, 1], TEXT));
    let err = load_npy(&npy, &text).unwrap_err().to_string();
    assert!(
        err.contains("image.npy: tensor image row 1 has a non-finite value (NaN in column 1)"),
        "{err}"
    );
}

#[test]
fn refuses_inconsistent_tensors() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(Vec<(&str, TensorRef<'static>)>, &str)> = vec![
        (
            vec![("image", f32s(&[3, 2], IMAGE))],
            "no tensor \"text\" (the file has: image)",
        ),
        (
            vec![("image", f32s(&[6], IMAGE)), ("text", f32s(&[3, 1], TEXT))],
            "tensor image has shape [6]; expected a 2-D [rows, features] tensor",
        ),
        (
            vec![("image", f32s(&[0, 2], &[])), ("text", f32s(&[0, 1], &[]))],
            "tensor image has shape [0, 2]; expected at least one row",
        ),
        (
            vec![
                ("image", f32s(&[2, 3], IMAGE)),
                ("text", f32s(&[3, 1], TEXT)),
            ],
            "tensor text has 3 rows but image has 2",
        ),
        (
            vec![
                ("image", f32s(&[3, 2], IMAGE)),
                ("text", f32s(&[3, 1], TEXT)),
                ("label", i64s(&[2], &[0, 1])),
            ],
            "tensor label has 2 rows but image has 3",
        ),
        (
            vec![
                ("image", f32s(&[3, 2], IMAGE)),
                ("text", f32s(&[3, 1], TEXT)),
                ("label", i64s(&[3], &[0, -1, 1])),
            ],
            "tensor label row 1: -1 is not a class index",
        ),
        (
            vec![
                ("image", f32s(&[3, 2], IMAGE)),
                ("text", f32s(&[3, 1], TEXT)),
                ("label", f32s(&[3], &[0.0, 1.0, 1.5])),
            ],
            "tensor label row 2: 1.5 is not an integer",
        ),
        (
            vec![
                ("image", f32s(&[3, 2], IMAGE)),
                ("text", f32s(&[3, 1], TEXT)),
                ("split", i64s(&[3], &[0, 2, 1])),
            ],
            "tensor split row 1: 2 is not 0 (train) or 1 (test)",
        ),
        (
            vec![
                ("image", f32s(&[3, 2], IMAGE)),
                ("text", f32s(&[3, 1], TEXT)),
                ("split", i64s(&[1, 3], &[0, 0, 1])),
            ],
            "tensor split has shape [1, 3]; expected [n] or [n, 1]",
        ),
        (
            vec![
                ("image", f32s(&[3, 2], IMAGE)),
                ("text", f32s(&[3, 1], TEXT)),
                ("text_only", f32s(&[1, 2], &[1.0, 2.0])),
            ],
            "tensor text_only has 2 columns but text has 1",
        ),
    ];
    for (tensors, want) in cases {
        let path = file(dir.path(), "bad.safetensors", &write_safetensors(&tensors));
        let err = load_safetensors(&path).unwrap_err().to_string();
        assert!(
            err.starts_with(&path.display().to_string()) && err.contains(want),
            "got: {err}\nwant: {want}"
        );
    }
    let path = file(
        dir.path(),
        "junk.safetensors",
        b"\x04\x00\x00\x00\x00\x00\x00\x00[1]]",
    );
    let err = load_safetensors(&path).unwrap_err().to_string();
    assert!(
        err.contains("junk.safetensors: the safetensors header is not valid"),
        "{err}"
    );
}

#[test]
fn converts_other_dtypes() {
    let dir = tempfile::tempdir().unwrap();
    // A float64 image and text, as a NumPy user would save them by default.
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    let header = "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 2), }\n";
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for v in [0.25f64, -1.0] {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    let image = file(dir.path(), "image.npy", &bytes);
    let text = file(dir.path(), "text.npy", &bytes);
    let d = load_npy(&image, &text).unwrap();
    assert_eq!(d.image, vec![0.25, -1.0]);
    assert_eq!(d.image_dtype, Dtype::F64);
}
