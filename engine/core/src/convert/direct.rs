//! What the direct readers of protobuf export requests share
//! ([`super::spans_wire`], [`super::logs_wire`]): the containers of a
//! request (resources holding scopes holding records) scanned from its
//! bytes, with each resource and scope decoded by prost once, and attribute
//! entries read from their `KeyValue` messages.
//!
//! Trace and logs requests have the same containers: the request's field 1
//! holds resource containers, whose field 1 is the resource, 2 a scope
//! container and 3 the schema url; a scope container's field 1 is the
//! scope, 2 a record and 3 the schema url.

use arrow::record_batch::RecordBatch;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message as _;

use super::build::CommonBuilder;
use super::check::{MAX_REQUEST_BYTES, Rejections, check_size, key_bytes};
use super::estimate::{ROW_BYTES, resource_bytes, scope_bytes};
use super::protobuf::{Fields, Unsure, Value};
use super::value_text::{KvRef, ValueRef};
use super::wire::{Msg, nested_fits};
use super::{ConvertError, Converted};

/// How deep the messages read here are nested in a request, as prost
/// counts nesting: a resource container is 1.
pub(super) const RESOURCE: u32 = 2;
const SCOPE: u32 = 3;
/// A record's own attribute entry (its `KeyValue`).
pub(super) const RECORD_ATTRIBUTE: u32 = 4;
/// A log record's body.
pub(super) const BODY: u32 = 4;
/// An attribute entry of a span's event or link.
pub(super) const NESTED_ATTRIBUTE: u32 = 5;

/// The names of a request's three levels, for the location of a refused
/// record: e.g. `["resource_spans", "scope_spans", "spans"]`.
pub(super) type Names = [&'static str; 3];

/// One record read from its message, in buffers kept from record to
/// record: a span or a log record.
pub(super) trait Record<'a>: Default {
    /// The builder of the signal's columns.
    type Builder;
    /// Reads a record's message, every field of it, so that what prost
    /// would refuse anywhere in it is found before the record is checked.
    fn read(&mut self, message: &'a [u8]) -> Result<(), Unsure>;
    /// Why the record cannot be a row, if it cannot.
    fn check(&self) -> Result<(), String>;
    /// Appends the record's row.
    fn append(&self, out: &mut Self::Builder);
}

/// A request's containers, scanned from its bytes.
#[derive(Debug)]
pub(super) struct Containers<'a> {
    pub body: &'a [u8],
    resources: Vec<ResourceContainer<'a>>,
    /// The records in the request.
    pub rows: usize,
    /// The resource and scope attribute keys copied onto every row.
    pub repeated: usize,
    /// The bytes the body and its rows take once converted, estimated.
    pub expanded: usize,
}

#[derive(Debug)]
struct ResourceContainer<'a> {
    resource: Option<Resource>,
    schema_url: &'a str,
    scopes: Vec<ScopeContainer<'a>>,
}

#[derive(Debug)]
struct ScopeContainer<'a> {
    scope: Option<InstrumentationScope>,
    schema_url: &'a str,
    /// The scope container's message: its records are read from it.
    message: &'a [u8],
}

impl<'a> Containers<'a> {
    /// Scans `body`; `entries` tells the bytes a record's attribute
    /// entries and nested records add to its row. `None` when the body
    /// holds something left to prost.
    pub fn scan(body: &'a [u8], entries: fn(&[u8]) -> Result<usize, Unsure>) -> Option<Self> {
        if body.len() > MAX_REQUEST_BYTES {
            return None;
        }
        let mut scan = Containers {
            body,
            resources: Vec::new(),
            rows: 0,
            repeated: 0,
            expanded: body.len(),
        };
        let mut fields = Fields::new(body);
        while let Some((tag, value)) = fields.next_field().ok()? {
            if tag == 1 {
                let container = scan.resource(value.bytes().ok()?, entries).ok()?;
                scan.resources.push(container);
            }
        }
        Some(scan)
    }

