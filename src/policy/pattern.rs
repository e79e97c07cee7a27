//! Route path patterns: `/x` exact, `/x/*` one segment, `/x/**` the subtree
//! (`/x`, `/x/` and everything below), `{name}` one captured segment.
//! Patterns are compared against normalized paths split on `/`.

use std::borrow::Cow;

use super::normalize::normalize_path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// Matches exactly this text (an empty literal is a trailing slash).
    Literal(String),
    /// `*` or `{name}`: exactly one non-empty segment.
    Wildcard(Option<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    pub source: String,
    pub segments: Vec<Segment>,
    /// Ends in `/**`.
    pub subtree: bool,
}

impl Pattern {
    pub fn parse(source: &str) -> Result<Pattern, String> {
        let body = source
            .strip_prefix('/')
            .ok_or_else(|| format!("pattern {source:?} must start with \"/\""))?;
        let mut parts: Vec<&str> = body.split('/').collect();
        let subtree = parts.last() == Some(&"**");
        if subtree {
            parts.pop();
        }
        let mut segments = Vec::with_capacity(parts.len());
        let mut names: Vec<&str> = Vec::new();
        let count = parts.len();
        for (i, part) in parts.into_iter().enumerate() {
            let last = i + 1 == count;
            let seg = match part {
                "*" => Segment::Wildcard(None),
                "**" => return Err(format!("in {source:?}: \"**\" is only allowed as the last segment")),
                "" if last && !subtree => Segment::Literal(String::new()),
                "" => return Err(format!("in {source:?}: empty segment (\"//\")")),
                "." | ".." => return Err(format!("in {source:?}: dot segments cannot match a normalized path")),
                p if p.starts_with('{') && p.ends_with('}') => {
                    let name = &p[1..p.len() - 1];
                    let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                    if !valid {
                        return Err(format!("in {source:?}: {p:?} is not a valid capture name"));
                    }
                    if names.contains(&name) {
                        return Err(format!("in {source:?}: capture {name:?} is used twice"));
                    }
                    names.push(name);
                    Segment::Wildcard(Some(name.to_string()))
                }
                p if p.contains(['*', '{', '}']) => {
                    return Err(format!(
                        "in {source:?}: {p:?} mixes text with a wildcard; use a whole segment \"*\", \"**\" or \"{{name}}\""
                    ))
                }
                p => {
                    let normalized = normalize_path(format!("/{p}").as_bytes(), true)
                        .map_err(|e| format!("in {source:?}: {e}"))?;
                    if normalized[1..] != *p {
                        return Err(format!(
                            "in {source:?}: segment {p:?} never matches a normalized path; write {:?}",
                            &normalized[1..]
                        ));
                    }
                    // Compared with decoded request segments (see `match_segments`).
                    Segment::Literal(percent_decode(p).into_owned())
                }
            };
            segments.push(seg);
        }
        Ok(Pattern {
            source: source.to_string(),
            segments,
            subtree,
        })
    }

    /// Names of `{captures}`, in order.
    pub fn capture_names(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Wildcard(Some(name)) => Some(name.as_str()),
            _ => None,
        })
    }

    /// The leading literal segments as a path (`/admin/v1` for `/admin/v1/**`).
    pub fn literal_prefix(&self) -> String {
        let mut out = String::new();
        for seg in &self.segments {
            match seg {
                Segment::Literal(l) if !l.is_empty() => {
                    out.push('/');
                    out.push_str(l);
                }
                _ => break,
            }
        }
        out
    }

    /// Whether the pattern matches the normalized path split into segments.
    pub fn matches<S: AsRef<str>>(&self, path: &[S]) -> bool {
        if self.subtree {
            if path.len() < self.segments.len() {
                return false;
            }
        } else if path.len() != self.segments.len() {
            return false;
        }
        self.segments.iter().zip(path).all(|(seg, p)| match seg {
            Segment::Literal(l) => l == p.as_ref(),
            Segment::Wildcard(_) => !p.as_ref().is_empty(),
        })
    }

    /// The value of capture `name` in a path this pattern matches.
    pub fn capture<'p, S: AsRef<str>>(&self, name: &str, path: &'p [S]) -> Option<&'p str> {
        self.segments
            .iter()
            .position(|s| matches!(s, Segment::Wildcard(Some(n)) if n == name))
            .and_then(|i| path.get(i))
            .map(AsRef::as_ref)
    }

    /// True when every path matched by `other` is also matched by `self`.
    pub fn covers(&self, other: &Pattern) -> bool {
        let seg_covers = |a: &Segment, b: &Segment| match (a, b) {
            (Segment::Literal(x), Segment::Literal(y)) => x == y,
            (Segment::Wildcard(_), Segment::Literal(y)) => !y.is_empty(),
            (Segment::Wildcard(_), Segment::Wildcard(_)) => true,
            (Segment::Literal(_), Segment::Wildcard(_)) => false,
        };
        let prefix_covered = |len: usize| {
            self.segments[..len]
                .iter()
                .zip(&other.segments[..len])
                .all(|(a, b)| seg_covers(a, b))
        };
        if self.subtree {
            self.segments.len() <= other.segments.len() && prefix_covered(self.segments.len())
        } else {
            !other.subtree
                && self.segments.len() == other.segments.len()
                && prefix_covered(self.segments.len())
        }
    }
}

