//! The interpreter's own tests: each Velocity feature the templates use, and the no-panic property.
