//! Where blobs live: a local directory, or an S3-compatible bucket.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::BlobError;

/// Where a [`crate::BlobStore`] keeps its objects.
///
/// Parse one from a string with [`str::parse`]:
///
/// - `file:///var/lib/openledger/blobs` or a plain path (`./blobs`, `/data/blobs`):
///   a local directory (created if missing);
/// - `s3://<bucket>?endpoint=<url>&region=<r>&access_key=<id>&secret_key=<secret>&allow_http=true`:
///   an S3-compatible bucket (needs the `s3` feature). Every query parameter is
///   optional; values are percent-decoded. Missing credentials and region come from
///   the usual `AWS_*` environment variables (`AWS_ACCESS_KEY_ID`,
///   `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT`, ...). With an
///   `endpoint` (MinIO, R2, Ceph, ...) requests are path-style.
#[derive(Clone, PartialEq, Eq)]
pub enum BlobConfig {
    Local {
        dir: PathBuf,
    },
    S3 {
        bucket: String,
        endpoint: Option<String>,
        region: Option<String>,
        access_key: Option<String>,
        secret_key: Option<String>,
        /// Allow a plain `http://` endpoint (local MinIO); refused otherwise.
        allow_http: bool,
    },
}

impl BlobConfig {
    /// A local directory.
    pub fn local(dir: impl Into<PathBuf>) -> Self {
        BlobConfig::Local { dir: dir.into() }
    }
}

/// Never prints the secret key.
impl fmt::Debug for BlobConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlobConfig::Local { dir } => f.debug_struct("Local").field("dir", dir).finish(),
            BlobConfig::S3 { bucket, endpoint, region, access_key, secret_key, allow_http } => f
                .debug_struct("S3")
                .field("bucket", bucket)
                .field("endpoint", endpoint)
                .field("region", region)
                .field("access_key", access_key)
                .field("secret_key", &secret_key.as_ref().map(|_| "<redacted>"))
                .field("allow_http", allow_http)
                .finish(),
        }
    }
}

fn percent_decode(s: &str) -> Result<String, BlobError> {
    let bad = || BlobError::Config(format!("bad percent-encoding in {s:?}"));
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).ok_or_else(bad)?;
                let hex = std::str::from_utf8(hex).map_err(|_| bad())?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

impl FromStr for BlobConfig {
    type Err = BlobError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() {
            return Err(BlobError::Config("empty blob store location".into()));
        }
        if let Some(rest) = s.strip_prefix("s3://") {
            let (bucket, query) = rest.split_once('?').unwrap_or((rest, ""));
            let bucket = bucket.trim_end_matches('/');
            if bucket.is_empty() || bucket.contains('/') {
                return Err(BlobError::Config(format!(
                    "bad S3 location {s:?}: expected s3://<bucket>?endpoint=...&region=...&access_key=...&secret_key=..."
                )));
            }
            let (mut endpoint, mut region, mut access_key, mut secret_key, mut allow_http) =
                (None, None, None, None, false);
            for pair in query.split('&').filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                let v = percent_decode(v)?;
                match k {
                    "endpoint" => endpoint = Some(v),
                    "region" => region = Some(v),
                    "access_key" => access_key = Some(v),
                    "secret_key" => secret_key = Some(v),
                    "allow_http" => {
                        allow_http = match v.as_str() {
                            "" | "true" | "1" => true,
                            "false" | "0" => false,
                            _ => return Err(BlobError::Config(format!("allow_http must be true or false, not {v:?}"))),
                        }
                    }
                    _ => {
                        return Err(BlobError::Config(format!(
                            "unknown S3 parameter {k:?} (known: endpoint, region, access_key, secret_key, allow_http)"
                        )));
                    }
                }
            }
            return Ok(BlobConfig::S3 {
                bucket: bucket.to_owned(),
                endpoint,
                region,
                access_key,
                secret_key,
                allow_http,
            });
        }
        if let Some(rest) = s.strip_prefix("file://") {
            // file:///abs/path (empty host) or file://localhost/abs/path.
            let path = rest.strip_prefix("localhost").unwrap_or(rest);
            if !path.starts_with('/') {
                return Err(BlobError::Config(format!("bad file URL {s:?}: expected file:///absolute/path")));
            }
            return Ok(BlobConfig::Local { dir: PathBuf::from(percent_decode(path)?) });
        }
        if let Some((scheme, _)) = s.split_once("://") {
            return Err(BlobError::Config(format!(
                "unsupported blob store scheme {scheme:?} (use a path, file:// or s3://)"
            )));
        }
        Ok(BlobConfig::Local { dir: PathBuf::from(s) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_locations() {
        assert_eq!("./blobs".parse::<BlobConfig>().unwrap(), BlobConfig::local("./blobs"));
        assert_eq!("/data/b".parse::<BlobConfig>().unwrap(), BlobConfig::local("/data/b"));
        assert_eq!("file:///data/my%20blobs".parse::<BlobConfig>().unwrap(), BlobConfig::local("/data/my blobs"));
        assert_eq!("file://localhost/x".parse::<BlobConfig>().unwrap(), BlobConfig::local("/x"));
        assert!("file://relative".parse::<BlobConfig>().is_err());
        assert!("gs://bucket".parse::<BlobConfig>().is_err());
        assert!("".parse::<BlobConfig>().is_err());

        let c: BlobConfig = "s3://ledger-blobs?endpoint=http://127.0.0.1:9000&region=eu-west-1&access_key=AK&secret_key=s%2Fk%3D&allow_http=true"
            .parse()
            .unwrap();
        assert_eq!(
            c,
            BlobConfig::S3 {
                bucket: "ledger-blobs".into(),
                endpoint: Some("http://127.0.0.1:9000".into()),
                region: Some("eu-west-1".into()),
                access_key: Some("AK".into()),
                secret_key: Some("s/k=".into()),
                allow_http: true,
            }
        );
        assert!(!format!("{c:?}").contains("s/k="), "the secret is never printed");
        assert_eq!(
            "s3://b".parse::<BlobConfig>().unwrap(),
            BlobConfig::S3 {
                bucket: "b".into(),
                endpoint: None,
                region: None,
                access_key: None,
                secret_key: None,
                allow_http: false
            }
        );
        assert!("s3://".parse::<BlobConfig>().is_err());
        assert!("s3://b/prefix".parse::<BlobConfig>().is_err());
        assert!("s3://b?colour=red".parse::<BlobConfig>().is_err());
        assert!("s3://b?allow_http=maybe".parse::<BlobConfig>().is_err());
    }
}
