//! Streams -> push request bodies (protobuf or JSON, before compression),
//! cut so that none exceeds `max_request_bytes`. A stream whose entries do
//! not fit in one request continues in the next, still in time order.

use std::collections::BTreeMap;

use prost::Message as _;

use super::proto::{EntryAdapter, LabelPairAdapter, PushRequest, StreamAdapter, Timestamp};
use super::streams::{Entry, label_set};

/// One request body (before compression) and the entries it carries.
#[derive(Debug)]
pub(crate) struct Request {
    pub body: Vec<u8>,
    pub entries: u64,
}

/// The requests of a batch, and the entries too large for any request.
#[derive(Debug)]
pub(crate) struct Cut {
    pub requests: Vec<Request>,
    pub too_large: u64,
}

/// How a body is written: the encoded form of labels and entries, upper
/// bounds of their sizes in the body, and the body of some streams.
pub(crate) trait Form {
    /// An entry ready to be written.
    type Item;
    /// A stream's label set as the body holds it.
    fn labels(labels: &BTreeMap<String, String>) -> String;
    /// An entry ready to be written.
    fn item(entry: Entry) -> Self::Item;
    /// The bytes `item` adds to the body.
    fn item_size(item: &Self::Item) -> usize;
    /// The bytes a stream adds to the body without its entries.
    fn stream_size(labels: &str) -> usize;
    /// The bytes of a body without streams.
    const EMPTY_SIZE: usize;
    /// The body of `streams`.
    fn body(streams: Vec<(String, Vec<Self::Item>)>) -> Vec<u8>;
}

/// Cuts `streams` into bodies of form `F` of at most `max_bytes` bytes.
pub(crate) fn cut<F: Form>(
    streams: BTreeMap<BTreeMap<String, String>, Vec<Entry>>,
    max_bytes: usize,
) -> Cut {
    let mut requests = Vec::new();
    let mut too_large = 0u64;
    let mut current: Vec<(String, Vec<F::Item>)> = Vec::new();
    let mut bytes = F::EMPTY_SIZE;
    let mut entries = 0u64;
    for (labels, stream_entries) in streams {
        let labels = F::labels(&labels);
        let stream_size = F::stream_size(&labels);
        let mut open = false;
        for entry in stream_entries {
            let item = F::item(entry);
            let size = F::item_size(&item);
            if F::EMPTY_SIZE + stream_size + size > max_bytes {
                too_large += 1;
                continue;
            }
            let adds = size + if open { 0 } else { stream_size };
            if entries > 0 && bytes + adds > max_bytes {
                requests.push(Request {
                    body: F::body(std::mem::take(&mut current)),
                    entries: std::mem::take(&mut entries),
                });
                bytes = F::EMPTY_SIZE;
                open = false;
            }
            if !open {
                current.push((labels.clone(), Vec::new()));
                bytes += stream_size;
                open = true;
            }
            if let Some((_, items)) = current.last_mut() {
                items.push(item);
            }
            bytes += size;
            entries += 1;
        }
    }
    if entries > 0 {
        requests.push(Request {
            body: F::body(current),
            entries,
        });
    }
    Cut {
        requests,
        too_large,
    }
}

/// `logproto.PushRequest` in protobuf.
pub(crate) struct Protobuf;

/// The bytes of a field's tag and length before a message of `len`.
fn delimited(len: usize) -> usize {
    1 + prost::length_delimiter_len(len) + len
}

impl Form for Protobuf {
    type Item = EntryAdapter;

    fn labels(labels: &BTreeMap<String, String>) -> String {
        label_set(labels)
    }

    fn item(entry: Entry) -> EntryAdapter {
        EntryAdapter {
            timestamp: Some(Timestamp::from_unix_nanos(entry.unix_nanos)),
            line: entry.line,
            structured_metadata: entry
                .metadata
                .into_iter()
                .map(|(name, value)| LabelPairAdapter { name, value })
                .collect(),
        }
    }

    fn item_size(item: &EntryAdapter) -> usize {
        delimited(item.encoded_len())
    }

    fn stream_size(labels: &str) -> usize {
        // The stream's tag and the longest length it may have, then the
        // labels field.
        1 + 5 + delimited(labels.len())
    }

    const EMPTY_SIZE: usize = 0;

    fn body(streams: Vec<(String, Vec<EntryAdapter>)>) -> Vec<u8> {
        PushRequest {
            streams: streams
                .into_iter()
                .map(|(labels, entries)| StreamAdapter {
                    labels,
                    entries,
                    hash: 0,
                })
                .collect(),
        }
        .encode_to_vec()
    }
}

