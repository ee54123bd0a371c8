//! "Did you mean …?" suggestions and the lists printed in help lines.

/// The candidate closest to `input`, if one is close enough to be a typo:
/// equal ignoring case, or within an edit distance of a third of its length
/// (at least 1), like cargo's suggestions.
pub(crate) fn did_you_mean<'a>(
    input: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (input.chars().count() / 3).max(1);
    let mut best: Option<(usize, &'a str)> = None;
    for candidate in candidates {
        if candidate == input {
            continue;
        }
        let distance = if candidate.eq_ignore_ascii_case(input) {
            0
        } else {
            edit_distance(input, candidate)
        };
        if distance <= limit && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, c)| c)
}

/// Edit distance by characters, counting a swap of two neighbours as one
/// edit (optimal string alignment), so `otpl` is one edit from `otlp`.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    for (i, cell) in d.iter_mut().step_by(width).enumerate() {
        *cell = i;
    }
    for (j, cell) in d.iter_mut().take(width).enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[(i - 1) * width + j] + 1)
                .min(d[i * width + j - 1] + 1)
                .min(d[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[(i - 2) * width + j - 2] + 1);
            }
            d[i * width + j] = best;
        }
    }
    d[a.len() * width + b.len()]
}

/// `` `a`, `b`, `c` `` — names quoted for a message.
pub(crate) fn quoted_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    items
        .into_iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guarantees: typos find their intended word; unrelated words do not.
    #[test]
    fn suggests_close_names_only() {
        let fields = ["grpc", "grpc_address", "http", "http_address"];
        assert_eq!(did_you_mean("grpc_adress", fields), Some("grpc_address"));
        assert_eq!(did_you_mean("GRPC", fields), Some("grpc"));
        assert_eq!(did_you_mean("htp", fields), Some("http"));
        assert_eq!(did_you_mean("queue", fields), None);
        assert_eq!(did_you_mean("otpl", ["otlp", "null"]), Some("otlp"));
        assert_eq!(
            did_you_mean("log", ["logs", "spans", "metrics"]),
            Some("logs")
        );
    }

    /// Guarantees: the edit distance counts insertions, deletions,
    /// substitutions and swaps of neighbours as one edit each.
    #[test]
    fn edit_distance_counts_swaps_as_one() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("otpl", "otlp"), 1);
        assert_eq!(edit_distance("abc", ""), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("abc", "abc"), 0);
    }
}
