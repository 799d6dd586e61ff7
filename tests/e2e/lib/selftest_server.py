#!/usr/bin/env python3
"""Stand-in HTTP server for `run.sh --selftest`: answers every GET and POST
with 200 after reading the whole request body, so a POST only succeeds when
all its packets crossed the network."""

import socket
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def _answer(self, body=b"ok\n"):
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self._answer()

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        data = self.rfile.read(n)
        self._answer(f"received {len(data)} bytes\n".encode())

    def log_message(self, fmt, *args):
        sys.stderr.write("%.3f %s %s\n" % (time.time(), self.address_string(), fmt % args))


class DualStackServer(ThreadingHTTPServer):
    """On [::], IPv6 and (mapped) IPv4 at once."""
    address_family = socket.AF_INET6

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


if __name__ == "__main__":
    # PORT [--dual-stack]: on 0.0.0.0 (IPv4), or on [::] (both families).
    if sys.argv[2:] == ["--dual-stack"]:
        DualStackServer(("::", int(sys.argv[1])), Handler).serve_forever()
    ThreadingHTTPServer(("0.0.0.0", int(sys.argv[1])), Handler).serve_forever()
