"""Host the inspector widget's front end in a plain web page, without Jupyter.

A small local HTTP server plays the kernel: the page loads ``inspector.js`` and gives it a
stand-in for anywidget's model whose ``send`` posts to the server, which answers with
:meth:`AttentionInspector.answer` (the same code that answers in a notebook) and sends the
binary buffers back. Browser tests and ``benchmarks/attention.py`` use it; it also shows a
capture from a plain Python script:

>>> with InspectorServer(cap.show()) as server:      # doctest: +SKIP
...     print(server.url)                            # open it in a browser

Only 127.0.0.1 is bound; the page loads nothing from anywhere else.
"""

from __future__ import annotations

import json
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from llmlab.attention.static import static_text

__all__ = ["PAGE", "InspectorServer"]

# The page: a stand-in for anywidget's model (get / set / on / off / save_changes / send),
# then the real front end's render(). Answers come back as one binary body:
# [uint32 LE header length][header JSON {"content": ..., "sizes": [...]}][buffers...].
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>llmlab attention inspector</title></head>
<body>
<div id="root"></div>
<script type="module">
import inspector from './inspector.js';
const state = await (await fetch('state.json')).json();
const thumbs = await (await fetch('thumbs.bin')).arrayBuffer();
const listeners = {};
const fire = (event, ...args) => (listeners[event] || []).slice().forEach(f => f(...args));
const mock = { sent: [], saves: 0, received: 0, drawn: [] };
const model = {
  get: k => (k === 'thumbs' ? new DataView(thumbs) : state[k]),
  set: (k, v) => { state[k] = v; fire('change:' + k); },
  save_changes: () => {
    mock.saves += 1;
    const { thumbs: _t, meta: _m, _esm: _e, ...synced } = state;
    fetch('state', { method: 'POST', body: JSON.stringify(synced) });
  },
  on: (e, f) => { (listeners[e] = listeners[e] || []).push(f); },
  off: (e, f) => { listeners[e] = (listeners[e] || []).filter(g => g !== f); },
  send: async content => {
    mock.sent.push(content);
    const r = await fetch('msg', { method: 'POST', body: JSON.stringify(content) });
    const body = await r.arrayBuffer();
    mock.received += body.byteLength;
    const n = new DataView(body).getUint32(0, true);
    const head = JSON.parse(new TextDecoder().decode(new Uint8Array(body, 4, n)));
    let at = 4 + n;
    const buffers = head.sizes.map(size => { const v = new DataView(body, at, size); at += size; return v; });
    fire('msg:custom', head.content, buffers);
  }
};
// the server can push state changes, as Python does in a notebook (w.layer = 3)
mock.setFromPython = changes => { for (const [k, v] of Object.entries(changes)) model.set(k, v); };
window.__mock = mock;
const el = document.getElementById('root');
el.addEventListener('llmlab-inspector-drawn', e => mock.drawn.push(e.detail));
mock.cleanup = inspector.render({ model, el });
mock.ready = true;
</script>
</body></html>
"""


class _Handler(SimpleHTTPRequestHandler):
    server_version = "llmlab-inspector"

    def __init__(self, *args: Any, app: InspectorServer, **kwargs: Any) -> None:
        self.app = app
        super().__init__(*args, **kwargs)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def _send(self, body: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        app = self.app
        path = self.path.split("?")[0]
        if app.widget is not None and path in ("/", "/index.html"):
            return self._send(PAGE.encode(), "text/html; charset=utf-8")
        if app.widget is not None and path == "/inspector.js":
            return self._send(static_text("inspector.js").encode(), "text/javascript")
        if app.widget is not None and path == "/state.json":
            return self._send(json.dumps(app.state()).encode(), "application/json")
        if app.widget is not None and path == "/thumbs.bin":
            return self._send(bytes(app.widget.thumbs), "application/octet-stream")
        if app.directory is not None:
            return super().do_GET()
        self.send_error(404)
        return None

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        app = self.app
        length = int(self.headers.get("Content-Length", 0))
        data = json.loads(self.rfile.read(length) or b"{}")
        if app.widget is None:
            self.send_error(404)
            return
        if self.path == "/msg":
            content, buffers = app.widget.answer(data)
            head = json.dumps({"content": content, "sizes": [len(b) for b in buffers]}).encode()
            body = len(head).to_bytes(4, "little") + head + b"".join(bytes(b) for b in buffers)
            app.answers.append(content)
            return self._send(body, "application/octet-stream")
        if self.path == "/state":
            with app.lock:
                app.widget.set_state({k: v for k, v in data.items() if k in app.widget.keys})
            return self._send(b"{}", "application/json")
        self.send_error(404)
        return None


class InspectorServer:
    """Serve an :class:`AttentionInspector`'s front end (and/or the files of ``directory``)
    on 127.0.0.1 from a background thread. Use as a context manager, or ``start``/``stop``."""

    def __init__(self, widget: Any = None, directory: str | Path | None = None,
                 port: int = 0) -> None:
        self.widget = widget
        self.directory = None if directory is None else str(directory)
        self.answers: list[dict] = []
        self.lock = threading.Lock()
        handler = partial(_Handler, app=self, directory=self.directory or ".")
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def state(self) -> dict[str, Any]:
        """The widget state as the front end receives it (binary traits left out)."""
        state = self.widget.get_state()
        return {k: v for k, v in state.items() if not isinstance(v, (bytes, memoryview))}

    def start(self) -> InspectorServer:
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> InspectorServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
