//! TLS client settings for every connection fedwatt makes (XMPP's
//! STARTTLS, MQTT over TLS): rustls with the ring provider, trusting either
//! a PEM file of CA certificates (self-hosted servers with a private CA) or
//! the system's roots.
//!
//! ```no_run
//! # fn main() -> Result<(), tls::Error> {
//! // The system's roots.
//! let public = tls::client_config(None)?;
//! // A private CA's.
//! let private = tls::client_config(Some(std::path::Path::new("/etc/fedwatt/ca.pem")))?;
//! # Ok(()) }
//! ```
//!
//! What it is *not*: it opens no connection, and has no client
//! certificates (fedwatt's servers authenticate it by password).
//!
//! Invariants: a configuration it returns trusts at least one root
//! certificate; every error names the file (or the system store) and what
//! is wrong with it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::{self, PemObject};

/// Why no TLS configuration could be built.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The CA file cannot be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The CA file is not PEM, or a PEM section of it is broken.
    #[error("{}: {why}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong, in words.
        why: String,
    },
    /// The CA file holds no certificate.
    #[error("{}: no PEM certificate in it", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// A certificate of the CA file cannot be a root.
    #[error("{}: certificate {number}: {source}", path.display())]
    Certificate {
        /// The file.
        path: PathBuf,
        /// Its place in the file, from 1.
        number: usize,
        /// Why rustls refuses it.
        source: rustls::Error,
    },
    /// The system has no root certificate fedwatt can read.
    #[error(
        "no root certificate found on this system{}: install the CA bundle (ca-certificates) or give a CA file",
        if why.is_empty() { String::new() } else { format!(" ({why})") }
    )]
    NoSystemRoots {
        /// What went wrong while looking, if anything.
        why: String,
    },
    /// rustls refused the settings.
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
}

/// A client configuration (rustls, ring, TLS 1.2 and 1.3) that trusts the
/// certificates of `ca_file` (PEM) if given, else the system's roots.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, Error> {
    let roots = match ca_file {
        Some(path) => file_roots(path)?,
        None => system_roots()?,
    };
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
    Ok(Arc::new(config))
}

/// [`client_config`] for a section of the node's configuration (`[xmpp]`,
/// `[control]`), its errors worded for the operator with the section and
/// its `ca_file` setting named.
pub fn configured(section: &str, ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, String> {
    client_config(ca_file).map_err(|e| match e {
        Error::NoSystemRoots { .. } | Error::Tls(_) => format!("{section}: {e}"),
        e => format!("{section} ca_file {e}"),
    })
}

/// The certificates of a PEM file, as roots; other PEM sections (keys…)
/// are skipped. A file with no certificate, or a broken one, is refused.
pub fn file_roots(path: &Path) -> Result<RootCertStore, Error> {
    let pem = std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })?;
    let mut roots = RootCertStore::empty();
    for (i, cert) in CertificateDer::pem_slice_iter(&pem).enumerate() {
        let cert = cert.map_err(|e| Error::Pem {
            path: path.to_owned(),
            why: pem_error(&e),
        })?;
        roots.add(cert).map_err(|source| Error::Certificate {
            path: path.to_owned(),
            number: i + 1,
            source,
        })?;
    }
    if roots.is_empty() {
        return Err(Error::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(roots)
}

/// The system's roots (honouring `SSL_CERT_FILE` and `SSL_CERT_DIR`).
/// Certificates that cannot be read are skipped with a warning, as long as
/// some can.
pub fn system_roots() -> Result<RootCertStore, Error> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(found.certs);
    let errors: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
    if roots.is_empty() {
        return Err(Error::NoSystemRoots {
            why: errors.join("; "),
        });
    }
    if !errors.is_empty() || ignored > 0 {
        tracing::warn!(
            "the system's root certificates: {added} trusted, {ignored} unusable; {}",
            errors.join("; ")
        );
    }
    Ok(roots)
}

/// A PEM error in words (rustls-pki-types' own show bytes).
fn pem_error(e: &pem::Error) -> String {
    match e {
        pem::Error::MissingSectionEnd { end_marker } => format!(
            "a PEM section does not end (no {:?} line)",
            String::from_utf8_lossy(end_marker)
        ),
        pem::Error::IllegalSectionStart { line } => format!(
            "a malformed PEM BEGIN line: {:?}",
            String::from_utf8_lossy(line)
        ),
        pem::Error::Base64Decode(why) => format!("a PEM section is not base64: {why}"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, text: &[u8]) -> PathBuf {
        let path = std::env::temp_dir().join(format!("fedwatt-tls-{}-{name}", std::process::id()));
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn a_missing_ca_file_is_named_with_the_reason() {
        let path = Path::new("/nonexistent/fedwatt/ca.pem");
        let e = client_config(Some(path)).unwrap_err();
        assert!(matches!(e, Error::Read { .. }), "{e:?}");
        let text = e.to_string();
        assert!(text.starts_with("/nonexistent/fedwatt/ca.pem: "), "{text}");
        assert!(text.contains("No such file"), "{text}");
    }

    #[test]
    fn a_file_with_no_certificate_is_refused() {
        let key = file(
            "key.pem",
            b"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIBkqCzUYZrhHkHqkbGt9r9gIuB5hXNq0vYzYVTA2AjQW\n-----END PRIVATE KEY-----\n",
        );
        let e = client_config(Some(&key)).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("{}: no PEM certificate in it", key.display())
        );
        let empty = file("empty.pem", b"not a certificate\n");
        assert!(matches!(
            client_config(Some(&empty)).unwrap_err(),
            Error::NoCertificate { .. }
        ));
    }

    #[test]
    fn a_broken_pem_section_says_what_is_broken() {
        let cut = file("cut.pem", b"-----BEGIN CERTIFICATE-----\nMIIB\n");
        let e = client_config(Some(&cut)).unwrap_err().to_string();
        assert!(e.contains("cut.pem: a PEM section does not end"), "{e}");
        let garbage = file(
            "garbage.pem",
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        );
        let e = client_config(Some(&garbage)).unwrap_err().to_string();
        assert!(e.contains("garbage.pem: certificate 1: "), "{e}");
    }

    #[test]
    fn a_ca_file_is_trusted_and_its_other_sections_skipped() {
        let ca = include_bytes!("../tests/data/ca.pem");
        let mut with_key = b"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIBkqCzUYZrhHkHqkbGt9r9gIuB5hXNq0vYzYVTA2AjQW\n-----END PRIVATE KEY-----\n".to_vec();
        with_key.extend_from_slice(ca);
        let path = file("ca.pem", &with_key);
        assert_eq!(file_roots(&path).unwrap().len(), 1);
        client_config(Some(&path)).unwrap();
    }
}
