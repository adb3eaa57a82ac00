#!/usr/bin/env python3
"""A tiny HTTP receiver for S3 event notifications (tests only).

    event_sink.py OUT [--port N] [--port-file F] [--status CODE] [--delay S]
                      [--fail-first N]

Every POST appends one line to OUT: a JSON object with the request's path
(query string included), its Authorization header (or null) and its body
(parsed as JSON when it is JSON, else the raw text). It answers CODE (200
by default; 503 to the first N POSTs with --fail-first) after sleeping S
seconds. Binds 127.0.0.1 port N (default: a
free one) and writes the port to F once it listens. Stops on SIGTERM.
"""
import argparse
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--status", type=int, default=200)
    ap.add_argument("--delay", type=float, default=0.0)
    ap.add_argument("--fail-first", type=int, default=0)
    args = ap.parse_args()
    lock = threading.Lock()  # one line per POST, never interleaved
    seen = [0]

    class Sink(BaseHTTPRequestHandler):
        def do_POST(self):
            n = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(n).decode("utf-8", "replace")
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw
            with lock:
                seen[0] += 1
                failing = seen[0] <= args.fail_first
            status = 503 if failing else args.status
            rec = {"path": self.path, "auth": self.headers.get("Authorization"),
                   "at": time.time(), "status": status, "body": body}
            with lock, open(args.out, "a", encoding="utf-8") as f:
                f.write(json.dumps(rec) + "\n")
            time.sleep(args.delay)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a):  # quiet: the test reads OUT
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Sink)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write("%d\n" % srv.server_address[1])
        os.replace(args.port_file + ".tmp", args.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
