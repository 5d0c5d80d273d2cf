/// The case folding behind every ignore-case comparison. It runs once, in Rust, when a value is
/// stored (into a `*_lower` column) and when a query value is compiled, so that SQLite and
/// PostgreSQL agree on non-ASCII text (SQLite's own `lower()` only folds ASCII).
pub fn fold_case(text: &str) -> String {
    text.to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_beyond_ascii() {
        assert_eq!(fold_case("ÉMILE Zoë ΣΑΣ"), "émile zoë σας");
        assert_eq!(fold_case("already lower"), "already lower");
    }
}
