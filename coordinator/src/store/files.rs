//! Durable files under the data directory: written to a temporary name, fsynced, renamed
//! into place and the directory fsynced, so a crash leaves either the old file or the
//! complete new one, and a file the database refers to is always whole.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use super::StoreError;

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Creates `dir` and its parents.
pub(super) fn create_dir(dir: &Path) -> Result<(), StoreError> {
    fs::create_dir_all(dir).map_err(io_err(dir))
}

/// Writes `data` to `path` atomically and durably.
pub(super) fn write_durable(path: &Path, data: &[u8]) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    create_dir(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    {
        let mut file = File::create(&tmp).map_err(io_err(&tmp))?;
        file.write_all(data).map_err(io_err(&tmp))?;
        file.sync_all().map_err(io_err(&tmp))?;
    }
    fs::rename(&tmp, path).map_err(io_err(path))?;
    sync_dir(dir)
}

/// Fsyncs a directory so that a rename or create in it survives a crash.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    // Directories can be opened read-only and fsynced on Unix; elsewhere this is a no-op.
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err(dir))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Reads a whole file.
pub(super) fn read_all(path: &Path) -> Result<Vec<u8>, StoreError> {
    fs::read(path).map_err(io_err(path))
}

/// Reads up to `max_len` bytes of `path` from `offset`.
pub(super) fn read_range(path: &Path, offset: u64, max_len: usize) -> Result<Vec<u8>, StoreError> {
    let mut file = OpenOptions::new()
        .read(true)
        .open(path)
        .map_err(io_err(path))?;
    file.seek(SeekFrom::Start(offset)).map_err(io_err(path))?;
    let mut buf = Vec::with_capacity(max_len.min(1 << 20));
    file.take(max_len as u64)
        .read_to_end(&mut buf)
        .map_err(io_err(path))?;
    Ok(buf)
}
