//! Mutual TLS for every Silo connection, and the identity a certificate carries.
//!
//! DESIGN section 2, rule 6: sites, the coordinator and CLI users all hold certificates
//! from the project CA. A certificate's subject names its holder: the common name (CN) is
//! the name (`hospital-a`, `alice`) and the organizational unit (OU) is the role
//! (`coordinator`, `site`, `admin`, `auditor`). The coordinator reads both from the
//! verified client certificate of each request ([`peer_identity`]); nothing the caller
//! writes in a message can change who it is.
//!
//! Plaintext exists only for development: [`connect`] dials `http://` only when asked
//! with `insecure` *and* the host is loopback, and [`check_insecure_listen`] refuses to
//! serve plaintext on any other address.
//!
//! Beware of TLS 1.3: a client without (or with a wrong) certificate still sees the
//! connection succeed; the server's refusal shows at the first RPC.

#![warn(missing_docs, clippy::all)]

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tonic::transport::{
    Certificate, Channel, ClientTlsConfig, Endpoint, Identity, ServerTlsConfig, Uri,
};
use x509_parser::pem::Pem;

use crate::MAX_MESSAGE_BYTES;
use crate::admin_api_client::AdminApiClient;
use crate::site_api_client::SiteApiClient;

/// The X.509 parser this module reads certificates with, re-exported so that callers (the
/// CA tooling) inspect certificates with the same version.
pub use x509_parser;

/// How long [`connect`] waits for the TCP connection (and TLS handshake) to come up.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Interval of HTTP/2 keep-alive pings on client channels: a site's session stream can be
/// idle for minutes, and middleboxes drop silent connections.
pub const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(30);

/// What a certificate holder may do. Carried in the certificate subject's OU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The coordinator daemon (server certificate).
    Coordinator,
    /// A site daemon: registers datasets, runs tasks.
    Site,
    /// A person or script that submits and cancels jobs.
    Admin,
    /// Read-only: budgets, job status, sites.
    Auditor,
}

impl Role {
    /// Every role, in a fixed order (for help texts and error messages).
    pub const ALL: [Role; 4] = [Role::Coordinator, Role::Site, Role::Admin, Role::Auditor];

    /// The role's name as it appears in certificates, configs and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Coordinator => "coordinator",
            Role::Site => "site",
            Role::Admin => "admin",
            Role::Auditor => "auditor",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not one of the four role names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}: expected one of coordinator, site, admin, auditor")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_string()))
    }
}

/// Whether `name` is acceptable as a certificate holder's name: non-empty, at most 64
/// characters, only ASCII letters, digits, `.`, `_` and `-`.
///
/// The name ends up in file names (`silo ca issue` writes `NAME.pem`), log lines and
/// ledger entries, so it is kept to a set that needs no quoting anywhere. The CA applies
/// the same rule when issuing, and [`peer_identity`] when reading.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Who is on the other end of a connection, as its verified certificate says.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PeerIdentity {
    /// The certificate's common name (a site name, a user name, ...).
    pub name: String,
    /// The certificate's organizational unit.
    pub role: Role,
}

impl fmt::Display for PeerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name, self.role)
    }
}

/// The `[tls]` table of `coordinator.toml`, `site.toml` and `silo-admin.toml`
/// (DESIGN section 7): the project CA and this party's certificate and key, as PEM files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The project CA certificate (`ca.pem`): the only trust anchor.
    pub ca: PathBuf,
    /// This party's certificate (`NAME.pem`), issued by the CA.
    pub cert: PathBuf,
    /// This party's private key (`NAME.key`).
    pub key: PathBuf,
}

impl TlsFiles {
    /// The same files with relative paths taken relative to `base` (typically the
    /// directory of the config file that named them); absolute paths are kept.
    pub fn relative_to(&self, base: &Path) -> TlsFiles {
        let join = |p: &PathBuf| {
            if p.is_absolute() {
                p.clone()
            } else {
                base.join(p)
            }
        };
        TlsFiles {
            ca: join(&self.ca),
            cert: join(&self.cert),
            key: join(&self.key),
        }
    }
}

