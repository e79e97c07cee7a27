//! The compiled route table. Rules are indexed in a segment trie so a lookup
//! touches only the rules whose pattern can match the path: cost grows with
//! path depth, not with the number of rules. "First match wins" is kept by
//! taking the lowest rule index among the candidates whose host and method
//! also match.

use std::collections::{HashMap, HashSet};

use http::Method;

use super::pattern::Segment;
use super::route::{compile_route, RouteRule};
use crate::schema::file::RouteFile;
use crate::schema::problems::Problems;

#[derive(Debug, Clone, Default)]
struct Node {
    literal: HashMap<String, usize>,
    wildcard: Option<usize>,
    /// Rules whose pattern ends exactly here (ascending).
    exact: Vec<u32>,
    /// Rules with `/**` ending here (ascending).
    subtree: Vec<u32>,
}

#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    rules: Vec<RouteRule>,
    nodes: Vec<Node>,
}

impl RouteTable {
    /// Compiles rules from the file, recording every problem, including rules
    /// that can never match because an earlier rule covers them.
    pub fn compile(
        files: &[RouteFile],
        upstreams: &[&str],
        p: &mut Problems,
    ) -> Option<RouteTable> {
        let mut names = HashSet::new();
        // (index in the file, rule) for every rule that compiled.
        let mut compiled = Vec::with_capacity(files.len());
        for (i, f) in files.iter().enumerate() {
            if !f.name.is_empty() && !names.insert(f.name.as_str()) {
                p.add(
                    format!("routes.{i}.name"),
                    format!("route name {:?} is used twice", f.name),
                );
            }
            if let Some(rule) = compile_route(i, f, upstreams, p) {
                compiled.push((i, rule));
            }
        }
        let rules: Vec<&RouteRule> = compiled.iter().map(|(_, r)| r).collect();
        for (later, earlier) in shadowed(&rules) {
            p.add(
                format!("routes.{}", compiled[later].0),
                format!(
                    "route {:?} is unreachable: route {:?} (earlier in the file) matches every request it could match",
                    rules[later].name, rules[earlier].name
                ),
            );
        }
        if compiled.len() != files.len() {
            return None;
        }
        Some(Self::from_rules(
            compiled.into_iter().map(|(_, r)| r).collect(),
        ))
    }

    /// Builds the index over already-validated rules.
    pub fn from_rules(rules: Vec<RouteRule>) -> RouteTable {
        let mut table = RouteTable {
            rules,
            nodes: vec![Node::default()],
        };
        for i in 0..table.rules.len() {
            let mut node = 0;
            let segments = table.rules[i].pattern.segments.clone();
            for seg in &segments {
                node = match seg {
                    Segment::Literal(l) => match table.nodes[node].literal.get(l) {
                        Some(&n) => n,
                        None => {
                            let n = table.push_node();
                            table.nodes[node].literal.insert(l.clone(), n);
                            n
                        }
                    },
                    Segment::Wildcard(_) => match table.nodes[node].wildcard {
                        Some(n) => n,
                        None => {
                            let n = table.push_node();
                            table.nodes[node].wildcard = Some(n);
                            n
                        }
                    },
                };
            }
            let target = &mut table.nodes[node];
            if table.rules[i].pattern.subtree {
                target.subtree.push(i as u32);
            } else {
                target.exact.push(i as u32);
            }
        }
        table
    }

    fn push_node(&mut self) -> usize {
        self.nodes.push(Node::default());
        self.nodes.len() - 1
    }

    pub fn rules(&self) -> &[RouteRule] {
        &self.rules
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The first rule (in file order) matching the normalized path's
    /// segments, the lower-cased host (without port) and the method.
    pub fn find<S: AsRef<str>>(
        &self,
        segments: &[S],
        host: &str,
        method: &Method,
    ) -> Option<usize> {
        let mut best = u32::MAX;
        self.walk(0, segments, host, method, &mut best);
        (best != u32::MAX).then_some(best as usize)
    }

    fn walk<S: AsRef<str>>(
        &self,
        node: usize,
        segments: &[S],
        host: &str,
        method: &Method,
        best: &mut u32,
    ) {
        let n = &self.nodes[node];
        self.pick(&n.subtree, host, method, best);
        match segments.split_first() {
            None => self.pick(&n.exact, host, method, best),
            Some((first, rest)) => {
                let first = first.as_ref();
                if let Some(&child) = n.literal.get(first) {
                    self.walk(child, rest, host, method, best);
                }
                if let (Some(child), false) = (n.wildcard, first.is_empty()) {
                    self.walk(child, rest, host, method, best);
                }
            }
        }
    }

    fn pick(&self, candidates: &[u32], host: &str, method: &Method, best: &mut u32) {
        for &i in candidates {
            if i >= *best {
                return;
            }
            let rule = &self.rules[i as usize];
            if rule.host_matches(host) && rule.method_matches(method) {
                *best = i;
                return;
            }
        }
    }
}

/// Pairs (later, earlier) where the earlier rule covers the later one. Rules
/// are bucketed by first segment so large tables stay fast to check.
fn shadowed(rules: &[&RouteRule]) -> Vec<(usize, usize)> {
    let first_literal = |r: &RouteRule| match r.pattern.segments.first() {
        Some(Segment::Literal(l)) => Some(l.clone()),
        _ => None,
    };
    let mut by_first: HashMap<Option<String>, Vec<usize>> = HashMap::new();
    let mut out = Vec::new();
    for (j, rule) in rules.iter().enumerate() {
        let key = first_literal(rule);
        let rule: &RouteRule = rule;
        let same = by_first.get(&key).into_iter().flatten();
        // Rules starting with a wildcard or `/**` can cover anything.
        let general = if key.is_some() {
            by_first.get(&None)
        } else {
            None
        };
        let mut candidates: Vec<usize> =
            same.chain(general.into_iter().flatten()).copied().collect();
        candidates.sort_unstable();
        if let Some(&i) = candidates.iter().find(|&&i| rules[i].covers(rule)) {
            out.push((j, i));
        }
        by_first.entry(key).or_default().push(j);
    }
    out
}
