//! A TCP relay between a client and the server on loopback that counts the
//! bytes going each way and can slow one way down, so a test can see what a
//! client really sent or fetched, and stop it midway. Given several
//! servers, it spreads connections over them in turn and skips one that
//! refuses, as a load balancer in front of several nodes does.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Bytes one way, watchable.
#[derive(Clone)]
pub struct Counter {
    total: Arc<AtomicU64>,
    tx: Arc<watch::Sender<u64>>,
}

impl Counter {
    fn new() -> Counter {
        Counter {
            total: Arc::new(AtomicU64::new(0)),
            tx: Arc::new(watch::channel(0).0),
        }
    }

    fn add(&self, n: u64) {
        let now = self.total.fetch_add(n, Ordering::SeqCst) + n;
        self.tx.send_replace(now);
    }

    pub fn get(&self) -> u64 {
        self.total.load(Ordering::SeqCst)
    }

    /// Returns once at least `n` bytes went through.
    pub async fn reached(&self, n: u64) {
        let mut rx = self.tx.subscribe();
        rx.wait_for(|v| *v >= n).await.unwrap();
    }
}

/// A running relay.
pub struct Proxy {
    pub base: String,
    /// Client to server.
    pub up: Counter,
    /// Server to client.
    pub down: Counter,
    task: tokio::task::JoinHandle<()>,
}

/// Which way to slow down, and to how many bytes per second.
#[derive(Clone, Copy)]
pub enum Throttle {
    None,
    Up(u64),
    Down(u64),
}

impl Proxy {
    /// Relays to `upstream` (`http://127.0.0.1:PORT`).
    pub async fn start(upstream: &str, throttle: Throttle) -> Proxy {
        Self::balance(&[upstream], throttle).await
    }

    /// Relays each new connection to the next of `upstreams` in turn, or to
    /// the one after it if that one refuses the connection.
    pub async fn balance(upstreams: &[&str], throttle: Throttle) -> Proxy {
        let targets: Vec<String> = upstreams
            .iter()
            .map(|u| u.trim_start_matches("http://").to_owned())
            .collect();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (up, down) = (Counter::new(), Counter::new());
        let (u, d) = (up.clone(), down.clone());
        let task = tokio::spawn(async move {
            let mut turn = 0;
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let mut server = None;
                for _ in 0..targets.len() {
                    let target = &targets[turn % targets.len()];
                    turn += 1;
                    if let Ok(s) = TcpStream::connect(target).await {
                        server = Some(s);
                        break;
                    }
                }
                let Some(server) = server else {
                    continue;
                };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                let (up_rate, down_rate) = match throttle {
                    Throttle::None => (None, None),
                    Throttle::Up(r) => (Some(r), None),
                    Throttle::Down(r) => (None, Some(r)),
                };
                tokio::spawn(relay(cr, sw, u.clone(), up_rate));
                tokio::spawn(relay(sr, cw, d.clone(), down_rate));
            }
        });
        Proxy {
            base,
            up,
            down,
            task,
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    count: Counter,
    rate: Option<u64>,
) {
    let started = Instant::now();
    let mut moved = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(rate) = rate {
            // Pace to `rate`: this is the bandwidth being simulated, not a
            // wait for anything to become ready.
            let due = std::time::Duration::from_secs_f64(moved as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
        moved += n as u64;
        count.add(n as u64);
    }
    let _ = to.shutdown().await;
}
