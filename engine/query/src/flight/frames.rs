//! A query's `DoGet` answer written from its record batches' own buffers.
//!
//! tonic writes a message by encoding it into one buffer, and arrow-flight's
//! encoder has already copied every Arrow buffer of a batch into one IPC
//! body: two copies of each byte of a result before the socket's. Here each
//! `FlightData` message is a list of chunks instead: a small head (the gRPC
//! prefix, the protobuf tags, the IPC header and the batch's small buffers)
//! and then the batch's large Arrow buffers themselves, which hyper hands to
//! the socket as they are. The bytes on the wire are what tonic and
//! arrow-flight would write, apart from zeros after the IPC header, which
//! align the body.
//!
//! ```text
//!  RecordBatch ─slice ≤ 2 MiB─▶ IPC stream encoder ─▶ [header][buf][pad][buf]…
//!     ─▶ gRPC frame: [0, len][0x12 hlen header][0xC2 0x3E blen]  [buf]  [pad buf]…
//!                    └──────────── head (copied) ──────────────┘ └ as they are ┘
//! ```

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use arrow::array::RecordBatch;
use arrow::buffer::Buffer;
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::ipc::writer::StreamEncoder;
use bytes::{BufMut, Bytes, BytesMut};
use futures::Stream;
use http::HeaderMap;
use http_body::Frame;
use prost::encoding::{encode_varint, encoded_len_varint};
use tonic::Status;

/// The largest IPC body of one message, as arrow-flight's encoder: a
/// larger batch is cut into slices. gRPC clients refuse messages over
/// 4 MiB unless told otherwise.
const MAX_BODY_BYTES: usize = 2 << 20;

/// Arrow buffers below this size are copied into the message's head rather
/// than sent as chunks of their own (a chunk costs an HTTP/2 frame).
const SMALL_BUFFER: usize = 16 << 10;

/// Where the body starts in a message, in bytes from the message's first.
/// A client reading each message into a buffer of its own (tonic, grpc's
/// own libraries) then has its Arrow buffers aligned as Arrow asks, and
/// need not copy them to align them.
const BODY_ALIGNMENT: usize = 16;

/// Protobuf key of `FlightData.data_header` (field 2, length-delimited).
const DATA_HEADER_KEY: u8 = 0x12;
/// Protobuf key of `FlightData.data_body` (field 1000, length-delimited),
/// as a varint.
const DATA_BODY_KEY: [u8; 2] = [0xC2, 0x3E];

/// The batches of a query, as they come.
pub(crate) type Batches = Pin<Box<dyn Stream<Item = Result<RecordBatch, Status>> + Send>>;

/// The response body of a `DoGet`: gRPC messages of `FlightData`, then the
/// status in the trailers.
pub(crate) struct DoGetBody {
    batches: Batches,
    encoder: Option<StreamEncoder>,
    /// Chunks of the messages encoded, not yet handed to hyper.
    ready: VecDeque<Bytes>,
    /// Whether a message was written (the schema goes first, even for no
    /// rows).
    started: bool,
    finished: bool,
}

impl DoGetBody {
    /// A body streaming `batches`, whose schema is `schema`.
    pub(crate) fn new(schema: &SchemaRef, batches: Batches) -> Result<Self, Status> {
        let encoder = StreamEncoder::try_new(schema)
            .map_err(|e| Status::internal(format!("cannot encode the result's schema: {e}")))?;
        Ok(DoGetBody {
            batches,
            encoder: Some(encoder),
            ready: VecDeque::new(),
            started: false,
            finished: false,
        })
    }

    /// Encodes `batch`, cut into slices of at most [`MAX_BODY_BYTES`].
    fn encode(&mut self, batch: &RecordBatch) -> Result<(), ArrowError> {
        let Some(encoder) = self.encoder.as_mut() else {
            return Ok(());
        };
        for slice in slices(batch) {
            frame(encoder.encode(&slice)?, &mut self.ready)?;
            self.started = true;
        }
        Ok(())
    }

    /// The schema if nothing was written yet; the encoder is done.
    fn finish(&mut self) -> Result<(), ArrowError> {
        match self.encoder.take() {
            Some(encoder) if !self.started => frame(encoder.finish()?, &mut self.ready),
            _ => Ok(()),
        }
    }

