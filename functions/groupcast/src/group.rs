//! The one rule that turns a group name into a channel segment and an IoT topic level.
//!
//! Everything that addresses a group goes through [`group_segment`]: the publish transports, the
//! provisioner's templates (IoT policies, the Events handler), the Lambda authorizer and the
//! IoT grant function. The generated Events handler carries a JavaScript copy of this rule (in the
//! subset APPSYNC_JS allows), and so does the browser helper `clients/js`; a shared table of names
//! (`tests/fixtures/group-segments.json`) and seeded random names (the `segments` example) keep the
//! three in step.
//!
//! # The rule
//!
//! A channel segment is 1–50 characters of `[A-Za-z0-9-]`, alphanumeric at both ends. Cognito group
//! names allow far more (128 characters, Unicode, punctuation). So:
//!
//! 1. A name that is already a valid segment and holds no `--` maps to itself: `team-a` → `team-a`.
//! 2. Any other name is *encoded*: `x--` followed by its UTF-8 bytes, where ASCII letters and digits
//!    stay as they are and every other byte becomes `-` plus two lowercase hex digits:
//!    `Team_A` → `x--Team-5fA`, `a--b` → `x--a-2d-2db`, `é` → `x---c3-a9`.
//! 3. An encoded form longer than 50 characters is an error ([`GroupError::TooLongToEncode`]).
//!
//! The mapping is **injective**: rule 1 never yields `--`, rule 2 always starts with `x--`, and
//! rule 2 decodes uniquely (see [`decode_segment`]). Two distinct groups never share a channel or
//! topic. Case is kept, so `Admins` and `admins` are different groups, as they are in Cognito.
//!
//! The result contains none of `/ * ? + # $`, so it is also a safe IoT topic level and a safe
//! fragment of an IoT policy resource: no group name can widen a policy or a subscription.

use crate::limits::CHANNEL_SEGMENT_MAX_CHARS;

/// Marks an encoded segment. Unencoded segments never contain `--`, so this prefix cannot collide.
pub const ENCODED_PREFIX: &str = "x--";

/// Why a group name has no channel segment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GroupError {
    /// The name is empty.
    #[error("group name is empty: a group needs at least one character")]
    Empty,
    /// The encoded form is longer than a channel segment may be.
    #[error(
        "group {group:?} cannot be mapped to a channel segment: its encoded form is {encoded_len} \
         characters and a segment holds at most {max}; names of letters, digits and inner single \
         hyphens map to themselves, other characters cost 3 per UTF-8 byte"
    )]
    TooLongToEncode {
        /// The group name as given.
        group: String,
        /// Length of the encoded form.
        encoded_len: usize,
        /// The segment limit.
        max: usize,
    },
}

/// Whether `s` is a valid AppSync Events channel segment: 1–50 of `[A-Za-z0-9-]`, alphanumeric at
/// both ends.
pub fn is_valid_segment(s: &str) -> bool {
    let bytes = s.as_bytes();
    let ok_len = !bytes.is_empty() && bytes.len() <= CHANNEL_SEGMENT_MAX_CHARS;
    ok_len
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
}

