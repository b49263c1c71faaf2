//! The edges of the HTTP exchange: answers decided before the body was read reach the client
//! (real `curl`, 100 times each), unread bodies are drained so the connection stays usable,
//! and a body that trickles in is cut off by `BODY_READ_TIMEOUT` with a 408.

mod budget;
mod curl;
mod drain;
mod timeouts;

use tokio::io::{AsyncRead, AsyncReadExt};

/// One HTTP/1.1 response read off a raw stream.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    /// Status line and headers, lower-cased.
    pub head: String,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn closes_connection(&self) -> bool {
        self.head.contains("\r\nconnection: close\r\n")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }
}

/// Reads HTTP/1.1 responses (`Content-Length` bodies) from a stream, keeping what it read
/// beyond one response for the next.
pub struct ResponseReader {
    buffered: Vec<u8>,
}

impl ResponseReader {
    pub fn new() -> Self {
        ResponseReader {
            buffered: Vec::new(),
        }
    }

    /// The next response (1xx included), or `None` when the stream ends or fails first.
    pub async fn next<S: AsyncRead + Unpin>(&mut self, stream: &mut S) -> Option<RawResponse> {
        let head_end = loop {
            if let Some(at) = find(&self.buffered, b"\r\n\r\n") {
                break at + 4;
            }
            self.fill(stream).await?;
        };
        let head = String::from_utf8_lossy(&self.buffered[..head_end]).to_ascii_lowercase();
        let status = head.get(9..12)?.parse().ok()?;
        let length: usize = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))
            .map_or(Some(0), |v| v.trim().parse().ok())?;
        while self.buffered.len() < head_end + length {
            self.fill(stream).await?;
        }
        let body = self.buffered[head_end..head_end + length].to_vec();
        self.buffered.drain(..head_end + length);
        Some(RawResponse { status, head, body })
    }

    async fn fill<S: AsyncRead + Unpin>(&mut self, stream: &mut S) -> Option<()> {
        let mut chunk = [0u8; 16 * 1024];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => None,
            Ok(n) => {
                self.buffered.extend_from_slice(&chunk[..n]);
                Some(())
            }
        }
    }

    /// Whether the server closed the stream after the responses read so far (end of stream
    /// or TLS close, with nothing more sent).
    pub async fn closed<S: AsyncRead + Unpin>(&mut self, stream: &mut S) -> bool {
        self.buffered.is_empty() && self.fill(stream).await.is_none()
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The raw request head of a POST with a declared body.
pub(super) fn post_head(path: &str, token: Option<&str>, length: usize) -> String {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Content-Type: application/json\r\n\
         Content-Length: {length}\r\n\r\n"
    )
}

/// The value of an unlabelled series in the Prometheus text format.
pub(super) fn metric_value(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}
