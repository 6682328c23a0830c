//! Event → durable row: the [`crate::Recorder`] handle, the writer thread behind it, the
//! backlog it keeps through an outage, the watch that keeps its pseudonyms in step with erasures, the tree it extends and the checkpoints it signs, and
//! how an event's fields become column values.

pub mod backlog;
pub mod checkpointer;
pub mod columns;
pub mod erasure_watch;
pub mod event_columns;
pub mod intake;
pub mod recorder;
pub mod telemetry;
pub mod writer;
