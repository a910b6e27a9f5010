//! GraphQL edge tests (to come).
