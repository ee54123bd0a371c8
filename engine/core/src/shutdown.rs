//! The signal that asks sources to stop taking new data.

use tokio_util::sync::CancellationToken;

/// Cloneable shutdown signal. Sources stop accepting new data once it fires;
/// everything downstream then drains: a processor or sink stops when its
/// input channel is closed and empty.
#[derive(Debug, Clone, Default)]
pub struct Shutdown(CancellationToken);

impl Shutdown {
    /// A signal that has not fired.
    pub fn new() -> Self {
        Shutdown(CancellationToken::new())
    }

    /// Fires the signal.
    pub fn trigger(&self) {
        self.0.cancel()
    }

    /// Whether the signal has fired.
    pub fn is_triggered(&self) -> bool {
        self.0.is_cancelled()
    }

    /// Resolves once the signal has fired.
    pub async fn wait(&self) {
        self.0.cancelled().await
    }
}
