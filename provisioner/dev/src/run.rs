//! (To be built by the local stack's shell: see lib.rs.)
