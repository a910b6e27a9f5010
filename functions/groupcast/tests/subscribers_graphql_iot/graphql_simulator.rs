//! GraphQL simulator test (to come).
