//! A tiny aligned-column formatter for output meant for people.
//!
//! Hand-written because the need is small (left or right alignment, two spaces between
//! columns, shrinking some columns to fit a width) and a table crate would bring borders,
//! wrapping and colour we do not want.
//!
//! Cells are sanitised: audit data is untrusted, and a tool name holding a newline, a terminal
//! escape sequence or a bidirectional-text control must not be able to forge rows, drive the
//! user's terminal, or make a cell read backwards. Widths are display widths (`unicode-width`):
//! a CJK character or an emoji takes two terminal columns, and counting it as one would break
//! the alignment of every row that holds one.

use std::io::{self, Write};

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// How a column lines up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    /// For numbers, so that digits line up.
    Right,
}

/// Rows of text cells under an optional header.
#[derive(Debug, Default)]
pub struct Table {
    header: Vec<String>,
    align: Vec<Align>,
    /// Per column: the narrowest it may be cut to when the table is fitted to a width, or
    /// `None` when it is never cut (ids, times, outcomes: a cut one would mislead).
    shrink_to: Vec<Option<usize>>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles (all left-aligned until [`Table::align`]).
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            align: vec![Align::Left; header.len()],
            shrink_to: vec![None; header.len()],
            rows: Vec::new(),
        }
    }

    /// A table without a header line (key/value listings).
    pub fn headless(columns: usize) -> Table {
        Table {
            header: Vec::new(),
            align: vec![Align::Left; columns],
            shrink_to: vec![None; columns],
            rows: Vec::new(),
        }
    }

    pub fn align(mut self, column: usize, align: Align) -> Table {
        if let Some(slot) = self.align.get_mut(column) {
            *slot = align;
        }
        self
    }

    /// Lets [`Table::write_fitted`] cut `column` down to `min` display columns (ending in `…`).
    pub fn shrinkable(mut self, column: usize, min: usize) -> Table {
        if let Some(slot) = self.shrink_to.get_mut(column) {
            *slot = Some(min.max(1));
        }
        self
    }

    pub fn push<I, S>(&mut self, row: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.rows
            .push(row.into_iter().map(|c| sanitize(c.as_ref())).collect());
    }

    /// Writes the table; trailing spaces are trimmed from every line.
    pub fn write(&self, out: &mut impl Write) -> io::Result<()> {
        self.write_fitted(out, None)
    }

    /// Writes the table within `max_width` display columns when given: the shrinkable columns
    /// are cut, the widest first, down to their minimum (a table whose other columns alone
    /// are wider still overflows rather than lose an id).
    pub fn write_fitted(&self, out: &mut impl Write, max_width: Option<usize>) -> io::Result<()> {
        let columns = self.align.len();
        let mut widths = vec![0usize; columns];
        for row in std::iter::once(&self.header).chain(&self.rows) {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.width());
            }
        }
        if let Some(max) = max_width {
            self.fit(&mut widths, max);
        }
        let lines = (!self.header.is_empty())
            .then_some(&self.header)
            .into_iter()
            .chain(&self.rows);
        for row in lines {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate().take(columns) {
                if i > 0 {
                    line.push_str("  ");
                }
                let cell = truncate(cell, widths[i]);
                let pad = widths[i].saturating_sub(cell.width());
                match self.align[i] {
                    Align::Left => {
                        line.push_str(&cell);
                        line.extend(std::iter::repeat_n(' ', pad));
                    }
                    Align::Right => {
                        line.extend(std::iter::repeat_n(' ', pad));
                        line.push_str(&cell);
                    }
                }
            }
            writeln!(out, "{}", line.trim_end())?;
        }
        Ok(())
    }

    /// Narrows the shrinkable columns of `widths` until the line fits in `max`, or none can
    /// be narrowed further.
    fn fit(&self, widths: &mut [usize], max: usize) {
        let total =
            |widths: &[usize]| widths.iter().sum::<usize>() + 2 * widths.len().saturating_sub(1);
        while total(widths) > max {
            let widest = (0..widths.len())
                .filter(|&i| self.shrink_to[i].is_some_and(|min| widths[i] > min))
                .max_by_key(|&i| widths[i]);
            match widest {
                Some(i) => widths[i] -= 1,
                None => break,
            }
        }
    }
}

