"""A small HTTP file server on 127.0.0.1 for the fetch tests, with scripted faults and a request log.

    srv = FileServer().start()
    srv.add("/x.zip", data)                       # plain file, honours Range
    srv.add_hf("org/repo", rev, "a/b.pth", data)  # served as a Hugging Face endpoint's /resolve/ URL
    srv.plan("/x.zip", ("cut", 1000), ("status", 500))   # the next GETs misbehave in this order, then serve
    srv.log                                       # [Request(method, path, range, status, sent)]

Faults: ("cut", n) sends the headers of the full answer and n body bytes, then drops the connection;
("status", code); ("corrupt", offset) flips one byte; ("stall", seconds[, n]) sends n (default STALL_AFTER) bytes then sleeps;
("norange",) ignores a Range header and answers 200.
"""
from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STALL_AFTER = 64 * 1024      # bytes a stalling answer sends before it stops


@dataclass
class Request:
    method: str
    path: str
    range: str | None
    status: int
    sent: int = 0


class FileServer:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.extra_headers: dict[str, dict[str, str]] = {}
        self.plans: dict[str, list[tuple]] = {}
        self.log: list[Request] = []
        self._lock = threading.Lock()
        self.httpd: ThreadingHTTPServer | None = None

    # -- content
    def add(self, path: str, data: bytes, headers: dict[str, str] | None = None) -> str:
        self.files[path] = data
        self.extra_headers[path] = headers or {}
        return self.url + path

    def add_hf(self, repo: str, revision: str, filename: str, data: bytes, etag: str | None = None) -> str:
        """As the Hub serves a Git LFS file: the etag is the content's sha256."""
        sha = etag or hashlib.sha256(data).hexdigest()
        path = f"/{repo}/resolve/{revision}/{filename}"
        return self.add(path, data, {"X-Repo-Commit": revision, "ETag": f'"{sha}"', "X-Linked-Etag": f'"{sha}"',
                                     "X-Linked-Size": str(len(data))})

    def plan(self, path: str, *faults: tuple) -> None:
        with self._lock:
            self.plans.setdefault(path, []).extend(faults)

    def gets(self, path: str) -> list[Request]:
        return [r for r in self.log if r.method == "GET" and r.path == path]

    def sent(self, path: str) -> int:
        return sum(r.sent for r in self.gets(path))

    # -- lifecycle
    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FileServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args):   # keep test output quiet
                pass

            def do_HEAD(self):
                server._answer(self, head=True)

            def do_GET(self):
                server._answer(self, head=False)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()

    # -- serving
    def _answer(self, h: BaseHTTPRequestHandler, head: bool) -> None:
        path = h.path.split("?", 1)[0]
        rng = h.headers.get("Range")
        req = Request("HEAD" if head else "GET", path, rng, 200)
        with self._lock:
            self.log.append(req)
            fault = self.plans[path].pop(0) if not head and self.plans.get(path) else None
        data = self.files.get(path)
        if data is None or (fault and fault[0] == "status"):
            req.status = 404 if data is None else fault[1]
            h.send_response(req.status)
            h.send_header("Content-Length", "0")
            for k, v in self.extra_headers.get(path, {}).items():
                if k == "X-Repo-Commit":
                    h.send_header(k, v)
            h.end_headers()
            return
        if fault and fault[0] == "corrupt":
            data = bytearray(data)
            data[fault[1]] ^= 0xFF
            data = bytes(data)
        start = 0
        if rng and not (fault and fault[0] == "norange") and rng.startswith("bytes="):
            start = int(rng[len("bytes="):].split("-")[0])
        body = data[start:]
        req.status = 206 if start else 200
        h.send_response(req.status)
        h.send_header("Content-Length", str(len(body)))
        h.send_header("Accept-Ranges", "bytes")
        if start:
            h.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        for k, v in self.extra_headers.get(path, {}).items():
            h.send_header(k, v)
        h.end_headers()
        if head:
            return
        try:
            if fault and fault[0] == "cut":
                body = body[:fault[1]]
            elif fault and fault[0] == "stall":
                first = body[:fault[2] if len(fault) > 2 else STALL_AFTER]
                h.wfile.write(first)
                h.wfile.flush()
                req.sent += len(first)
                time.sleep(fault[1])
                body = b""
            for i in range(0, len(body), 64 * 1024):
                chunk = body[i:i + 64 * 1024]
                h.wfile.write(chunk)
                req.sent += len(chunk)
            h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        if fault and fault[0] in ("cut", "stall"):
            h.close_connection = True
            try:
                import socket
                h.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
