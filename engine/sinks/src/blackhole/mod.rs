//! The `blackhole` sink: counts what it receives and discards it.

mod config;

pub use config::BlackholeSinkConfig;

use std::time::Duration;

use async_trait::async_trait;
use tracing::info;
use weir_core::{ComponentError, Sink, SinkContext};

/// Counts and discards every batch (acknowledging it at once).
#[derive(Debug)]
pub struct BlackholeSink {
    log_interval: Option<Duration>,
}

impl BlackholeSink {
    /// A blackhole sink as configured.
    pub fn new(config: &BlackholeSinkConfig) -> Self {
        BlackholeSink {
            log_interval: config.log_interval,
        }
    }
}

#[async_trait]
impl Sink for BlackholeSink {
    async fn run(self: Box<Self>, mut cx: SinkContext) -> Result<(), ComponentError> {
        let (mut records, mut batches) = (0u64, 0u64);
        let mut since = (0u64, tokio::time::Instant::now());
        let mut buf = Vec::with_capacity(64);
        while cx.input.recv_many(&mut buf, 64).await.is_some() {
            for batch in buf.drain(..) {
                records += batch.num_rows() as u64;
                batches += 1;
                batch.deliver();
            }
            if let Some(every) = self.log_interval {
                let elapsed = since.1.elapsed();
                if elapsed >= every {
                    let rate = (records - since.0) as f64 / elapsed.as_secs_f64();
                    info!(component = %cx.name, records, batches, rate = rate.round(), "blackhole totals");
                    since = (records, tokio::time::Instant::now());
                }
            }
        }
        info!(component = %cx.name, records, batches, "blackhole finished");
        Ok(())
    }
}
