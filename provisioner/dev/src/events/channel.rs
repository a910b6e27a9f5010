//! Channel paths of an Event API: which paths AppSync accepts for a publish and for a subscribe,
//! and which subscriptions a publish reaches (the `/*` wildcard).
//!
//! AWS's rules (https://docs.aws.amazon.com/appsync/latest/eventapi/event-api-websocket-protocol.html,
//! "Channel"; https://docs.aws.amazon.com/appsync/latest/eventapi/channel-namespaces.html;
//! aws-protocols.md §1 "Channel paths"): a path has 1 to 5 segments separated by `/`, the leading
//! `/` is optional; each segment is 1 to 50 characters of `[A-Za-z0-9-]`, starting and ending with
//! a letter or digit, case sensitive; the first segment is the namespace. A subscription may end in
//! a `*` segment, which receives every channel below the part before it
//! (https://docs.aws.amazon.com/appsync/latest/eventapi/create-event-api-tutorial.html, "Step 3: Use
//! wildcards in your channel subscription": `/default/*` receives `/default/greetings/tutorial`).
//! A publish may not hold a wildcard.

pub use groupcast::is_valid_segment as is_segment;
pub use groupcast::limits::{
    CHANNEL_MAX_SEGMENTS as MAX_SEGMENTS, CHANNEL_SEGMENT_MAX_CHARS as SEGMENT_MAX_CHARS,
};

/// A channel path AppSync accepts, normalized to `/a/b/c` (or `/a/b/*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    /// `/ns/a/b` or `/ns/a/*`.
    pub path: String,
    /// The namespace (first segment).
    pub namespace: String,
    /// For a wildcard subscription, the path before `/*` (`/ns/a`); `None` for an exact channel.
    pub wildcard_prefix: Option<String>,
}

/// Parses a channel path: `wildcard` allows a final `*` segment (subscribe). The error names the
/// rule broken.
pub fn parse(raw: &str, wildcard: bool) -> Result<Channel, String> {
    let p = raw.strip_prefix('/').unwrap_or(raw);
    let p = p.strip_suffix('/').unwrap_or(p);
    if p.is_empty() {
        return Err("channel: the path is empty".into());
    }
    let segments: Vec<&str> = p.split('/').collect();
    if segments.len() > MAX_SEGMENTS {
        return Err(format!(
            "channel: {} segments, at most {MAX_SEGMENTS} are allowed",
            segments.len()
        ));
    }
    let last = segments.len() - 1;
    for (i, s) in segments.iter().enumerate() {
        let star = *s == "*" && i == last && i > 0;
        if star && !wildcard {
            return Err("channel: a publish channel holds no wildcard".into());
        }
        if !star && !is_segment(s) {
            return Err(format!(
                "channel: segment {i} ({s:?}) is not 1-{SEGMENT_MAX_CHARS} characters of [A-Za-z0-9-] starting and ending with a letter or digit{}",
                if wildcard {
                    " (only the last segment may be `*`)"
                } else {
                    ""
                }
            ));
        }
    }
    let path = format!("/{}", segments.join("/"));
    let wildcard_prefix =
        (segments[last] == "*").then(|| format!("/{}", segments[..last].join("/")));
    Ok(Channel {
        path,
        namespace: segments[0].to_owned(),
        wildcard_prefix,
    })
}

/// The keys a publish to `path` (normalized, no wildcard) reaches: the exact path, and every
/// strict prefix for wildcard subscriptions (`/ns/a/b` reaches `/ns/*` and `/ns/a/*`).
pub fn wildcard_prefixes(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/')
        .skip(1)
        .map(move |(i, _)| &path[..i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalized_and_the_leading_and_trailing_slash_are_optional() {
        for raw in ["/live/a/b", "live/a/b", "/live/a/b/"] {
            assert_eq!(parse(raw, false).unwrap().path, "/live/a/b");
        }
        let c = parse("live/a/*", true).unwrap();
        assert_eq!(c.path, "/live/a/*");
        assert_eq!(c.wildcard_prefix.as_deref(), Some("/live/a"));
        assert_eq!(c.namespace, "live");
    }

    #[test]
    fn segments_must_follow_aws_rules() {
        let ok = "a".repeat(50);
        assert!(parse(&format!("/live/{ok}"), false).is_ok());
        for bad in [
            "",
            "/",
            "/live//a",
            "/live/-a",
            "/live/a-",
            "/live/a_b",
            "/live/a.b",
            "/live/é",
            "/a/b/c/d/e/f",
            "/a/b/c/d/e/*",
        ] {
            assert!(parse(bad, true).is_err(), "{bad:?}");
        }
        assert!(parse(&format!("/live/{ok}a"), false).is_err());
    }

    #[test]
    fn only_a_final_star_segment_after_the_namespace_is_a_wildcard_and_only_for_subscribe() {
        assert!(parse("/live/*", true).is_ok());
        assert!(parse("/live/*", false).is_err());
        assert!(parse("/*", true).is_err());
        assert!(parse("/live/*/a", true).is_err());
        assert!(parse("/live/a*", true).is_err());
    }

    #[test]
    fn a_publish_reaches_wildcards_of_every_strict_prefix() {
        let keys: Vec<&str> = wildcard_prefixes("/live/a/b").collect();
        assert_eq!(keys, ["/live", "/live/a"]);
        assert_eq!(wildcard_prefixes("/live").count(), 0);
    }
}
