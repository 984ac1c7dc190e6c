//! The web UI: the files of web/dist embedded in the binary by build.rs,
//! served at `/` and at every path outside the API. An unknown path gets
//! index.html (the UI routes in the page); API paths keep their 404s.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::Problem;

/// One embedded file.
pub(crate) struct Asset {
    /// Its URL path, from `/`.
    path: &'static str,
    content_type: &'static str,
    /// A quoted hash of `body`.
    etag: &'static str,
    body: &'static [u8],
    /// `body` gzipped at build time, when scripts/web made it.
    gzip: Option<&'static [u8]>,
}

include!(concat!(env!("OUT_DIR"), "/ui_assets.rs"));

/// What the UI's pages may load: only the node itself.
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'";

/// Whether `path` belongs to the API, whose unknown routes stay 404s.
fn is_api(path: &str) -> bool {
    ["/api", "/healthz", "/metrics"]
        .iter()
        .any(|p| path == *p || path.starts_with(&format!("{p}/")))
}

fn find(path: &str) -> Option<&'static Asset> {
    ASSETS
        .binary_search_by(|a| a.path.cmp(path))
        .ok()
        .map(|i| &ASSETS[i])
}

/// Whether the client takes gzip (`Accept-Encoding`, with `q=0` refusing).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
}

/// Whether `If-None-Match` names `etag`.
fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| {
            let t = t.trim();
            t == "*" || t.trim_start_matches("W/") == etag
        })
}

/// The router's fallback: a file of the UI, index.html for other paths
/// outside the API, and the API's 404 inside it.
pub(crate) async fn serve(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path();
    if is_api(path) {
        return crate::handlers::not_found().await.into_response();
    }
    if method != Method::GET && method != Method::HEAD {
        let mut response = Problem::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} {path}: the web UI's files are read with GET"),
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let asset = match find(path) {
        Some(asset) => asset,
        // A hashed file that is not there is a stale page's: say so
        // rather than answer HTML where a script is expected.
        None if path.starts_with("/assets/") => {
            return Problem::new(
                StatusCode::NOT_FOUND,
                format!("{path} is not a file of this node's web UI"),
            )
            .into_response();
        }
        None => match find("/index.html") {
            Some(index) => index,
            None => return crate::handlers::not_found().await.into_response(),
        },
    };
    respond(asset, &method, &headers)
}

fn respond(asset: &Asset, method: &Method, headers: &HeaderMap) -> Response {
    let immutable = asset.path.starts_with("/assets/");
    let cache = if immutable {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut builder = Response::builder()
        .header(header::CONTENT_TYPE, asset.content_type)
        .header(header::ETAG, asset.etag)
        .header(header::CACHE_CONTROL, cache)
        .header(header::CONTENT_SECURITY_POLICY, CSP)
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::REFERRER_POLICY, "same-origin")
        .header(header::VARY, "Accept-Encoding");
    if not_modified(headers, asset.etag) {
        return builder
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .unwrap_or_else(|e| Problem::internal(&e).into_response());
    }
    let body = match asset.gzip {
        Some(gzip) if accepts_gzip(headers) => {
            builder = builder.header(header::CONTENT_ENCODING, "gzip");
            gzip
        }
        _ => asset.body,
    };
    builder = builder.header(header::CONTENT_LENGTH, body.len());
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        Body::from(body)
    };
    builder
        .status(StatusCode::OK)
        .body(body)
        .unwrap_or_else(|e| Problem::internal(&e).into_response())
}

/// Whether the binary carries a built UI (web/dist was there at build
/// time) rather than the page saying how to build it.
pub fn built() -> bool {
    BUILT
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn gzip_is_taken_unless_refused() {
        assert!(accepts_gzip(&headers(&[(
            "accept-encoding",
            "gzip, deflate, br"
        )])));
        assert!(accepts_gzip(&headers(&[(
            "accept-encoding",
            "br;q=1, GZIP;q=0.5"
        )])));
        assert!(accepts_gzip(&headers(&[("accept-encoding", "*")])));
        assert!(!accepts_gzip(&headers(&[("accept-encoding", "gzip;q=0")])));
        assert!(!accepts_gzip(&headers(&[("accept-encoding", "br")])));
        assert!(!accepts_gzip(&headers(&[])));
    }

    #[test]
    fn api_paths_are_told_apart() {
        for path in [
            "/api",
            "/api/",
            "/api/v1/nothing",
            "/healthz",
            "/metrics",
            "/metrics/x",
        ] {
            assert!(is_api(path), "{path}");
        }
        for path in ["/", "/explorer", "/apis", "/healthzz", "/assets/index.js"] {
            assert!(!is_api(path), "{path}");
        }
    }

    #[test]
    fn etags_match_plain_weak_and_lists() {
        let etag = "\"0123\"";
        assert!(not_modified(
            &headers(&[("if-none-match", "\"0123\"")]),
            etag
        ));
        assert!(not_modified(
            &headers(&[("if-none-match", "W/\"0123\"")]),
            etag
        ));
        assert!(not_modified(
            &headers(&[("if-none-match", "\"x\", \"0123\"")]),
            etag
        ));
        assert!(!not_modified(&headers(&[("if-none-match", "\"x\"")]), etag));
    }

    #[test]
    fn the_assets_are_sorted_and_have_an_index() {
        assert!(ASSETS.windows(2).all(|w| w[0].path < w[1].path));
        assert!(find("/index.html").is_some());
    }
}
