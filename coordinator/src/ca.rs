//! The project certificate authority: one CA per Silo deployment, and the certificates it
//! issues to the coordinator, sites, admins and auditors.
//!
//! DESIGN section 2, rule 6. Each issued certificate names its holder in the subject:
//! CN = the name, OU = the role ([`Role`]); the coordinator trusts exactly these two
//! fields of a certificate that chains to the CA (see `silo_proto::tls`). Keys are ECDSA
//! P-256, written as PKCS#8 PEM with mode 0600.
//!
//! The CA key signs everything: keep `ca.key` off the coordinator host in a real
//! deployment; the coordinator only needs `ca.pem`.

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use sha2::Digest;
use silo_proto::tls::x509_parser::der_parser::asn1_rs::Tag;
use silo_proto::tls::x509_parser::{self, certificate::X509Certificate, x509::X509Name};
use silo_proto::tls::{Role, TlsFiles, is_valid_name};
use time::{Duration, OffsetDateTime};

/// File name of the CA certificate inside a CA directory.
pub const CA_CERT_FILE: &str = "ca.pem";
/// File name of the CA private key inside a CA directory.
pub const CA_KEY_FILE: &str = "ca.key";
/// Common name of a CA made by [`Ca::generate`], followed by a key fingerprint.
pub const CA_COMMON_NAME: &str = "Silo project CA";
/// Validity of a new CA, in days (10 years).
pub const CA_VALIDITY_DAYS: u32 = 3650;
/// Default validity of an issued certificate, in days.
pub const DEFAULT_VALIDITY_DAYS: u32 = 365;
/// Longest validity `issue` accepts, in days (the CA's own lifetime).
pub const MAX_VALIDITY_DAYS: u32 = CA_VALIDITY_DAYS;

/// What went wrong creating, loading or using the CA. Every variant names the value or the
/// file at fault.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// A holder name outside `[A-Za-z0-9._-]{1,64}`.
    #[error("invalid name {0:?}: expected 1-64 characters from A-Z a-z 0-9 . _ -")]
    InvalidName(String),
    /// A role that is not coordinator, site, admin or auditor.
    #[error(transparent)]
    InvalidRole(#[from] silo_proto::tls::UnknownRole),
    /// A `--san` that is neither an IP address nor a DNS name.
    #[error("invalid SAN {0:?}: expected a DNS name (letters, digits, '-', '.') or an IP address")]
    InvalidSan(String),
    /// A validity of zero days, or more than [`MAX_VALIDITY_DAYS`].
    #[error("invalid validity of {0} days: expected 1 to {MAX_VALIDITY_DAYS}")]
    InvalidDays(u32),
    /// The file exists and overwriting was not asked for.
    #[error("{} already exists: refusing to overwrite it (pass --force to replace it)", .0.display())]
    Exists(PathBuf),
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file or directory could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The CA certificate file does not hold a usable CA certificate.
    #[error("{} is not a usable CA certificate: {reason} (expected the ca.pem written by `silo ca init`)", path.display())]
    BadCaCertificate {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The CA key file does not hold a usable private key.
    #[error("{} is not a usable CA private key: {reason} (expected the ca.key written by `silo ca init`)", path.display())]
    BadCaKey {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The CA key is not the key of the CA certificate.
    #[error("{} does not belong to {}: expected the key written together with the certificate", key.display(), cert.display())]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// A certificate signed with the CA would not chain to it: its issuer name differs
    /// from the CA certificate's subject (a CA whose subject uses unusual string types).
    #[error(
        "the CA certificate's subject cannot be reproduced exactly: expected a CA made by \
         `silo ca init`"
    )]
    IssuerMismatch,
    /// rcgen could not generate a key or sign a certificate.
    #[error("cannot create certificate for {what}: {source}")]
    Generate {
        /// What was being made ("the CA", "site hospital-a", ...).
        what: String,
        /// rcgen's error.
        #[source]
        source: rcgen::Error,
    },
}

impl CaError {
    /// Whether the error is the user's input (a name, a flag, a file they pointed at),
    /// rather than a failure of the machine (a write, the crypto library).
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, CaError::Write { .. } | CaError::Generate { .. })
    }
}

