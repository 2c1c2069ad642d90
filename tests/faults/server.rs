//! Raw TCP fakes for faults a well-behaved HTTP mock cannot produce: a refused connection, a
//! server that never answers, a body trickled byte by byte or cut short, an answer too large;
//! and a TCP proxy in front of a real server that can refuse, stall or cut the connection.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One way for a server to misbehave, for every request it gets.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Nothing listens on the port.
    Refused,
    /// The connection is accepted and the request read, but no answer ever comes.
    Stall,
    /// A 200 whose body (this one) comes one byte every 200 ms.
    SlowBody(Vec<u8>),
    /// A complete answer.
    Answer {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// A 200 that announces this body's length but sends only its first half, then closes.
    Truncated(Vec<u8>),
    /// A 200 of this body with no `Content-Length`, ended by closing the connection.
    Unsized(Vec<u8>),
}

impl Fault {
    /// A complete answer with a content type.
    pub fn answer(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Fault {
        Fault::Answer {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.into(),
        }
    }

    /// The same answer with one more header.
    pub fn with_header(self, name: &str, value: &str) -> Fault {
        match self {
            Fault::Answer {
                status,
                mut headers,
                body,
            } => {
                headers.push((name.into(), value.into()));
                Fault::Answer { status, headers, body }
            }
            other => other,
        }
    }
}

/// A request as the server received it.
#[derive(Debug, Clone)]
pub struct Received {
    /// `GET`, `PATCH`, …
    pub method: String,
    /// The request target (path and query).
    pub target: String,
    /// Header lines, lower-case names.
    pub headers: Vec<(String, String)>,
}

/// A server on 127.0.0.1 that answers every request with one [`Fault`].
pub struct FaultServer {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
}

impl FaultServer {
    /// Starts serving `fault` (for [`Fault::Refused`]: a port nothing listens on).
    pub async fn start(fault: Fault) -> FaultServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        if matches!(fault, Fault::Refused) {
            // Closing the listener frees the port; connecting to it is refused from then on.
            drop(listener);
        } else {
            let log = received.clone();
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let fault = fault.clone();
                    let log = log.clone();
                    tokio::spawn(async move { serve(stream, fault, log).await });
                }
            });
        }
        FaultServer { addr, received }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

/// Reads one request head (and its body, by `Content-Length`).
async fn read_request(stream: &mut TcpStream) -> Option<Received> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 || buf.len() > 1 << 20 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let target = first.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut have = buf.len() - head_end - 4;
    while have < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        have += n;
    }
    Some(Received {
        method,
        target,
        headers,
    })
}

fn head(status: u16, headers: &[(String, String)], length: Option<usize>) -> Vec<u8> {
    let mut text = format!("HTTP/1.1 {status} Fault\r\nConnection: close\r\n");
    for (n, v) in headers {
        text.push_str(&format!("{n}: {v}\r\n"));
    }
    if let Some(length) = length {
        text.push_str(&format!("Content-Length: {length}\r\n"));
    }
    text.push_str("\r\n");
    text.into_bytes()
}

async fn serve(mut stream: TcpStream, fault: Fault, log: Arc<Mutex<Vec<Received>>>) {
    let Some(request) = read_request(&mut stream).await else {
        return;
    };
    log.lock().unwrap().push(request);
    let json = vec![("Content-Type".to_string(), "application/json".to_string())];
    match fault {
        Fault::Refused => {}
        Fault::Stall => tokio::time::sleep(Duration::from_secs(600)).await,
        Fault::SlowBody(body) => {
            if stream.write_all(&head(200, &json, Some(body.len()))).await.is_err() {
                return;
            }
            for byte in body {
                if stream.write_all(&[byte]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        Fault::Answer { status, headers, body } => {
            let _ = stream.write_all(&head(status, &headers, Some(body.len()))).await;
            let _ = stream.write_all(&body).await;
        }
        Fault::Truncated(body) => {
            let _ = stream.write_all(&head(200, &json, Some(body.len()))).await;
            let _ = stream.write_all(&body[..body.len() / 2]).await;
        }
        Fault::Unsized(body) => {
            let _ = stream.write_all(&head(200, &json, None)).await;
            let _ = stream.write_all(&body).await;
        }
    }
    let _ = stream.shutdown().await;
}

/// What a [`FaultProxy`] does with the connections it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyMode {
    /// Forward both ways.
    Pass,
    /// Accept, read, never forward or answer.
    Stall,
    /// Forward the request, then pass on only the first `n` bytes of the answer and close.
    CutHead(usize),
    /// Forward the request, then pass on the answer's head and the first `n` bytes of its body,
    /// and close.
    CutBody(usize),
}

/// A TCP proxy on 127.0.0.1 in front of a real server (Prometheus, Unleash): faults reach only
/// the test that owns the proxy, never the other tests sharing the server.
pub struct FaultProxy {
    addr: SocketAddr,
}

impl FaultProxy {
    /// A proxy to `upstream` (`host:port`) in `mode`.
    pub async fn start(upstream: &str, mode: ProxyMode) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let upstream = upstream.to_string();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                tokio::spawn(async move { relay(client, &upstream, mode).await });
            }
        });
        FaultProxy { addr }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

async fn relay(mut client: TcpStream, upstream: &str, mode: ProxyMode) {
    if mode == ProxyMode::Stall {
        let mut sink = [0u8; 4096];
        while matches!(client.read(&mut sink).await, Ok(n) if n > 0) {}
        return;
    }
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    match mode {
        ProxyMode::Pass | ProxyMode::Stall => {
            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
        }
        ProxyMode::CutHead(_) | ProxyMode::CutBody(_) => {
            let (mut client_read, mut client_write) = client.split();
            let (mut server_read, mut server_write) = server.split();
            let upstream_copy = tokio::io::copy(&mut client_read, &mut server_write);
            let downstream = async {
                // Read the whole answer first (the server closes or the head says its length is
                // small), then pass on the part the mode allows.
                let mut answer = Vec::new();
                let mut buf = [0u8; 4096];
                let limit = loop {
                    let head_end = answer.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
                    match (mode, head_end) {
                        (ProxyMode::CutHead(n), _) if answer.len() >= n => break n,
                        (ProxyMode::CutBody(n), Some(end)) if answer.len() >= end + n => break end + n,
                        _ => {}
                    }
                    match server_read.read(&mut buf).await {
                        Ok(0) | Err(_) => break answer.len().saturating_sub(1),
                        Ok(n) => answer.extend_from_slice(&buf[..n]),
                    }
                };
                let _ = client_write.write_all(&answer[..limit.min(answer.len())]).await;
                let _ = client_write.shutdown().await;
            };
            tokio::select! {
                _ = upstream_copy => {}
                _ = downstream => {}
            }
        }
    }
}