/// Maps a group name to its channel segment and IoT topic level. See the [module docs](self).
///
/// ```
/// use groupcast::group_segment;
/// assert_eq!(group_segment("team-a").unwrap(), "team-a");
/// assert_eq!(group_segment("Team_A").unwrap(), "x--Team-5fA");
/// assert_eq!(group_segment("a--b").unwrap(), "x--a-2d-2db");
/// assert!(group_segment("").is_err());
/// ```
pub fn group_segment(group: &str) -> Result<String, GroupError> {
    if group.is_empty() {
        return Err(GroupError::Empty);
    }
    if is_valid_segment(group) && !group.contains("--") {
        return Ok(group.to_owned());
    }
    let mut out = String::with_capacity(ENCODED_PREFIX.len() + group.len() * 3);
    out.push_str(ENCODED_PREFIX);
    for b in group.bytes() {
        if b.is_ascii_alphanumeric() {
            out.push(char::from(b));
        } else {
            out.push('-');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
    if out.len() > CHANNEL_SEGMENT_MAX_CHARS {
        return Err(GroupError::TooLongToEncode {
            group: group.to_owned(),
            encoded_len: out.len(),
            max: CHANNEL_SEGMENT_MAX_CHARS,
        });
    }
    Ok(out)
}

/// The inverse of [`group_segment`]: the group a segment stands for, or `None` when no group maps
/// to `segment` (it is not a valid segment, or not a well-formed encoding).
pub fn decode_segment(segment: &str) -> Option<String> {
    if !is_valid_segment(segment) {
        return None;
    }
    let Some(rest) = segment.strip_prefix(ENCODED_PREFIX) else {
        return (!segment.contains("--")).then(|| segment.to_owned());
    };
    let mut bytes = Vec::with_capacity(rest.len());
    let mut it = rest.bytes();
    while let Some(b) = it.next() {
        if b == b'-' {
            let hi = hex_value(it.next()?)?;
            let lo = hex_value(it.next()?)?;
            bytes.push(hi << 4 | lo);
        } else {
            bytes.push(b);
        }
    }
    let group = String::from_utf8(bytes).ok()?;
    // Only the canonical encoding decodes: the round trip must give `segment` back.
    (group_segment(&group).ok()? == segment).then_some(group)
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn valid_segments_map_to_themselves() {
        for g in ["admins", "team-a", "A", "0", "a-b-c", &"z".repeat(50)] {
            assert_eq!(group_segment(g).unwrap(), g);
        }
    }

    #[test]
    fn other_names_are_encoded_with_a_prefix_that_raw_names_cannot_have() {
        assert_eq!(group_segment("Team_A").unwrap(), "x--Team-5fA");
        assert_eq!(group_segment("-lead").unwrap(), "x---2dlead");
        assert_eq!(group_segment("a--b").unwrap(), "x--a-2d-2db");
        assert_eq!(group_segment("x--a").unwrap(), "x--x-2d-2da");
        assert_eq!(group_segment("*").unwrap(), "x---2a");
        assert_eq!(group_segment("a/b").unwrap(), "x--a-2fb");
        assert_eq!(group_segment("é").unwrap(), "x---c3-a9");
        assert_eq!(
            group_segment(&"z".repeat(51)).unwrap_err(),
            GroupError::TooLongToEncode {
                group: "z".repeat(51),
                encoded_len: 54,
                max: 50
            }
        );
    }

    #[test]
    fn every_segment_is_valid_and_free_of_wildcards() {
        for g in [
            "*",
            "#",
            "+",
            "$aws",
            "?",
            "a b",
            "\"'\\",
            "ＡＤＭＩＮ",
            "аdmins",
            "${iot:ClientId}",
        ] {
            let s = group_segment(g).unwrap();
            assert!(is_valid_segment(&s), "{g:?} -> {s:?}");
            assert!(
                !s.contains(['/', '*', '?', '+', '#', '$']),
                "{g:?} -> {s:?}"
            );
        }
    }

    #[test]
    fn decoding_inverts_the_mapping_and_rejects_non_canonical_forms() {
        for g in ["admins", "Team_A", "a--b", "é", "x--a", "-", "東京"] {
            assert_eq!(
                decode_segment(&group_segment(g).unwrap()).as_deref(),
                Some(g)
            );
        }
        for s in [
            "x--", "x---2", "x---zz", "x--a-41", "a--b", "x---ff", "", "-a",
        ] {
            assert_eq!(decode_segment(s), None, "{s:?}");
        }
    }

    #[test]
    fn distinct_names_never_share_a_segment() {
        // Exhaustive over short names built from characters that stress the rule.
        let alphabet = ["a", "A", "-", "_", "x", "2", "d", "é", "*", "/"];
        let mut seen: HashMap<String, String> = HashMap::new();
        let mut names = vec![String::new()];
        for _ in 0..4 {
            names = names
                .iter()
                .flat_map(|n| alphabet.iter().map(move |c| format!("{n}{c}")))
                .collect();
            for n in &names {
                let s = group_segment(n).unwrap();
                if let Some(prev) = seen.insert(s.clone(), n.clone()) {
                    panic!("{prev:?} and {n:?} both map to {s:?}");
                }
            }
        }
        // A group may be *named* like another group's encoding (`x---5f` is a valid segment):
        // it must still get a segment of its own.
        let encoded: Vec<(String, String)> = seen
            .iter()
            .filter(|(s, n)| *s != *n)
            .map(|(s, n)| (s.clone(), n.clone()))
            .collect();
        for (segment, owner) in encoded {
            let s = group_segment(&segment).unwrap();
            assert_ne!(
                s, segment,
                "the group named {segment:?} takes the segment of {owner:?}"
            );
            if let Some(prev) = seen.insert(s.clone(), segment.clone()) {
                panic!("{prev:?} and {segment:?} both map to {s:?}");
            }
        }
        assert!(seen.len() > 10_000);
    }
}