/// `cell` cut to `width` display columns, its last one an ellipsis, when it is wider.
pub fn truncate(cell: &str, width: usize) -> std::borrow::Cow<'_, str> {
    if cell.width() <= width {
        return cell.into();
    }
    let mut cut = String::new();
    let mut used = 0;
    for c in cell.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        cut.push(c);
        used += w;
    }
    if width > 0 {
        cut.push('…');
    }
    cut.into()
}

/// Whether `c` changes the direction text is shown in (the embeddings, overrides and
/// isolates of Unicode's bidirectional algorithm, and its marks): `U+202E` makes what follows
/// read right to left, so that `exe.txt` can be shown for `txt.exe`.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// Control characters (newlines, tabs, ESC) and bidirectional-text controls shown escaped
/// (`\n`, `\u{202e}`), everything else as is.
pub fn sanitize(cell: &str) -> String {
    let unsafe_char = |c: char| c.is_control() || is_bidi_control(c);
    if !cell.chars().any(unsafe_char) {
        return cell.to_string();
    }
    cell.chars()
        .map(|c| {
            if unsafe_char(c) {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(table: &Table) -> String {
        let mut out = Vec::new();
        table.write(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn render_fitted(table: &Table, width: usize) -> String {
        let mut out = Vec::new();
        table.write_fitted(&mut out, Some(width)).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn columns_line_up_and_numbers_align_right() {
        let mut table = Table::new(&["tool", "calls"]).align(1, Align::Right);
        table.push(["search", "7"]);
        table.push(["fetch_document", "1234"]);
        assert_eq!(
            render(&table),
            "tool            calls\nsearch              7\nfetch_document   1234\n"
        );
    }

    #[test]
    fn headless_tables_print_only_rows() {
        let mut table = Table::headless(2);
        table.push(["total", "3"]);
        assert_eq!(render(&table), "total  3\n");
    }

    #[test]
    fn control_characters_can_not_forge_rows_or_reach_the_terminal() {
        let mut table = Table::new(&["op"]);
        table.push(["evil\nforged row\u{1b}[31m"]);
        let text = render(&table);
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(!text.contains('\u{1b}'));
        assert!(text.contains("evil\\nforged row\\u{1b}[31m"));
    }

    #[test]
    fn bidirectional_controls_are_escaped_so_no_cell_reads_backwards() {
        let controls = [
            '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}',
            '\u{2068}', '\u{2069}', '\u{200E}', '\u{200F}', '\u{061C}',
        ];
        for c in controls {
            let mut table = Table::new(&["op", "user"]);
            table.push([format!("invoice{c}fdp.exe"), "alice".to_string()]);
            let text = render(&table);
            assert!(!text.contains(c), "{c:?} reached the output: {text}");
            assert!(
                text.contains(&format!("invoice{}fdp.exe", c.escape_default())),
                "{text}"
            );
        }
    }

    #[test]
    fn wide_characters_count_as_two_columns_and_keep_the_rows_aligned() {
        let mut table = Table::new(&["op", "user"]);
        table.push(["検索", "alice"]);
        table.push(["🔍 find", "bob"]);
        table.push(["search", "carol"]);
        let text = render(&table);
        // Every user starts at the same display column.
        let starts: Vec<usize> = text
            .lines()
            .map(|line| {
                let at = line.rfind("  ").unwrap() + 2;
                line[..at].width()
            })
            .collect();
        assert!(starts.iter().all(|&s| s == starts[0]), "{starts:?}\n{text}");
        assert_eq!(starts[0], "🔍 find".width() + 2, "{text}");
    }

    #[test]
    fn a_fitted_table_cuts_the_shrinkable_columns_by_display_width() {
        let mut table = Table::new(&["seq", "args", "outcome"]).shrinkable(1, 6);
        table.push(["1", r#"{"query":"検索検索検索検索"}"#, "success"]);
        let text = render_fitted(&table, 30);
        for line in text.lines() {
            assert!(line.width() <= 30, "{line:?} is {} wide", line.width());
        }
        assert!(text.contains('…'), "{text}");
        assert!(
            text.contains("success"),
            "the unshrinkable column stays whole: {text}"
        );
        // Not asked to fit: nothing is cut.
        assert!(!render(&table).contains('…'));
    }

    #[test]
    fn truncation_never_splits_a_wide_character_past_the_width() {
        assert_eq!(truncate("検索検索", 5), "検索…");
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("abcd", 3), "ab…");
    }
}
