//! Prepared statement handles. The service keeps no state per prepared
//! statement: the handle carries the SQL, and once parameters are bound
//! (`DoPut`), the parameters too, as Arrow IPC — the "updated handle" the
//! Flight SQL protocol allows for stateless servers.

use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use arrow::record_batch::RecordBatch;
use bytes::Bytes;

const MAGIC: &[u8] = b"weir-ps1";

/// A prepared statement: its SQL and its bound parameters, if any.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Prepared {
    pub(crate) sql: String,
    pub(crate) parameters: Option<RecordBatch>,
}

impl Prepared {
    /// The handle given to the client.
    pub(crate) fn encode(&self) -> Result<Bytes, String> {
        let mut out = Vec::with_capacity(MAGIC.len() + 4 + self.sql.len());
        out.extend_from_slice(MAGIC);
        let len = u32::try_from(self.sql.len()).map_err(|_| "the statement is too long")?;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(self.sql.as_bytes());
        if let Some(parameters) = &self.parameters {
            let mut writer = StreamWriter::try_new(&mut out, parameters.schema_ref())
                .map_err(|e| e.to_string())?;
            writer.write(parameters).map_err(|e| e.to_string())?;
            writer.finish().map_err(|e| e.to_string())?;
        }
        Ok(out.into())
    }

    /// Reads a handle this service gave out.
    pub(crate) fn decode(handle: &[u8]) -> Result<Self, String> {
        let bad = || "not a prepared statement handle of this server".to_string();
        let rest = handle.strip_prefix(MAGIC).ok_or_else(bad)?;
        let (len, rest) = rest.split_first_chunk::<4>().ok_or_else(bad)?;
        let len = usize::try_from(u32::from_le_bytes(*len)).map_err(|_| bad())?;
        if rest.len() < len {
            return Err(bad());
        }
        let (sql, ipc) = rest.split_at(len);
        let sql = String::from_utf8(sql.to_vec()).map_err(|_| bad())?;
        let parameters = if ipc.is_empty() {
            None
        } else {
            let mut reader = StreamReader::try_new(ipc, None).map_err(|e| e.to_string())?;
            reader.next().transpose().map_err(|e| e.to_string())?
        };
        Ok(Prepared { sql, parameters })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    /// A handle gives back its SQL and parameters; a foreign one is refused.
    #[test]
    fn handles_round_trip() {
        let bare = Prepared {
            sql: "SELECT $1".into(),
            parameters: None,
        };
        assert_eq!(Prepared::decode(&bare.encode().expect("encodes")), Ok(bare));
        let schema = Arc::new(Schema::new(vec![
            Field::new("$1", DataType::Utf8, true),
            Field::new("$2", DataType::Int64, true),
        ]));
        let parameters = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec!["cart"])),
                Arc::new(Int64Array::from(vec![2])),
            ],
        )
        .expect("batch");
        let bound = Prepared {
            sql: "SELECT count(*) FROM spans WHERE service_name = $1 AND kind = $2".into(),
            parameters: Some(parameters),
        };
        assert_eq!(
            Prepared::decode(&bound.encode().expect("encodes")),
            Ok(bound)
        );
        assert!(Prepared::decode(b"something else").is_err());
    }
}
