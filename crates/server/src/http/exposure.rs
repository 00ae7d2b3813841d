//! Who may reach the server from where: the `Host` a request names, the
//! web page (`Origin`) it comes from, and the CORS grants pages of other
//! origins get.
//!
//! A server without tokens ("open": no token was ever created) lets in
//! every request, so it must only be reached on purpose:
//!
//! - its `Host` must be a loopback name or address (`localhost`,
//!   `*.localhost`, `127.0.0.0/8`, `[::1]`, any port), the host of
//!   `--public-url`, or — with `--public-uploads` — an IP address (any
//!   host at all when `--public-url` is not set); otherwise the request is
//!   refused with 421 `host_not_allowed`. A web page can point a name of its
//!   own at 127.0.0.1 (DNS rebinding), but it cannot make the browser send
//!   a loopback name or the server's own;
//! - a request from a web page (it carries `Origin`) must come from the
//!   server's own origin, the one of `--public-url` or one of
//!   `--cors-origin`; otherwise it is refused with 403
//!   `origin_not_allowed`. This stops other sites' pages from posting
//!   forms to it, which browsers send without asking first;
//! - pages of other origins get CORS grants only when they are listed with
//!   `--cors-origin`.
//!
//! Once tokens exist, every request needs a bearer token, which a browser
//! never adds by itself (no cookies are involved): any `Host` and `Origin`
//! is let in, and pages of the listed origins — or of any origin when
//! none is listed — get CORS grants. The decision is made per request:
//! the first token created while the server runs changes it at once.
//!
//! `/healthz` and `/readyz` answer whatever the `Host`, for load balancers.

use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::header::{HOST, ORIGIN};
use axum::http::uri::Authority;
use axum::http::{HeaderName, HeaderValue, Method, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};

use super::AppState;
use super::error::ApiError;

/// Where the server may be reached from, as configured.
#[derive(Clone, Debug, Default)]
pub struct Exposure {
    /// Origins whose pages may call the server (CORS); empty: none while
    /// the server is open, any once it has tokens.
    pub cors_origins: Vec<String>,
    /// The URL clients reach the server at (`--public-url`), when set.
    pub public_url: Option<String>,
    /// Served without tokens beyond loopback on purpose (`--public-uploads`).
    pub public_uploads: bool,
}

impl Exposure {
    /// Whether an open server answers requests naming `host` (a `Host`
    /// header: a name or address, maybe with a port).
    pub fn host_allowed(&self, host: &str) -> bool {
        let Some(name) = Authority::from_str(host).ok().map(|a| host_name(&a)) else {
            return false;
        };
        if is_loopback(&name) {
            return true;
        }
        let public = self.public_url.as_deref().and_then(url_authority);
        if public.as_ref().is_some_and(|p| host_name(p) == name) {
            return true;
        }
        self.public_uploads && (public.is_none() || ip(&name).is_some())
    }

    /// Whether an open server answers a page of `origin` whose request
    /// named `host`: the server's own pages (the origin's host and port are
    /// the ones the request names; its scheme cannot be told from the
    /// request, and a TLS proxy in front may have added it), those at
    /// `--public-url`, and those of `--cors-origin`.
    pub fn origin_allowed(&self, origin: &str, host: Option<&str>) -> bool {
        if self.cors_origins.iter().any(|o| o == origin) {
            return true;
        }
        let Some(page) = origin_parts(origin) else {
            return false;
        };
        let same = |authority: &Authority, scheme: &str| {
            host_name(authority) == page.1
                && authority.port_u16().unwrap_or(default_port(scheme)) == page.2
        };
        if let Some(host) = host.and_then(|h| Authority::from_str(h).ok())
            && same(&host, &page.0)
        {
            return true;
        }
        self.public_url.as_deref().is_some_and(|url| {
            let Ok(uri) = Uri::from_str(url) else {
                return false;
            };
            let scheme = uri.scheme_str().unwrap_or("http");
            scheme == page.0 && uri.authority().is_some_and(|a| same(a, scheme))
        })
    }
}

