//! The proxy's own standard input and output, as the client's end of a stdio session.
//!
//! `tokio::io::stdin()` and `stdout()` do every read and write on the runtime's blocking pool:
//! each frame the client sends wakes a pool thread to read it and then the pump's worker, and
//! each answer the same way back. Measured with the Python SDK client and `server-everything`,
//! the runtime's threads woke 13.9 times per `batch` call that way (five threads), and 2.0 times
//! (one thread) with the pipes below; the minimal pair's added p50 fell from 43 to 18 µs
//! (`docs/benchmarks.md`, the profile of one call). A client
//! that starts the proxy gives it pipes (or a socket pair): made non-blocking, they are polled
//! by the runtime's I/O driver like the server's pipes, and read and written in the pump's own
//! thread. Anything else (a terminal, a file) keeps tokio's blocking streams.
//!
//! Only the open file descriptions of the proxy's own standard input and output are made
//! non-blocking: the client's ends of its pipes are descriptions of their own, and the server is
//! given new pipes, never these. The server does inherit the proxy's standard error, so a pipe
//! that is also the standard error (`2>&1`) is left blocking, as the server expects it.

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileTypeExt;

use tokio::io::{AsyncRead, AsyncWrite};

/// The client's input: the proxy's standard input.
pub type ClientIn = Box<dyn AsyncRead + Unpin + Send>;
/// The client's output: the proxy's standard output.
pub type ClientOut = Box<dyn AsyncWrite + Unpin + Send>;

/// The proxy's standard input and output, polled by the runtime when they are pipes or sockets
/// (see the module's documentation). Call inside the runtime.
pub fn client_stdio() -> (ClientIn, ClientOut) {
    let input = own(std::io::stdin().as_fd())
        .and_then(reader)
        .unwrap_or_else(|| Box::new(tokio::io::stdin()));
    let output = own(std::io::stdout().as_fd())
        .and_then(writer)
        .unwrap_or_else(|| Box::new(tokio::io::stdout()));
    (input, output)
}

/// A descriptor of our own for one of the standard streams (a `dup`, so that fd 0 and 1 stay
/// open, and keep meaning what they meant, whatever becomes of it).
fn own(fd: std::os::fd::BorrowedFd<'_>) -> Option<File> {
    fd.try_clone_to_owned().ok().map(File::from)
}

enum Kind {
    Pipe,
    Socket,
    Other,
}

fn kind(file: &File) -> Kind {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = file.metadata() else {
        return Kind::Other;
    };
    let stderr = own(std::io::stderr().as_fd()).and_then(|f| f.metadata().ok());
    if stderr.is_some_and(|e| (e.dev(), e.ino()) == (meta.dev(), meta.ino())) {
        return Kind::Other;
    }
    match meta.file_type() {
        t if t.is_fifo() => Kind::Pipe,
        t if t.is_socket() => Kind::Socket,
        _ => Kind::Other,
    }
}

fn reader(file: File) -> Option<ClientIn> {
    match kind(&file) {
        Kind::Pipe => tokio::net::unix::pipe::Receiver::from_file(file)
            .ok()
            .map(|r| Box::new(r) as ClientIn),
        Kind::Socket => socket(file).map(|s| Box::new(s) as ClientIn),
        Kind::Other => None,
    }
}

fn writer(file: File) -> Option<ClientOut> {
    match kind(&file) {
        Kind::Pipe => tokio::net::unix::pipe::Sender::from_file(file)
            .ok()
            .map(|w| Box::new(w) as ClientOut),
        Kind::Socket => socket(file).map(|s| Box::new(s) as ClientOut),
        Kind::Other => None,
    }
}

/// A stream socket (the socket pair some clients start their servers with), non-blocking.
fn socket(file: File) -> Option<tokio::net::UnixStream> {
    let socket = std::os::unix::net::UnixStream::from(OwnedFd::from(file));
    socket.set_nonblocking(true).ok()?;
    tokio::net::UnixStream::from_std(socket).ok()
}
