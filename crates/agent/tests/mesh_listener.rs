//! The mesh probe endpoint against raw clients on loopback: the padding
//! back exactly, oversize refused, other paths 404, stalled connections
//! closed, connections beyond the cap closed at once.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::mesh::{MeshPeer, probe_head, raw_exchange};
use netchecker_agent::mesh::Limits;
use netchecker_wire::mesh::MAX_PROBE_PADDING;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

const SOON: Duration = Duration::from_secs(5);

#[tokio::test]
async fn the_padding_comes_back_exactly() {
    let peer = MeshPeer::start().await;
    for n in [0, 1, 1500, 9000, MAX_PROBE_PADDING] {
        let mut request = probe_head(n);
        request.resize(request.len() + n, 0);
        let answer = raw_exchange(peer.addr, &request, SOON).await.unwrap();
        assert_eq!(answer.status, 200, "{n}");
        assert_eq!(answer.content_length, Some(n));
        assert_eq!(answer.body.len(), n);
        assert!(answer.body.iter().all(|b| *b == 0));
    }
    // A chunked body is counted the same way.
    let request = b"POST /mesh/probe HTTP/1.1\r\nHost: peer\r\nTransfer-Encoding: chunked\r\n\
                    Connection: close\r\n\r\n3\r\n\0\0\0\r\n4\r\n\0\0\0\0\r\n0\r\n\r\n";
    let answer = raw_exchange(peer.addr, request, SOON).await.unwrap();
    assert_eq!((answer.status, answer.body.len()), (200, 7));
    assert_eq!(peer.counts.answered.load(Ordering::Relaxed), 6);
}

#[tokio::test]
async fn more_than_the_largest_padding_is_refused() {
    let peer = MeshPeer::start().await;
    // Refused on the head alone: the body is never sent.
    let answer = raw_exchange(peer.addr, &probe_head(MAX_PROBE_PADDING + 1), SOON)
        .await
        .unwrap();
    assert_eq!((answer.status, answer.content_length), (413, Some(0)));
    // A chunked body is refused once it grows past the limit.
    let mut request = b"POST /mesh/probe HTTP/1.1\r\nHost: peer\r\nTransfer-Encoding: chunked\r\n\
                        Connection: close\r\n\r\n"
        .to_vec();
    let chunk = 16 * 1024;
    for _ in 0..5 {
        request.extend_from_slice(format!("{chunk:x}\r\n").as_bytes());
        request.resize(request.len() + chunk, 0);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    let answer = raw_exchange(peer.addr, &request, SOON).await.unwrap();
    assert_eq!(answer.status, 413);
    assert_eq!(peer.counts.refused.load(Ordering::Relaxed), 2);
    assert_eq!(peer.counts.answered.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn other_paths_and_methods_get_404() {
    let peer = MeshPeer::start().await;
    for request in [
        "GET /mesh/probe HTTP/1.1\r\nHost: peer\r\n\r\n",
        "POST /mesh/probe/x HTTP/1.1\r\nHost: peer\r\nContent-Length: 0\r\n\r\n",
        "POST /mesh HTTP/1.1\r\nHost: peer\r\nContent-Length: 0\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: peer\r\n\r\n",
        "POST /api/v1/agents/x HTTP/1.1\r\nHost: peer\r\nContent-Length: 2\r\n\r\n{}",
    ] {
        let answer = raw_exchange(peer.addr, request.as_bytes(), SOON)
            .await
            .unwrap();
        assert_eq!((answer.status, answer.body.len()), (404, 0), "{request}");
    }
    // Not HTTP at all: closed, maybe with a 400, never with a padding.
    let answer = raw_exchange(peer.addr, b"SSH-2.0-OpenSSH_9.6\r\n\r\n", SOON).await;
    assert!(
        answer.as_ref().is_none_or(|a| a.status == 400),
        "{answer:?}"
    );
    assert_eq!(peer.counts.answered.load(Ordering::Relaxed), 0);
}

/// Read until the listener closes; returns what it sent and when it closed.
async fn until_closed(mut stream: TcpStream) -> (Vec<u8>, Duration) {
    let t0 = Instant::now();
    let mut got = Vec::new();
    let _ = stream.read_to_end(&mut got).await;
    (got, t0.elapsed())
}

#[tokio::test(start_paused = true)]
async fn stalled_connections_are_closed() {
    let peer = MeshPeer::start().await;
    // Nothing sent: closed when the head is 5 s late.
    let silent = TcpStream::connect(peer.addr).await.unwrap();
    let (_, after) = until_closed(silent).await;
    assert_eq!(after, Duration::from_secs(5));
    // Half a head: the same.
    let mut half = TcpStream::connect(peer.addr).await.unwrap();
    half.write_all(b"POST /mesh/probe HTTP/1.1\r\nHost: pe")
        .await
        .unwrap();
    let (_, after) = until_closed(half).await;
    assert_eq!(after, Duration::from_secs(5));
    // The head, then 10 of 1500 bytes: 408 when the body is 5 s late.
    let mut short = TcpStream::connect(peer.addr).await.unwrap();
    short.write_all(&probe_head(1500)).await.unwrap();
    short.write_all(&[0; 10]).await.unwrap();
    let (got, after) = until_closed(short).await;
    assert_eq!(after, Duration::from_secs(5));
    let answer = common::mesh::parse_answer(&got).unwrap();
    assert_eq!((answer.status, answer.body.len()), (408, 0));
    assert_eq!(peer.counts.answered.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn connections_beyond_the_cap_are_closed_at_once() {
    let peer = MeshPeer::with_limits(Limits {
        max_connections: 2,
        ..Limits::default()
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(peer.addr).await.unwrap();
        s.write_all(b"POST /mesh/probe HTTP/1.1\r\n").await.unwrap();
        held.push(s);
    }
    // Let the listener take both before the third arrives.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let third = TcpStream::connect(peer.addr).await.unwrap();
    let (got, after) = tokio::time::timeout(SOON, until_closed(third))
        .await
        .expect("closed at once");
    assert!(got.is_empty(), "{got:?}");
    assert!(after < Duration::from_secs(1), "{after:?}");
    assert_eq!(peer.counts.dropped.load(Ordering::Relaxed), 1);

    // The two held connections are still served ...
    let mut first = held.remove(0);
    first
        .write_all(b"Host: peer\r\nContent-Length: 3\r\nConnection: close\r\n\r\n\0\0\0")
        .await
        .unwrap();
    let (got, _) = until_closed(first).await;
    let answer = common::mesh::parse_answer(&got).unwrap();
    assert_eq!((answer.status, answer.body.len()), (200, 3));
    // ... and the slot it freed takes a new connection.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut request = probe_head(5);
    request.resize(request.len() + 5, 0);
    let answer = raw_exchange(peer.addr, &request, SOON).await.unwrap();
    assert_eq!((answer.status, answer.body.len()), (200, 5));
    assert_eq!(peer.counts.dropped.load(Ordering::Relaxed), 1);
}