/// Why TLS could not be set up. Each variant names the file, URL or address at fault and
/// what was expected there.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file could not be read.
    #[error("cannot read {what} {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the file should hold ("CA certificate", "private key", ...).
        what: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file that should hold a PEM certificate holds none, or a broken one.
    #[error(
        "{} is not a valid {what}: expected a PEM file with a '-----BEGIN CERTIFICATE-----' \
         block ({reason})",
        path.display()
    )]
    BadCertificate {
        /// The file.
        path: PathBuf,
        /// "CA certificate" or "certificate".
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A key file holds no PEM private key.
    #[error(
        "{} is not a valid private key: expected a PEM file with a \
         '-----BEGIN PRIVATE KEY-----' (or EC/RSA PRIVATE KEY) block ({reason})",
        path.display()
    )]
    BadKey {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The URL does not parse, has no host, or has a scheme other than http/https.
    #[error("invalid coordinator URL {url:?}: {reason} (expected https://HOST:PORT)")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An `https://` URL was given without the `[tls]` files to authenticate with.
    #[error("{url} needs TLS files: expected a [tls] table with ca, cert and key in the config")]
    MissingTlsFiles {
        /// The URL.
        url: String,
    },
    /// An `http://` URL was given without `--insecure`.
    #[error(
        "refusing plaintext connection to {url}: expected an https:// URL (plaintext needs \
         --insecure and a loopback host)"
    )]
    PlaintextNotAllowed {
        /// The URL.
        url: String,
    },
    /// An `http://` URL with `--insecure`, but the host is not loopback.
    #[error(
        "refusing plaintext connection to {url}: --insecure only works with a loopback host \
         (127.0.0.0/8, ::1, localhost); expected an https:// URL"
    )]
    PlaintextNotLoopback {
        /// The URL.
        url: String,
    },
    /// A plaintext listener was requested on a non-loopback address.
    #[error(
        "refusing to listen without TLS on {addr}: --insecure only works on a loopback \
         address (127.0.0.0/8 or ::1); expected a [tls] table for {addr}"
    )]
    InsecureListen {
        /// The address.
        addr: SocketAddr,
    },
    /// tonic rejected the endpoint or TLS settings, or the connection failed.
    #[error("cannot connect to {url}: {source}")]
    Connect {
        /// The URL.
        url: String,
        /// tonic's error.
        #[source]
        source: tonic::transport::Error,
    },
}

/// Reads a file holding one or more PEM certificates and checks that each parses as X.509.
fn read_certificates(path: &Path, what: &'static str) -> Result<Vec<u8>, TlsError> {
    let bytes = std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        what,
        source,
    })?;
    let bad = |reason: String| TlsError::BadCertificate {
        path: path.to_path_buf(),
        what,
        reason,
    };
    let mut count = 0;
    for pem in Pem::iter_from_buffer(&bytes) {
        let pem = pem.map_err(|e| bad(format!("unreadable PEM: {e}")))?;
        if pem.label != "CERTIFICATE" {
            continue;
        }
        pem.parse_x509()
            .map_err(|e| bad(format!("certificate {} does not parse: {e}", count + 1)))?;
        count += 1;
    }
    if count == 0 {
        return Err(bad("no certificate found".into()));
    }
    Ok(bytes)
}

/// Reads a file holding a PEM private key (PKCS#8, SEC1 or PKCS#1).
fn read_key(path: &Path) -> Result<Vec<u8>, TlsError> {
    let bytes = std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        what: "private key",
        source,
    })?;
    let bad = |reason: String| TlsError::BadKey {
        path: path.to_path_buf(),
        reason,
    };
    let mut found = false;
    for pem in Pem::iter_from_buffer(&bytes) {
        let pem = pem.map_err(|e| bad(format!("unreadable PEM: {e}")))?;
        if matches!(
            pem.label.as_str(),
            "PRIVATE KEY" | "EC PRIVATE KEY" | "RSA PRIVATE KEY"
        ) {
            found = true;
        }
    }
    if !found {
        return Err(bad("no private key found".into()));
    }
    Ok(bytes)
}