/// A certificate and its private key, both PEM.
#[derive(Clone)]
pub struct IssuedCert {
    /// The certificate (`-----BEGIN CERTIFICATE-----`).
    pub cert_pem: String,
    /// The PKCS#8 private key (`-----BEGIN PRIVATE KEY-----`).
    pub key_pem: String,
}

impl std::fmt::Debug for IssuedCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a private key, even in a test failure.
        f.debug_struct("IssuedCert")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// The project CA, in memory: its certificate and its signing key.
pub struct Ca {
    cert_pem: String,
    key_pem: String,
    /// DER of the CA certificate's subject: every issued certificate's issuer must equal it.
    subject_der: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

fn generate_error(what: impl Into<String>) -> impl FnOnce(rcgen::Error) -> CaError {
    let what = what.into();
    move |source| CaError::Generate { what, source }
}

impl Ca {
    /// A new CA (ECDSA P-256, valid for [`CA_VALIDITY_DAYS`], may sign leaf certificates
    /// only), in memory. [`Ca::write`] saves it.
    pub fn generate() -> Result<Ca, CaError> {
        let key = KeyPair::generate().map_err(generate_error("the CA"))?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        // A fingerprint in the name keeps two deployments' CAs apart: a certificate from
        // the wrong CA is then refused as "unknown issuer", not as a bad signature.
        let fingerprint = hex::encode(&sha2::Sha256::digest(key.public_key_raw())[..4]);
        dn.push(
            DnType::CommonName,
            format!("{CA_COMMON_NAME} {fingerprint}"),
        );
        dn.push(DnType::OrganizationName, "Silo");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = OffsetDateTime::now_utc();
        // A little slack for hosts whose clocks run behind.
        params.not_before = now - Duration::hours(1);
        params.not_after = now + Duration::days(i64::from(CA_VALIDITY_DAYS));
        let cert = params.self_signed(&key).map_err(generate_error("the CA"))?;
        let (_, parsed) = x509_parser::parse_x509_certificate(cert.der())
            .expect("rcgen produced an unparsable certificate");
        let subject_der = parsed.subject().as_raw().to_vec();
        let key_pem = key.serialize_pem();
        Ok(Ca {
            cert_pem: cert.pem(),
            key_pem,
            subject_der,
            issuer: Issuer::new(params, key),
        })
    }

