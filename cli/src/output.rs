//! How results look: JSON lines for programs, a table for people (`--format auto` picks by
//! whether stdout is a terminal), and colour only on a terminal and never under NO_COLOR.

use std::io::IsTerminal as _;

use clap::ValueEnum;

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// A table when stdout is a terminal, JSON lines otherwise.
    Auto,
    /// One JSON object per line.
    Json,
    /// Aligned columns for people.
    Table,
}

impl Format {
    /// `Json` or `Table`: what `Auto` means for this process's stdout.
    pub(crate) fn resolve(self) -> Format {
        match self {
            Format::Auto if std::io::stdout().is_terminal() => Format::Table,
            Format::Auto => Format::Json,
            f => f,
        }
    }
}

/// Whether NO_COLOR asks for no colour: set to anything but the empty string (no-color.org).
fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// Colour on stdout: a terminal, and NO_COLOR unset.
pub(crate) fn color_on_stdout() -> bool {
    !no_color() && std::io::stdout().is_terminal()
}

/// Colour on stderr: a terminal, and NO_COLOR unset.
pub(crate) fn color_on_stderr() -> bool {
    !no_color() && std::io::stderr().is_terminal()
}

/// ANSI colours, or none.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Paint {
    pub(crate) on: bool,
}

impl Paint {
    pub(crate) fn green(self, s: &str) -> String {
        self.wrap("32", s)
    }
    pub(crate) fn red(self, s: &str) -> String {
        self.wrap("31", s)
    }
    pub(crate) fn dim(self, s: &str) -> String {
        self.wrap("2", s)
    }
    fn wrap(self, code: &str, s: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    }
}

/// Rows laid out in columns as wide as their widest cell (in characters), two spaces apart;
/// `paint` colours a cell after it is padded, so escapes do not break the alignment.
pub(crate) fn table(
    header: &[&str],
    rows: &[Vec<String>],
    paint: impl Fn(usize, usize, &str) -> String,
) -> Vec<String> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>, row: Option<usize>| {
        let last = cells.len().saturating_sub(1);
        let mut s = String::new();
        for (i, cell) in cells.into_iter().enumerate() {
            let padded = if i == last {
                cell
            } else {
                format!("{cell:<w$}  ", w = widths[i])
            };
            match row {
                Some(r) => s.push_str(&paint(r, i, &padded)),
                None => s.push_str(&padded),
            }
        }
        s.trim_end().to_owned()
    };
    let mut out = vec![line(header.iter().map(|h| (*h).to_owned()).collect(), None)];
    for (r, row) in rows.iter().enumerate() {
        out.push(line(row.clone(), Some(r)));
    }
    out
}

/// Text for one table cell: control characters (a newline in a message's data, an escape
/// sequence a sender planted) shown escaped, and cut to `max` characters with `…`.
pub(crate) fn cell(s: &str, max: usize) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if out.chars().count() > max {
        let mut cut: String = out.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        return cut;
    }
    out
}

/// The UTC time of day `HH:MM:SS`, for table rows.
pub(crate) fn clock() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
        % 86_400;
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_columns_are_as_wide_as_their_widest_cell_and_colour_does_not_shift_them() {
        let rows = vec![
            vec!["team-a".to_owned(), "delivered".to_owned(), "x".to_owned()],
            vec!["Team_Bee".to_owned(), "failed".to_owned(), "why".to_owned()],
        ];
        let plain = table(&["GROUP", "RESULT", "DETAIL"], &rows, |_, _, s| {
            s.to_owned()
        });
        assert_eq!(
            plain,
            [
                "GROUP     RESULT     DETAIL",
                "team-a    delivered  x",
                "Team_Bee  failed     why",
            ]
        );
        let painted = table(&["GROUP", "RESULT", "DETAIL"], &rows, |_, c, s| {
            if c == 1 {
                Paint { on: true }.red(s)
            } else {
                s.to_owned()
            }
        });
        assert_eq!(painted[2], "Team_Bee  \x1b[31mfailed     \x1b[0mwhy");
    }

    #[test]
    fn a_cell_escapes_control_characters_and_is_cut_to_its_width() {
        assert_eq!(cell("a\nb\x1b[31m", 80), "a\\nb\\u{1b}[31m");
        assert_eq!(cell("abcdef", 4), "abc…");
        assert_eq!(cell("abcd", 4), "abcd");
    }
}
