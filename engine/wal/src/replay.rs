//! Reading one segment back: every record is checked (frame, checksum,
//! LSN, table, Arrow IPC) and the valid prefix is kept.

use std::collections::HashMap;
use std::panic::{self, AssertUnwindSafe};

use arrow::buffer::Buffer;
use arrow::error::ArrowError;
use arrow::ipc::reader::StreamDecoder;

use super::format::{self, FLAG_NEW_STREAM, Frame, HEADER_LEN, HeaderError, IPC_END, read_frame};
use super::{Lsn, RecordInfo, WalRecord};

/// What a segment holds.
#[derive(Debug)]
pub(super) struct Scan {
    /// The valid records, in order.
    pub(super) records: Vec<WalRecord>,
    /// The valid records let go of (their batches dropped), in order: a
    /// scan has either these or `records`.
    pub(super) let_go: Vec<RecordInfo>,
    /// Bytes of the valid prefix: the header and the valid records.
    pub(super) good_len: u64,
    /// Why the bytes after `good_len` are not records, when there are such
    /// bytes.
    pub(super) problem: Option<String>,
}

/// How many records of the segment `data` are lost when it is cut at byte
/// `from`, where the record with LSN `next` should have started; `at_most`
/// bounds the LSNs the cut bytes can hold (see `records_in`).
///
/// As far as can be told: the records are found again by their frames
/// (each at a multiple of 8 bytes, its checksum valid, its LSN one this
/// segment could hold), and every LSN from `next` to the last one found is
/// lost, damaged or not. When no frame is found, bytes that are not all
/// zeros held at least the damaged record (1), unless they start with a
/// valid frame of a foreign LSN (a stale block: 0); zeros tell nothing (0).
pub(super) fn lost_after(data: &[u8], from: usize, next: Lsn, at_most: u64) -> u64 {
    let Some(cut) = data.get(from..) else {
        return 0;
    };
    let in_range = |lsn: Lsn| lsn >= next && lsn - next < at_most;
    let mut last = None;
    let mut offset = from;
    while offset < data.len() {
        match read_frame(data, offset) {
            Frame::Record {
                lsn, next: after, ..
            } if in_range(lsn) => {
                last = Some(lsn);
                offset = after;
            }
            _ => offset += format::ALIGN,
        }
    }
    match last {
        Some(last) => last - next + 1,
        None if cut.iter().all(|b| *b == 0) => 0,
        None => match read_frame(data, from) {
            Frame::Record { .. } => 0,
            Frame::End | Frame::Bad(_) => 1,
        },
    }
}

/// Reads the segment `data` whose name says its first LSN is `first_lsn`.
///
/// An error means the header itself is unusable. Otherwise the records are
/// read up to the first one that is not valid; the scan says where that is
/// and why.
pub(super) fn scan(data: &Buffer, first_lsn: Lsn) -> Result<Scan, HeaderError> {
    let header_lsn = format::decode_header(data)?;
    if header_lsn != first_lsn {
        return Err(HeaderError::Corrupt(format!(
            "the header says the first LSN is {header_lsn}, the file name says {first_lsn}"
        )));
    }
    let mut records = Vec::new();
    let mut decoders: HashMap<u8, StreamDecoder> = HashMap::new();
    let mut offset = HEADER_LEN;
    let mut expected = first_lsn;
    let problem = loop {
        let (lsn, table_id, flags, ipc, next) = match read_frame(data, offset) {
            Frame::End => break None,
            Frame::Bad(why) => break Some(why),
            Frame::Record {
                lsn,
                table,
                flags,
                ipc,
                next,
            } => (lsn, table, flags, ipc, next),
        };
        if lsn != expected {
            break Some(format!(
                "a record with LSN {lsn} where LSN {expected} was expected"
            ));
        }
        let Some(table) = super::table_of(table_id) else {
            break Some(format!("a record of unknown table id {table_id}"));
        };
        if flags & FLAG_NEW_STREAM != 0 {
            decoders.insert(table_id, StreamDecoder::new());
        }
        let Some(decoder) = decoders.get_mut(&table_id) else {
            break Some(format!(
                "a record of table `{table}` continuing an Arrow IPC stream that this segment never started"
            ));
        };
        let mut ipc = data.slice_with_length(ipc.start, ipc.len());
        // The checksum makes damaged data reaching the decoder all but
        // impossible; should it happen anyway (or Arrow have a bug), a panic
        // in the decoder is damage to cut, not a reason never to start.
        let decoded = panic::catch_unwind(AssertUnwindSafe(|| decoder.decode(&mut ipc)))
            .unwrap_or_else(|_| Err(ArrowError::IpcError("the decoder panicked".into())));
        match decoded {
            Ok(Some(batch)) if ipc.as_slice() == &IPC_END[..] => {
                records.push(WalRecord { lsn, table, batch });
            }
            Ok(Some(_)) => {
                break Some(format!(
                    "a record of table `{table}` with {} unexpected bytes after its batch",
                    ipc.len()
                ));
            }
            Ok(None) => {
                break Some(format!(
                    "a record of table `{table}` holding no complete Arrow record batch"
                ));
            }
            Err(e) => {
                break Some(format!(
                    "a record of table `{table}` whose Arrow IPC data do not decode: {e}"
                ));
            }
        }
        expected = lsn.saturating_add(1);
        offset = next;
    };
    Ok(Scan {
        records,
        let_go: Vec::new(),
        good_len: offset as u64,
        problem: problem.map(|why| format!("at offset {offset}: {why}")),
    })
}