    /// Loads the CA from `dir/ca.pem` and `dir/ca.key`, checking that the certificate is a
    /// CA and that the key is its key.
    pub fn load(dir: &Path) -> Result<Ca, CaError> {
        let cert_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        let read = |path: &Path| {
            std::fs::read_to_string(path).map_err(|source| CaError::Read {
                path: path.to_path_buf(),
                source,
            })
        };
        let cert_pem = read(&cert_path)?;
        let key_pem = read(&key_path)?;

        let bad_cert = |reason: String| CaError::BadCaCertificate {
            path: cert_path.clone(),
            reason,
        };
        let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes())
            .map_err(|e| bad_cert(format!("no PEM certificate ({e})")))?;
        let cert = pem
            .parse_x509()
            .map_err(|e| bad_cert(format!("does not parse ({e})")))?;
        if !cert.is_ca() {
            return Err(bad_cert(
                "it is not a CA certificate (basicConstraints cA is false)".into(),
            ));
        }
        let key = KeyPair::from_pem(&key_pem).map_err(|e| CaError::BadCaKey {
            path: key_path.clone(),
            reason: e.to_string(),
        })?;
        if cert.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
            return Err(CaError::KeyMismatch {
                cert: cert_path,
                key: key_path,
            });
        }
        let mut params = CertificateParams::default();
        params.distinguished_name = distinguished_name(cert.subject()).map_err(bad_cert)?;
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let subject_der = cert.subject().as_raw().to_vec();
        Ok(Ca {
            cert_pem,
            key_pem,
            subject_der,
            issuer: Issuer::new(params, key),
        })
    }

    /// Writes `dir/ca.pem` and `dir/ca.key` (mode 0600), creating `dir`. Refuses to replace
    /// an existing CA unless `overwrite`: every certificate it issued would stop working.
    pub fn write(&self, dir: &Path, overwrite: bool) -> Result<(PathBuf, PathBuf), CaError> {
        let cert_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        create_dir(dir)?;
        if !overwrite {
            refuse_existing(&[&cert_path, &key_path])?;
        }
        write_file(&key_path, self.key_pem.as_bytes(), 0o600)?;
        write_file(&cert_path, self.cert_pem.as_bytes(), 0o644)?;
        Ok((cert_path, key_path))
    }

    /// The CA certificate (PEM): what every party trusts.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Issues a certificate for `name` in `role`, valid from now for `days` days.
    ///
    /// Subject: CN = `name`, OU = `role`. SANs: for the coordinator `localhost` and
    /// `127.0.0.1` plus `extra_sans`; for the other roles the DNS-safe form of `name`
    /// plus `extra_sans`. EKU: server and client auth for the coordinator (it serves, and
    /// the demo harness dials with it), client auth for the others.
    pub fn issue(
        &self,
        role: Role,
        name: &str,
        extra_sans: &[String],
        days: u32,
    ) -> Result<IssuedCert, CaError> {
        if days == 0 || days > MAX_VALIDITY_DAYS {
            return Err(CaError::InvalidDays(days));
        }
        let now = OffsetDateTime::now_utc();
        self.issue_valid(
            role,
            name,
            extra_sans,
            now - Duration::hours(1),
            now + Duration::days(i64::from(days)),
        )
    }

    /// Issues a certificate that expired yesterday, for tests proving that expired
    /// certificates are refused. Otherwise identical to [`Ca::issue`].
    pub fn issue_expired(
        &self,
        role: Role,
        name: &str,
        extra_sans: &[String],
    ) -> Result<IssuedCert, CaError> {
        let now = OffsetDateTime::now_utc();
        self.issue_valid(
            role,
            name,
            extra_sans,
            now - Duration::days(30),
            now - Duration::days(1),
        )
    }

    /// Issues a certificate valid from `not_before` to `not_after` (no range checks: the
    /// caller chose the dates; see [`Ca::issue`] for everything else).
    pub fn issue_valid(
        &self,
        role: Role,
        name: &str,
        extra_sans: &[String],
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<IssuedCert, CaError> {
        if !is_valid_name(name) {
            return Err(CaError::InvalidName(name.to_string()));
        }
        let what = format!("{role} {name}");
        let mut sans = Vec::new();
        match role {
            Role::Coordinator => {
                sans.push(dns_san("localhost")?);
                sans.push(SanType::IpAddress(IpAddr::from([127, 0, 0, 1])));
            }
            _ => {
                if let Some(dns) = dns_safe(name) {
                    sans.push(dns_san(&dns)?);
                }
            }
        }
        for san in extra_sans {
            let san = parse_san(san)?;
            if !sans.contains(&san) {
                sans.push(san);
            }
        }

        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        dn.push(DnType::OrganizationalUnitName, role.as_str());
        params.distinguished_name = dn;
        params.subject_alt_names = sans;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = match role {
            Role::Coordinator => vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
            Role::Site | Role::Admin | Role::Auditor => vec![ExtendedKeyUsagePurpose::ClientAuth],
        };
        params.use_authority_key_identifier_extension = true;
        params.not_before = not_before;
        params.not_after = not_after;

        let key = KeyPair::generate().map_err(generate_error(&what))?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(generate_error(&what))?;
        // The chain only verifies if the issuer name is byte-for-byte the CA's subject.
        let (_, parsed): (_, X509Certificate<'_>) = x509_parser::parse_x509_certificate(cert.der())
            .expect("rcgen produced an unparsable certificate");
        if parsed.issuer().as_raw() != self.subject_der.as_slice() {
            return Err(CaError::IssuerMismatch);
        }
        Ok(IssuedCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// Writes `dir/NAME.pem` and `dir/NAME.key` (mode 0600), creating `dir`; refuses to replace
/// existing files unless `overwrite`. Returns the two paths.
pub fn write_pair(
    dir: &Path,
    name: &str,
    cert: &IssuedCert,
    overwrite: bool,
) -> Result<(PathBuf, PathBuf), CaError> {
    if !is_valid_name(name) {
        return Err(CaError::InvalidName(name.to_string()));
    }
    let cert_path = dir.join(format!("{name}.pem"));
    let key_path = dir.join(format!("{name}.key"));
    create_dir(dir)?;
    if !overwrite {
        refuse_existing(&[&cert_path, &key_path])?;
    }
    write_file(&key_path, cert.key_pem.as_bytes(), 0o600)?;
    write_file(&cert_path, cert.cert_pem.as_bytes(), 0o644)?;
    Ok((cert_path, key_path))
}

/// The `[tls]` files of `name` when its pair sits in `cert_dir` and the CA in `ca_dir`.
pub fn tls_files(ca_dir: &Path, cert_dir: &Path, name: &str) -> TlsFiles {
    TlsFiles {
        ca: ca_dir.join(CA_CERT_FILE),
        cert: cert_dir.join(format!("{name}.pem")),
        key: cert_dir.join(format!("{name}.key")),
    }
}

/// The DNS-safe form of a holder name: lower case, `_` as `-`, empty labels dropped and
/// `-` trimmed from label ends. `None` when nothing is left.
pub fn dns_safe(name: &str) -> Option<String> {
    let lowered = name.to_ascii_lowercase().replace('_', "-");
    let labels: Vec<&str> = lowered
        .split('.')
        .map(|label| label.trim_matches('-'))
        .filter(|label| !label.is_empty())
        .collect();
    if labels.is_empty() || labels.iter().any(|l| l.len() > 63) {
        None
    } else {
        Some(labels.join("."))
    }
}

fn dns_san(dns: &str) -> Result<SanType, CaError> {
    let ia5 = dns
        .to_string()
        .try_into()
        .map_err(|_| CaError::InvalidSan(dns.to_string()))?;
    Ok(SanType::DnsName(ia5))
}

/// A `--san` value: an IP address, or a DNS name (labels of letters, digits and inner
/// hyphens; a leading `*.` wildcard is allowed).
fn parse_san(san: &str) -> Result<SanType, CaError> {
    if let Ok(ip) = san.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let invalid = || CaError::InvalidSan(san.to_string());
    let host = san.strip_prefix("*.").unwrap_or(san);
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if san.len() > 253 || !host.split('.').all(label_ok) {
        return Err(invalid());
    }
    dns_san(&san.to_ascii_lowercase()).map_err(|_| invalid())
}

/// Rebuilds an rcgen name from a parsed certificate subject, keeping each value's string
/// type so that issued certificates carry the CA's subject byte for byte.
fn distinguished_name(name: &X509Name<'_>) -> Result<DistinguishedName, String> {
    let mut dn = DistinguishedName::new();
    for rdn in name.iter() {
        let mut attrs = rdn.iter();
        let (Some(attr), None) = (attrs.next(), attrs.next()) else {
            return Err("subject has a multi-valued or empty RDN".into());
        };
        let oid: Vec<u64> = attr
            .attr_type()
            .iter()
            .ok_or("subject attribute OID out of range")?
            .collect();
        let text = std::str::from_utf8(attr.attr_value().data)
            .map_err(|_| "subject attribute is not UTF-8".to_string())?
            .to_string();
        let value = match attr.attr_value().header.tag() {
            Tag::Utf8String => DnValue::Utf8String(text),
            Tag::PrintableString => DnValue::PrintableString(
                text.try_into()
                    .map_err(|_| "subject has an invalid PrintableString".to_string())?,
            ),
            Tag::Ia5String => DnValue::Ia5String(
                text.try_into()
                    .map_err(|_| "subject has an invalid IA5String".to_string())?,
            ),
            other => {
                return Err(format!(
                    "subject attribute has unsupported string type {other}"
                ));
            }
        };
        dn.push(DnType::from_oid(&oid), value);
    }
    Ok(dn)
}

fn create_dir(dir: &Path) -> Result<(), CaError> {
    std::fs::create_dir_all(dir).map_err(|source| CaError::Write {
        path: dir.to_path_buf(),
        source,
    })
}

fn refuse_existing(paths: &[&Path]) -> Result<(), CaError> {
    match paths.iter().find(|p| p.exists()) {
        Some(path) => Err(CaError::Exists(path.to_path_buf())),
        None => Ok(()),
    }
}

/// Writes `contents` to `path` with `mode` (Unix), through a temporary file and a rename so
/// that a crash never leaves half a key, and an existing file's looser mode is not kept.
fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), CaError> {
    let err = |source| CaError::Write {
        path: path.to_path_buf(),
        source,
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let result = (|| {
        let mut file = options.open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use silo_proto::tls::{PeerIdentity, identity_from_der};

    fn der(pem: &str) -> Vec<u8> {
        x509_parser::pem::parse_x509_pem(pem.as_bytes())
            .unwrap()
            .1
            .contents
    }

    fn sans(pem: &str) -> Vec<String> {
        let der = der(pem);
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        let ext = cert.subject_alternative_name().unwrap().unwrap();
        ext.value
            .general_names
            .iter()
            .map(|n| match n {
                x509_parser::extensions::GeneralName::DNSName(d) => d.to_string(),
                x509_parser::extensions::GeneralName::IPAddress(ip) => format!("ip:{ip:?}"),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn issued_certificates_carry_name_and_role() {
        let ca = Ca::generate().unwrap();
        for role in Role::ALL {
            let issued = ca.issue(role, "Node_1.a", &[], 30).unwrap();
            assert_eq!(
                identity_from_der(&der(&issued.cert_pem)).unwrap(),
                PeerIdentity {
                    name: "Node_1.a".into(),
                    role
                }
            );
        }
    }

    #[test]
    fn subject_alternative_names_follow_the_role() {
        let ca = Ca::generate().unwrap();
        let coordinator = ca
            .issue(
                Role::Coordinator,
                "coord",
                &["silo.example.org".into(), "10.0.0.5".into()],
                30,
            )
            .unwrap();
        assert_eq!(
            sans(&coordinator.cert_pem),
            [
                "localhost",
                "ip:[127, 0, 0, 1]",
                "silo.example.org",
                "ip:[10, 0, 0, 5]"
            ]
        );
        let site = ca.issue(Role::Site, "Hospital_A", &[], 30).unwrap();
        assert_eq!(sans(&site.cert_pem), ["hospital-a"]);
    }

    #[test]
    fn bad_input_is_refused() {
        let ca = Ca::generate().unwrap();
        for name in ["", "a b", "../x", "é"] {
            assert!(matches!(
                ca.issue(Role::Site, name, &[], 30),
                Err(CaError::InvalidName(_))
            ));
        }
        for san in ["", "a..b", "-a", "a_b", "a b"] {
            assert!(
                matches!(
                    ca.issue(Role::Site, "s", &[san.to_string()], 30),
                    Err(CaError::InvalidSan(_))
                ),
                "{san}"
            );
        }
        assert!(matches!(
            ca.issue(Role::Site, "s", &[], 0),
            Err(CaError::InvalidDays(0))
        ));
        assert!(matches!(
            ca.issue(Role::Site, "s", &[], MAX_VALIDITY_DAYS + 1),
            Err(CaError::InvalidDays(_))
        ));
    }

    #[test]
    fn dns_safe_names() {
        assert_eq!(dns_safe("Hospital_A").as_deref(), Some("hospital-a"));
        assert_eq!(dns_safe("a..b.").as_deref(), Some("a.b"));
        assert_eq!(dns_safe("_-_"), None);
    }

    #[test]
    fn ca_round_trips_through_files() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::generate().unwrap();
        ca.write(dir.path(), false).unwrap();
        assert!(matches!(
            ca.write(dir.path(), false),
            Err(CaError::Exists(_))
        ));
        ca.write(dir.path(), true).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(CA_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let loaded = Ca::load(dir.path()).unwrap();
        assert_eq!(loaded.cert_pem(), ca.cert_pem());
        // A leaf from the loaded CA names the same issuer (checked inside issue).
        loaded.issue(Role::Admin, "alice", &[], 1).unwrap();

        // The key of another CA is refused.
        let other = Ca::generate().unwrap();
        std::fs::write(dir.path().join(CA_KEY_FILE), &other.key_pem).unwrap();
        assert!(matches!(
            Ca::load(dir.path()),
            Err(CaError::KeyMismatch { .. })
        ));
    }

    #[test]
    fn a_leaf_certificate_is_not_a_ca() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::generate().unwrap();
        let leaf = ca.issue(Role::Site, "s", &[], 1).unwrap();
        std::fs::write(dir.path().join(CA_CERT_FILE), &leaf.cert_pem).unwrap();
        std::fs::write(dir.path().join(CA_KEY_FILE), &leaf.key_pem).unwrap();
        let err = Ca::load(dir.path()).unwrap_err();
        assert!(matches!(err, CaError::BadCaCertificate { .. }), "{err}");
        assert!(err.to_string().contains("ca.pem"), "{err}");
    }
}
