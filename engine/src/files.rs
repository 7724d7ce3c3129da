//! Opening files a user named: only regular files, since a FIFO blocks the opener until a writer
//! comes and a device such as `/dev/zero` never ends.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// Opens `path` for reading when it is a regular file (links followed); otherwise an error that
/// says what it is instead. The check comes before `open`, which would block on a FIFO.
pub fn open_regular(path: &Path) -> io::Result<File> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        let what = if meta.is_dir() { "a directory" } else { "not a regular file (a FIFO, socket or device)" };
        return Err(io::Error::new(io::ErrorKind::InvalidInput, what));
    }
    File::open(path)
}

/// Reads a regular file of at most `max_bytes`.
pub fn read_regular(path: &Path, max_bytes: u64) -> io::Result<Vec<u8>> {
    let file = open_regular(path)?;
    let len = file.metadata()?.len();
    if len > max_bytes {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("is {len} bytes; the limit is {max_bytes}")));
    }
    let mut data = Vec::with_capacity(len as usize);
    // `take` bounds a file that grows while it is read.
    file.take(max_bytes + 1).read_to_end(&mut data)?;
    if data.len() as u64 > max_bytes {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("is over the limit of {max_bytes} bytes")));
    }
    Ok(data)
}
