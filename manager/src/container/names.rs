//! Random ids and docker-style generated names (`adjective_noun`) for containers.

/// 32 random bytes as 64 hex digits, like docker's container ids.
pub fn random_id() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(hex::encode(bytes))
}

const ADJECTIVES: &[&str] = &[
    "amber", "brave", "calm", "clever", "crisp", "daring", "eager", "fancy", "gentle", "happy",
    "humble", "jolly", "keen", "lively", "lucid", "mellow", "merry", "nimble", "polite", "proud",
    "quiet", "rapid", "sharp", "shiny", "silent", "steady", "sunny", "swift", "tidy", "vivid",
    "witty", "zesty",
];

const NOUNS: &[&str] = &[
    "anchor", "barge", "beacon", "buoy", "cabin", "canal", "cargo", "compass", "current", "dock",
    "ferry", "galley", "harbor", "hull", "jetty", "keel", "lantern", "mast", "mooring", "pier",
    "pilot", "quay", "rudder", "sail", "schooner", "skiff", "tide", "tugboat", "wharf", "yacht",
    "dinghy", "sloop",
];

/// A name such as `brave_harbor`, drawn with `pick` (random bytes); `taken` says whether a name
/// is in use, in which case a numeric suffix is added as docker does on retries.
pub fn generate(taken: impl Fn(&str) -> bool) -> Result<String, getrandom::Error> {
    for attempt in 0..64u32 {
        let mut b = [0u8; 2];
        getrandom::fill(&mut b)?;
        let base = format!(
            "{}_{}",
            ADJECTIVES[b[0] as usize % ADJECTIVES.len()],
            NOUNS[b[1] as usize % NOUNS.len()]
        );
        let name = if attempt < 8 {
            base
        } else {
            format!("{base}{attempt}")
        };
        if !taken(&name) {
            return Ok(name);
        }
    }
    // Everything tried was taken: fall back to part of a random id, which cannot clash.
    Ok(format!("berth_{}", &random_id()?[..12]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_64_hex_digits_and_differ() {
        let a = random_id().unwrap();
        let b = random_id().unwrap();
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn generated_names_are_valid_and_avoid_taken_ones() {
        let n = generate(|_| false).unwrap();
        assert!(crate::container::store::valid_name(&n), "{n}");
        assert!(n.contains('_'));
        let n = generate(|n| !n.starts_with("berth_")).unwrap();
        assert!(n.starts_with("berth_"), "{n}");
    }
}
