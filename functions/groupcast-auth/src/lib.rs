//! JWT verification, group extraction and IoT grants (in progress).
