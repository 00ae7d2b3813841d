//! PATCH bodies: their data as the core reads it, and their trailers.
//!
//! With the `checksum-trailer` extension, `Upload-Checksum` arrives as an
//! HTTP trailer after the last byte of a chunked body. The body's data
//! frames go to the core as a byte stream; a trailers frame is kept aside
//! in a [`Trailers`] slot, read once the stream has ended.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::HeaderMap;
use http_body_util::BodyExt;
use tusk_core::store::ByteStream;

/// Where the trailers of a body land once it has been read to its end.
#[derive(Clone, Default)]
pub struct Trailers(Arc<Mutex<Option<HeaderMap>>>);

impl Trailers {
    /// The trailers received, if any (empty before the body ended).
    pub fn take(&self) -> Option<HeaderMap> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// The data of `body` as a stream; its trailers go to the returned slot.
pub fn split(body: Body) -> (ByteStream, Trailers) {
    let trailers = Trailers::default();
    let slot = trailers.clone();
    let data = futures::stream::unfold(Some(body), move |body| {
        let slot = slot.clone();
        async move {
            let mut body = body?;
            loop {
                match body.frame().await? {
                    Err(e) => return Some((Err(std::io::Error::other(e)), None)),
                    Ok(frame) => match frame.into_data() {
                        Ok(data) => return Some((Ok(data), Some(body))),
                        Err(frame) => {
                            if let Ok(t) = frame.into_trailers() {
                                *slot.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(t);
                            }
                        }
                    },
                }
            }
        }
    });
    (Box::pin(data), trailers)
}