/// A host name in lower case, without a port, brackets or a final dot.
fn host_name(authority: &Authority) -> String {
    authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

fn ip(name: &str) -> Option<IpAddr> {
    name.parse().ok()
}

/// `localhost`, a name under `.localhost` (RFC 6761: always loopback),
/// `127.0.0.0/8` or `::1` (also as `::ffff:127.x.y.z`).
fn is_loopback(name: &str) -> bool {
    name == "localhost"
        || name.ends_with(".localhost")
        || ip(name).is_some_and(|ip| ip.to_canonical().is_loopback())
}

fn url_authority(url: &str) -> Option<Authority> {
    Uri::from_str(url).ok()?.authority().cloned()
}

fn default_port(scheme: &str) -> u16 {
    if scheme == "https" { 443 } else { 80 }
}

/// An origin's scheme, host name and port (`https://a.example` →
/// `("https", "a.example", 443)`).
fn origin_parts(origin: &str) -> Option<(String, String, u16)> {
    let uri = Uri::from_str(origin).ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let authority = uri.authority()?;
    let port = authority.port_u16().unwrap_or(default_port(&scheme));
    Some((scheme, host_name(authority), port))
}

/// The host a request names: the authority of an absolute-form target
/// (and of HTTP/2's `:authority`), else its `Host` header.
fn request_host(request: &Request) -> Option<&str> {
    match request.uri().authority() {
        Some(authority) => Some(authority.as_str()),
        None => request.headers().get(HOST)?.to_str().ok(),
    }
}

/// Refuses requests an open server must not answer (see the module doc).
pub async fn guard(State(app): State<AppState>, request: Request, next: Next) -> Response {
    if matches!(request.uri().path(), "/healthz" | "/readyz") {
        return next.run(request).await;
    }
    match app.service.is_open().await {
        Ok(false) => return next.run(request).await,
        Ok(true) => {}
        Err(e) => return ApiError::from(e).into_response(),
    }
    let exposure = &app.exposure;
    let host = match request.headers().get(HOST).map(HeaderValue::to_str) {
        Some(Err(_)) => return ApiError::HostNotAllowed("?".into()).into_response(),
        _ => request_host(&request),
    };
    if let Some(host) = host
        && !exposure.host_allowed(host)
    {
        return ApiError::HostNotAllowed(host.to_owned()).into_response();
    }
    if let Some(origin) = request.headers().get(ORIGIN) {
        let origin = origin.to_str().unwrap_or("?");
        if !exposure.origin_allowed(origin, host) {
            return ApiError::OriginNotAllowed(origin.to_owned()).into_response();
        }
    }
    next.run(request).await
}

/// Response headers a page on another origin may read: the tus ones and
/// those of downloads.
const EXPOSED: [&str; 16] = [
    "location",
    "upload-offset",
    "upload-length",
    "upload-metadata",
    "upload-expires",
    "upload-concat",
    "upload-defer-length",
    "tus-resumable",
    "tus-version",
    "tus-extension",
    "tus-max-size",
    "tus-checksum-algorithm",
    "content-range",
    "content-disposition",
    "accept-ranges",
    "etag",
];

/// CORS for pages hosted elsewhere (tus clients usually are): preflights
/// are answered, any request header may be sent, and every tus header can
/// be read. Which origins are granted is decided per request (see the
/// module doc). No credentials (cookies) are involved: a bearer token
/// travels in `Authorization`, which CORS allows without them.
pub fn cors(app: &AppState) -> CorsLayer {
    let listed: Arc<[HeaderValue]> = app
        .exposure
        .cors_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    let service = app.service.clone();
    let allow_origin = AllowOrigin::async_predicate(move |origin: HeaderValue, _| {
        let (listed, service) = (listed.clone(), service.clone());
        async move {
            if !listed.is_empty() {
                return listed.contains(&origin);
            }
            matches!(service.is_open().await, Ok(false))
        }
    });
    CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods([
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers(AllowHeaders::mirror_request())
        .expose_headers(EXPOSED.map(HeaderName::from_static))
        .max_age(Duration::from_secs(24 * 3600))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exposure(public_url: Option<&str>, public_uploads: bool) -> Exposure {
        Exposure {
            cors_origins: vec!["https://app.example".into()],
            public_url: public_url.map(str::to_owned),
            public_uploads,
        }
    }

    #[test]
    fn loopback_hosts() {
        let e = exposure(None, false);
        for host in [
            "localhost",
            "localhost:8080",
            "LOCALHOST.:8080",
            "tusk.localhost:1",
            "127.0.0.1:8080",
            "127.1.2.3",
            "[::1]:8080",
            "[::ffff:127.0.0.1]:80",
        ] {
            assert!(e.host_allowed(host), "{host}");
        }
        for host in [
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
            "10.0.0.1:8080",
            "[::2]",
            "",
            "a b",
        ] {
            assert!(!e.host_allowed(host), "{host}");
        }
    }

    #[test]
    fn public_hosts() {
        let e = exposure(Some("https://Files.Example.com/tusk"), false);
        assert!(e.host_allowed("files.example.com"));
        assert!(e.host_allowed("files.example.com:443"));
        assert!(!e.host_allowed("evil.example"));
        assert!(!e.host_allowed("192.168.1.5:8080"));
        // Open on purpose: any host unless the public URL names one.
        assert!(exposure(None, true).host_allowed("evil.example"));
        let e = exposure(Some("http://files.lan:8080"), true);
        assert!(e.host_allowed("192.168.1.5:8080"));
        assert!(!e.host_allowed("evil.example"));
    }

    #[test]
    fn origins() {
        let e = exposure(Some("https://files.example.com"), false);
        let host = Some("127.0.0.1:8080");
        assert!(e.origin_allowed("http://127.0.0.1:8080", host));
        assert!(e.origin_allowed("https://app.example", host));
        assert!(e.origin_allowed("https://files.example.com", host));
        assert!(e.origin_allowed("http://localhost", Some("localhost:80")));
        assert!(e.origin_allowed("https://a.example", Some("a.example")));
        for bad in [
            "http://127.0.0.1:8081",
            "http://localhost:8080",
            "http://files.example.com",
            "https://evil.example",
            "null",
        ] {
            assert!(!e.origin_allowed(bad, host), "{bad}");
        }
        assert!(!e.origin_allowed("http://127.0.0.1:8080", None));
    }
}
