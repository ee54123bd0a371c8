//! The `file` sink: OTLP/JSON lines.

mod config;

pub use config::FileSinkConfig;

use std::path::PathBuf;

use async_trait::async_trait;
use tokio::fs::{File, OpenOptions};
use tokio::io::AsyncWriteExt;
use tracing::warn;
use weir_core::convert::{self, json};
use weir_core::metrics::component::ComponentMetrics;
use weir_core::{Ack, Batch, ComponentError, Signal, Sink, SinkContext};

/// Appends each batch to a file as one OTLP/JSON export request per line
/// (`ExportTraceServiceRequest`, `ExportLogsServiceRequest` or
/// `ExportMetricsServiceRequest`, told apart by their top-level key).
#[derive(Debug)]
pub struct FileSink {
    path: PathBuf,
    fsync: bool,
    file: File,
}

impl FileSink {
    /// Opens (creates, appends to) the configured file.
    pub async fn open(name: &str, config: &FileSinkConfig) -> Result<Self, ComponentError> {
        if let Some(dir) = config.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(dir).await.map_err(|e| {
                ComponentError::config(
                    name,
                    format!("cannot create directory {} for `path`: {e}", dir.display()),
                )
            })?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&config.path)
            .await
            .map_err(|e| {
                ComponentError::config(
                    name,
                    format!(
                        "cannot open {} for appending: {e}; check `path`",
                        config.path.display()
                    ),
                )
            })?;
        Ok(FileSink {
            path: config.path.clone(),
            fsync: config.fsync,
            file,
        })
    }
}

/// One batch as an OTLP/JSON line.
pub fn encode_line(batch: &Batch) -> Result<Vec<u8>, convert::ConvertError> {
    let data = batch.data();
    let mut line = match batch.signal() {
        Signal::Logs => json::encode_logs(&convert::batch_to_logs(data)?)?,
        Signal::Spans => json::encode_spans(&convert::batch_to_spans(data)?)?,
        Signal::Metrics => json::encode_metrics(&convert::batch_to_metrics(data)?)?,
        Signal::Alerts => {
            return Err(convert::ConvertError::InvalidBatch {
                table: "alerts",
                message: "OTLP/JSON has no form for alert events; send them to a \
                          `store`, `webhook` or `alertmanager` sink"
                    .to_string(),
            });
        }
    };
    line.push(b'\n');
    Ok(line)
}

#[async_trait]
impl Sink for FileSink {
    async fn run(mut self: Box<Self>, mut cx: SinkContext) -> Result<(), ComponentError> {
        let metrics = ComponentMetrics::new(cx.name.clone());
        let mut batches = Vec::with_capacity(64);
        let mut buf = Vec::new();
        while cx.input.recv_many(&mut batches, 64).await.is_some() {
            buf.clear();
            let mut written = Vec::with_capacity(batches.len());
            for batch in batches.drain(..) {
                match encode_line(&batch) {
                    Ok(line) => {
                        buf.extend_from_slice(&line);
                        // The line holds the rows now; keep the ack for the verdict.
                        written.push(batch.into_ack());
                    }
                    Err(e) => {
                        metrics.errors("write").increment(1);
                        warn!(component = %cx.name, error = %e, "cannot encode a batch as OTLP/JSON (a bug in Weir); refused");
                        batch.fail(format!("the file sink could not encode the data: {e}"));
                    }
                }
            }
            let result = async {
                self.file.write_all(&buf).await?;
                self.file.flush().await?;
                if self.fsync {
                    self.file.sync_data().await?;
                }
                Ok::<(), std::io::Error>(())
            }
            .await;
            match result {
                // What reached the file is acknowledged.
                Ok(()) => written.into_iter().for_each(Ack::deliver),
                Err(e) => {
                    metrics.errors("write").increment(1);
                    warn!(component = %cx.name, path = %self.path.display(), error = %e, "write failed; the sources are told to retry");
                    for ack in written {
                        ack.fail(format!("writing {} failed: {e}", self.path.display()));
                    }
                }
            }
        }
        Ok(())
    }
}
