//! How a stdio server came to an end, and how the proxy stops one.
//!
//! The server runs in a process group of its own, so that the proxy can stop all of it (a
//! server started through `npx` or a shell is several processes) and so that a terminal's
//! Ctrl-C reaches the proxy, which then stops the server itself and records the end, rather
//! than reaching both at once.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

/// How the server process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerExit {
    /// It exited with this status.
    Code(i32),
    /// This signal killed it.
    Signal(i32),
}

impl ServerExit {
    /// How `status` ended, or `None` for a status that is neither (stopped, not ended).
    pub fn of(status: ExitStatus) -> Option<ServerExit> {
        status
            .code()
            .map(ServerExit::Code)
            .or_else(|| status.signal().map(ServerExit::Signal))
    }

    /// The exit status, if it exited.
    pub fn code(self) -> Option<i32> {
        match self {
            ServerExit::Code(code) => Some(code),
            ServerExit::Signal(_) => None,
        }
    }

    /// The name of the signal that killed it (`SIGTERM`), if one did.
    pub fn signal_name(self) -> Option<String> {
        match self {
            ServerExit::Code(_) => None,
            ServerExit::Signal(signal) => Some(signal_name(signal)),
        }
    }
}

/// The conventional name of a signal (`SIGKILL`), or `signal N` for one without a common name.
pub fn signal_name(signal: i32) -> String {
    let name = match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGSYS => "SIGSYS",
        other => return format!("signal {other}"),
    };
    name.to_string()
}

/// Which signal to send a process group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// SIGTERM: exit now, cleanly.
    Ask,
    /// SIGKILL: the grace is over.
    Force,
}

/// Sends `stop` to every process of the group `group` (the server's pid: it leads its group).
///
/// A group id is not given to another group while any member of this one lives, and the
/// proxy signals the group only while it runs the server or just after reaping the leader, so
/// the signal can not reach strangers (the leader's pid would have to be reused, by a process
/// that then leads a group of its own, in between). A group already gone (`ESRCH`) is what
/// was wanted.
pub(crate) fn signal_group(group: u32, stop: Stop) {
    let Ok(group) = libc::pid_t::try_from(group) else {
        return;
    };
    if group <= 1 {
        return; // never the caller's own group or every process
    }
    let signal = match stop {
        Stop::Ask => libc::SIGTERM,
        Stop::Force => libc::SIGKILL,
    };
    // SAFETY: kill(2) takes plain integers and touches no memory of ours; a negative pid
    // names a process group.
    let sent = unsafe { libc::kill(-group, signal) };
    if sent != 0 {
        let error = std::io::Error::last_os_error();
        if error.raw_os_error() != Some(libc::ESRCH) {
            tracing::warn!(%error, group, "could not signal the server's process group");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_are_named_and_codes_are_not_signals() {
        assert_eq!(
            ServerExit::Signal(libc::SIGKILL).signal_name().as_deref(),
            Some("SIGKILL")
        );
        assert_eq!(ServerExit::Signal(libc::SIGKILL).code(), None);
        assert_eq!(ServerExit::Code(3).signal_name(), None);
        assert_eq!(ServerExit::Code(3).code(), Some(3));
        assert_eq!(signal_name(64), "signal 64");
    }

    #[test]
    fn a_wait_status_is_read_as_a_code_or_a_signal() {
        // wait(2) statuses: exit code in the second byte, else the signal in the low bits.
        assert_eq!(
            ServerExit::of(ExitStatus::from_raw(7 << 8)),
            Some(ServerExit::Code(7))
        );
        assert_eq!(
            ServerExit::of(ExitStatus::from_raw(libc::SIGTERM)),
            Some(ServerExit::Signal(libc::SIGTERM))
        );
    }
}
