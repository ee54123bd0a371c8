//! Serving TLS: a certificate and key read from PEM files
//! (`[query.postgres] tls`, `[query.flight] tls`).

use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use weir_config::ServerTlsConfig;

/// Reads the certificate chain and key of `config` (`key` names the
/// setting in errors).
pub fn load(
    config: &ServerTlsConfig,
    key: &str,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&config.cert_file)
        .and_then(|certs| certs.collect::<Result<_, _>>())
        .map_err(|e| {
            format!(
                "`{key}`: cannot read the certificate `{}`: {e}",
                config.cert_file.display()
            )
        })?;
    if certs.is_empty() {
        return Err(format!(
            "`{key}`: `{}` holds no PEM certificate",
            config.cert_file.display()
        ));
    }
    let private = PrivateKeyDer::from_pem_file(&config.key_file).map_err(|e| {
        format!(
            "`{key}`: cannot read a private key from `{}`: {e}",
            config.key_file.display()
        )
    })?;
    Ok((certs, private))
}

/// A TLS acceptor for `config` (`key` names the setting in errors),
/// offering the application protocols `alpn` (empty: none, as Postgres).
pub fn acceptor(
    config: &ServerTlsConfig,
    key: &str,
    alpn: &[&[u8]],
) -> Result<TlsAcceptor, String> {
    let (certs, private) = load(config, key)?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut server = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, private))
        .map_err(|e| format!("`{key}`: the certificate and key do not make a TLS server: {e}"))?;
    server.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(TlsAcceptor::from(Arc::new(server)))
}
