//! PostgreSQL errors in the store's vocabulary, and URLs fit to be shown.

use std::path::PathBuf;

use crate::error::StoreError;

/// `url` without the password, if it has one.
pub(super) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((user, host)) => {
            let user = user.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}@{host}")
        }
        None => url.to_string(),
    }
}

/// Maps a PostgreSQL error to the store's vocabulary: a lost or refused connection is
/// [`StoreError::Unavailable`], which the writer spools or waits through.
pub(crate) fn map_err(e: postgres::Error) -> StoreError {
    if is_connection_error(&e) {
        return StoreError::Unavailable {
            waited_ms: 0,
            reason: error_text(&e),
        };
    }
    if let Some(db) = e.as_db_error() {
        use postgres::error::SqlState;
        let code = db.code();
        if *code == SqlState::READ_ONLY_SQL_TRANSACTION {
            return StoreError::ReadOnly {
                path: PathBuf::from("(PostgreSQL read-only session)"),
            };
        }
        if *code == SqlState::LOCK_NOT_AVAILABLE {
            return StoreError::Locked { waited_ms: 0 };
        }
        // Class 53, insufficient resources: a full disk, memory, too many connections.
        if code.code().starts_with("53") {
            return StoreError::Storage {
                reason: format!("{} ({})", db.message(), code.code()),
            };
        }
        return StoreError::Database(format!("{} ({})", db.message(), code.code()));
    }
    StoreError::Database(error_text(&e))
}

fn is_connection_error(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(code) = e.code() {
        let code = code.code();
        return code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03");
    }
    std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
        || e.to_string().starts_with("error connecting")
}

/// The error with its causes, in one line.
fn error_text(e: &postgres::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn a_url_is_shown_without_its_password() {
        assert_eq!(
            redact("postgres://audit:s3cret@db:5432/audit?sslmode=disable"),
            "postgres://audit@db:5432/audit?sslmode=disable"
        );
        assert_eq!(
            redact("postgres://audit@db/audit"),
            "postgres://audit@db/audit"
        );
        assert_eq!(redact("postgres://db/audit"), "postgres://db/audit");
    }
}
