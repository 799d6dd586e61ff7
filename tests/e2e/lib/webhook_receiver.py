#!/usr/bin/env python3
"""Webhook receiver of the end-to-end harness (scenario 17): records every
POST it gets, one JSON line per request, and answers 200.

Runs in the server namespace (`ip netns exec nc-srv python3
webhook_receiver.py --listen 127.0.0.1:8090 --out FILE`), where the server
replicas reach it on loopback. Each line is
  {"at": <epoch seconds of arrival>, "path": "/hook", "body": <the JSON body,
   or the raw text when it is not JSON>}
written and flushed before the answer goes out, so what the harness reads
is everything that was acknowledged. GET answers 200 "ok" (for the
harness's readiness check) and records nothing.
"""

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--listen", default="127.0.0.1:8090", help="host:port")
    p.add_argument("--out", required=True, help="file the requests are appended to")
    a = p.parse_args()
    host, port = a.listen.rsplit(":", 1)
    out = open(a.out, "a", encoding="utf-8")
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            at = time.time()
            n = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(n).decode("utf-8", "replace")
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw
            line = json.dumps({"at": round(at, 3), "path": self.path, "body": body})
            with lock:
                out.write(line + "\n")
                out.flush()
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, fmt, *args):
            print(f"{time.strftime('%H:%M:%S')} {self.command} {self.path} {fmt % args}", flush=True)

    server = ThreadingHTTPServer((host, int(port)), Handler)
    print(f"listening on {a.listen}, recording to {a.out}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
