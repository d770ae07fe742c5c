"""The tiny backend behind Apache: answers 200 with the user Apache authenticated.

Binds 127.0.0.1 port 0 and prints "backend listening on HOST:PORT". Stops on SIGTERM.
"""
import http.server
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("backend: hello %s\n" % self.headers.get("X-Remote-User", "?")).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print("backend listening on 127.0.0.1:%d" % server.server_address[1], flush=True)
server.serve_forever()
