//! The bytes one instance hands its counts to another in (through the
//! host's `state`, see [`crate::handoff`]): a header, then every series'
//! key and counts, integers as LEB128 varints.
//!
//! ```text
//! version u8 = 1 | fingerprint u64 LE | seq u64 LE | width varint | series varint
//! per series: key length varint, key bytes, calls varint, sum f64 LE, width x bucket varint
//! ```

use crate::series::SeriesTable;

const VERSION: u8 = 1;

/// What a blob says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The writer's [`crate::config::Plan::fingerprint`].
    pub fingerprint: u64,
    /// The writer's sequence number of this blob.
    pub seq: u64,
    /// Buckets per series.
    pub width: usize,
    /// Series in the blob.
    pub series: usize,
}

/// Writes every series of `table` after a header.
pub fn encode(out: &mut Vec<u8>, fingerprint: u64, seq: u64, table: &SeriesTable) {
    out.clear();
    out.push(VERSION);
    out.extend_from_slice(&fingerprint.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    varint(out, table.width() as u64);
    varint(out, table.len() as u64);
    for i in 0..table.len() {
        let key = table.key(i);
        varint(out, key.len() as u64);
        out.extend_from_slice(key);
        varint(out, table.calls(i));
        out.extend_from_slice(&table.sum(i).to_le_bytes());
        for n in table.buckets(i) {
            varint(out, *n);
        }
    }
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a blob: its header, then each series through `each(key, calls,
/// sum, buckets)`. `None` when the bytes are not a whole blob (nothing is
/// passed to `each` then).
pub fn decode(bytes: &[u8], mut each: impl FnMut(&[u8], u64, f64, &[u64])) -> Option<Header> {
    let header = header(bytes)?;
    // Check the whole blob before handing anything on.
    walk(bytes, header, |_, _, _, _| {})?;
    walk(bytes, header, &mut each)?;
    Some(header)
}

/// The header alone.
pub fn header(bytes: &[u8]) -> Option<Header> {
    let mut r = Reader { bytes, at: 0 };
    if r.byte()? != VERSION {
        return None;
    }
    let fingerprint = r.u64()?;
    let seq = r.u64()?;
    let width = usize::try_from(r.varint()?).ok()?;
    let series = usize::try_from(r.varint()?).ok()?;
    Some(Header {
        fingerprint,
        seq,
        width,
        series,
    })
}

fn walk(bytes: &[u8], header: Header, mut each: impl FnMut(&[u8], u64, f64, &[u64])) -> Option<()> {
    let mut r = Reader { bytes, at: 0 };
    r.byte()?;
    r.u64()?;
    r.u64()?;
    r.varint()?;
    r.varint()?;
    let mut buckets = vec![0u64; header.width];
    for _ in 0..header.series {
        let len = usize::try_from(r.varint()?).ok()?;
        let key = r.take(len)?;
        let calls = r.varint()?;
        let sum = f64::from_le_bytes(r.take(8)?.try_into().ok()?);
        for b in &mut buckets {
            *b = r.varint()?;
        }
        each(key, calls, sum, &buckets);
    }
    (r.at == bytes.len()).then_some(())
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let out = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(out)
    }

    fn byte(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn varint(&mut self) -> Option<u64> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f).checked_shl(shift)?;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guarantees: a table's counts come back exactly from its bytes, and
    /// cut or altered bytes give nothing rather than wrong counts.
    #[test]
    fn round_trips_and_refuses_damage() {
        let mut t = SeriesTable::new(3, 10);
        for (n, key) in [&b"\x00a"[..], b"\x00bb", crate::key::OVERFLOW]
            .iter()
            .enumerate()
        {
            let i = t.slot(key).index;
            for _ in 0..=n {
                t.observe(i, 1.25 * n as f64, n);
            }
        }
        let big = t.slot(b"\x00c").index;
        for _ in 0..300 {
            t.observe(big, 1e9, 2);
        }
        let mut bytes = Vec::new();
        encode(&mut bytes, 42, 7, &t);
        let mut back = SeriesTable::new(3, 10);
        let h = decode(&bytes, |k, c, s, b| {
            back.add(k, c, s, b);
        })
        .expect("decodes");
        assert_eq!((h.fingerprint, h.seq, h.width, h.series), (42, 7, 3, 4));
        assert_eq!(back.len(), t.len());
        for i in 0..t.len() {
            let j = back.slot(t.key(i)).index;
            assert_eq!(back.calls(j), t.calls(i));
            assert_eq!(back.sum(j), t.sum(i));
            assert_eq!(back.buckets(j), t.buckets(i));
        }
        let mut called = false;
        assert_eq!(
            decode(&bytes[..bytes.len() - 1], |_, _, _, _| called = true),
            None
        );
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(decode(&longer, |_, _, _, _| called = true), None);
        assert_eq!(decode(&[], |_, _, _, _| called = true), None);
        assert!(!called);
    }
}
