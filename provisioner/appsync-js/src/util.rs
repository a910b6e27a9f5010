//! The encoding functions of AppSync's built-in `util` for Event handlers, in Rust
//! (https://docs.aws.amazon.com/appsync/latest/eventapi/built-in-util.html: "Unless otherwise
//! specified, all utilities use the UTF-8 character set"). `util.unauthorized` and `util.error` live
//! in the JavaScript prelude (`prelude.js`), since they end the handler with an exception.
//!
//! AppSync's runtime is Java-backed, and the form-urlencoding it documents is `java.net.URLEncoder`'s
//! (the isolation harness's `urlEncodeJava`, tests/harness/lib/handler.js, is the same rule). The
//! prelude replaces an unpaired UTF-16 surrogate with `?` before calling these, as Java's UTF-8
//! encoder does, so they only ever see well-formed text.

use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};

/// `util.urlEncode(s)`: `application/x-www-form-urlencoded` UTF-8, as `java.net.URLEncoder` writes
/// it: `A-Z a-z 0-9 . - * _` kept, a space as `+`, every other byte `%XX` in upper-case hex.
pub(crate) fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'*' | b'_' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 15)]));
            }
        }
    }
    out
}

/// `util.urlDecode(s)`: the inverse, as `java.net.URLDecoder` reads it: `+` is a space, `%XX` a byte,
/// runs of bytes are UTF-8 (a malformed sequence becomes U+FFFD, as Java's `new String(bytes,
/// UTF_8)`), anything else is kept. A `%` without two hex digits after it is an error, as Java's
/// `IllegalArgumentException`.
pub(crate) fn url_decode(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut bytes: Vec<u8> = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '%' {
            let hi = chars.next().and_then(|c| c.to_digit(16));
            let lo = chars.next().and_then(|c| c.to_digit(16));
            match (hi, lo) {
                (Some(hi), Some(lo)) => bytes.push(u8::try_from(hi * 16 + lo).unwrap_or(b'?')),
                _ => {
                    return Err(format!(
                        "util.urlDecode: {s:?} has a `%` without two hex digits after it"
                    ));
                }
            }
            continue;
        }
        if !bytes.is_empty() {
            out.push_str(&String::from_utf8_lossy(&bytes));
            bytes.clear();
        }
        out.push(if c == '+' { ' ' } else { c });
    }
    out.push_str(&String::from_utf8_lossy(&bytes));
    Ok(out)
}

/// `util.base64Encode(s)`: the UTF-8 bytes of `s` in standard base64 with padding.
pub(crate) fn base64_encode(s: &str) -> String {
    STANDARD.encode(s.as_bytes())
}

/// `util.base64Decode(s)`: standard base64, padding optional (as `java.util.Base64`'s basic
/// decoder), read back as UTF-8 text (a malformed sequence becomes U+FFFD). Text that is not base64
/// is an error.
pub(crate) fn base64_decode(s: &str) -> Result<String, String> {
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    LENIENT
        .decode(s.as_bytes())
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .map_err(|e| format!("util.base64Decode: {s:?} is not base64 ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encode_keeps_javas_unreserved_set_and_writes_other_bytes_as_upper_case_hex() {
        assert_eq!(url_encode("Team_B a.b-c*"), "Team_B+a.b-c*");
        assert_eq!(url_encode("quo\"te/#$+~!"), "quo%22te%2F%23%24%2B%7E%21");
        assert_eq!(url_encode("\u{430}dmins"), "%D0%B0dmins");
        assert_eq!(url_encode("😀"), "%F0%9F%98%80");
        assert_eq!(url_encode(""), "");
    }

    #[test]
    fn url_decode_reverses_url_encode_and_refuses_a_truncated_escape() {
        for s in ["Team_B a.b-c*", "quo\"te/#$+~!", "\u{430}dmins", "😀 x"] {
            assert_eq!(url_decode(&url_encode(s)).unwrap(), s);
        }
        assert_eq!(url_decode("a+b%2b%e2%82%ac").unwrap(), "a b+€");
        assert_eq!(url_decode("%ff").unwrap(), "\u{fffd}");
        assert!(url_decode("100%").unwrap_err().contains("two hex digits"));
        assert!(url_decode("%zz").is_err());
    }

    #[test]
    fn base64_round_trips_utf8_text_and_refuses_what_is_not_base64() {
        assert_eq!(base64_encode("team-a ü"), "dGVhbS1hIMO8");
        assert_eq!(base64_decode("dGVhbS1hIMO8").unwrap(), "team-a ü");
        assert_eq!(base64_decode("YQ==").unwrap(), "a");
        assert_eq!(base64_decode("YQ").unwrap(), "a");
        assert!(
            base64_decode("not base64!")
                .unwrap_err()
                .contains("not base64")
        );
    }
}
