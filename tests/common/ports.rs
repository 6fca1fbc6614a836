//! Ports for tests that need nothing listening, safely: a port picked by
//! binding and dropping a listener can be taken by another test in between,
//! which then answers where "connection refused" was expected. A
//! [`ClosedPort`] stays bound (and not listening) for as long as it lives.

use std::net::SocketAddr;

pub struct ClosedPort {
    socket: tokio::net::TcpSocket,
    pub port: u16,
}

impl ClosedPort {
    pub fn new() -> ClosedPort {
        let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
        socket
            .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .expect("bind 127.0.0.1:0");
        let port = socket.local_addr().expect("bound").port();
        ClosedPort { socket, port }
    }

    /// Start listening on the port, inside a tokio runtime: a server that
    /// comes up late.
    #[allow(dead_code, reason = "each test binary uses the half it needs")]
    pub fn listen(self) -> tokio::net::TcpListener {
        self.socket.listen(128).expect("listen")
    }

    /// Start listening on the port, outside any runtime.
    #[allow(dead_code, reason = "each test binary uses the half it needs")]
    pub fn open(self) -> std::net::TcpListener {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .expect("a runtime");
        rt.block_on(async {
            let l = self
                .socket
                .listen(128)
                .expect("listen")
                .into_std()
                .expect("a std listener");
            // tokio's sockets are non-blocking; a std caller expects to wait.
            l.set_nonblocking(false).expect("blocking mode");
            l
        })
    }
}

/// A port free right now, for a server process the test starts (which must
/// bind it itself). A collision makes that server fail to start, loudly.
#[allow(dead_code, reason = "each test binary uses the half it needs")]
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}