/// Loads this party's certificate and key, and the CA certificate.
fn load(files: &TlsFiles) -> Result<(Identity, Certificate), TlsError> {
    let ca = read_certificates(&files.ca, "CA certificate")?;
    let cert = read_certificates(&files.cert, "certificate")?;
    let key = read_key(&files.key)?;
    Ok((Identity::from_pem(cert, key), Certificate::from_pem(ca)))
}

/// TLS settings for a Silo server: presents `files.cert` and *requires* every client to
/// present a certificate issued by `files.ca` (expired or foreign certificates fail the
/// handshake).
pub fn server_tls_config(files: &TlsFiles) -> Result<ServerTlsConfig, TlsError> {
    let (identity, ca) = load(files)?;
    Ok(ServerTlsConfig::new()
        .identity(identity)
        .client_ca_root(ca)
        .client_auth_optional(false))
}

/// TLS settings for a Silo client: trusts only `files.ca` (no system roots), presents
/// `files.cert`, and checks that the server's certificate is valid for `server_name`
/// (a DNS name or an IP address).
pub fn client_tls_config(files: &TlsFiles, server_name: &str) -> Result<ClientTlsConfig, TlsError> {
    let (identity, ca) = load(files)?;
    Ok(ClientTlsConfig::new()
        .ca_certificate(ca)
        .identity(identity)
        .domain_name(server_name))
}

/// Whether `host` (as in a URL, IPv6 possibly in brackets) is a loopback host:
/// `localhost`, 127.0.0.0/8 or ::1.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<IpAddr>()
        .map(|ip| ip.to_canonical().is_loopback())
        .unwrap_or(false)
}

/// Refuses a plaintext listener on anything but a loopback address (DESIGN section 2,
/// rule 6). Call it before serving without TLS.
pub fn check_insecure_listen(addr: &SocketAddr) -> Result<(), TlsError> {
    if addr.ip().to_canonical().is_loopback() {
        Ok(())
    } else {
        Err(TlsError::InsecureListen { addr: *addr })
    }
}

