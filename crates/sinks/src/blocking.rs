//! The store from async code: each call moves the (synchronous) store onto a blocking thread
//! and back, so that a slow database never stalls the runtime that the proxy or the console
//! serves from.

use mcp_audit_store::{SinkState, StoreError};

/// A store owned by one sink's task.
pub(crate) struct Blocking<S: Send + 'static> {
    state: Option<S>,
}

impl<S: SinkState> Blocking<S> {
    pub(crate) fn new(state: S) -> Blocking<S> {
        Blocking { state: Some(state) }
    }

    /// Runs `f` on the store in `spawn_blocking`.
    pub(crate) async fn call<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut S) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let Some(mut state) = self.state.take() else {
            return Err(StoreError::Database("the sink's store was lost".into()));
        };
        let (state, result) = tokio::task::spawn_blocking(move || {
            let result = f(&mut state);
            (state, result)
        })
        .await
        .map_err(|e| StoreError::Database(format!("the sink's store call failed: {e}")))?;
        self.state = Some(state);
        result
    }
}

/// A store is dropped on a blocking thread too: the PostgreSQL client shuts down a runtime of
/// its own, which may not happen on a worker of another.
impl<S: Send + 'static> Drop for Blocking<S> {
    fn drop(&mut self) {
        if let Some(state) = self.state.take()
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            handle.spawn_blocking(move || drop(state));
        }
    }
}
