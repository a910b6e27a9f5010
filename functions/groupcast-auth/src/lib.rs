//! # groupcast-auth
//!
//! The checks groupcast's Lambda functions put between a user's token and their groups:
//!
//! - [`jwt`]: verify a JWT against the issuer's JWKS (cached, refreshed on an unknown `kid` at a
//!   limited rate) and read the user's groups. Configured from `GROUPCAST_JWT_*` variables.
//! - [`authorizer`]: the one Lambda authorizer entry for both APIs: tells the AppSync Events
//!   request from the GraphQL one, denies anything else, and builds the shared identity context.
//! - [`events`]: the AppSync Events Lambda authorizer's request/response types and its decision:
//!   subscribe only to your groups' channels, never publish.
//! - [`graphql`]: the AppSync GraphQL Lambda authorizer's types and decision: a verified token is
//!   allowed with `resolverContext` groups, `Mutation.publish` denied.
//! - [`grant`]: make this project's IoT policies on a Cognito identity exactly those of the user's
//!   IoT groups (only `iot.groups`, only policies tagged with the project, the 10-policy quota); the
//!   one implementation behind the iot-grant function and the provisioner's `iot grant` (`iot`
//!   feature for the AWS SDK).
//! - [`membership`]: a user's CURRENT groups from the source of truth (the Cognito user pool,
//!   `cognito` feature), never from a token's claims: what grants and IoT policies are built on.
//! - [`iot_authorizer`] (feature `iot-authorizer`): the AWS IoT custom authorizer: a verified JWT
//!   in, exactly the user's current IoT groups' topics out, from the same policy template.
//! - [`iot_policy`]: that template as the provisioner renders it for the authorizer (placeholders
//!   for the client id and the group's level) and the substitution the authorizer makes.
//!
//! ```no_run
//! # async fn f() -> Result<(), groupcast_auth::jwt::JwtError> {
//! use groupcast_auth::jwt::{JwtConfig, Verifier};
//! let verifier = Verifier::new(JwtConfig::from_env()?)?;
//! let token = verifier.verify("eyJ…").await?;
//! println!("{} is in {:?}", token.sub, token.groups);
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod authorizer;
pub mod events;
pub mod grant;
pub mod graphql;
#[cfg(feature = "iot-authorizer")]
pub mod iot_authorizer;
pub mod iot_policy;
pub mod jwt;
pub mod membership;
