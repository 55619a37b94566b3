//! `HashWriter`: a writer that passes bytes through while hashing (sha256) and counting
//! them, for blobs and diff_ids computed on the way to disk (commit, push).
use std::io::{self, Write};

use sha2::{Digest, Sha256};

pub(crate) struct HashWriter<W> {
    pub inner: W,
    pub hash: Sha256,
    pub n: u64,
}

impl<W> HashWriter<W> {
    pub fn new(inner: W) -> HashWriter<W> {
        HashWriter {
            inner,
            hash: Sha256::new(),
            n: 0,
        }
    }
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.n += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