/// Loki's JSON push body: `{"streams":[{"stream":{labels},"values":[["<ns>",
/// "<line>",{metadata}]]}]}`.
pub(crate) struct Json;

impl Form for Json {
    type Item = String;

    fn labels(labels: &BTreeMap<String, String>) -> String {
        serde_json::Value::from(
            labels
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::from(v.as_str())))
                .collect::<serde_json::Map<_, _>>(),
        )
        .to_string()
    }

    fn item(entry: Entry) -> String {
        let mut value = vec![
            serde_json::Value::from(entry.unix_nanos.to_string()),
            serde_json::Value::from(entry.line),
        ];
        if !entry.metadata.is_empty() {
            let metadata: serde_json::Map<String, serde_json::Value> = entry
                .metadata
                .into_iter()
                .map(|(k, v)| (k, serde_json::Value::from(v)))
                .collect();
            value.push(serde_json::Value::Object(metadata));
        }
        serde_json::Value::Array(value).to_string()
    }

    fn item_size(item: &String) -> usize {
        item.len() + 1
    }

    fn stream_size(labels: &str) -> usize {
        r#"{"stream":,"values":[]},"#.len() + labels.len()
    }

    const EMPTY_SIZE: usize = r#"{"streams":[]}"#.len();

    fn body(streams: Vec<(String, Vec<String>)>) -> Vec<u8> {
        let mut body = String::from(r#"{"streams":["#);
        for (i, (labels, entries)) in streams.into_iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            body.push_str(r#"{"stream":"#);
            body.push_str(&labels);
            body.push_str(r#","values":["#);
            body.push_str(&entries.join(","));
            body.push_str("]}");
        }
        body.push_str("]}");
        body.into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn streams(n: u64) -> BTreeMap<BTreeMap<String, String>, Vec<Entry>> {
        let mut all = BTreeMap::new();
        for s in ["a", "b"] {
            let labels = BTreeMap::from([("service_name".to_string(), s.to_string())]);
            let entries = (0..n)
                .map(|i| Entry {
                    unix_nanos: i,
                    line: format!("line {i}"),
                    metadata: vec![("k".to_string(), "v".to_string())],
                })
                .collect();
            all.insert(labels, entries);
        }
        all
    }

    fn check<F: Form>(decode: impl Fn(&[u8]) -> Vec<u64>) {
        let whole = cut::<F>(streams(20), usize::MAX);
        assert_eq!(whole.requests.len(), 1);
        let limit = whole.requests[0].body.len() / 5;
        let parts = cut::<F>(streams(20), limit);
        assert!(parts.requests.len() >= 5, "{}", parts.requests.len());
        assert_eq!(parts.too_large, 0);
        let mut times = Vec::new();
        for r in &parts.requests {
            assert!(r.body.len() <= limit, "{} > {limit}", r.body.len());
            let decoded = decode(&r.body);
            assert_eq!(decoded.len() as u64, r.entries);
            times.extend(decoded);
        }
        let want: Vec<u64> = (0..20).chain(0..20).collect();
        assert_eq!(times, want, "every entry once, in order");

        let tiny = cut::<F>(streams(1), 10);
        assert_eq!(tiny.too_large, 2);
        assert!(tiny.requests.is_empty());
    }

    /// Guarantees: protobuf bodies stay within the limit, hold every entry
    /// once in order, and an entry too large alone is counted, not sent.
    #[test]
    fn protobuf_bodies_respect_the_limit() {
        check::<Protobuf>(|body| {
            let request = PushRequest::decode(body).expect("a PushRequest");
            request
                .streams
                .iter()
                .flat_map(|s| &s.entries)
                .map(|e| e.timestamp.map_or(0, |t| t.unix_nanos()))
                .collect()
        });
    }

    /// Guarantees: the same for JSON bodies, which parse as Loki's push
    /// JSON.
    #[test]
    fn json_bodies_respect_the_limit() {
        check::<Json>(|body| {
            let request: serde_json::Value = serde_json::from_slice(body).expect("JSON");
            let mut times = Vec::new();
            for stream in request["streams"].as_array().expect("streams") {
                assert!(stream["stream"]["service_name"].is_string());
                for value in stream["values"].as_array().expect("values") {
                    let ns = value[0].as_str().expect("ns string");
                    times.push(ns.parse::<u64>().expect("ns"));
                    assert_eq!(value[2]["k"], "v");
                }
            }
            times
        });
    }
}
