//! Full-text search over arguments and results: what a search text means, the same on every
//! backend.
//!
//! A search text is cut into *words*, runs of letters and digits; everything else (`-`, `@`,
//! `.`, `"`, `*`, `(`, spaces) only separates them. An event matches when its payload (the
//! personal half: arguments, results, values, details) holds those words in that order and next
//! to each other, ignoring case: `customer-123` finds `"id":"customer-123"` and `Customer 123`,
//! `alice@example.com` finds the address, `example.com` finds it too; `custom` does not find
//! `customer` (words, not substrings).
//!
//! Why words and not raw text: each backend's own index serves it (SQLite's FTS5 `unicode61`
//! tokenizer cuts text into exactly such words; PostgreSQL's `tsvector` is built from the
//! payload with every other character replaced by a space), and a text that is only ever
//! letters, digits and single spaces can not carry the index's query syntax (FTS5's `"`, `*`,
//! `NEAR(`, `-`, `OR`, column filters; `tsquery`'s `&`, `|`, `!`, `<->`): there is nothing to
//! escape, so nothing to get wrong. Each backend still passes the words as one quoted phrase.
//!
//! Limits, both refused with a [`SearchError`] rather than answered wrongly: a text with no
//! word at all, and a text longer than [`MAX_SEARCH_BYTES`] (a phrase of thousands of words is
//! no one's search and costs the index a scan per word). PostgreSQL indexes the first
//! [`PG_INDEXED_CHARS`] characters of each payload (a `tsvector` has a 1 MB ceiling, which a
//! larger payload could pass and so fail its insert); SQLite indexes all of it.

/// The longest search text taken, in bytes.
pub const MAX_SEARCH_BYTES: usize = 1_000;

/// How much of a payload PostgreSQL's index reads (characters); mirrored in its migration.
pub const PG_INDEXED_CHARS: usize = 100_000;

/// Why a search text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SearchError {
    /// No letter or digit: nothing the index could look up.
    #[error("the search text has no letter or digit: nothing to search for")]
    NoWords,
    /// Longer than [`MAX_SEARCH_BYTES`].
    #[error("the search text is {0} bytes long; at most {MAX_SEARCH_BYTES} are taken")]
    TooLong(usize),
}

/// A search text cut into its words (see the module doc): never empty, at most
/// [`MAX_SEARCH_BYTES`] long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextSearch {
    /// The words, lower-cased, joined by single spaces.
    words: String,
}

impl TextSearch {
    /// Cuts `text` into words; refuses a text without any, or a too long one.
    pub fn new(text: &str) -> Result<TextSearch, SearchError> {
        if text.len() > MAX_SEARCH_BYTES {
            return Err(SearchError::TooLong(text.len()));
        }
        let words: Vec<String> = text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect();
        if words.is_empty() {
            return Err(SearchError::NoWords);
        }
        Ok(TextSearch {
            words: words.join(" "),
        })
    }

    /// The words, lower-cased, joined by single spaces.
    pub fn words(&self) -> &str {
        &self.words
    }

    /// The words as one FTS5 phrase (`"w1 w2"`): only letters, digits and spaces sit between
    /// the quotes, so no query syntax can.
    pub(crate) fn fts5_phrase(&self) -> String {
        format!("\"{}\"", self.words)
    }
}

impl std::fmt::Display for TextSearch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.words)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_syntax_becomes_word_separators() {
        for (text, words) in [
            ("customer-123", "customer 123"),
            ("Alice.B@Example.com", "alice b example com"),
            ("\"unbalanced", "unbalanced"),
            ("NEAR(a b)", "near a b"),
            ("pre* -not OR x:y", "pre not or x y"),
            ("Grüße 東京", "grüße 東京"),
        ] {
            let search = TextSearch::new(text).unwrap();
            assert_eq!(search.words(), words, "{text}");
            assert_eq!(search.fts5_phrase(), format!("\"{words}\""));
        }
    }

    #[test]
    fn a_text_without_words_or_too_long_is_refused() {
        for text in ["", "   ", "\"", "*", "-", "()\"\"*:^"] {
            assert_eq!(TextSearch::new(text), Err(SearchError::NoWords), "{text:?}");
        }
        let long = "a".repeat(MAX_SEARCH_BYTES + 1);
        assert_eq!(
            TextSearch::new(&long),
            Err(SearchError::TooLong(MAX_SEARCH_BYTES + 1))
        );
        assert!(TextSearch::new(&"a".repeat(MAX_SEARCH_BYTES)).is_ok());
    }
}