impl Scan {
    /// The LSN of the last valid record, kept or let go.
    pub(super) fn last_lsn(&self) -> Option<Lsn> {
        self.records
            .last()
            .map(|r| r.lsn)
            .or_else(|| self.let_go.last().map(|r| r.lsn))
    }

    /// The valid records, kept or let go.
    pub(super) fn len(&self) -> usize {
        self.records.len() + self.let_go.len()
    }

    /// Drops the batches, keeping what [`RecordInfo`] says of them.
    pub(super) fn let_go(&mut self) {
        self.let_go
            .extend(self.records.drain(..).map(|r| RecordInfo::of(&r)));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, BooleanArray, DictionaryArray, Int64Array, StringArray};
    use arrow::datatypes::{Field, Int32Type, Schema};
    use arrow::ipc::writer::{IpcWriteOptions, StreamEncoder};
    use arrow::record_batch::RecordBatch;
    use weir_core::Signal;

    use super::*;
    use crate::format::{ALIGN, encode_header, push_record};

    fn batch() -> RecordBatch {
        let dict: DictionaryArray<Int32Type> = vec!["a", "b", "a"].into_iter().collect();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![1, 2, 3])),
            Arc::new(BooleanArray::from(vec![Some(true), None, Some(false)])),
            Arc::new(StringArray::from(vec![Some("x"), None, Some("zz")])),
            Arc::new(dict),
        ];
        let fields: Vec<Field> = ["i", "b", "s", "d"]
            .iter()
            .zip(&columns)
            .map(|(name, c)| Field::new(*name, c.data_type().clone(), true))
            .collect();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).expect("batch")
    }

    /// Scenario: Arrow IPC data damaged *before* its checksum was computed
    /// (every byte, in turn), so the checksum holds. Guarantees: replay
    /// never panics; each record either decodes or is reported and cut.
    #[test]
    fn checksummed_garbage_never_panics() {
        let batch = batch();
        let options = IpcWriteOptions::try_new(ALIGN, false, arrow::ipc::MetadataVersion::V5)
            .expect("options");
        let mut encoder =
            StreamEncoder::try_new_with_options(&batch.schema(), options).expect("encoder");
        let mut ipc: Vec<u8> = Vec::new();
        for buffer in encoder.encode(&batch).expect("encode") {
            ipc.extend_from_slice(&buffer);
        }
        ipc.extend_from_slice(&IPC_END);
        let mut reported = 0;
        for at in 0..ipc.len() {
            let mut damaged = ipc.clone();
            damaged[at] ^= 0x5a;
            let mut segment = encode_header(1).to_vec();
            push_record(
                &mut segment,
                1,
                crate::table_id(Signal::Logs),
                FLAG_NEW_STREAM,
                &[&damaged[..]],
            )
            .expect("small");
            let scan = scan(&Buffer::from_vec(segment), 1).expect("a valid header");
            match scan.problem {
                Some(_) => {
                    reported += 1;
                    assert!(scan.records.is_empty());
                    assert_eq!(scan.good_len, HEADER_LEN as u64);
                }
                None => assert_eq!(scan.records.len(), 1),
            }
        }
        assert!(
            reported > ipc.len() / 4,
            "{reported} of {} damaged bytes reported",
            ipc.len()
        );
    }
}