/// Builds (without connecting) the endpoint [`connect`] uses; see there for the rules.
/// Useful for `connect_lazy()` in a daemon that reconnects on its own.
pub fn endpoint(url: &str, files: Option<&TlsFiles>, insecure: bool) -> Result<Endpoint, TlsError> {
    let bad_url = |reason: &str| TlsError::BadUrl {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let uri: Uri = url.parse().map_err(|e| bad_url(&format!("{e}")))?;
    let host = uri.host().ok_or_else(|| bad_url("no host"))?.to_string();
    let tls = match uri.scheme_str() {
        Some("https") => {
            let files = files.ok_or_else(|| TlsError::MissingTlsFiles {
                url: url.to_string(),
            })?;
            // rustls wants a bare IPv6 address, not the URL's bracketed form.
            let server_name = host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or(&host);
            Some(client_tls_config(files, server_name)?)
        }
        Some("http") if !insecure => {
            return Err(TlsError::PlaintextNotAllowed {
                url: url.to_string(),
            });
        }
        Some("http") if !is_loopback_host(&host) => {
            return Err(TlsError::PlaintextNotLoopback {
                url: url.to_string(),
            });
        }
        Some("http") => None,
        _ => return Err(bad_url("scheme must be https (or http with --insecure)")),
    };
    let connect_err = |source| TlsError::Connect {
        url: url.to_string(),
        source,
    };
    let mut endpoint = Endpoint::from(uri)
        .connect_timeout(CONNECT_TIMEOUT)
        .http2_keep_alive_interval(KEEP_ALIVE_INTERVAL)
        .keep_alive_while_idle(true)
        .tcp_keepalive(Some(KEEP_ALIVE_INTERVAL));
    if let Some(tls) = tls {
        endpoint = endpoint.tls_config(tls).map_err(connect_err)?;
    }
    Ok(endpoint)
}

/// Opens a channel to a Silo server.
///
/// * `https://HOST:PORT` with `files`: mutual TLS; the server certificate must be issued
///   by `files.ca` and valid for HOST.
/// * `http://HOST:PORT`: only when `insecure` is true *and* HOST is loopback.
///
/// Anything else is a [`TlsError`] before any packet is sent. The TCP connection is made
/// now (within [`CONNECT_TIMEOUT`]); with TLS 1.3 a refused client certificate only shows
/// at the first RPC. Message size limits are per client: use [`admin_client`] /
/// [`site_client`] to get clients with [`MAX_MESSAGE_BYTES`] applied.
pub async fn connect(
    url: &str,
    files: Option<&TlsFiles>,
    insecure: bool,
) -> Result<Channel, TlsError> {
    endpoint(url, files, insecure)?
        .connect()
        .await
        .map_err(|source| TlsError::Connect {
            url: url.to_string(),
            source,
        })
}

/// An `AdminApi` client over `channel` that sends and accepts messages up to
/// [`MAX_MESSAGE_BYTES`].
pub fn admin_client(channel: Channel) -> AdminApiClient<Channel> {
    AdminApiClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

/// A `SiteApi` client over `channel` that sends and accepts messages up to
/// [`MAX_MESSAGE_BYTES`].
pub fn site_client(channel: Channel) -> SiteApiClient<Channel> {
    SiteApiClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

/// Why a certificate does not identify a Silo party.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The DER does not parse as an X.509 certificate.
    #[error("client certificate does not parse: {0}")]
    Unparsable(String),
    /// The subject has no (or an empty, or a non-UTF-8) common name.
    #[error("client certificate has no subject CN: expected CN = the holder's name")]
    MissingName,
    /// The subject CN is not a valid name (see [`is_valid_name`]).
    #[error("client certificate CN {0:?} is not a valid name: expected [A-Za-z0-9._-]{{1,64}}")]
    BadName(String),
    /// The subject has no OU.
    #[error("client certificate has no subject OU: expected OU = coordinator|site|admin|auditor")]
    MissingRole,
    /// The subject OU is not a role.
    #[error("client certificate OU: {0}")]
    BadRole(UnknownRole),
}

/// Reads the holder's name (CN) and role (OU) from a DER certificate. Does not verify the
/// certificate: the TLS layer already did, before any request reached the server.
pub fn identity_from_der(der: &[u8]) -> Result<PeerIdentity, IdentityError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| IdentityError::Unparsable(e.to_string()))?;
    let subject = cert.subject();
    let name = subject
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .filter(|cn| !cn.is_empty())
        .ok_or(IdentityError::MissingName)?;
    if !is_valid_name(name) {
        return Err(IdentityError::BadName(name.to_string()));
    }
    let role = subject
        .iter_organizational_unit()
        .next()
        .and_then(|ou| ou.as_str().ok())
        .ok_or(IdentityError::MissingRole)?;
    let role = role.parse().map_err(IdentityError::BadRole)?;
    Ok(PeerIdentity {
        name: name.to_string(),
        role,
    })
}

/// The identity of the client that sent `request`, from its verified TLS certificate.
///
/// `Unauthenticated` when the connection carries no client certificate (plaintext, or a
/// TLS server that does not ask for one), or its leaf certificate lacks a valid CN/OU.
pub fn peer_identity<T>(request: &tonic::Request<T>) -> Result<PeerIdentity, tonic::Status> {
    let certs = request
        .peer_certs()
        .ok_or_else(|| tonic::Status::unauthenticated("no client certificate presented"))?;
    let leaf = certs
        .first()
        .ok_or_else(|| tonic::Status::unauthenticated("no client certificate presented"))?;
    identity_from_der(leaf.as_ref()).map_err(|e| tonic::Status::unauthenticated(e.to_string()))
}

