//! A throwaway CA and a server certificate for 127.0.0.1/localhost, made with the openssl CLI.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;

use super::run;

pub struct TlsFiles {
    pub ca_cert: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Generates `ca.crt`, `server.crt` and `server.key` in `dir`. The server certificate is signed
/// by the CA (rustls refuses a CA certificate used directly as a server certificate).
pub fn generate(dir: &Path) -> Result<TlsFiles> {
    let p = |n: &str| dir.join(n);
    let s = |p: &PathBuf| p.to_string_lossy().into_owned();
    let (ca_key, ca_cert, key, csr, cert, ext) = (
        p("ca.key"),
        p("ca.crt"),
        p("server.key"),
        p("server.csr"),
        p("server.crt"),
        p("server.ext"),
    );
    run(Command::new("openssl").args([
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        &s(&ca_key),
        "-out",
        &s(&ca_cert),
        "-days",
        "2",
        "-subj",
        "/CN=berth test CA",
    ]))?;
    run(Command::new("openssl").args([
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        &s(&key),
        "-out",
        &s(&csr),
        "-subj",
        "/CN=127.0.0.1",
    ]))?;
    std::fs::write(
        &ext,
        "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n\
         extendedKeyUsage=serverAuth\n",
    )?;
    run(Command::new("openssl").args([
        "x509",
        "-req",
        "-in",
        &s(&csr),
        "-CA",
        &s(&ca_cert),
        "-CAkey",
        &s(&ca_key),
        "-CAcreateserial",
        "-out",
        &s(&cert),
        "-days",
        "2",
        "-extfile",
        &s(&ext),
    ]))?;
    Ok(TlsFiles { ca_cert, cert, key })
}

/// A self-signed signing certificate and its PKCS#8 key (for the token server's JWTs).
pub fn signing_pair(dir: &Path) -> Result<(PathBuf, PathBuf)> {
    let key = dir.join("token.key");
    let cert = dir.join("token.crt");
    run(Command::new("openssl").args([
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        &key.to_string_lossy(),
        "-out",
        &cert.to_string_lossy(),
        "-days",
        "2",
        "-subj",
        "/CN=berth token issuer",
    ]))?;
    Ok((cert, key))
}