/// Splits a normalized path into its raw segments.
pub fn split_path(path: &str) -> Vec<&str> {
    path[1..].split('/').collect()
}

/// The segments of a normalized path as the policy compares them: every
/// percent-escape decoded (a backend decodes `things%3Abatch` to
/// `things:batch` too; encoded `/` never reaches here, so decoding cannot
/// create segments) and, with `allow_semicolons`, only the part before `;`
/// (what Tomcat-style backends route on).
pub fn match_segments(normalized: &str, allow_semicolons: bool) -> Vec<Cow<'_, str>> {
    normalized[1..]
        .split('/')
        .map(|seg| {
            let seg = if allow_semicolons {
                seg.split(';').next().unwrap_or(seg)
            } else {
                seg
            };
            percent_decode(seg)
        })
        .collect()
}

fn percent_decode(s: &str) -> Cow<'_, str> {
    if !s.contains('%') {
        return Cow::Borrowed(s);
    }
    let bytes: Vec<u8> = percent_encoding::percent_decode_str(s).collect();
    Cow::Owned(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, path: &str) -> bool {
        Pattern::parse(pattern).unwrap().matches(&split_path(path))
    }

    #[test]
    fn exact_single_and_subtree() {
        assert!(m("/x", "/x"));
        assert!(!m("/x", "/x/"));
        assert!(!m("/x", "/x/y"));
        assert!(m("/x/", "/x/"));
        assert!(m("/x/*", "/x/y"));
        assert!(!m("/x/*", "/x/"));
        assert!(!m("/x/*", "/x"));
        assert!(!m("/x/*", "/x/y/z"));
        assert!(m("/x/**", "/x"));
        assert!(m("/x/**", "/x/"));
        assert!(m("/x/**", "/x/y/z"));
        assert!(!m("/x/**", "/xy"));
        assert!(m("/**", "/"));
        assert!(m("/**", "/anything/at/all"));
        assert!(m("/", "/"));
        assert!(!m("/", "/x"));
    }

    #[test]
    fn matching_is_case_sensitive() {
        assert!(!m("/admin/**", "/Admin/x"));
        assert!(!m("/admin/**", "/ADMIN"));
    }

    #[test]
    fn captures() {
        let p = Pattern::parse("/orgs/{org_id}/items/{item}").unwrap();
        let path = split_path("/orgs/abc/items/7");
        assert!(p.matches(&path));
        assert_eq!(p.capture("org_id", &path), Some("abc"));
        assert_eq!(p.capture("item", &path), Some("7"));
        assert_eq!(p.capture("nope", &path), None);
        assert_eq!(p.capture_names().collect::<Vec<_>>(), ["org_id", "item"]);
    }

    #[test]
    fn rejects_bad_patterns() {
        for bad in [
            "x", "/a/**/b", "/a//b", "/a*", "/{1x}", "/{a}/{a}", "/a/../b", "/%2f", "/a%41",
        ] {
            assert!(Pattern::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn matching_uses_decoded_segments() {
        let p = Pattern::parse("/v1/things:batchDelete").unwrap();
        assert!(p.matches(&match_segments("/v1/things%3AbatchDelete", false)));
        assert!(p.matches(&match_segments("/v1/things:batchDelete", false)));
        let cafe = Pattern::parse("/caf%C3%A9").unwrap();
        assert!(cafe.matches(&match_segments("/caf%C3%A9", false)));
        let admin = Pattern::parse("/admin/**").unwrap();
        assert!(admin.matches(&match_segments("/admin;jsessionid=1/x", true)));
        assert!(!admin.matches(&match_segments("/admin;jsessionid=1/x", false)));
    }

    #[test]
    fn coverage() {
        let c = |a: &str, b: &str| {
            Pattern::parse(a)
                .unwrap()
                .covers(&Pattern::parse(b).unwrap())
        };
        assert!(c("/**", "/admin/**"));
        assert!(c("/admin/**", "/admin"));
        assert!(c("/admin/**", "/admin/*"));
        assert!(c("/admin/*", "/admin/{id}"));
        assert!(c("/admin/*", "/admin/x"));
        assert!(!c("/admin/*", "/admin/**"));
        assert!(!c("/admin/x", "/admin/*"));
        assert!(!c("/admin/*", "/admin/"));
        assert!(!c("/a/b/**", "/a/**"));
        assert!(c("/a/**", "/a/**"));
    }
}
