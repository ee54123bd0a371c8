//! Receiving a request's body before it takes a request slot: bounded in
//! time (`read_timeout`), in size (`max_request_size`) and in memory (each
//! chunk is counted against `max_in_flight_bytes` as it arrives), so slow
//! or large senders hold only the bytes they have sent, and not for long.

use std::io::Read;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Body;

use super::budget::Held;
use super::ingest::{Ingest, Outcome};

/// Reads `body` whole: at most `limit` bytes, within `read_timeout`, each
/// chunk held in the in-flight budget. A refusal is counted and comes back
/// as the outcome to answer.
pub(crate) async fn receive<B>(
    ingest: &Ingest,
    protocol: &'static str,
    body: B,
    limit: usize,
) -> Result<(Bytes, Held), Outcome>
where
    B: Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    let mut held = Held::default();
    let read = read(ingest, protocol, body, limit, &mut held);
    match tokio::time::timeout(ingest.read_timeout, read).await {
        Ok(Ok(bytes)) => Ok((bytes, held)),
        Ok(Err(outcome)) => Err(outcome),
        Err(_) => {
            ingest.count_request(protocol, "read_timeout");
            Err(Outcome::TimedOut(format!(
                "the request's body did not arrive within `read_timeout` ({}s) of `{}`; \
                 send it faster or in smaller requests",
                ingest.read_timeout.as_secs_f64(),
                ingest.name
            )))
        }
    }
}

async fn read<B>(
    ingest: &Ingest,
    protocol: &'static str,
    body: B,
    limit: usize,
    held: &mut Held,
) -> Result<Bytes, Outcome>
where
    B: Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    let mut body = std::pin::pin!(body);
    let mut out = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(frame) => frame,
            Err(e) => {
                ingest.count_request(protocol, "invalid");
                return Err(Outcome::Invalid(format!("could not read the body: {e}")));
            }
        };
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        let len = out.len().saturating_add(data.len());
        if len > limit {
            ingest.count_request(protocol, "too_large");
            return Err(too_large(ingest));
        }
        if let Err(short) = ingest.budget.try_grow(held, len as u64) {
            return Err(ingest.short(protocol, short, len as u64));
        }
        // The usual case, one chunk: keep it without a copy. Nothing is
        // reserved ahead of the bytes that arrived.
        if out.is_empty() && body.is_end_stream() {
            return Ok(data);
        }
        out.extend_from_slice(&data);
    }
    Ok(out.freeze())
}

/// The refusal of a request over `max_request_size`.
pub(crate) fn too_large(ingest: &Ingest) -> Outcome {
    Outcome::TooLarge(format!(
        "the request is larger than `max_request_size` ({} bytes) of `{}`; send smaller batches",
        ingest.max_request_size, ingest.name
    ))
}

/// Decompresses a gzip body after `prefix` zero bytes (room for a frame
/// header), refusing more than `max_request_size` bytes after
/// decompression; the decompressed bytes are held in the in-flight budget
/// besides what `held` already holds. A refusal is counted.
pub(crate) fn gunzip(
    ingest: &Ingest,
    protocol: &'static str,
    compressed: &[u8],
    prefix: usize,
    held: &mut Held,
) -> Result<Vec<u8>, Outcome> {
    let max = ingest.max_request_size;
    let mut out = Vec::with_capacity(prefix + compressed.len().saturating_mul(4).min(max));
    out.resize(prefix, 0);
    let mut decoder = flate2::read::GzDecoder::new(compressed).take(max as u64 + 1);
    if let Err(e) = decoder.read_to_end(&mut out) {
        ingest.count_request(protocol, "invalid");
        return Err(Outcome::Invalid(format!("the gzip body is corrupt: {e}")));
    }
    if out.len() - prefix > max {
        ingest.count_request(protocol, "too_large");
        return Err(too_large(ingest));
    }
    let both = held.bytes().saturating_add(out.len() as u64);
    if let Err(short) = ingest.budget.try_grow(held, both) {
        return Err(ingest.short(protocol, short, both));
    }
    Ok(out)
}