    fn resource(
        &mut self,
        message: &'a [u8],
        entries: fn(&[u8]) -> Result<usize, Unsure>,
    ) -> Result<ResourceContainer<'a>, Unsure> {
        let mut container = ResourceContainer {
            resource: None,
            schema_url: "",
            scopes: Vec::new(),
        };
        let mut scopes = Vec::new();
        let mut fields = Fields::new(message);
        while let Some((tag, value)) = fields.next_field()? {
            match tag {
                1 => merge(&mut container.resource, value, Msg::Resource, RESOURCE)?,
                2 => scopes.push(value.bytes()?),
                3 => container.schema_url = value.str()?,
                _ => {}
            }
        }
        let resource = container.resource.as_ref();
        let resource_keys = resource.map_or(0, |r| key_bytes(&r.attributes));
        let resource_bytes = resource_bytes(resource);
        for message in scopes {
            let scope = self.scope(message, resource_keys, resource_bytes, entries)?;
            container.scopes.push(scope);
        }
        Ok(container)
    }

    fn scope(
        &mut self,
        message: &'a [u8],
        resource_keys: usize,
        resource_bytes: usize,
        entries: fn(&[u8]) -> Result<usize, Unsure>,
    ) -> Result<ScopeContainer<'a>, Unsure> {
        let mut container = ScopeContainer {
            scope: None,
            schema_url: "",
            message,
        };
        let mut records = 0usize;
        let mut fields = Fields::new(message);
        while let Some((tag, value)) = fields.next_field()? {
            match tag {
                1 => merge(&mut container.scope, value, Msg::Scope, SCOPE)?,
                2 => {
                    self.expanded = self.expanded.saturating_add(entries(value.bytes()?)?);
                    records += 1;
                }
                3 => container.schema_url = value.str()?,
                _ => {}
            }
        }
        let scope = container.scope.as_ref();
        let scope_keys = scope.map_or(0, |s| key_bytes(&s.attributes));
        self.rows += records;
        self.repeated = self
            .repeated
            .saturating_add(records.saturating_mul(resource_keys + scope_keys));
        let per_row = ROW_BYTES
            .saturating_add(resource_bytes)
            .saturating_add(scope_bytes(scope));
        self.expanded = self
            .expanded
            .saturating_add(records.saturating_mul(per_row));
        Ok(container)
    }

    /// The rows of the request's records, read directly into `out` (a
    /// builder with room for `rows` rows) and made a batch by
    /// `finish`; `None` when something in a record is left to prost.
    /// `names` locate a refused record.
    pub fn read<R: Record<'a>>(
        &'a self,
        names: Names,
        mut out: R::Builder,
        finish: impl FnOnce(R::Builder, CommonBuilder<'a>) -> Result<RecordBatch, ConvertError>,
    ) -> Option<Result<Converted, ConvertError>> {
        if let Err(e) = check_size(self.body.len(), self.repeated) {
            return Some(Err(e));
        }
        let mut common = CommonBuilder::with_capacity(self.rows);
        let mut record = R::default();
        let rejections = self
            .each_record(&mut common, names, |message| {
                record.read(message)?;
                Ok(record.check().map(|()| record.append(&mut out)))
            })
            .ok()?;
        Some(finish(out, common).map(|batch| Converted {
            batch,
            rejected: rejections.count,
            rejection: rejections.first,
        }))
    }

    /// Hands each record's message to `record`, in order, with its
    /// resource and scope set in `common`: `Ok(())` when it appended the
    /// record's row (the common columns follow), `Err(why)` when the
    /// record is refused. The refused records, or `Unsure` when `record`
    /// left the body to prost.
    fn each_record(
        &'a self,
        common: &mut CommonBuilder<'a>,
        names: Names,
        mut record: impl FnMut(&'a [u8]) -> Result<Result<(), String>, Unsure>,
    ) -> Result<Rejections, Unsure> {
        let mut rejections = Rejections::default();
        for (ri, rc) in self.resources.iter().enumerate() {
            common.set_resource(rc.resource.as_ref(), rc.schema_url);
            for (si, sc) in rc.scopes.iter().enumerate() {
                common.set_scope(sc.scope.as_ref(), sc.schema_url);
                let mut fields = Fields::new(sc.message);
                let mut i = 0;
                while let Some((tag, value)) = fields.next_field()? {
                    if tag != 2 {
                        continue;
                    }
                    match record(value.bytes()?)? {
                        Ok(()) => common.push_row(),
                        Err(why) => rejections.add(
                            || {
                                let [r, s, x] = names;
                                format!("{r}[{ri}].{s}[{si}].{x}[{i}]")
                            },
                            why,
                        ),
                    }
                    i += 1;
                }
            }
        }
        Ok(rejections)
    }
}

