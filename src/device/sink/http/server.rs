//! A small HTTP/1.1 server for the preview, on `std::net`: GET, HEAD and POST (its parameters in the
//! query), one request per connection, and never a request body read. Bounded everywhere, so that no client can hurt the device: the
//! request head is at most [`Limits::max_head`] bytes and must arrive within
//! [`Limits::header_timeout`], every write must progress within [`Limits::write_timeout`] (a stream
//! client that stops reading is dropped), at most [`Limits::max_connections`] are served at once (one
//! thread each; the others get 503 at once), and everything else gets a clear status: 400 for a
//! malformed request, 405 for another method, 408 for a slow head, 431 for a huge one, 505 for another
//! protocol (an HTTP/2 preface among them).
//!
//! tiny_http, used before, allocated the body a request announced (one `Content-Length:
//! 99999999999` aborted the process) and had no timeouts or connection cap.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the server accepts.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// The request line and headers, bytes.
    pub max_head: usize,
    /// Time for the whole request head to arrive.
    pub header_timeout: Duration,
    /// Time for each write to make progress.
    pub write_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_head: 8192, header_timeout: Duration::from_secs(5), write_timeout: Duration::from_secs(10), max_connections: 16 }
    }
}

/// A request as the handler sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    /// `HEAD` (no body is sent back) rather than `GET`.
    pub head: bool,
    /// `POST`: a request that changes something (its parameters in the query; no body is read).
    pub post: bool,
    /// From this machine (a loopback address).
    pub loopback: bool,
    /// The path, without the query.
    pub path: String,
    /// The query, without the `?` (empty when none).
    pub query: String,
    /// Header names lower-cased, values trimmed.
    pub headers: Vec<(String, String)>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The value of `key` in the query string.
    pub fn query_value(&self, key: &str) -> Option<&str> {
        self.query.split('&').filter_map(|kv| kv.split_once('=')).find(|(k, _)| *k == key).map(|(_, v)| v)
    }
}

/// What the handler answers.
pub enum Reply {
    /// A whole response.
    Full { status: u16, content_type: &'static str, headers: Vec<(&'static str, String)>, body: Vec<u8> },
    /// A response written as it goes (the MJPEG stream): the server writes the status line and these
    /// headers, then hands the socket over until the writer returns.
    Stream { content_type: &'static str, write: StreamWriter },
}

/// Writes a streamed response body to the client's socket.
pub type StreamWriter = Box<dyn FnOnce(&mut dyn Write) + Send>;

impl Reply {
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Reply {
        Reply::Full { status, content_type, headers: Vec::new(), body: body.into() }
    }

    pub fn text(status: u16, body: &str) -> Reply {
        Reply::new(status, "text/plain; charset=utf-8", body)
    }

    /// The same reply with one more header.
    pub fn with_header(mut self, name: &'static str, value: String) -> Reply {
        if let Reply::Full { headers, .. } = &mut self {
            headers.push((name, value));
        }
        self
    }
}

pub type Handler = Arc<dyn Fn(&Request) -> Reply + Send + Sync>;

/// The listening server; stops (and frees its port) when dropped.
pub struct Server {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    pub addr: SocketAddr,
}