    /// The trailers ending the call with `status`.
    fn trailers(&mut self, status: &Status) -> Frame<Bytes> {
        self.finished = true;
        self.ready.clear();
        let mut trailers = HeaderMap::new();
        if status.add_header(&mut trailers).is_err() {
            // A message that cannot be a header value: the code alone.
            let _ = Status::new(status.code(), "").add_header(&mut trailers);
        }
        Frame::trailers(trailers)
    }
}

impl http_body::Body for DoGetBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        loop {
            if let Some(chunk) = this.ready.pop_front() {
                return Poll::Ready(Some(Ok(Frame::data(chunk))));
            }
            if this.finished {
                return Poll::Ready(None);
            }
            let done = match this.batches.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(batch))) => this.encode(&batch),
                Poll::Ready(Some(Err(status))) => {
                    return Poll::Ready(Some(Ok(this.trailers(&status))));
                }
                Poll::Ready(None) => match this.finish() {
                    Ok(()) if this.ready.is_empty() => {
                        return Poll::Ready(Some(Ok(this.trailers(&Status::ok("")))));
                    }
                    other => other,
                },
            };
            if let Err(e) = done {
                let status = Status::internal(format!("cannot encode the result: {e}"));
                return Poll::Ready(Some(Ok(this.trailers(&status))));
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.finished && self.ready.is_empty()
    }
}

/// `batch` cut so that each slice's buffers hold at most
/// [`MAX_BODY_BYTES`] (a single row may hold more).
fn slices(batch: &RecordBatch) -> Vec<RecordBatch> {
    let bytes: usize = batch
        .columns()
        .iter()
        .map(|column| {
            let data = column.to_data();
            data.get_slice_memory_size()
                .unwrap_or_else(|_| column.get_buffer_memory_size())
        })
        .sum();
    let rows = batch.num_rows();
    let parts = bytes.div_ceil(MAX_BODY_BYTES).clamp(1, rows.max(1));
    if parts == 1 {
        return vec![batch.clone()];
    }
    let per_part = rows.div_ceil(parts);
    (0..rows)
        .step_by(per_part)
        .map(|start| batch.slice(start, per_part.min(rows - start)))
        .collect()
}

/// Writes the IPC messages of `stream` (an IPC stream's bytes, as the
/// encoder's buffers) as gRPC frames of `FlightData`: one chunk for each
/// head and large buffer. The end-of-stream marker is not sent: a Flight
/// stream ends with the call.
fn frame(stream: Vec<Buffer>, out: &mut VecDeque<Bytes>) -> Result<(), ArrowError> {
    let mut rope = Rope(stream.into());
    while !rope.is_empty() {
        let prefix = rope.copy(8)?;
        let (marker, len) = prefix.split_at(4);
        if marker != [0xFF; 4] {
            return Err(ArrowError::IpcError(
                "the IPC encoder wrote no continuation marker".into(),
            ));
        }
        let header_len = usize::try_from(i32::from_le_bytes(len.try_into().unwrap_or_default()))
            .map_err(|_| ArrowError::IpcError("a negative IPC header length".into()))?;
        if header_len == 0 {
            break;
        }
        let mut header = rope.copy(header_len)?;
        let message = arrow::ipc::root_as_message(&header)
            .map_err(|e| ArrowError::IpcError(format!("an unreadable IPC header: {e}")))?;
        let body_len = usize::try_from(message.bodyLength())
            .map_err(|_| ArrowError::IpcError("a negative IPC body length".into()))?;
        if body_len > 0 {
            // Zeros after the flatbuffer, so that the body starts aligned
            // in the message.
            let body_at = |header_len: usize| {
                1 + varint(header_len) + header_len + DATA_BODY_KEY.len() + varint(body_len)
            };
            while !body_at(header.len()).is_multiple_of(BODY_ALIGNMENT) {
                header.push(0);
            }
        }
        let header_len = header.len();

        let mut protobuf_len = 1 + varint(header_len) + header_len;
        if body_len > 0 {
            protobuf_len += DATA_BODY_KEY.len() + varint(body_len) + body_len;
        }
        let frame_len = u32::try_from(protobuf_len)
            .map_err(|_| ArrowError::IpcError("a message over 4 GiB".into()))?;
        let mut head = BytesMut::with_capacity(32 + header_len);
        head.put_u8(0); // not compressed
        head.put_u32(frame_len);
        head.put_u8(DATA_HEADER_KEY);
        encode_varint(header_len as u64, &mut head);
        head.put_slice(&header);
        if body_len > 0 {
            head.put_slice(&DATA_BODY_KEY);
            encode_varint(body_len as u64, &mut head);
        }
        let mut left = body_len;
        while left > 0 {
            let buffer = rope.take(left)?;
            left -= buffer.len();
            if buffer.len() < SMALL_BUFFER {
                head.put_slice(buffer.as_slice());
            } else {
                if !head.is_empty() {
                    out.push_back(head.split().freeze());
                }
                out.push_back(Bytes::from_owner(Owned(buffer)));
            }
        }
        if !head.is_empty() {
            out.push_back(head.freeze());
        }
    }
    Ok(())
}

