//! The `store` sink: batches into the embedded store, acknowledged once the
//! write-ahead log holds them. Rows the store refuses for their time are
//! reported on the batch's acknowledgement ([`weir_core::Ack::refuse`]),
//! so the sender hears of them (OTLP `partial_success`).

mod config;

use std::sync::Arc;

use async_trait::async_trait;
use tracing::warn;
use weir_core::metrics::component::ComponentMetrics;
use weir_core::{ComponentError, Sink, SinkContext};

use crate::Store;

pub use config::StoreSinkConfig;

/// The most batches written with one WAL group commit.
const GROUP: usize = 256;

/// Writes every batch it receives to a [`Store`].
///
/// Batches waiting in the sink's input are taken together and appended in
/// one call, so one fsync covers them all (group commit): under load the
/// groups grow by themselves while the previous fsync runs.
pub struct StoreSink {
    store: Arc<Store>,
}

impl StoreSink {
    /// A sink writing to `store`.
    pub fn new(store: Arc<Store>) -> Self {
        StoreSink { store }
    }
}

#[async_trait]
impl Sink for StoreSink {
    async fn run(self: Box<Self>, mut cx: SinkContext) -> Result<(), ComponentError> {
        let mut batches = Vec::with_capacity(GROUP);
        while cx.input.recv_many(&mut batches, GROUP).await.is_some() {
            let entries = batches
                .iter()
                .map(|b| (b.signal(), b.data().clone()))
                .collect();
            match self.store.append(entries).await {
                // The WAL holds them: acknowledged, with the rows refused
                // for their time, which the sources report to the senders.
                Ok(refusals) => {
                    for (batch, refused) in batches.drain(..).zip(refusals) {
                        if let Some(refused) = refused {
                            batch.ack().refuse(refused.rows, refused.reason);
                        }
                        batch.deliver();
                    }
                }
                Err(e) => {
                    ComponentMetrics::new(cx.name.clone())
                        .errors("write")
                        .increment(1);
                    warn!(component = %cx.name, error = %e, "the store could not write; the sources are told to retry");
                    let reason = format!("the store could not write: {e}");
                    for batch in batches.drain(..) {
                        batch.fail(reason.clone());
                    }
                }
            }
        }
        Ok(())
    }
}
