//! `/api/v1/export`: every matching event, oldest first, streamed as JSON lines or CSV.
//!
//! The store hands events to a blocking thread one at a time; they are written into chunks of
//! about 64 KiB that go through a channel of a few chunks to the response body. A slow client
//! makes the thread wait, never the memory grow: a million events need no more memory than a
//! few chunks. An error part-way aborts the response, so a client never takes a cut-off
//! export for a whole one (the body ends without its final chunk).

use std::io::{self, Write};
use std::sync::Arc;

use axum::body::Bytes;
use futures_util::Stream;
use mcp_audit_store::{Filter, StoreError};
use tokio::sync::mpsc;

use crate::Databases;

/// How large a chunk grows before it is sent.
const CHUNK: usize = 64 * 1024;
/// How many chunks may wait for the client.
const IN_FLIGHT: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    Csv,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Jsonl => "application/jsonl",
            Format::Csv => "text/csv; charset=utf-8",
        }
    }
}

type Chunk = Result<Bytes, io::Error>;

/// The response body of an export.
pub fn stream(
    databases: Arc<dyn Databases>,
    filter: Filter,
    format: Format,
) -> impl Stream<Item = Chunk> + Send + 'static {
    let (tx, rx) = mpsc::channel::<Chunk>(IN_FLIGHT);
    tokio::task::spawn_blocking(move || {
        let failed = tx.clone();
        if let Err(error) = write(databases.as_ref(), &filter, format, tx) {
            tracing::error!("export failed part-way: {error}");
            // The client may be gone already; nothing more to tell anyone then.
            let _ = failed.blocking_send(Err(error));
        }
    });
    futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    })
}

/// Writes into chunks sent down `tx`.
struct Chunks {
    buffer: Vec<u8>,
    tx: mpsc::Sender<Chunk>,
}

impl Chunks {
    fn send(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buffer,
            Vec::with_capacity(CHUNK),
        ));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl Write for Chunks {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= CHUNK {
            self.send()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

fn write(
    databases: &dyn Databases,
    filter: &Filter,
    format: Format,
    tx: mpsc::Sender<Chunk>,
) -> io::Result<()> {
    let mut store = databases.reader().map_err(io::Error::other)?;
    let mut out = Chunks {
        buffer: Vec::with_capacity(CHUNK),
        tx,
    };
    // The sink can only fail with a StoreError; the I/O error is kept to be reported.
    let mut io_error: Option<io::Error> = None;
    let mut stop = |e: io::Error| {
        io_error = Some(e);
        StoreError::Database("export interrupted".into())
    };
    let result = match format {
        Format::Jsonl => store.for_each(filter, &mut |event| {
            serde_json::to_writer(&mut out, &event)
                .map_err(io::Error::from)
                .and_then(|()| out.write_all(b"\n"))
                .map_err(&mut stop)
        }),
        Format::Csv => {
            let mut csv = csv::Writer::from_writer(&mut out);
            csv.write_record(crate::csv_rows::header())?;
            let result = store.for_each(filter, &mut |event| {
                crate::csv_rows::row(&event)
                    .map_err(io::Error::other)
                    .and_then(|row| csv.write_record(row).map_err(io::Error::other))
                    .map_err(&mut stop)
            });
            csv.flush()?;
            result
        }
    };
    match (result, io_error) {
        (_, Some(error)) => Err(error),
        (Err(error), None) => Err(io::Error::other(error)),
        (Ok(_), None) => out.flush(),
    }
}
