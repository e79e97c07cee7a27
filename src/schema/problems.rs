//! Config problems: each names the key (dotted path as written in the file)
//! and, where it can be found, the line.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}: {}", self.key, self.message),
            None => write!(f, "{}: {}", self.key, self.message),
        }
    }
}

/// Collects problems while validating; `key` paths use `.` and array
/// indexes (`routes.2.upstream`).
#[derive(Debug, Default)]
pub struct Problems {
    list: Vec<Problem>,
}

impl Problems {
    pub fn add(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.list.push(Problem {
            key: key.into(),
            line: None,
            message: message.into(),
        });
    }

    /// Records `Err` results, passing `Ok` values through.
    pub fn check<T>(&mut self, key: &str, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(message) => {
                self.add(key, message);
                None
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Fills in line numbers from the source text and returns the list.
    pub fn into_vec(self, source: Option<&str>) -> Vec<Problem> {
        let index = source.map(LineIndex::new);
        self.list
            .into_iter()
            .map(|mut p| {
                if p.line.is_none() {
                    p.line = index.as_ref().and_then(|i| i.line_of(&p.key));
                }
                p
            })
            .collect()
    }
}

/// Finds the line of a dotted key in TOML text: table headers (`[a]`,
/// `[[a]]` counted per index) narrow the block, then `key =` inside it.
/// Inline tables resolve to the line of their key. Best effort: `None` when
/// the key is not written out (a default).
struct LineIndex<'a> {
    lines: Vec<&'a str>,
}

impl<'a> LineIndex<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            lines: text.lines().collect(),
        }
    }

    fn line_of(&self, key: &str) -> Option<usize> {
        let parts: Vec<&str> = key.split('.').collect();
        // Longest header prefix that exists wins: "routes.2" → the third [[routes]].
        for split in (1..=parts.len()).rev() {
            let (table, rest) = parts.split_at(split);
            if let Some(start) = self.find_table(table) {
                if rest.is_empty() {
                    return Some(start + 1);
                }
                return self
                    .find_key_in_block(start + 1, rest[0])
                    .map(|l| l + 1)
                    .or(Some(start + 1));
            }
        }
        // Top-level key before any header.
        self.find_key_in_block(0, parts[0]).map(|l| l + 1)
    }

    /// Index of the header line for `table` (e.g. ["routes","2"] or ["server"]).
    fn find_table(&self, table: &[&str]) -> Option<usize> {
        let (name, index) = match table {
            [name, idx] if idx.parse::<usize>().is_ok() => {
                (name.to_string(), idx.parse::<usize>().ok())
            }
            _ if table.iter().all(|p| p.parse::<usize>().is_err()) => (table.join("."), None),
            _ => return None,
        };
        let mut seen = 0usize;
        for (i, raw) in self.lines.iter().enumerate() {
            let line = raw.trim();
            match index {
                Some(want) => {
                    if header_name(line, true).as_deref() == Some(name.as_str()) {
                        if seen == want {
                            return Some(i);
                        }
                        seen += 1;
                    }
                }
                None => {
                    if header_name(line, false).as_deref() == Some(name.as_str()) {
                        return Some(i);
                    }
                }
            }
        }
        None
    }

    fn find_key_in_block(&self, start: usize, key: &str) -> Option<usize> {
        for (offset, raw) in self.lines[start.min(self.lines.len())..].iter().enumerate() {
            let line = raw.trim();
            if line.starts_with('[') {
                return None;
            }
            if let Some(rest) = line.strip_prefix(key) {
                let rest = rest.trim_start();
                if rest.starts_with('=') || rest.starts_with('.') {
                    return Some(start + offset);
                }
            }
        }
        None
    }
}

fn header_name(line: &str, array: bool) -> Option<String> {
    let inner = if array {
        line.strip_prefix("[[")?.split_once("]]")?.0
    } else {
        let rest = line.strip_prefix('[')?;
        if rest.starts_with('[') {
            return None;
        }
        rest.split_once(']')?.0
    };
    Some(
        inner
            .split('.')
            .map(str::trim)
            .collect::<Vec<_>>()
            .join("."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "[server]\nlisten = \"x\"\n\n[[routes]]\nname = \"a\"\n\n[[routes]]\nname = \"b\"\nupstream = \"nope\"\nrate_limit = { rate = \"x\" }\n";

    #[test]
    fn finds_lines_of_nested_keys() {
        let idx = LineIndex::new(TEXT);
        assert_eq!(idx.line_of("server.listen"), Some(2));
        assert_eq!(idx.line_of("routes.1.upstream"), Some(9));
        assert_eq!(idx.line_of("routes.1.rate_limit.rate"), Some(10));
        assert_eq!(idx.line_of("routes.0"), Some(4));
        assert_eq!(idx.line_of("routes.0.missing"), Some(4));
        assert_eq!(idx.line_of("tokens.issuer"), None);
    }
}
