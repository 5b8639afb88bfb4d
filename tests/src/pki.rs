//! The deployment's CA and certificate files, made with the coordinator's CA code
//! (`silo ca init` / `silo ca issue`).

use std::path::{Path, PathBuf};

use silo_coordinator::ca::{self, Ca};
use silo_proto::tls::{Role, TlsFiles};

/// A project CA whose certificate and issued pairs live in one folder.
pub struct Pki {
    ca: Ca,
    dir: PathBuf,
}

impl Pki {
    /// A new CA written to `dir/ca.pem` and `dir/ca.key`.
    pub fn new(dir: &Path) -> Pki {
        let ca = Ca::generate().expect("CA generates");
        ca.write(dir, false).expect("CA written");
        Pki {
            ca,
            dir: dir.to_path_buf(),
        }
    }

    /// The folder holding `ca.pem` and every `NAME.pem` / `NAME.key`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The CA certificate file.
    pub fn ca_pem(&self) -> PathBuf {
        self.dir.join(ca::CA_CERT_FILE)
    }

    /// Issues `name` in `role` (valid 30 days), unless its pair exists already; returns
    /// its `[tls]` files.
    pub fn issue(&self, role: Role, name: &str) -> TlsFiles {
        let files = self.files(name);
        if !files.cert.exists() {
            let pair = self
                .ca
                .issue(role, name, &[], 30)
                .expect("certificate issues");
            ca::write_pair(&self.dir, name, &pair, false).expect("certificate written");
        }
        files
    }

    /// Issues `name` in `role` with a certificate that expired yesterday.
    pub fn issue_expired(&self, role: Role, name: &str) -> TlsFiles {
        let pair = self
            .ca
            .issue_expired(role, name, &[])
            .expect("certificate issues");
        ca::write_pair(&self.dir, name, &pair, true).expect("certificate written");
        self.files(name)
    }

    /// The `[tls]` files of `name` (issued or not).
    pub fn files(&self, name: &str) -> TlsFiles {
        ca::tls_files(&self.dir, &self.dir, name)
    }

    /// Files for `name` in `role` issued by a *different* CA, while trusting this
    /// deployment's CA: a stranger who knows the coordinator but is not in the project.
    pub fn foreign(&self, role: Role, name: &str) -> TlsFiles {
        let rogue_dir = self.dir.join("rogue");
        let rogue = Ca::generate().expect("CA generates");
        let pair = rogue
            .issue(role, name, &[], 30)
            .expect("certificate issues");
        ca::write_pair(&rogue_dir, name, &pair, true).expect("certificate written");
        TlsFiles {
            ca: self.ca_pem(),
            ..ca::tls_files(&rogue_dir, &rogue_dir, name)
        }
    }
}
