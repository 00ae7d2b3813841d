//! The relay in front of the soak's server: its address stays while the
//! server behind it is killed and started again, it counts what goes
//! through, and it can hold an answer back from its client.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{KIB, Meter};

/// A TCP relay in front of the server whose address stays while the server
/// behind it changes, counting bytes up and answers down.
pub struct Relay {
    pub base: String,
    upstream: Arc<std::sync::Mutex<String>>,
    /// Whether the next answer is to be held back.
    hold: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    pub async fn start(upstream: &str, meter: Meter) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let upstream = Arc::new(std::sync::Mutex::new(host(upstream)));
        let hold = Arc::new(AtomicBool::new(false));
        let (target, held) = (upstream.clone(), hold.clone());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let to = target.lock().unwrap().clone();
                // A server that is down: the client sees its connection
                // closed, as it would without a relay.
                let Ok(server) = TcpStream::connect(&to).await else {
                    continue;
                };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(pipe(cr, sw, meter.clone(), None));
                tokio::spawn(pipe(sr, cw, meter.clone(), Some(held.clone())));
            }
        });
        Relay {
            base,
            upstream,
            hold,
            task,
        }
    }

    /// Holds the next answer back from its client (closing its
    /// connection instead), or no longer.
    pub fn hold_next_answer(&self, hold: bool) {
        self.hold.store(hold, Ordering::SeqCst);
    }

    /// Sends new connections to `upstream` from now on.
    pub fn retarget(&self, upstream: &str) {
        *self.upstream.lock().unwrap() = host(upstream);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn host(base: &str) -> String {
    base.trim_start_matches("http://").to_owned()
}

/// Copies one way until either side closes; counts bytes (up), or status
/// lines (down, given the flag that holds the next answer back).
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    meter: Meter,
    hold: Option<Arc<AtomicBool>>,
) {
    const STATUS: &[u8] = b"HTTP/1.1 ";
    let mut buf = vec![0u8; 64 * KIB];
    let mut tail: Vec<u8> = Vec::new();
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(hold) = &hold {
            // A status line may straddle two reads: keep the end of this one.
            tail.extend_from_slice(&buf[..n]);
            let answers = tail.windows(STATUS.len()).filter(|w| *w == STATUS).count();
            tail.drain(..tail.len().saturating_sub(STATUS.len() - 1));
            if answers > 0 && hold.swap(false, Ordering::SeqCst) {
                meter.send_modify(|t| t.lost += 1);
                break;
            }
            meter.send_modify(|t| t.answers += answers as u64);
        } else {
            meter.send_modify(|t| t.up += n as u64);
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}
