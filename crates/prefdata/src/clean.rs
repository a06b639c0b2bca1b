//! Cleaning as in the paper: drop empty replies, ties, exact repeats and cyclic preferences.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::normalize::{context_key, is_blank, normalize_text, normalized_eq};
use crate::report::{CleanReport, DropReason};
use crate::schema::Comparison;

/// Which cleaning steps run. All are on by default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CleanOptions {
    /// Drop comparisons whose prompt or either reply is blank.
    pub drop_empty: bool,
    /// Drop comparisons whose replies are equal after [`normalize_text`].
    pub drop_ties: bool,
    /// Keep only the first of comparisons equal in (context, chosen, rejected) after normalisation.
    pub dedup: bool,
    /// Drop comparisons on cycles of their context's preference graph.
    pub drop_cycles: bool,
    /// Ids kept per reason in [`CleanReport::examples`].
    pub max_examples: usize,
}

impl Default for CleanOptions {
    fn default() -> Self {
        Self {
            drop_empty: true,
            drop_ties: true,
            dedup: true,
            drop_cycles: true,
            max_examples: 20,
        }
    }
}

/// Cleans `rows`, keeping their order.
///
/// Steps, in order, each counted per reason in the report:
/// 1. `empty_prompt` / `empty_response`: blank prompt, chosen or rejected;
/// 2. `tie`: chosen and rejected equal after normalisation (NFKC + whitespace);
/// 3. `duplicate`: the same normalised (history, prompt, chosen, rejected) seen before;
/// 4. `cycle`: comparisons sharing a context (normalised history + prompt) form a directed
///    graph over their normalised replies, with an edge from winner to loser. Every strongly
///    connected component with more than one reply (found with Tarjan's algorithm) is a set
///    of mutually contradicting preferences (A>B>C>A, or A>B and B>A); every comparison whose
///    two replies lie in the same such component is dropped. Comparisons that merely touch a
///    cycle from outside are kept, since their order is consistent.
pub fn clean_comparisons(
    rows: Vec<Comparison>,
    opts: &CleanOptions,
) -> (Vec<Comparison>, CleanReport) {
    let mut report = CleanReport {
        input: rows.len() as u64,
        ..CleanReport::default()
    };
    let mut keep = vec![true; rows.len()];
    let mut seen: HashSet<(String, String, String)> = HashSet::new();
    let mut contexts: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, c) in rows.iter().enumerate() {
        let reason = if opts.drop_empty && is_blank(&c.prompt) {
            Some(DropReason::EmptyPrompt)
        } else if opts.drop_empty && (is_blank(&c.chosen) || is_blank(&c.rejected)) {
            Some(DropReason::EmptyResponse)
        } else if opts.drop_ties && normalized_eq(&c.chosen, &c.rejected) {
            Some(DropReason::Tie)
        } else {
            None
        };
        if let Some(r) = reason {
            keep[i] = false;
            report.drop_one(r, &c.id, opts.max_examples);
            continue;
        }
        if !(opts.dedup || opts.drop_cycles) {
            continue;
        }
        let ctx = context_key(&c.history, &c.prompt);
        if opts.dedup {
            let key = (
                ctx.clone(),
                normalize_text(&c.chosen),
                normalize_text(&c.rejected),
            );
            if !seen.insert(key) {
                keep[i] = false;
                report.drop_one(DropReason::Duplicate, &c.id, opts.max_examples);
                continue;
            }
        }
        if opts.drop_cycles {
            contexts.entry(ctx).or_default().push(i);
        }
    }
    if opts.drop_cycles {
        // Deterministic order: by first row of each context.
        let mut groups: Vec<Vec<usize>> = contexts.into_values().filter(|g| g.len() >= 2).collect();
        groups.sort_unstable_by_key(|g| g[0]);
        for group in groups {
            let on_cycle = cyclic_members(&rows, &group);
            if on_cycle.components > 0 {
                report.cyclic_contexts += 1;
                report.cyclic_components += on_cycle.components as u64;
            }
            for i in on_cycle.rows {
                keep[i] = false;
                report.drop_one(DropReason::Cycle, &rows[i].id, opts.max_examples);
            }
        }
    }
    let out: Vec<Comparison> = rows
        .into_iter()
        .zip(keep)
        .filter_map(|(c, k)| k.then_some(c))
        .collect();
    report.kept = out.len() as u64;
    tracing::info!(
        input = report.input,
        kept = report.kept,
        dropped = report.total_dropped(),
        cyclic_contexts = report.cyclic_contexts,
        "cleaning finished"
    );
    (out, report)
}

