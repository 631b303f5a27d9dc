//! TLS for both kinds of database connection, following libpq's `sslmode` meanings:
//! `require` encrypts without checking the certificate, `verify-ca` checks the chain,
//! `verify-full` checks the chain and the host name.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::postgres::SslMode;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read sslrootcert {path}: {source}")]
    RootCertificate {
        path: String,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("sslrootcert {path} holds no usable certificate")]
    NoRootCertificate { path: String },
    #[error("no trusted root certificates found on this system; set sslrootcert")]
    NoSystemRoots,
    #[error("cannot build the certificate verifier: {0}")]
    Verifier(#[from] rustls::client::VerifierBuilderError),
    #[error("TLS setup failed: {0}")]
    Rustls(#[from] rustls::Error),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The rustls client configuration for `mode`, or `None` when TLS is not wanted.
pub(crate) fn client_config(
    mode: SslMode,
    root_certificate: Option<&Path>,
) -> Result<Option<Arc<ClientConfig>>, TlsError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let config = match mode {
        SslMode::Disable => return Ok(None),
        SslMode::Prefer | SslMode::Require => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PartialVerifier {
                provider,
                chain: None,
            }))
            .with_no_client_auth(),
        SslMode::VerifyCa => {
            let roots = root_store(root_certificate)?;
            let chain = rustls::client::WebPkiServerVerifier::builder_with_provider(
                roots,
                provider.clone(),
            )
            .build()?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(PartialVerifier {
                    provider,
                    chain: Some(chain),
                }))
                .with_no_client_auth()
        }
        SslMode::VerifyFull => builder
            .with_root_certificates(root_store(root_certificate)?)
            .with_no_client_auth(),
    };
    Ok(Some(Arc::new(config)))
}

fn root_store(root_certificate: Option<&Path>) -> Result<Arc<RootCertStore>, TlsError> {
    let mut store = RootCertStore::empty();
    match root_certificate {
        Some(path) => {
            let shown = path.display().to_string();
            for certificate in
                CertificateDer::pem_file_iter(path).map_err(|source| TlsError::RootCertificate {
                    path: shown.clone(),
                    source,
                })?
            {
                let certificate = certificate.map_err(|source| TlsError::RootCertificate {
                    path: shown.clone(),
                    source,
                })?;
                // A certificate that webpki cannot use is skipped, as libpq does.
                let _ = store.add(certificate);
            }
            if store.is_empty() {
                return Err(TlsError::NoRootCertificate { path: shown });
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for certificate in found.certs {
                let _ = store.add(certificate);
            }
            if store.is_empty() {
                return Err(TlsError::NoSystemRoots);
            }
        }
    }
    Ok(Arc::new(store))
}

/// Checks the server's certificate as far as the mode asks. Without `chain`
/// (`sslmode=require`) the session is encrypted but the peer is not authenticated; with it
/// (`verify-ca`) the chain must lead to a trusted root while the name is not compared.
/// Handshake signatures are always checked so the handshake itself is sound.
#[derive(Debug)]
struct PartialVerifier {
    provider: Arc<CryptoProvider>,
    chain: Option<Arc<rustls::client::WebPkiServerVerifier>>,
}

impl ServerCertVerifier for PartialVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName))
            | Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            certificate,
            signature,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            certificate,
            signature,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
