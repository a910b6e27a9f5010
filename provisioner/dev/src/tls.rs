//! TLS for every endpoint of the local stack: a local certificate authority and a server
//! certificate it signs, made on first run and kept in the state directory, so that clients
//! trust the stack by trusting one file (`NODE_EXTRA_CA_CERTS`, `SSL_CERT_FILE`, a browser
//! profile) that stays valid across restarts.
//!
//! Files, all under `{state_dir}/tls/` (keys readable by the owner only):
//! - `ca.pem` — the CA certificate clients trust; `ca.key` — its key.
//! - `server.pem` — the server certificate; `server.key` — its key.
//! - `meta.json` — what the certificates were made for (the CA's name, the server's names, both
//!   expiry dates), so a later run can reuse them without parsing X.509.
//!
//! A later run reuses both when they are still good. The server certificate is made anew when
//! its names differ from the ones wanted (another `--listen`) or it expires within
//! [`RENEW_BEFORE`]; the CA is made anew only when its files are missing or unreadable or it
//! nears expiry (clients must then trust the new `ca.pem`).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use serde::{Deserialize, Serialize};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject as _};

/// How long a new CA is valid.
const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// How long a new server certificate is valid.
const SERVER_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
/// A certificate that expires sooner than this is made anew.
pub const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);

/// The ALPN protocols every listener offers, in the server's order of preference.
///
/// - `http/1.1`: the Events and GraphQL HTTPS/WSS endpoints, IoT's WSS endpoint and the AWS
///   port speak HTTP/1.1 only (a browser offering `h2, http/1.1` gets `http/1.1`).
/// - `x-amzn-mqtt-ca`: what AWS IoT asks of an MQTT client that connects over TLS on port 443
///   (on 8883 no ALPN is needed); a client written for that setup sends it, and a TLS server that
///   knows none of a client's protocols must refuse the handshake, so the MQTT endpoint accepts it
///   (https://docs.aws.amazon.com/iot/latest/developerguide/protocols.html, "Protocols, port
///   mappings, and authentication").
/// - `mqtt`: the IANA name some MQTT clients offer.
///
/// A client that sends no ALPN at all (mqtt.js on 8883, curl with `--no-alpn`) is served too.
pub const ALPN: [&[u8]; 3] = [b"http/1.1", b"x-amzn-mqtt-ca", b"mqtt"];

/// Why the TLS material could not be made or loaded; names the file and what went wrong.
#[derive(Debug, thiserror::Error)]
#[error("TLS: {0}")]
pub struct TlsError(pub String);

/// The stack's TLS: the acceptor every listener wraps its sockets with, and the CA to trust.
#[derive(Clone)]
pub struct Tls {
    /// Wraps accepted sockets (`Stack::tls`).
    pub acceptor: TlsAcceptor,
    /// The CA certificate clients must trust (`{state_dir}/tls/ca.pem`).
    pub ca_path: PathBuf,
    /// The names the server certificate is valid for.
    pub names: Vec<String>,
    /// What this run did: made a new CA, a new server certificate, or reused both.
    pub made: Made,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("ca_path", &self.ca_path)
            .field("names", &self.names)
            .field("made", &self.made)
            .finish_non_exhaustive()
    }
}

/// What [`load_or_create`] had to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Made {
    /// A new CA and server certificate (first run, or the CA was missing or expiring).
    NewCa,
    /// A new server certificate signed by the kept CA (names changed or expiring).
    NewServer,
    /// Both reused as they were.
    Reused,
}

/// What `meta.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Meta {
    /// The CA's common name (part of the issuer name the server certificate must carry).
    ca_common_name: String,
    /// Seconds since the epoch.
    ca_not_after: u64,
    /// The server certificate's subject alternative names, sorted.
    server_names: Vec<String>,
    server_not_after: u64,
}

/// The names the server certificate covers for a stack listening on `listen`: `127.0.0.1`,
/// `::1`, `localhost`, and `listen` itself unless it is a wildcard address (`0.0.0.0`, `::`,
/// which no client connects to by that name). Sorted, no duplicates.
pub fn server_names(listen: IpAddr) -> Vec<String> {
    let mut names = vec![
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
        "localhost".to_owned(),
    ];
    if !listen.is_unspecified() {
        names.push(listen.to_string());
    }
    names.sort();
    names.dedup();
    names
}