impl Server {
    /// Binds `listen` and serves `handler` on a thread of its own (and one per connection) until
    /// `stop` is set (by [`stop`](Self::stop) or a drop; handlers that stream watch it too).
    pub fn start(listen: &str, limits: Limits, handler: Handler, stop: Arc<AtomicBool>) -> std::io::Result<Server> {
        let listener = TcpListener::bind(listen)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let st = Arc::clone(&stop);
        let thread = std::thread::Builder::new().name("http".into()).spawn(move || accept_loop(&listener, limits, &handler, &st))?;
        Ok(Server { stop, thread: Some(thread), addr })
    }

    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Counts a connection while its thread runs.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

fn accept_loop(listener: &TcpListener, limits: Limits, handler: &Handler, stop: &AtomicBool) {
    let active = Arc::new(AtomicUsize::new(0));
    while !stop.load(Ordering::Relaxed) {
        let stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            Err(e) => {
                // Out of file descriptors, a connection reset before accept: wait a little, go on.
                log::debug!("http: accept: {e}");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        if stream.set_nonblocking(false).and_then(|_| stream.set_write_timeout(Some(limits.write_timeout))).is_err() {
            continue;
        }
        if active.load(Ordering::Relaxed) >= limits.max_connections {
            // No thread for it: a short answer with a short write timeout, then close.
            let _ = stream.set_write_timeout(Some(Duration::from_millis(200)));
            let mut s = stream;
            let _ = write_head(&mut s, 503, "text/plain; charset=utf-8", &[], Some(b"busy\n".len()));
            let _ = s.write_all(b"busy\n");
            log::debug!("http: {} connections open, one refused", limits.max_connections);
            continue;
        }
        active.fetch_add(1, Ordering::Relaxed);
        let slot = Slot(Arc::clone(&active));
        let handler = Arc::clone(handler);
        let spawned = std::thread::Builder::new().name("http-conn".into()).spawn(move || {
            let _slot = slot;
            serve(stream, limits, &handler);
        });
        if let Err(e) = spawned {
            log::warn!("http: cannot start a connection thread: {e}");
        }
    }
}

/// Why a request head was refused.
#[derive(Debug, PartialEq)]
enum Refusal {
    /// The connection closed or timed out before a head arrived: nothing to answer.
    Gone,
    Status(u16, &'static str),
}

fn serve(mut stream: TcpStream, limits: Limits, handler: &Handler) {
    let req = match read_head(&mut stream, limits) {
        Ok(r) => Request { loopback: stream.peer_addr().is_ok_and(|a| a.ip().is_loopback()), ..r },
        Err(Refusal::Gone) => return,
        Err(Refusal::Status(status, why)) => {
            let body = format!("{why}\n");
            let extra: &[(&str, String)] = if status == 405 { &[("Allow", "GET, HEAD, POST".to_string())] } else { &[] };
            let _ = write_head(&mut stream, status, "text/plain; charset=utf-8", extra, Some(body.len())).and_then(|_| stream.write_all(body.as_bytes()));
            close(stream);
            return;
        }
    };
    let result = match handler(&req) {
        Reply::Full { status, content_type, headers, body } => {
            write_head(&mut stream, status, content_type, &headers, Some(body.len())).and_then(|_| if req.head { Ok(()) } else { stream.write_all(&body) })
        }
        Reply::Stream { content_type, write } => {
            let r = write_head(&mut stream, 200, content_type, &[("Cache-Control", "no-store".to_string())], None);
            if r.is_ok() && !req.head {
                write(&mut stream);
            }
            r
        }
    };
    if let Err(e) = result {
        log::debug!("http {}: {e}", req.path);
    }
    close(stream);
}

fn close(stream: TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

fn write_head(w: &mut dyn Write, status: u16, content_type: &str, headers: &[(&str, String)], length: Option<usize>) -> std::io::Result<()> {
    use std::fmt::Write as _;
    let mut head = format!("HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nConnection: close\r\n", reason(status));
    if let Some(n) = length {
        let _ = write!(head, "Content-Length: {n}\r\n");
    }
    for (k, v) in headers {
        let _ = write!(head, "{k}: {v}\r\n");
    }
    head.push_str("\r\n");
    w.write_all(head.as_bytes())
}

/// Reads the request line and headers within the limits; the body, if any, is never read.
fn read_head(stream: &mut TcpStream, limits: Limits) -> Result<Request, Refusal> {
    let deadline = Instant::now() + limits.header_timeout;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = head_end(&buf) {
            return parse_head(&buf[..end]);
        }
        if buf.len() >= limits.max_head {
            return Err(Refusal::Status(431, "request head too large"));
        }
        // The HTTP/2 connection preface has no blank line that a server waits for in vain.
        if buf.starts_with(b"PRI * HTTP/2.0") {
            return Err(Refusal::Status(505, "HTTP/2 is not served here; use HTTP/1.1"));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(if buf.is_empty() { Refusal::Gone } else { Refusal::Status(408, "request head too slow") });
        }
        if stream.set_read_timeout(Some(left)).is_err() {
            return Err(Refusal::Gone);
        }
        let want = chunk.len().min(limits.max_head - buf.len());
        match stream.read(&mut chunk[..want]) {
            Ok(0) => return Err(Refusal::Gone),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return Err(if buf.is_empty() { Refusal::Gone } else { Refusal::Status(408, "request head too slow") });
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return Err(Refusal::Gone),
        }
    }
}

/// What the server makes of the bytes a client has sent so far: `None` while the head is incomplete,
/// else the request or the status it is refused with. (The fuzz target's way in.)
pub fn parse_request(buf: &[u8]) -> Option<Result<Request, u16>> {
    let end = head_end(buf)?;
    Some(parse_head(&buf[..end]).map_err(|r| match r {
        Refusal::Status(code, _) => code,
        Refusal::Gone => 400,
    }))
}

/// Where the head ends: after a blank line, CR LF or bare LF (which RFC 9112 lets a server accept).
fn head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn parse_head(head: &[u8]) -> Result<Request, Refusal> {
    let bad = Refusal::Status(400, "malformed request");
    let text = std::str::from_utf8(head).map_err(|_| Refusal::Status(400, "malformed request"))?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let line = lines.next().ok_or(Refusal::Status(400, "malformed request"))?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(bad);
    };
    if !version.starts_with("HTTP/") {
        return Err(bad);
    }
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(Refusal::Status(505, "only HTTP/1.0 and HTTP/1.1 are served"));
    }
    let (head, post) = match method {
        "GET" => (false, false),
        "HEAD" => (true, false),
        "POST" => (false, true),
        m if !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase()) => return Err(Refusal::Status(405, "only GET, HEAD and POST")),
        _ => return Err(bad),
    };
    if !target.starts_with('/') {
        return Err(bad);
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut headers = Vec::new();
    for l in lines.filter(|l| !l.is_empty()) {
        let (k, v) = l.split_once(':').ok_or(Refusal::Status(400, "malformed header"))?;
        if k.is_empty() || k.contains(char::is_whitespace) {
            return Err(Refusal::Status(400, "malformed header"));
        }
        headers.push((k.to_ascii_lowercase(), v.trim().to_string()));
    }
    Ok(Request { head, post, loopback: false, path: path.to_string(), query: query.to_string(), headers })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Request, Refusal> {
        parse_head(s.as_bytes())
    }

    #[test]
    fn heads_parse_and_bad_ones_get_their_status() {
        let r = parse("GET /health?x=1&token=ab HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999\r\n\r\n").unwrap();
        assert_eq!((r.head, r.path.as_str(), r.query_value("token")), (false, "/health", Some("ab")));
        assert_eq!(r.header("content-length"), Some("99999999999"));
        assert!(parse("HEAD / HTTP/1.0\n\n").unwrap().head);
        assert!(parse("POST /z?a=1 HTTP/1.1\r\n\r\n").unwrap().post);
        assert_eq!(parse("PUT / HTTP/1.1\r\n\r\n").unwrap_err(), Refusal::Status(405, "only GET, HEAD and POST"));
        assert!(matches!(parse("GET / HTTP/2.0\r\n\r\n").unwrap_err(), Refusal::Status(505, _)));
        for bad in ["GET /\r\n\r\n", "GET  / HTTP/1.1\r\n\r\n", "get / HTTP/1.1\r\n\r\n", "GET x HTTP/1.1\r\n\r\n", "GET / HTTP/1.1\r\nNo colon\r\n\r\n", "\u{1}\r\n\r\n"] {
            assert!(matches!(parse(bad).unwrap_err(), Refusal::Status(400, _)), "{bad:?}");
        }
        assert_eq!(head_end(b"GET / HTTP/1.1\n\nrest"), Some(16));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n\r\n"), Some(18));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n"), None);
    }

    fn get(addr: SocketAddr, raw: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(raw).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn hostile_clients_get_answers_and_cannot_hold_the_server() {
        let limits = Limits { header_timeout: Duration::from_millis(300), max_connections: 3, ..Limits::default() };
        let handler: Handler = Arc::new(|r: &Request| Reply::text(200, &format!("hello {}", r.path)));
        let server = Server::start("127.0.0.1:0", limits, handler, Arc::default()).unwrap();
        let addr = server.addr;
        // A body announced but never sent is never read, nor allocated.
        let r = get(addr, b"GET /a HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n");
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n") && r.ends_with("hello /a"), "{r}");
        assert!(get(addr, b"HEAD /a HTTP/1.1\r\n\r\n").ends_with("\r\n\r\n"));
        assert!(get(addr, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").starts_with("HTTP/1.1 505"));
        assert!(get(addr, b"GET /lf HTTP/1.1\nHost: x\n\n").ends_with("hello /lf"));
        assert!(get(addr, &[b'a'; 9000]).starts_with("HTTP/1.1 431"));
        assert!(get(addr, b"DELETE / HTTP/1.1\r\n\r\n").contains("Allow: GET, HEAD, POST"));
        // Half-sent heads time out (408) and free their slots; while they hold them, others hear 503.
        let idle: Vec<TcpStream> = (0..3)
            .map(|_| {
                let mut s = TcpStream::connect(addr).unwrap();
                s.write_all(b"GET / HT").unwrap();
                s
            })
            .collect();
        std::thread::sleep(Duration::from_millis(100));
        assert!(get(addr, b"GET / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 503"));
        for mut s in idle {
            let mut out = String::new();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let _ = s.read_to_string(&mut out);
            assert!(out.starts_with("HTTP/1.1 408"), "{out}");
        }
        std::thread::sleep(Duration::from_millis(100));
        assert!(get(addr, b"GET /b HTTP/1.1\r\n\r\n").ends_with("hello /b"));
    }

    #[test]
    fn a_stream_client_that_stops_reading_is_dropped() {
        let limits = Limits { write_timeout: Duration::from_millis(300), max_connections: 1, ..Limits::default() };
        let (tx, rx) = std::sync::mpsc::channel();
        let handler: Handler = Arc::new(move |_: &Request| {
            let tx = tx.clone();
            Reply::Stream {
                content_type: "application/octet-stream",
                write: Box::new(move |w: &mut dyn Write| {
                    let block = vec![7u8; 1 << 16];
                    // Until the client's and the kernel's buffers are full and a write times out.
                    while w.write_all(&block).is_ok() {}
                    let _ = tx.send(());
                }),
            }
        });
        let server = Server::start("127.0.0.1:0", limits, handler, Arc::default()).unwrap();
        let mut s = TcpStream::connect(server.addr).unwrap();
        s.write_all(b"GET /stream HTTP/1.1\r\n\r\n").unwrap();
        rx.recv_timeout(Duration::from_secs(30)).expect("the writer gave up on a client that does not read");
        drop(s);
        std::thread::sleep(Duration::from_millis(100));
        let mut again = TcpStream::connect(server.addr).unwrap();
        again.write_all(b"GET /stream HTTP/1.1\r\n\r\n").unwrap();
        let mut first = [0u8; 12];
        again.read_exact(&mut first).unwrap();
        assert_eq!(&first, b"HTTP/1.1 200");
    }
}
