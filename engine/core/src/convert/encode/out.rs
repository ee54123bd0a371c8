//! The protobuf writer: keys, varints, fixed-width numbers, strings and
//! bytes appended to a `Vec<u8>`, proto3 defaults left out as prost leaves
//! them out, and nested messages whose length is written in front of them
//! once they are complete.

use prost::Message;

/// The wire type of a varint field.
const VARINT: u32 = 0;
/// The wire type of a 64-bit field.
const FIXED64: u32 = 1;
/// The wire type of a length-delimited field.
const LEN: u32 = 2;
/// The wire type of a 32-bit field.
const FIXED32: u32 = 5;

/// How many bytes `value` takes as a varint.
pub(super) fn varint_len(value: u64) -> usize {
    // Each byte holds 7 bits; 0 still takes one byte.
    (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
}

/// Protobuf bytes appended to a buffer.
pub(super) struct Out<'a> {
    buf: &'a mut Vec<u8>,
}

impl<'a> Out<'a> {
    /// Appends to `buf`.
    pub fn new(buf: &'a mut Vec<u8>) -> Self {
        Out { buf }
    }

    /// A varint.
    #[inline]
    pub fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.buf.push((value as u8) | 0x80);
            value >>= 7;
        }
        self.buf.push(value as u8);
    }

    /// A field's key.
    #[inline]
    fn key(&mut self, field: u32, wire_type: u32) {
        self.varint(u64::from((field << 3) | wire_type));
    }

    /// A `uint32` field, left out when 0.
    #[inline]
    pub fn uint32(&mut self, field: u32, value: u32) {
        if value != 0 {
            self.key(field, VARINT);
            self.varint(u64::from(value));
        }
    }

    /// An `int32` or enum field, left out when 0 (a negative value takes ten
    /// bytes, its sign extended to 64 bits, as protobuf says).
    #[inline]
    pub fn int32(&mut self, field: u32, value: i32) {
        if value != 0 {
            self.key(field, VARINT);
            self.varint(i64::from(value) as u64);
        }
    }

    /// A `fixed32` field, left out when 0.
    #[inline]
    pub fn fixed32(&mut self, field: u32, value: u32) {
        if value != 0 {
            self.key(field, FIXED32);
            self.buf.extend_from_slice(&value.to_le_bytes());
        }
    }

    /// A `fixed64` field, left out when 0.
    #[inline]
    pub fn fixed64(&mut self, field: u32, value: u64) {
        if value != 0 {
            self.key(field, FIXED64);
            self.buf.extend_from_slice(&value.to_le_bytes());
        }
    }

    /// A `string` or `bytes` field, left out when empty.
    #[inline]
    pub fn bytes(&mut self, field: u32, value: &[u8]) {
        if !value.is_empty() {
            self.always_bytes(field, value);
        }
    }

    /// A `string` field, left out when empty.
    #[inline]
    pub fn string(&mut self, field: u32, value: &str) {
        self.bytes(field, value.as_bytes());
    }

    /// A length-delimited field written even when empty (a member of a
    /// `oneof`).
    #[inline]
    pub fn always_bytes(&mut self, field: u32, value: &[u8]) {
        self.key(field, LEN);
        self.varint(value.len() as u64);
        self.buf.extend_from_slice(value);
    }

    /// A varint member of a `oneof` (written even when 0).
    #[inline]
    pub fn always_varint(&mut self, field: u32, value: u64) {
        self.key(field, VARINT);
        self.varint(value);
    }

    /// A `double` member of a `oneof` (written even when 0).
    #[inline]
    pub fn always_double(&mut self, field: u32, value: f64) {
        self.key(field, FIXED64);
        self.buf.extend_from_slice(&value.to_le_bytes());
    }

    /// The key and length of a message field of `len` bytes, whose bytes
    /// the caller writes next.
    #[inline]
    pub fn header(&mut self, field: u32, len: usize) {
        self.key(field, LEN);
        self.varint(len as u64);
    }

    /// A message field made by prost.
    pub fn prost<M: Message>(&mut self, field: u32, message: &M) {
        prost::encoding::message::encode(field, message, self.buf);
    }

    /// A message field whose fields `body` writes. Its length is written
    /// in front once `body` is done, in `guess` bytes if that is its
    /// varint's length (a good guess saves moving the body).
    #[inline]
    pub fn message<R>(&mut self, field: u32, guess: usize, body: impl FnOnce(&mut Self) -> R) -> R {
        self.key(field, LEN);
        let at = self.buf.len();
        self.buf.resize(at + guess, 0);
        let result = body(self);
        self.close(at, guess);
        result
    }

    /// Writes the length of the message whose body starts at `at + guess`
    /// into the `guess` bytes reserved at `at`, moving the body when its
    /// length takes another number of bytes.
    #[inline]
    fn close(&mut self, at: usize, guess: usize) {
        let start = at + guess;
        let len = self.buf.len() - start;
        // The usual case: a short message guessed short.
        if guess == 1 && len < 0x80 {
            if let Some(byte) = self.buf.get_mut(at) {
                *byte = len as u8;
            }
            return;
        }
        self.close_slow(at, guess, len);
    }

    /// [`Out::close`] for a length of more than one byte, or a wrong guess.
    fn close_slow(&mut self, at: usize, guess: usize, len: usize) {
        let start = at + guess;
        let need = varint_len(len as u64);
        if need > guess {
            let end = self.buf.len();
            self.buf.resize(end + (need - guess), 0);
            self.buf.copy_within(start..end, at + need);
        } else if need < guess {
            self.buf.copy_within(start.., at + need);
            self.buf.truncate(at + need + len);
        }
        let mut value = len as u64;
        for byte in &mut self.buf[at..at + need] {
            *byte = (value as u8 & 0x7f) | 0x80;
            value >>= 7;
        }
        // The last byte of a varint has no continuation bit.
        if let Some(last) = self.buf.get_mut(at + need - 1) {
            *last &= 0x7f;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guarantees: varint lengths match prost's, and a message's length
    /// is written in its shortest form whatever the guess.
    #[test]
    fn lengths_are_canonical() {
        for v in [
            0u64,
            1,
            127,
            128,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            assert_eq!(
                varint_len(v),
                prost::length_delimiter_len(v as usize),
                "{v}"
            );
        }
        for len in [0usize, 1, 127, 128, 300, 16_384, 70_000] {
            for guess in 0..=5 {
                let mut buf = Vec::new();
                let mut out = Out::new(&mut buf);
                out.message(1, guess, |out| {
                    for _ in 0..len {
                        out.buf.push(7);
                    }
                });
                let mut want = Vec::new();
                prost::encoding::bytes::encode(1, &vec![7u8; len], &mut want);
                assert_eq!(buf, want, "len {len}, guess {guess}");
            }
        }
    }
}