struct Cyclic {
    rows: Vec<usize>,
    components: usize,
}

/// Rows of `group` (one context) whose two replies share a non-trivial SCC.
fn cyclic_members(rows: &[Comparison], group: &[usize]) -> Cyclic {
    let mut node_of: HashMap<String, usize> = HashMap::new();
    let mut node = |s: &str| {
        let n = node_of.len();
        *node_of.entry(normalize_text(s)).or_insert(n)
    };
    let edges: Vec<(usize, usize)> = group
        .iter()
        .map(|&i| (node(&rows[i].chosen), node(&rows[i].rejected)))
        .collect();
    let n = node_of.len();
    let mut adj = vec![Vec::new(); n];
    for &(w, l) in &edges {
        adj[w].push(l);
    }
    let comp = tarjan_scc(&adj);
    let mut size = HashMap::<usize, usize>::new();
    for &c in &comp {
        *size.entry(c).or_default() += 1;
    }
    let components = size.values().filter(|&&s| s > 1).count();
    let rows = group
        .iter()
        .zip(&edges)
        .filter(|(_, (w, l))| comp[*w] == comp[*l] && size[&comp[*w]] > 1)
        .map(|(&i, _)| i)
        .collect();
    Cyclic { rows, components }
}

/// Tarjan's strongly connected components, iterative (no recursion depth limit).
/// Returns the component id of every node.
pub(crate) fn tarjan_scc(adj: &[Vec<usize>]) -> Vec<usize> {
    const UNSEEN: usize = usize::MAX;
    let n = adj.len();
    let mut index = vec![UNSEEN; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut comp = vec![UNSEEN; n];
    let mut next_index = 0;
    let mut next_comp = 0;
    let mut calls: Vec<(usize, usize)> = Vec::new();
    for root in 0..n {
        if index[root] != UNSEEN {
            continue;
        }
        index[root] = next_index;
        low[root] = next_index;
        next_index += 1;
        stack.push(root);
        on_stack[root] = true;
        calls.push((root, 0));
        while let Some(&(v, e)) = calls.last() {
            if let Some(&w) = adj[v].get(e) {
                if let Some(top) = calls.last_mut() {
                    top.1 += 1;
                }
                if index[w] == UNSEEN {
                    index[w] = next_index;
                    low[w] = next_index;
                    next_index += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    calls.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
            } else {
                calls.pop();
                if let Some(&(u, _)) = calls.last() {
                    low[u] = low[u].min(low[v]);
                }
                if low[v] == index[v] {
                    while let Some(w) = stack.pop() {
                        on_stack[w] = false;
                        comp[w] = next_comp;
                        if w == v {
                            break;
                        }
                    }
                    next_comp += 1;
                }
            }
        }
    }
    comp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Message, Role};

    fn cmp(id: &str, prompt: &str, chosen: &str, rejected: &str) -> Comparison {
        Comparison::new(id, "t", prompt, chosen, rejected)
    }

    fn ids(rows: &[Comparison]) -> Vec<&str> {
        rows.iter().map(|c| c.id.as_str()).collect()
    }

    #[test]
    fn tarjan_finds_components() {
        // 0 -> 1 -> 2 -> 0, 2 -> 3, 3 -> 4 -> 3, 5 alone.
        let adj = vec![vec![1], vec![2], vec![0, 3], vec![4], vec![3], vec![]];
        let c = tarjan_scc(&adj);
        assert_eq!(c[0], c[1]);
        assert_eq!(c[1], c[2]);
        assert_eq!(c[3], c[4]);
        assert_ne!(c[0], c[3]);
        assert_ne!(c[5], c[0]);
        assert_ne!(c[5], c[3]);
    }

    #[test]
    fn tarjan_handles_long_chains_without_recursion() {
        let n = 200_000;
        let mut adj: Vec<Vec<usize>> = (0..n).map(|i| vec![(i + 1) % n]).collect();
        adj[n - 1] = vec![0];
        let c = tarjan_scc(&adj);
        assert!(c.iter().all(|&x| x == c[0]));
    }

    #[test]
    fn three_cycle_is_dropped_consistent_pairs_kept() {
        let rows = vec![
            cmp("ab", "p", "A", "B"),
            cmp("bc", "p", "B", "C"),
            cmp("ca", "p", "C", "A"),
            cmp("ad", "p", "A", "D"), // leaves the cycle: consistent, kept
            cmp("other", "q", "C", "A"), // different prompt: no cycle
        ];
        let (out, rep) = clean_comparisons(rows, &CleanOptions::default());
        assert_eq!(ids(&out), ["ad", "other"]);
        assert_eq!(rep.dropped_for(DropReason::Cycle), 3);
        assert_eq!(rep.cyclic_contexts, 1);
        assert_eq!(rep.cyclic_components, 1);
        assert_eq!(rep.kept, 2);
        assert_eq!(rep.input, 5);
    }

    #[test]
    fn contradicting_pair_is_a_two_cycle() {
        let rows = vec![cmp("1", "p", "A", "B"), cmp("2", "p", " B ", "A")];
        let (out, rep) = clean_comparisons(rows, &CleanOptions::default());
        assert!(out.is_empty());
        assert_eq!(rep.dropped_for(DropReason::Cycle), 2);
    }

    #[test]
    fn history_is_part_of_the_context() {
        let mut a = cmp("1", "p", "A", "B");
        a.history = vec![Message::new(Role::User, "h")];
        let b = cmp("2", "p", "B", "A");
        let (out, _) = clean_comparisons(vec![a, b], &CleanOptions::default());
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn empty_ties_and_duplicates_are_counted() {
        let rows = vec![
            cmp("e1", "p", "", "B"),
            cmp("e2", " ", "A", "B"),
            cmp("t", "p", "Same  text", "Same text"),
            cmp("d1", "p", "A", "B"),
            cmp("d2", "p ", "A", "B "),
            cmp("ok", "p", "A", "C"),
        ];
        let (out, rep) = clean_comparisons(rows, &CleanOptions::default());
        assert_eq!(ids(&out), ["d1", "ok"]);
        assert_eq!(rep.dropped_for(DropReason::EmptyResponse), 1);
        assert_eq!(rep.dropped_for(DropReason::EmptyPrompt), 1);
        assert_eq!(rep.dropped_for(DropReason::Tie), 1);
        assert_eq!(rep.dropped_for(DropReason::Duplicate), 1);
        assert_eq!(rep.examples[&DropReason::Duplicate], ["d2"]);
        assert_eq!(rep.total_dropped() + rep.kept, rep.input);
    }

    #[test]
    fn steps_can_be_switched_off() {
        let rows = vec![cmp("1", "p", "A", "A"), cmp("2", "p", "A", "A")];
        let opts = CleanOptions {
            drop_ties: false,
            dedup: false,
            drop_cycles: false,
            ..CleanOptions::default()
        };
        let (out, rep) = clean_comparisons(rows, &opts);
        assert_eq!(out.len(), 2);
        assert_eq!(rep.total_dropped(), 0);
    }
}
