//! The bytes on disk: segment names, the segment header and the framing of
//! one record. The layout is described in the module doc of [`super`].

use std::ops::Range;

use super::Lsn;

/// The first eight bytes of every segment.
pub(super) const MAGIC: &[u8; 8] = b"WEIRWAL1";

/// The format version this code writes and reads.
pub(super) const VERSION: u32 = 1;

/// Bytes of the segment header.
pub(super) const HEADER_LEN: usize = 32;

/// Bytes of a record's frame: `len` and `crc`.
pub(super) const FRAME_LEN: usize = 8;

/// Bytes of the payload before the Arrow IPC data: lsn, table, flags,
/// reserved.
pub(super) const PAYLOAD_PREFIX_LEN: usize = 16;

/// Records start, and Arrow IPC data start, at multiples of this.
pub(super) const ALIGN: usize = 8;

/// Record flag: the IPC data begins a new stream (its schema message first).
pub(super) const FLAG_NEW_STREAM: u8 = 1;

/// Ends the Arrow IPC data of every record: the IPC end-of-stream marker.
/// Arrow's stream decoder only finishes a message once it sees a byte past
/// it, so a record batch whose body is empty (no rows of fixed-width
/// columns) needs something after it; the reader checks and drops it.
pub(super) const IPC_END: [u8; 8] = [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0];

/// The extension of segment files.
const SUFFIX: &str = ".wal";

/// Digits of the first LSN in a segment's name (`u64::MAX` has 20).
const NAME_DIGITS: usize = 20;

/// The file name of the segment whose first record has `first_lsn`.
pub(super) fn segment_name(first_lsn: Lsn) -> String {
    format!("{first_lsn:0NAME_DIGITS$}{SUFFIX}")
}

/// The first LSN named by a segment file name, or `None` when `name` is not
/// a segment's name.
pub(super) fn parse_segment_name(name: &str) -> Option<Lsn> {
    let digits = name.strip_suffix(SUFFIX)?;
    if digits.len() != NAME_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The header of a segment whose first record has `first_lsn`.
pub(super) fn encode_header(first_lsn: Lsn) -> [u8; HEADER_LEN] {
    let mut header = [0u8; HEADER_LEN];
    header[0..8].copy_from_slice(MAGIC);
    header[8..12].copy_from_slice(&VERSION.to_le_bytes());
    // 12..16: flags, none defined.
    header[16..24].copy_from_slice(&first_lsn.to_le_bytes());
    let crc = crc32fast::hash(&header[0..24]);
    header[24..28].copy_from_slice(&crc.to_le_bytes());
    // 28..32: reserved.
    header
}

/// Why a segment header cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum HeaderError {
    /// Fewer bytes than a header: the segment's creation was torn.
    Torn(usize),
    /// A header, but not a valid one.
    Corrupt(String),
    /// A valid header of a format version this code does not know.
    Version(u32),
}

/// Reads the header at the start of `data`; returns the first LSN it holds.
pub(super) fn decode_header(data: &[u8]) -> Result<Lsn, HeaderError> {
    let Some(header) = data.get(..HEADER_LEN) else {
        return Err(HeaderError::Torn(data.len()));
    };
    if &header[0..8] != MAGIC {
        return Err(HeaderError::Corrupt(
            "the file does not start with the WAL magic bytes".into(),
        ));
    }
    let stored = read_u32(header, 24);
    let computed = crc32fast::hash(&header[0..24]);
    if stored != computed {
        return Err(HeaderError::Corrupt(format!(
            "header checksum mismatch (stored {stored:08x}, computed {computed:08x})"
        )));
    }
    let version = read_u32(header, 8);
    if version != VERSION {
        return Err(HeaderError::Version(version));
    }
    // Version 1 defines no flags, and the bytes after the checksum are
    // reserved: anything there is damage.
    if read_u32(header, 12) != 0 || read_u32(header, 28) != 0 {
        return Err(HeaderError::Corrupt(
            "reserved header bytes are not zero".into(),
        ));
    }
    Ok(read_u64(header, 16))
}

/// The padding after a payload of `len` bytes so the next record starts at a
/// multiple of [`ALIGN`].
pub(super) fn padding(len: usize) -> usize {
    (ALIGN - (FRAME_LEN + len) % ALIGN) % ALIGN
}

/// A record too large for its `u32` length.
#[derive(Debug)]
pub(super) struct TooLarge(pub(super) usize);

/// Appends one framed record to `out`: `lsn`, `table` id, `flags` and the
/// Arrow IPC data in `ipc` (several buffers, written back to back).
pub(super) fn push_record<B: AsRef<[u8]>>(
    out: &mut Vec<u8>,
    lsn: Lsn,
    table: u8,
    flags: u8,
    ipc: &[B],
) -> Result<(), TooLarge> {
    let payload_len = PAYLOAD_PREFIX_LEN + ipc.iter().map(|b| b.as_ref().len()).sum::<usize>();
    let len = u32::try_from(payload_len).map_err(|_| TooLarge(payload_len))?;
    let start = out.len();
    out.reserve(FRAME_LEN + payload_len + ALIGN);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&[0; 4]); // the checksum, filled in below
    out.extend_from_slice(&lsn.to_le_bytes());
    out.push(table);
    out.push(flags);
    out.extend_from_slice(&[0; 6]);
    for buffer in ipc {
        out.extend_from_slice(buffer.as_ref());
    }
    let crc = checksum(&out[start..start + 4], &out[start + FRAME_LEN..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    out.resize(out.len() + padding(payload_len), 0);
    Ok(())
}

/// The checksum of a record: CRC-32 of its length bytes, then its payload.
fn checksum(len: &[u8], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(len);
    hasher.update(payload);
    hasher.finalize()
}

/// What [`read_frame`] found at an offset of a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Frame {
    /// The end of the segment, exactly at a record boundary.
    End,
    /// A record whose frame and checksum are valid.
    Record {
        /// Its LSN.
        lsn: Lsn,
        /// Its table id.
        table: u8,
        /// Its flags.
        flags: u8,
        /// Where its Arrow IPC data lies in the segment.
        ipc: Range<usize>,
        /// Where the next record starts.
        next: usize,
    },
    /// Bytes that are not a valid record: why.
    Bad(String),
}

