//! `ccr check`: which kernel features ccr relies on are present, one line each.

/// The report lines and whether every required feature is present.
pub fn report() -> (Vec<String>, bool) {
    (vec!["check: not implemented yet".to_string()], false)
}