/// Loads the CA and server certificate from `{state_dir}/tls/`, making whatever is missing,
/// expiring or made for other names, and builds the acceptor.
pub fn load_or_create(state_dir: &Path, listen: IpAddr) -> Result<Tls, TlsError> {
    load_or_create_at(state_dir, listen, SystemTime::now())
}

/// [`load_or_create`] as if the time were `now` (tests of renewal).
pub fn load_or_create_at(
    state_dir: &Path,
    listen: IpAddr,
    now: SystemTime,
) -> Result<Tls, TlsError> {
    let dir = state_dir.join("tls");
    std::fs::create_dir_all(&dir)
        .map_err(|e| TlsError(format!("creating {}: {e}", dir.display())))?;
    let names = server_names(listen);
    let now_s = secs(now);
    let renew = RENEW_BEFORE.as_secs();
    let files = Files::in_dir(&dir);

    let old_meta: Option<Meta> = std::fs::read_to_string(&files.meta)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    // The kept CA, if its files and record are all there and it is not about to expire.
    let kept_ca = old_meta
        .as_ref()
        .filter(|m| m.ca_not_after > now_s + renew)
        .and_then(|m| {
            let key = KeyPair::from_pem(&std::fs::read_to_string(&files.ca_key).ok()?).ok()?;
            files.ca_cert.exists().then(|| (m.clone(), key))
        });
    let (ca_common_name, ca_not_after, ca_key, made_ca) = match kept_ca {
        Some((m, key)) => (m.ca_common_name, m.ca_not_after, key, false),
        None => {
            // A name unique to this CA, so two state directories' CAs never look alike.
            let cn = format!("groupcast local CA {}", unique_suffix(now));
            let key = KeyPair::generate().map_err(|e| TlsError(format!("CA key: {e}")))?;
            let not_after = now_s + CA_VALIDITY.as_secs();
            let cert = ca_params(&cn, now_s, not_after)
                .self_signed(&key)
                .map_err(|e| TlsError(format!("CA certificate: {e}")))?;
            write_file(&files.ca_key, key.serialize_pem().as_bytes(), true)?;
            write_file(&files.ca_cert, cert.pem().as_bytes(), false)?;
            (cn, not_after, key, true)
        }
    };

    let server_ok = !made_ca
        && old_meta
            .as_ref()
            .is_some_and(|m| m.server_names == names && m.server_not_after > now_s + renew)
        && files.server_cert.exists()
        && files.server_key.exists();
    let server_not_after = if server_ok {
        old_meta.as_ref().map_or(0, |m| m.server_not_after)
    } else {
        let not_after = (now_s + SERVER_VALIDITY.as_secs()).min(ca_not_after);
        let mut params = CertificateParams::new(names.clone())
            .map_err(|e| TlsError(format!("server certificate names {names:?}: {e}")))?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "groupcast local stack");
        params.distinguished_name = dn;
        params.not_before = to_time(now_s.saturating_sub(3600));
        params.not_after = to_time(not_after);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().map_err(|e| TlsError(format!("server key: {e}")))?;
        // The issuer is rebuilt from the same name and key as the CA certificate: that is all a
        // signature needs (issuer name, authority key id = the CA key's id).
        let issuer = Issuer::new(ca_params(&ca_common_name, 0, ca_not_after), &ca_key);
        let cert = params
            .signed_by(&key, &issuer)
            .map_err(|e| TlsError(format!("server certificate: {e}")))?;
        write_file(&files.server_key, key.serialize_pem().as_bytes(), true)?;
        write_file(&files.server_cert, cert.pem().as_bytes(), false)?;
        not_after
    };
    let meta = Meta {
        ca_common_name,
        ca_not_after,
        server_names: names.clone(),
        server_not_after,
    };
    if old_meta.as_ref() != Some(&meta) {
        let text =
            serde_json::to_string_pretty(&meta).map_err(|e| TlsError(format!("meta.json: {e}")))?;
        write_file(&files.meta, text.as_bytes(), false)?;
    }
    let made = if made_ca {
        Made::NewCa
    } else if server_ok {
        Made::Reused
    } else {
        Made::NewServer
    };
    Ok(Tls {
        acceptor: acceptor(&files.server_cert, &files.server_key)?,
        ca_path: files.ca_cert,
        names,
        made,
    })
}

