//! Byte sources for the streaming decoders: a slice held in memory, or a
//! reader consumed in chunks through a buffer that only grows as large as
//! the largest single record.

use std::cell::Cell;
use std::io::Read;

use crate::error::{Error, Reason, Result};

/// Bytes read per refill from a reader.
const CHUNK: usize = 64 * 1024;

/// The longest record a reader input holds: beyond it, the input is refused
/// rather than buffered whole (an unclosed object, or a CBOR length that
/// claims terabytes, must not exhaust memory).
pub(crate) const MAX_RECORD_BYTES: usize = 16 << 20;

/// A window on the input. Decoders look at `buffer()[pos()..]`, advance with
/// `set_pos`, and call `refill` when a record continues past the end of the
/// buffer. A refill may move the bytes: positions taken before it are stale.
pub(crate) trait Input {
    /// The bytes currently held.
    fn buffer(&self) -> &[u8];
    /// The first unconsumed byte in `buffer()`.
    fn pos(&self) -> usize;
    /// Marks everything before `pos` as consumed. Takes `&self` so that a
    /// decoder can advance while it holds a record borrowed from `buffer()`.
    fn set_pos(&self, pos: usize);
    /// Brings more bytes; `Ok(false)` at the end of the input.
    fn refill(&mut self) -> Result<bool>;
    /// Whether every byte of the input is already in `buffer()`.
    fn is_whole(&self) -> bool {
        false
    }
    /// Offset from the start of the input of `buffer()[pos]`.
    fn offset_of(&self, pos: usize) -> u64;

    /// The unconsumed bytes.
    fn rest(&self) -> &[u8] {
        &self.buffer()[self.pos()..]
    }

    /// Skips ASCII white space; returns the next byte, or `None` at the end.
    fn skip_whitespace(&mut self) -> Result<Option<u8>> {
        loop {
            let rest = self.rest();
            match rest
                .iter()
                .position(|c| !matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
            {
                Some(n) => {
                    let byte = rest[n];
                    self.set_pos(self.pos() + n);
                    return Ok(Some(byte));
                }
                None => {
                    let end = self.buffer().len();
                    self.set_pos(end);
                    if !self.refill()? {
                        return Ok(None);
                    }
                }
            }
        }
    }
}

/// A slice in memory: nothing to refill, records borrow from it.
pub(crate) struct SliceInput<'a> {
    bytes: &'a [u8],
    pos: Cell<usize>,
}

impl<'a> SliceInput<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        SliceInput {
            bytes,
            pos: Cell::new(0),
        }
    }
}

impl Input for SliceInput<'_> {
    fn buffer(&self) -> &[u8] {
        self.bytes
    }
    fn pos(&self) -> usize {
        self.pos.get()
    }
    fn set_pos(&self, pos: usize) {
        self.pos.set(pos);
    }
    fn refill(&mut self) -> Result<bool> {
        Ok(false)
    }
    fn is_whole(&self) -> bool {
        true
    }
    fn offset_of(&self, pos: usize) -> u64 {
        pos as u64
    }
}

/// A reader consumed in chunks. Consumed bytes are dropped at each refill,
/// so memory holds one chunk plus the record being decoded.
pub(crate) struct ReaderInput<R> {
    reader: R,
    buf: Vec<u8>,
    pos: Cell<usize>,
    /// Input offset of `buf[0]`.
    base: u64,
    eof: bool,
}

impl<R: Read> ReaderInput<R> {
    pub(crate) fn new(reader: R) -> Self {
        ReaderInput {
            reader,
            buf: Vec::with_capacity(CHUNK),
            pos: Cell::new(0),
            base: 0,
            eof: false,
        }
    }

    /// Bytes held right now (for tests of bounded memory).
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.buf.capacity()
    }
}

impl<R: Read> Input for ReaderInput<R> {
    fn buffer(&self) -> &[u8] {
        &self.buf
    }
    fn pos(&self) -> usize {
        self.pos.get()
    }
    fn set_pos(&self, pos: usize) {
        self.pos.set(pos);
    }
    fn refill(&mut self) -> Result<bool> {
        if self.eof {
            return Ok(false);
        }
        let consumed = self.pos.get();
        if consumed > 0 {
            self.buf.drain(..consumed);
            self.base += consumed as u64;
            self.pos.set(0);
        }
        let filled = self.buf.len();
        if filled >= MAX_RECORD_BYTES {
            return Err(Error::input(Reason::RecordTooLarge {
                limit: MAX_RECORD_BYTES,
            }));
        }
        // Read at least a chunk; a record larger than the buffer grows it.
        self.buf.resize(filled + CHUNK.max(filled), 0);
        let result = loop {
            match self.reader.read(&mut self.buf[filled..]) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        match result {
            Ok(n) => {
                self.buf.truncate(filled + n);
                if n == 0 {
                    self.eof = true;
                }
                Ok(n > 0)
            }
            Err(e) => {
                self.buf.truncate(filled);
                Err(Error::from(e))
            }
        }
    }
    fn offset_of(&self, pos: usize) -> u64 {
        self.base + pos as u64
    }
}
