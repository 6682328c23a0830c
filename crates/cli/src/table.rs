//! A tiny aligned-column formatter for output meant for people.
//!
//! Hand-written because the need is small (left or right alignment, two spaces between
//! columns) and a table crate would bring borders, wrapping and colour we do not want.
//! Cells are sanitised: audit data is untrusted, and a tool name holding a newline or a
//! terminal escape sequence must not be able to forge rows or drive the user's terminal.

use std::io::{self, Write};

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
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles (all left-aligned until [`Table::align`]).
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            align: vec![Align::Left; header.len()],
            rows: Vec::new(),
        }
    }

    /// A table without a header line (key/value listings).
    pub fn headless(columns: usize) -> Table {
        Table {
            header: Vec::new(),
            align: vec![Align::Left; columns],
            rows: Vec::new(),
        }
    }

    pub fn align(mut self, column: usize, align: Align) -> Table {
        if let Some(slot) = self.align.get_mut(column) {
            *slot = align;
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
        let columns = self.align.len();
        let mut widths = vec![0usize; columns];
        for row in std::iter::once(&self.header).chain(&self.rows) {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.chars().count());
            }
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
                let pad = widths[i] - cell.chars().count();
                match self.align[i] {
                    Align::Left => {
                        line.push_str(cell);
                        line.extend(std::iter::repeat_n(' ', pad));
                    }
                    Align::Right => {
                        line.extend(std::iter::repeat_n(' ', pad));
                        line.push_str(cell);
                    }
                }
            }
            writeln!(out, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

/// Control characters (newlines, tabs, ESC) shown escaped, everything else as is.
fn sanitize(cell: &str) -> String {
    if !cell.chars().any(char::is_control) {
        return cell.to_string();
    }
    cell.chars()
        .map(|c| {
            if c.is_control() {
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
}
