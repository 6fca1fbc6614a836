//! Did-you-mean suggestions for keys and names.

/// The closest candidate, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(input: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(input, c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    #[test]
    fn suggests_near_misses_only() {
        assert_eq!(
            super::did_you_mean("pool_szie", ["pool_size", "url"]),
            Some("pool_size")
        );
        assert_eq!(super::did_you_mean("zzz", ["pool_size", "url"]), None);
    }
}
