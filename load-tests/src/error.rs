//! The tool's error type: every failure carries what was being done.

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A system call failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The control socket said no, or said something unexpected.
    #[error("control: {0}")]
    Control(String),
    /// The relay process could not be started or went away.
    #[error("relay: {0}")]
    Relay(String),
    /// An MSRP peer saw something wrong (an error status, a decode error).
    #[error("MSRP: {0}")]
    Msrp(String),
    /// A device did not get the bytes it should have.
    #[error("verification failed: {0}")]
    Verify(String),
    /// Something did not happen in time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// Arguments that do not go together.
    #[error("invalid arguments: {0}")]
    Args(String),
    /// Writing a report or a plot failed.
    #[error("output: {0}")]
    Output(String),
}

/// The tool's result.
pub type Result<T> = std::result::Result<T, LoadError>;

/// Adds context to I/O errors.
pub trait Context<T> {
    /// Wraps the error with what was being done.
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for std::io::Result<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| LoadError::Io {
            context: what(),
            source,
        })
    }
}