/// Merges one occurrence of a resource or scope field into `into`, as
/// prost merges a message field given more than once.
fn merge<M: prost::Message + Default>(
    into: &mut Option<M>,
    value: Value<'_>,
    msg: Msg,
    depth: u32,
) -> Result<(), Unsure> {
    let bytes = value.bytes()?;
    if !nested_fits(msg, bytes, depth) {
        return Err(Unsure);
    }
    into.get_or_insert_default()
        .merge(bytes)
        .map_err(|_| Unsure)
}

/// An attribute entry read from its `KeyValue` message; an array or kvlist
/// value is decoded by prost into a list of nested values kept beside.
#[derive(Debug, Clone, Copy)]
pub(super) struct Kv<'a> {
    key: &'a str,
    value: Slot<'a>,
    key_strindex: i32,
}

/// A value read from an `AnyValue` message.
#[derive(Debug, Clone, Copy)]
pub(super) enum Slot<'a> {
    Value(ValueRef<'a>),
    /// An index in the nested values.
    Nested(usize),
}

impl<'a> Slot<'a> {
    /// The value, the nested ones looked up in `nested`.
    pub fn get<'s>(self, nested: &'s [AnyValue]) -> ValueRef<'s>
    where
        'a: 's,
    {
        match self {
            Slot::Value(v) => v,
            Slot::Nested(i) => ValueRef::of(Some(&nested[i])),
        }
    }
}

impl<'a> Kv<'a> {
    /// The entry, a nested value looked up in `nested`.
    pub fn get<'s>(&self, nested: &'s [AnyValue]) -> KvRef<'s>
    where
        'a: 's,
    {
        KvRef {
            key: self.key,
            value: self.value.get(nested),
            key_strindex: self.key_strindex,
        }
    }
}

/// Reads a `KeyValue` message nested `depth` messages deep.
pub(super) fn read_kv<'a>(
    message: &'a [u8],
    depth: u32,
    nested: &mut Vec<AnyValue>,
) -> Result<Kv<'a>, Unsure> {
    let mut kv = Kv {
        key: "",
        value: Slot::Value(ValueRef::Absent),
        key_strindex: 0,
    };
    let mut value = None;
    let mut fields = Fields::new(message);
    while let Some((tag, field)) = fields.next_field()? {
        match tag {
            1 => kv.key = field.str()?,
            2 => {
                // prost merges a value given twice: left to it.
                if value.is_some() {
                    return Err(Unsure);
                }
                value = Some(field.bytes()?);
            }
            3 => kv.key_strindex = field.int32()?,
            _ => {}
        }
    }
    if let Some(bytes) = value {
        kv.value = read_any(bytes, depth + 1, nested)?;
    }
    Ok(kv)
}

/// Reads an `AnyValue` message nested `depth` messages deep. The last
/// value field given wins, as in prost; one holding an array or kvlist
/// anywhere is decoded whole by prost.
pub(super) fn read_any<'a>(
    message: &'a [u8],
    depth: u32,
    nested: &mut Vec<AnyValue>,
) -> Result<Slot<'a>, Unsure> {
    let mut value = ValueRef::Empty;
    let mut fields = Fields::new(message);
    while let Some((tag, field)) = fields.next_field()? {
        value = match tag {
            1 => ValueRef::Str(field.str()?),
            2 => ValueRef::Bool(field.varint()? != 0),
            3 => ValueRef::Int(field.varint()? as i64),
            4 => ValueRef::Double(f64::from_bits(field.fixed64()?)),
            5 | 6 => {
                if !nested_fits(Msg::AnyValue, message, depth) {
                    return Err(Unsure);
                }
                let any = AnyValue::decode(message).map_err(|_| Unsure)?;
                nested.push(any);
                return Ok(Slot::Nested(nested.len() - 1));
            }
            7 => ValueRef::Bytes(field.bytes()?),
            8 => ValueRef::Strindex(field.int32()?),
            _ => continue,
        };
    }
    Ok(Slot::Value(value))
}