/// [`peer_identity`], and `PermissionDenied` unless the caller's role is in `allowed`.
pub fn require_role<T>(
    request: &tonic::Request<T>,
    allowed: &[Role],
) -> Result<PeerIdentity, tonic::Status> {
    let peer = peer_identity(request)?;
    if allowed.contains(&peer.role) {
        Ok(peer)
    } else {
        let allowed: Vec<&str> = allowed.iter().map(|r| r.as_str()).collect();
        Err(tonic::Status::permission_denied(format!(
            "{peer} may not do this: requires role {}",
            allowed.join(" or ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Self-signed test certificates made with
    // `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -subj SUBJECT`.
    // Only their subjects matter here.
    const ADMIN_ALICE: &str = include_str!("../tests/fixtures/admin.pem");
    const NO_OU: &str = include_str!("../tests/fixtures/noou.pem");
    const NO_CN: &str = include_str!("../tests/fixtures/nocn.pem");
    const BAD_ROLE: &str = include_str!("../tests/fixtures/badrole.pem");

    fn der(pem: &str) -> Vec<u8> {
        let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
        pem.contents
    }

    #[test]
    fn role_round_trips_through_strings() {
        for role in Role::ALL {
            assert_eq!(role.to_string().parse::<Role>(), Ok(role));
        }
        assert_eq!("Admin".parse::<Role>(), Err(UnknownRole("Admin".into())));
        assert!("".parse::<Role>().is_err());
    }

    #[test]
    fn names_are_restricted() {
        assert!(is_valid_name("hospital-a"));
        assert!(is_valid_name("alice.b_2"));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name("a/b"));
        assert!(!is_valid_name("a b"));
        assert!(!is_valid_name("é"));
        assert!(!is_valid_name(&"x".repeat(65)));
    }

    #[test]
    fn identity_reads_cn_and_ou() {
        let id = identity_from_der(&der(ADMIN_ALICE)).unwrap();
        assert_eq!(
            id,
            PeerIdentity {
                name: "alice".into(),
                role: Role::Admin
            }
        );
        assert_eq!(id.to_string(), "alice (admin)");
    }

    #[test]
    fn identity_without_role_or_name_is_refused() {
        assert_eq!(
            identity_from_der(&der(NO_OU)),
            Err(IdentityError::MissingRole)
        );
        assert_eq!(
            identity_from_der(&der(NO_CN)),
            Err(IdentityError::MissingName)
        );
        assert_eq!(
            identity_from_der(&der(BAD_ROLE)),
            Err(IdentityError::BadRole(UnknownRole("janitor".into())))
        );
        assert!(matches!(
            identity_from_der(b"not a certificate"),
            Err(IdentityError::Unparsable(_))
        ));
    }

    #[test]
    fn request_without_certificate_is_unauthenticated() {
        let status = peer_identity(&tonic::Request::new(())).unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
    }

    #[test]
    fn loopback_hosts() {
        for host in [
            "localhost",
            "LOCALHOST",
            "127.0.0.1",
            "127.1.2.3",
            "::1",
            "[::1]",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "10.0.0.1",
            "0.0.0.0",
            "example.org",
            "localhost.evil.com",
            "[::]",
            "",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn insecure_listen_only_on_loopback() {
        assert!(check_insecure_listen(&"127.0.0.1:7443".parse().unwrap()).is_ok());
        assert!(check_insecure_listen(&"[::1]:7443".parse().unwrap()).is_ok());
        for addr in ["0.0.0.0:7443", "[::]:7443", "192.168.1.4:7443"] {
            let err = check_insecure_listen(&addr.parse().unwrap()).unwrap_err();
            assert!(matches!(err, TlsError::InsecureListen { .. }), "{addr}");
            assert!(err.to_string().contains(addr), "{err}");
        }
    }

    #[test]
    fn plaintext_urls_need_insecure_and_loopback() {
        assert!(endpoint("http://127.0.0.1:7443", None, true).is_ok());
        assert!(endpoint("http://localhost:7443", None, true).is_ok());
        assert!(endpoint("http://[::1]:7443", None, true).is_ok());
        assert!(matches!(
            endpoint("http://127.0.0.1:7443", None, false),
            Err(TlsError::PlaintextNotAllowed { .. })
        ));
        assert!(matches!(
            endpoint("http://10.1.2.3:7443", None, true),
            Err(TlsError::PlaintextNotLoopback { .. })
        ));
        assert!(matches!(
            endpoint("http://coordinator.example.org:7443", None, true),
            Err(TlsError::PlaintextNotLoopback { .. })
        ));
        assert!(matches!(
            endpoint("https://127.0.0.1:7443", None, true),
            Err(TlsError::MissingTlsFiles { .. })
        ));
        assert!(matches!(
            endpoint("ftp://127.0.0.1:7443", None, true),
            Err(TlsError::BadUrl { .. })
        ));
        assert!(matches!(
            endpoint("not a url", None, true),
            Err(TlsError::BadUrl { .. })
        ));
    }

    #[test]
    fn pem_errors_name_the_file() {
        let dir = std::env::temp_dir().join(format!("silo-proto-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let garbage = dir.join("garbage.pem");
        std::fs::write(&garbage, "hello").unwrap();
        let cert = dir.join("cert.pem");
        std::fs::write(&cert, ADMIN_ALICE).unwrap();
        let missing = dir.join("missing.pem");

        let files = TlsFiles {
            ca: missing.clone(),
            cert: cert.clone(),
            key: cert.clone(),
        };
        let err = server_tls_config(&files).unwrap_err();
        assert!(matches!(err, TlsError::Read { .. }));
        assert!(err.to_string().contains("missing.pem"), "{err}");

        let files = TlsFiles {
            ca: garbage.clone(),
            ..files
        };
        let err = server_tls_config(&files).unwrap_err();
        assert!(matches!(err, TlsError::BadCertificate { .. }));
        assert!(err.to_string().contains("garbage.pem"), "{err}");

        // A certificate where the key should be.
        let files = TlsFiles {
            ca: cert.clone(),
            ..files
        };
        let err = client_tls_config(&files, "localhost").unwrap_err();
        assert!(matches!(err, TlsError::BadKey { .. }), "{err}");
        assert!(err.to_string().contains("cert.pem"), "{err}");

        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn tls_files_deserialize_and_resolve() {
        use serde::de::value::{Error, MapDeserializer};
        // The proto crate has no TOML dependency; a map of strings drives the same derive.
        let parse = |pairs: Vec<(&'static str, &'static str)>| {
            TlsFiles::deserialize(MapDeserializer::<_, Error>::new(pairs.into_iter()))
        };
        let tls = parse(vec![
            ("ca", "certs/ca.pem"),
            ("cert", "/abs/a.pem"),
            ("key", "certs/a.key"),
        ])
        .unwrap();
        let resolved = tls.relative_to(Path::new("/etc/silo"));
        assert_eq!(resolved.ca, PathBuf::from("/etc/silo/certs/ca.pem"));
        assert_eq!(resolved.cert, PathBuf::from("/abs/a.pem"));
        assert_eq!(resolved.key, PathBuf::from("/etc/silo/certs/a.key"));

        assert!(parse(vec![("ca", "a"), ("cert", "b")]).is_err());
        assert!(parse(vec![("ca", "a"), ("cert", "b"), ("key", "c"), ("kee", "d")]).is_err());
    }
}