/// Reads the record framed at `offset` of the segment `data`. Never trusts
/// the stored length: it is checked against the bytes left before use.
pub(super) fn read_frame(data: &[u8], offset: usize) -> Frame {
    let left = data.len().saturating_sub(offset);
    if left == 0 {
        return Frame::End;
    }
    if left < FRAME_LEN {
        return Frame::Bad(format!(
            "torn record frame: {left} of {FRAME_LEN} bytes present"
        ));
    }
    let len = read_u32(data, offset) as usize;
    let stored = read_u32(data, offset + 4);
    if len == 0 && stored == 0 {
        return Frame::Bad(
            "zero bytes where a record should start (a torn or preallocated tail)".into(),
        );
    }
    if len < PAYLOAD_PREFIX_LEN {
        return Frame::Bad(format!(
            "invalid record length {len} (the smallest record payload is {PAYLOAD_PREFIX_LEN} bytes)"
        ));
    }
    let available = left - FRAME_LEN;
    if len > available {
        return Frame::Bad(format!(
            "record length {len} runs past the end of the file ({available} bytes left): a torn write or a corrupt length"
        ));
    }
    let payload_start = offset + FRAME_LEN;
    let payload = &data[payload_start..payload_start + len];
    let computed = checksum(&data[offset..offset + 4], payload);
    if stored != computed {
        return Frame::Bad(format!(
            "record checksum mismatch (stored {stored:08x}, computed {computed:08x})"
        ));
    }
    let pad = padding(len);
    let pad_start = payload_start + len;
    match data.get(pad_start..pad_start + pad) {
        None => {
            return Frame::Bad(format!(
                "torn record padding: {} of {pad} bytes present",
                available - len
            ));
        }
        Some(padding) if padding.iter().any(|b| *b != 0) => {
            return Frame::Bad("non-zero record padding".into());
        }
        Some(_) => {}
    }
    let flags = payload[9];
    if flags & !FLAG_NEW_STREAM != 0 {
        return Frame::Bad(format!("unknown record flags {flags:#04x}"));
    }
    Frame::Record {
        lsn: read_u64(payload, 0),
        table: payload[8],
        flags,
        ipc: payload_start + PAYLOAD_PREFIX_LEN..payload_start + len,
        next: payload_start + len + pad,
    }
}

fn read_u32(data: &[u8], at: usize) -> u32 {
    let mut bytes = [0u8; 4];
    bytes.copy_from_slice(&data[at..at + 4]);
    u32::from_le_bytes(bytes)
}

fn read_u64(data: &[u8], at: usize) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&data[at..at + 8]);
    u64::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Segment names sort like their LSNs and parse back; other names are
    /// not segments.
    #[test]
    fn segment_names_round_trip() {
        for lsn in [0, 1, 42, u64::MAX] {
            assert_eq!(parse_segment_name(&segment_name(lsn)), Some(lsn));
        }
        assert!(segment_name(9) < segment_name(10));
        for name in [
            "LOCK",
            "1.wal",
            "0000000000000000000a.wal",
            "00000000000000000001.wal.corrupt",
        ] {
            assert_eq!(parse_segment_name(name), None, "{name}");
        }
    }

    /// A header decodes to its LSN; any flipped bit is caught, and a short
    /// header is reported as torn.
    #[test]
    fn header_detects_damage() {
        let header = encode_header(77);
        assert_eq!(decode_header(&header), Ok(77));
        for byte in 0..HEADER_LEN {
            let mut bad = header;
            bad[byte] ^= 0x10;
            assert!(
                matches!(decode_header(&bad), Err(HeaderError::Corrupt(_))),
                "byte {byte}"
            );
        }
        assert_eq!(decode_header(&header[..5]), Err(HeaderError::Torn(5)));
    }

    /// A framed record reads back with its fields, ends aligned, and every
    /// truncation of it is reported, not read.
    #[test]
    fn frame_round_trip_and_truncation() {
        let mut out = Vec::new();
        push_record(
            &mut out,
            9,
            2,
            FLAG_NEW_STREAM,
            &[&b"abc"[..], &b"defgh"[..]],
        )
        .expect("small record");
        assert_eq!(out.len() % ALIGN, 0);
        let Frame::Record {
            lsn,
            table,
            flags,
            ipc,
            next,
        } = read_frame(&out, 0)
        else {
            panic!("not a record: {:?}", read_frame(&out, 0));
        };
        assert_eq!(
            (lsn, table, flags, next),
            (9, 2, FLAG_NEW_STREAM, out.len())
        );
        assert_eq!(&out[ipc], b"abcdefgh");
        assert_eq!(read_frame(&out, out.len()), Frame::End);
        for cut in 1..out.len() {
            assert!(
                matches!(read_frame(&out[..cut], 0), Frame::Bad(_)),
                "cut at {cut}"
            );
        }
    }

    /// A huge stored length is reported as corruption, not allocated.
    #[test]
    fn huge_length_is_corruption() {
        let mut out = Vec::new();
        push_record(&mut out, 1, 1, 0, &[&b"x"[..]]).expect("small record");
        out[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(read_frame(&out, 0), Frame::Bad(m) if m.contains("runs past")));
    }
}
