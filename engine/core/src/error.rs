//! Errors shared by all components.

/// Why a component failed, split by who is to blame so that the runtime,
/// the logs and the client each know what to do.
#[derive(Debug, thiserror::Error)]
pub enum ComponentError {
    /// The component's configuration cannot work (bad address, missing
    /// file). The user must change the pipeline file.
    #[error("configuration of `{component}`: {message}")]
    Config {
        /// The component's name in the pipeline file.
        component: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// Something outside Weir failed (I/O, network, a backend). Retrying may
    /// help.
    #[error("`{component}`: {message}")]
    External {
        /// The component's name in the pipeline file.
        component: String,
        /// What failed.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// A bug in Weir. Please report it.
    #[error("internal error in `{component}` (this is a bug in Weir, please report it): {message}")]
    Internal {
        /// The component's name in the pipeline file.
        component: String,
        /// What went wrong.
        message: String,
    },
}

impl ComponentError {
    /// A configuration error of `component`.
    pub fn config(component: impl Into<String>, message: impl Into<String>) -> Self {
        ComponentError::Config {
            component: component.into(),
            message: message.into(),
        }
    }

    /// An external failure of `component` caused by `source`.
    pub fn external(
        component: impl Into<String>,
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        ComponentError::External {
            component: component.into(),
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }

    /// An internal error (bug) in `component`.
    pub fn internal(component: impl Into<String>, message: impl Into<String>) -> Self {
        ComponentError::Internal {
            component: component.into(),
            message: message.into(),
        }
    }
}

pub use crate::convert::ConvertError;
