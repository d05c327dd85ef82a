#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# The MTA-STS policy host of the integration tests and bench/load/tls_policy.sh: HTTPS on
# one loopback address with a certificate from the test CA, serving GET
# /.well-known/mta-sts.txt from a file that is read again for each request (so a test can
# change the policy), text/plain; anything else is 404. Each GET of the policy appends a
# line to the log file. The ready file appears once the socket listens. Loopback only;
# exits on SIGTERM.
import argparse
import http.server
import os
import signal
import ssl
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--address", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--policy", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--ready", required=True)
    a = ap.parse_args()
    if not a.address.startswith("127."):
        sys.exit("loopback addresses only")

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            if self.path != "/.well-known/mta-sts.txt":
                self.send_error(404)
                return
            with open(a.log, "a") as log:
                log.write(self.headers.get("Host", "") + "\n")
            with open(a.policy, "rb") as f:
                body = f.read()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    class Server(http.server.ThreadingHTTPServer):
        # A node fetching many domains' policies at once (bench/load/tls_policy.sh) opens
        # that many connections together; the default backlog (5) would drop their SYNs.
        request_queue_size = 256

    server = Server((a.address, a.port), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    with open(a.ready, "w") as f:
        f.write("ready\n")
    server.serve_forever()


if __name__ == "__main__":
    main()