/// The bytes protobuf's varint of `len` takes.
fn varint(len: usize) -> usize {
    encoded_len_varint(len as u64)
}

/// An Arrow buffer lent to a `Bytes` without a copy.
struct Owned(Buffer);

impl AsRef<[u8]> for Owned {
    fn as_ref(&self) -> &[u8] {
        self.0.as_slice()
    }
}

/// The encoder's buffers, read front to back.
struct Rope(VecDeque<Buffer>);

impl Rope {
    fn is_empty(&self) -> bool {
        self.0.iter().all(|b| b.is_empty())
    }

    /// The next buffer, or its first `at_most` bytes.
    fn take(&mut self, at_most: usize) -> Result<Buffer, ArrowError> {
        loop {
            let buffer = self.0.pop_front().ok_or_else(|| {
                ArrowError::IpcError("the IPC stream ended inside a message".into())
            })?;
            if buffer.is_empty() {
                continue;
            }
            if buffer.len() <= at_most {
                return Ok(buffer);
            }
            self.0.push_front(buffer.slice(at_most));
            return Ok(buffer.slice_with_length(0, at_most));
        }
    }

    /// The next `len` bytes, copied.
    fn copy(&mut self, len: usize) -> Result<Vec<u8>, ArrowError> {
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            out.extend_from_slice(self.take(len - out.len())?.as_slice());
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use arrow::array::{DictionaryArray, Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Int32Type, Schema};
    use arrow_flight::FlightData;
    use arrow_flight::decode::{DecodedPayload, FlightDataDecoder};
    use futures::TryStreamExt;
    use http_body_util::BodyExt;
    use prost::Message;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, true),
            Field::new(
                "service",
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
                true,
            ),
            Field::new("body", DataType::Utf8, true),
        ]))
    }

    fn batch(rows: usize, body_len: usize, services: &[&str]) -> RecordBatch {
        let n = Int64Array::from_iter((0..rows as i64).map(|i| (i % 7 != 0).then_some(i)));
        let service: DictionaryArray<Int32Type> =
            (0..rows).map(|i| services[i % services.len()]).collect();
        let body = StringArray::from_iter(
            (0..rows).map(|i| (i % 5 != 0).then(|| format!("{i:0>width$}", width = body_len))),
        );
        RecordBatch::try_new(
            schema(),
            vec![Arc::new(n), Arc::new(service), Arc::new(body)],
        )
        .expect("batch")
    }

    /// The body's gRPC frames, parsed by prost as a client would, then the
    /// trailers.
    async fn read(body: DoGetBody) -> (Vec<FlightData>, HeaderMap) {
        let collected = body.collect().await.expect("the body ends");
        let trailers = collected.trailers().cloned().expect("trailers");
        let bytes = collected.to_bytes();
        let mut messages = Vec::new();
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            assert_eq!(rest[0], 0, "not compressed");
            let len = u32::from_be_bytes(rest[1..5].try_into().expect("4 bytes")) as usize;
            let message = FlightData::decode(&rest[5..5 + len]).expect("a FlightData");
            let body = message.data_body.len();
            assert!(
                body == 0 || (len - body).is_multiple_of(BODY_ALIGNMENT),
                "the body (the last field) starts aligned"
            );
            messages.push(message);
            rest = &rest[5 + len..];
        }
        (messages, trailers)
    }

    async fn decode(messages: Vec<FlightData>) -> Vec<RecordBatch> {
        let stream = futures::stream::iter(messages.into_iter().map(Ok));
        FlightDataDecoder::new(stream)
            .try_filter_map(|d| async move {
                Ok(match d.payload {
                    DecodedPayload::RecordBatch(b) => Some(b),
                    _ => None,
                })
            })
            .try_collect()
            .await
            .expect("arrow-flight's decoder reads every message")
    }

    /// What arrow-flight's client decodes is the batches sent, row for
    /// row, with dictionaries that change between batches; large batches
    /// are cut under the message limit; the call ends with status OK.
    #[tokio::test]
    async fn clients_decode_the_batches_sent() {
        let sent = vec![
            batch(10, 8, &["cart", "checkout"]),
            batch(3, 4, &["payments"]),
            // 20,000 rows of 300 bytes: 6 MB, cut into slices.
            batch(20_000, 300, &["cart", "frontend", "ads"]),
            batch(0, 1, &["cart"]),
        ];
        let stream = futures::stream::iter(sent.clone().into_iter().map(Ok));
        let body = DoGetBody::new(&schema(), Box::pin(stream)).expect("body");
        let (messages, trailers) = read(body).await;
        assert_eq!(
            trailers.get("grpc-status").map(|v| v.as_bytes()),
            Some(&b"0"[..])
        );
        assert!(
            messages.iter().all(|m| m.encoded_len() < 4 << 20),
            "every message is under gRPC's default limit"
        );
        let received = decode(messages).await;
        assert!(received.len() > sent.len(), "the large batch was cut");
        let rows = |batches: &[RecordBatch]| {
            arrow::compute::concat_batches(&schema(), batches).expect("concat")
        };
        assert_eq!(rows(&received), rows(&sent));
    }

    /// A result without rows still gives the client its schema.
    #[tokio::test]
    async fn no_rows_send_the_schema() {
        let body = DoGetBody::new(&schema(), Box::pin(futures::stream::empty())).expect("body");
        let (messages, trailers) = read(body).await;
        assert_eq!(
            trailers.get("grpc-status").map(|v| v.as_bytes()),
            Some(&b"0"[..])
        );
        let stream = futures::stream::iter(messages.into_iter().map(Ok));
        let decoded: Vec<_> = FlightDataDecoder::new(stream)
            .try_collect()
            .await
            .expect("decodes");
        assert_eq!(decoded.len(), 1);
        match &decoded[0].payload {
            DecodedPayload::Schema(s) => assert_eq!(s.fields(), schema().fields()),
            other => panic!("expected the schema, got {other:?}"),
        }
    }

    /// An error in the middle of a result ends the call with its status,
    /// after the batches before it.
    #[tokio::test]
    async fn an_error_ends_the_call_with_its_status() {
        let items = vec![
            Ok(batch(5, 8, &["cart"])),
            Err(Status::deadline_exceeded(
                "the query ran past its 30 s limit",
            )),
        ];
        let body = DoGetBody::new(&schema(), Box::pin(futures::stream::iter(items))).expect("body");
        let (messages, trailers) = read(body).await;
        let status = Status::from_header_map(&trailers).expect("a status");
        assert_eq!(status.code(), tonic::Code::DeadlineExceeded);
        assert_eq!(status.message(), "the query ran past its 30 s limit");
        let received = decode(messages).await;
        assert_eq!(received.iter().map(RecordBatch::num_rows).sum::<usize>(), 5);
    }

    /// A large Arrow buffer goes out as it is: one of the body's chunks is
    /// the column's own memory, not a copy of it.
    #[test]
    fn large_buffers_are_sent_without_a_copy() {
        let values = Int64Array::from_iter_values(0..10_000); // 80 KB
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        let batch =
            RecordBatch::try_new(schema.clone(), vec![Arc::new(values.clone())]).expect("batch");
        let mut body = DoGetBody::new(&schema, Box::pin(futures::stream::empty())).expect("body");
        body.encode(&batch).expect("encodes");
        let column = values.values().inner().as_ptr();
        assert!(
            body.ready.iter().any(|chunk| chunk.as_ptr() == column),
            "a chunk points at the column's buffer"
        );
    }
}
