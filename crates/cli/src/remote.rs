//! What every command that talks to a server shares: where the server is,
//! and errors told in words that say what to do.

use tusk_client::download::DownloadError;
use tusk_client::{Client, ClientError, UploadError};
use tusk_core::model::FileId;

/// Where the server is.
#[derive(clap::Args, Debug, Clone)]
pub struct ServerArgs {
    /// The server's address.
    #[arg(
        long,
        short = 's',
        env = "TUSK_SERVER",
        default_value = "http://127.0.0.1:8080",
        value_name = "URL",
        value_parser = parse_server
    )]
    pub server: String,

    /// The bearer token to send (from `tusk token create`); a server with
    /// tokens refuses requests without one. It goes only to the origin of
    /// `--server` (scheme, host and port), never to another.
    #[arg(long, env = "TUSK_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

fn parse_server(s: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(s)
        .map_err(|e| format!("not a URL ({e}); e.g. http://127.0.0.1:8080"))?;
    match url.scheme() {
        "http" => Ok(s.trim_end_matches('/').to_owned()),
        // The client is built without TLS, like the server.
        "https" => Err("https:// is not supported yet: use the server's http:// address".into()),
        _ => Err("the server's address starts with http://".into()),
    }
}

impl ServerArgs {
    pub fn client(&self) -> Client {
        self.client_of(&self.server)
    }

    /// A client of `server` (a download URL's). The token goes only to
    /// `--server` itself: another origin (scheme, host and port) gets
    /// requests without it. A redirect to another host or port drops it
    /// too (reqwest removes `Authorization` when a redirect changes either).
    pub fn client_of(&self, server: &str) -> Client {
        let token = self
            .token
            .as_deref()
            .filter(|_| same_origin(server, &self.server));
        Client::with_token(server, token)
    }
}

/// Asks the server for one file, without retrying: a wrong address or a
/// server that is not running is told at once, not after a minute of
/// retries meant for a connection lost midway.
pub async fn reachable(client: &Client) -> Result<(), String> {
    match client.list_files(None, 1, None).await {
        Ok(_) => Ok(()),
        Err(e) => Err(explain(&e, client.base())),
    }
}

/// A transient error in a few words, for "trying again" notes.
pub fn brief(e: &ClientError) -> String {
    match e {
        ClientError::Transport(t) => root_cause(t),
        ClientError::Refused {
            status, message, ..
        } => format!("{message} ({status})"),
        other => other.to_string(),
    }
}

/// A client error in words, with what to do about it.
pub fn explain(e: &ClientError, server: &str) -> String {
    match e {
        ClientError::Transport(t) if t.is_connect() || t.is_timeout() => format!(
            "cannot reach the server at {server}: {}. Is `tusk serve` running there? \
             Point --server (or TUSK_SERVER) at it.",
            root_cause(t)
        ),
        ClientError::Transport(t) => format!(
            "the connection to {server} failed: {}. Run the same command again to continue.",
            root_cause(t)
        ),
        ClientError::Refused {
            status,
            code,
            message,
            ..
        } => {
            let hint = match code.as_str() {
                "file_not_found" => " Check the id with `tusk ls`.",
                "file_too_large" => " The server's --max-file-size is lower than this file.",
                "unauthorized" => {
                    " Pass --token (or set TUSK_TOKEN) to a token from `tusk token create`."
                }
                "quota_exceeded" => " Delete files (`tusk rm`) or ask for a larger quota.",
                "insufficient_storage" => " The server's disk is full.",
                "not_found" | "method_not_allowed" => " Is --server the address of a tusk server?",
                _ if status.is_server_error() => {
                    " The server failed; its log says why. Run the same command again later."
                }
                _ => "",
            };
            format!("the server refused: {message} ({status}, {code}).{hint}")
        }
        ClientError::Io(io) => io.to_string(),
        ClientError::Protocol(p) => format!("unexpected answer from {server}: {p}"),
    }
}

pub fn explain_upload(e: &UploadError, server: &str) -> String {
    match e {
        UploadError::Client(c) => explain(c, server),
        UploadError::Changed => {
            "the file changed while it was being uploaded; run the same command again once it is \
             no longer written to"
                .into()
        }
    }
}

pub fn explain_download(e: &DownloadError, server: &str) -> String {
    match e {
        DownloadError::Client(c) => explain(c, server),
        DownloadError::Io(io) => io.to_string(),
        DownloadError::Mismatch(hash) => format!(
            "the bytes received do not match the file's hash ({hash}); the partial file was \
             removed. Run the same command again."
        ),
    }
}

/// The innermost cause of an HTTP error: "Connection refused" rather than
/// "error sending request for url (…)".
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// A file id from an id, a download URL or path (`…/files/{id}/{name}`).
pub fn file_id(arg: &str) -> Option<String> {
    let id = |s: &str| FileId::parse(&s.to_ascii_lowercase()).map(|id| id.as_str().to_owned());
    if let Some(id) = id(arg) {
        return Some(id);
    }
    let path = match reqwest::Url::parse(arg) {
        Ok(url) => url.path().to_owned(),
        Err(_) => arg.to_owned(),
    };
    let mut segments = path.split('/').skip_while(|s| *s != "files").skip(1);
    segments.next().and_then(id)
}

/// Whether two URLs have the same origin: scheme, host and port (the
/// scheme's default when none is written).
pub fn same_origin(a: &str, b: &str) -> bool {
    match (reqwest::Url::parse(a), reqwest::Url::parse(b)) {
        (Ok(a), Ok(b)) => a.origin().is_tuple() && a.origin() == b.origin(),
        _ => false,
    }
}

/// The server a full URL points at (`http://host:port`), if it is one.
pub fn origin(arg: &str) -> Option<String> {
    let url = reqwest::Url::parse(arg).ok()?;
    matches!(url.scheme(), "http" | "https").then(|| url.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_ids_come_from_ids_urls_and_paths() {
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(file_id(id).as_deref(), Some(id));
        assert_eq!(file_id(&id.to_uppercase()).as_deref(), Some(id));
        let url = format!("http://127.0.0.1:8080/files/{id}/a%20b.txt");
        assert_eq!(file_id(&url).as_deref(), Some(id));
        assert_eq!(origin(&url).as_deref(), Some("http://127.0.0.1:8080"));
        assert_eq!(file_id(&format!("/files/{id}")).as_deref(), Some(id));
        assert_eq!(file_id("nope"), None);
        assert_eq!(file_id("http://x/files/123/a"), None);
        assert_eq!(origin(id), None);
    }

    #[test]
    fn origins_are_scheme_host_and_port() {
        let server = "http://127.0.0.1:8080";
        assert!(same_origin("http://127.0.0.1:8080/files/x", server));
        assert!(same_origin("HTTP://127.0.0.1:8080", server));
        assert!(same_origin("http://a.example", "http://A.example:80/"));
        for other in [
            "http://127.0.0.1:8081",
            "https://127.0.0.1:8080",
            "http://localhost:8080",
            "http://127.0.0.1:8080.evil.example",
            "http://evil.example/http://127.0.0.1:8080",
            "not a url",
        ] {
            assert!(!same_origin(other, server), "{other}");
        }
    }
}
