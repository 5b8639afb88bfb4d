//! Who is calling: the verified client certificate (mutual TLS), or — only in the
//! explicit insecure development mode on loopback — what the caller claims.
//!
//! In insecure mode there is no certificate. A caller may then state its identity in the
//! metadata keys [`INSECURE_NAME`] and [`INSECURE_ROLE`]; admin API callers that say
//! nothing are `insecure-dev (admin)`, and a site session takes the name of its
//! `Register` message. This exists so a developer (and the fast in-process tests) can run
//! without a CA; `check_insecure_listen` keeps it off every non-loopback address.

use silo_proto::tls::{PeerIdentity, Role, peer_identity};
use tonic::Request;

use super::error::ApiError;

/// Metadata key naming the caller in insecure mode.
pub const INSECURE_NAME: &str = "x-silo-insecure-name";
/// Metadata key giving the caller's role in insecure mode.
pub const INSECURE_ROLE: &str = "x-silo-insecure-role";

/// How callers are identified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMode {
    /// From the verified client certificate (CN = name, OU = role).
    MutualTls,
    /// From request metadata; development only.
    Insecure,
}

/// The caller's identity; `default_name` / `default_role` apply in insecure mode when the
/// caller states nothing.
pub fn caller<T>(
    mode: AuthMode,
    request: &Request<T>,
    default_name: &str,
    default_role: Role,
) -> Result<PeerIdentity, ApiError> {
    match mode {
        AuthMode::MutualTls => Ok(peer_identity(request)?),
        AuthMode::Insecure => {
            let meta = |key: &str| {
                request
                    .metadata()
                    .get(key)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            let role = match meta(INSECURE_ROLE) {
                Some(r) => r
                    .parse::<Role>()
                    .map_err(|e| ApiError::Unauthenticated(e.to_string()))?,
                None => default_role,
            };
            Ok(PeerIdentity {
                name: meta(INSECURE_NAME).unwrap_or_else(|| default_name.to_string()),
                role,
            })
        }
    }
}