/// The CA's parameters; the same name and key give the same issuer.
fn ca_params(common_name: &str, not_before: u64, not_after: u64) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, "groupcast provisioner dev");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = to_time(not_before.saturating_sub(3600));
    params.not_after = to_time(not_after);
    params
}

/// The rustls server config over the stored certificate and key.
fn acceptor(cert_path: &Path, key_path: &Path) -> Result<TlsAcceptor, TlsError> {
    let certs = CertificateDer::pem_file_iter(cert_path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError(format!("{}: {e}", cert_path.display())))?;
    let key = PrivateKeyDer::from_pem_file(key_path)
        .map_err(|e| TlsError(format!("{}: {e}", key_path.display())))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(format!("protocol versions: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError(format!("{}: {e}", cert_path.display())))?;
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(TlsAcceptor::from(Arc::new(config)))
}

struct Files {
    ca_cert: PathBuf,
    ca_key: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    meta: PathBuf,
}

impl Files {
    fn in_dir(dir: &Path) -> Files {
        Files {
            ca_cert: dir.join("ca.pem"),
            ca_key: dir.join("ca.key"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            meta: dir.join("meta.json"),
        }
    }
}

/// Writes `bytes` to `path` atomically (a temporary file renamed over it); `private` makes it
/// readable by the owner only (mode 0600 on Unix) from the moment it exists.
pub(crate) fn write_file(path: &Path, bytes: &[u8], private: bool) -> Result<(), TlsError> {
    crate::outputs::write_atomic(path, bytes, private)
        .map_err(|e| TlsError(format!("writing {}: {e}", path.display())))
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn to_time(secs: u64) -> time::OffsetDateTime {
    let secs = i64::try_from(secs).unwrap_or(i64::MAX);
    time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// A short suffix that differs between CAs: the time and the process id.
fn unique_suffix(now: SystemTime) -> String {
    let nanos = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{:x}-{:x}", nanos, std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "groupcast-dev-tls-{name}-{}-{}",
            std::process::id(),
            unique_suffix(SystemTime::now())
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn the_first_run_makes_a_ca_and_a_server_certificate_with_private_keys() {
        let dir = tmp("first");
        let tls = load_or_create(&dir, LOCAL).unwrap();
        assert_eq!(tls.made, Made::NewCa);
        assert_eq!(tls.ca_path, dir.join("tls/ca.pem"));
        assert!(
            std::fs::read_to_string(&tls.ca_path)
                .unwrap()
                .contains("BEGIN CERTIFICATE")
        );
        #[cfg(unix)]
        for key in ["ca.key", "server.key"] {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.join("tls").join(key))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{key}");
        }
        assert_eq!(tls.names, vec!["127.0.0.1", "::1", "localhost"]);
    }

    #[test]
    fn a_later_run_reuses_both_certificates_unchanged() {
        let dir = tmp("reuse");
        load_or_create(&dir, LOCAL).unwrap();
        let ca = std::fs::read(dir.join("tls/ca.pem")).unwrap();
        let server = std::fs::read(dir.join("tls/server.pem")).unwrap();
        let again = load_or_create(&dir, LOCAL).unwrap();
        assert_eq!(again.made, Made::Reused);
        assert_eq!(std::fs::read(dir.join("tls/ca.pem")).unwrap(), ca);
        assert_eq!(std::fs::read(dir.join("tls/server.pem")).unwrap(), server);
    }

    #[test]
    fn another_listen_address_gets_a_new_server_certificate_from_the_same_ca() {
        let dir = tmp("names");
        load_or_create(&dir, LOCAL).unwrap();
        let ca = std::fs::read(dir.join("tls/ca.pem")).unwrap();
        let other: IpAddr = "10.1.2.3".parse().unwrap();
        let tls = load_or_create(&dir, other).unwrap();
        assert_eq!(tls.made, Made::NewServer);
        assert!(tls.names.contains(&"10.1.2.3".to_owned()));
        assert_eq!(std::fs::read(dir.join("tls/ca.pem")).unwrap(), ca);
    }

    #[test]
    fn a_server_certificate_near_expiry_is_made_anew() {
        let dir = tmp("expiry");
        load_or_create(&dir, LOCAL).unwrap();
        let later = SystemTime::now() + SERVER_VALIDITY - RENEW_BEFORE / 2;
        assert_eq!(
            load_or_create_at(&dir, LOCAL, later).unwrap().made,
            Made::NewServer
        );
    }

    #[test]
    fn a_missing_ca_key_makes_a_new_ca() {
        let dir = tmp("lost");
        load_or_create(&dir, LOCAL).unwrap();
        std::fs::remove_file(dir.join("tls/ca.key")).unwrap();
        assert_eq!(load_or_create(&dir, LOCAL).unwrap().made, Made::NewCa);
    }

    #[test]
    fn a_wildcard_listen_address_is_not_a_certificate_name() {
        assert_eq!(
            server_names("0.0.0.0".parse().unwrap()),
            vec!["127.0.0.1", "::1", "localhost"]
        );
    }

    /// A TLS client trusting only `ca_path` handshakes with `acceptor` as `name`; the ALPN
    /// protocol agreed on.
    async fn handshake(tls: &Tls, name: &str, alpn: &[&[u8]]) -> Result<Option<Vec<u8>>, String> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(&tls.ca_path).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let listener = tokio::net::TcpListener::bind((LOCAL, 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let acceptor = tls.acceptor.clone();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            acceptor.accept(tcp).await.map(|_| ())
        });
        let tcp = tokio::net::TcpStream::connect((LOCAL, port)).await.unwrap();
        let server_name =
            tokio_rustls::rustls::pki_types::ServerName::try_from(name.to_owned()).unwrap();
        let result = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(server_name, tcp)
            .await
            .map(|s| s.get_ref().1.alpn_protocol().map(<[u8]>::to_vec))
            .map_err(|e| e.to_string());
        let _ = server.await;
        result
    }

    #[tokio::test]
    async fn a_client_trusting_only_the_ca_accepts_the_server_under_every_local_name() {
        let tls = load_or_create(&tmp("trust"), LOCAL).unwrap();
        for name in ["127.0.0.1", "localhost", "::1"] {
            let alpn = handshake(&tls, name, &[b"h2", b"http/1.1"]).await.unwrap();
            assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]), "{name}");
        }
    }

    #[tokio::test]
    async fn mqtt_clients_handshake_with_aws_iots_alpn_or_none() {
        let tls = load_or_create(&tmp("mqtt"), LOCAL).unwrap();
        let alpn = handshake(&tls, "127.0.0.1", &[b"x-amzn-mqtt-ca"])
            .await
            .unwrap();
        assert_eq!(alpn.as_deref(), Some(&b"x-amzn-mqtt-ca"[..]));
        assert_eq!(handshake(&tls, "127.0.0.1", &[]).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_client_expecting_another_name_refuses_the_certificate() {
        let tls = load_or_create(&tmp("othername"), LOCAL).unwrap();
        let e = handshake(&tls, "example.com", &[]).await.unwrap_err();
        assert!(e.contains("certificate"), "{e}");
    }

    #[tokio::test]
    async fn a_certificate_from_another_state_directorys_ca_is_not_trusted() {
        let ours = load_or_create(&tmp("ours"), LOCAL).unwrap();
        let theirs = load_or_create(&tmp("theirs"), LOCAL).unwrap();
        let mixed = Tls {
            acceptor: theirs.acceptor.clone(),
            ..ours
        };
        let e = handshake(&mixed, "127.0.0.1", &[]).await.unwrap_err();
        assert!(e.contains("certificate"), "{e}");
    }
}
