"""REST handlers of the llmlab server extension, under ``<base_url>/llmlab/api/``.

===========================================  ===================================================
``GET  version``                             ``{"version": ...}``
``GET  runs?offset=&limit=&status=&kind=&q=``  runs of the store, newest first, paged
``GET  runs/<id>``                           one run: manifest, checkpoints
``GET  runs/<id>/metrics?format=json|arrow``   its metrics (wide; JSON columns or Arrow IPC)
``GET  configs/presets``                     the built-in ModelConfig presets
``GET  configs/schema``                      the JSON Schema of ModelConfig (the panel's form)
``POST configs/estimate``                    ``{"config", "batch_size", "seq_len", "dtype"}``
``GET  configs/saved``                       saved configs; ``PUT configs/saved/<name>`` saves
``GET  attention``                           attention snapshots of every run (readable or not)
``GET  runs/<id>/attention``                 the snapshots of one run
``GET  runs/<id>/attention/<name>``          one snapshot: tokens, layers, heads, format version
                                             and the inspector front end's ``meta``
``GET  runs/<id>/attention/<name>/thumbs``   all thumbnails, uint8 (offsets in ``meta``)
``GET  runs/<id>/attention/<name>/matrix``   ``?kind=&layer=&head=&hide_first=&merge_words=``:
                                             one matrix, little-endian float16, binary
``GET  runs/<id>/attention/<name>/lens``     ``?position=``: the saved logit lens there, JSON
===========================================  ===================================================

Every handler is authenticated (token or login) and authorized against the ``llmlab``
resource. Bad requests get a 4xx with ``{"message": ...}``; run ids and config names are
checked against strict patterns, so no request reaches a path outside the run store.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from llmlab._version import __version__

#: URL prefix of every llmlab endpoint, relative to the server's base URL.
API_PREFIX = "llmlab/api"

#: Resource name that jupyter_server authorizers see for llmlab requests.
AUTH_RESOURCE = "llmlab"

#: Saved configs live in this folder of the run store (not a run id, so run listings skip it).
CONFIGS_DIR = "configs"
CONFIG_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
MAX_PAGE = 500


class LlmlabAPIHandler(APIHandler):
    """Base class: JSON replies, jupyter_server auth, llmlab auth resource, 4xx on bad input."""

    auth_resource = AUTH_RESOURCE

    @property
    def store_path(self) -> Path:
        return self.settings["llmlab_store"]

    def reply(self, data: Any) -> None:
        """Send ``data`` as strict JSON (NaN and infinities become null)."""
        from llmlab.runs.manifest import to_jsonable

        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(to_jsonable(data), allow_nan=False))

    def fail(self, status: int, message: str) -> None:
        """Stop with ``status`` and ``{"message": message}``."""
        raise web.HTTPError(status, reason=message.splitlines()[0][:200], log_message=message)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.set_header("Content-Type", "application/json")
        err = kwargs.get("exc_info", (None, None))[1]
        message = getattr(err, "log_message", None) or self._reason
        self.finish(json.dumps({"message": message, "status": status_code}))

    def json_body(self) -> Any:
        try:
            return json.loads(self.request.body or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            self.fail(400, f"the request body is not valid JSON ({err}); send a JSON object")

    def int_arg(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.get_query_argument(name, str(default))
        try:
            value = int(raw)
        except ValueError:
            self.fail(400, f"query argument {name}={raw!r} is not an integer")
        if not low <= value <= high:
            self.fail(400, f"query argument {name}={value} must be between {low} and {high}")
        return value

    def bool_arg(self, name: str) -> bool:
        raw = self.get_query_argument(name, "0")
        if raw not in ("0", "1", "true", "false"):
            self.fail(400, f"query argument {name}={raw!r}; use 1 or 0 (true or false)")
        return raw in ("1", "true")

    def run(self, run_id: str):
        from llmlab.runs import InvalidRunIdError, RunNotFoundError, RunStore

        try:
            return RunStore(self.store_path).get(run_id)
        except InvalidRunIdError:
            self.fail(404, f"{run_id!r} is not a run id (runs are named like "
                           "20261123-071800-3f9a2c)")
        except RunNotFoundError:
            self.fail(404, f"no run {run_id!r} in the run store")


class VersionHandler(LlmlabAPIHandler):
    """``GET version``: the llmlab version the server runs."""

    @web.authenticated
    @authorized
    def get(self) -> None:
        """Reply ``{"version": "<llmlab.__version__>"}``."""
        self.reply({"version": __version__})


class RunsHandler(LlmlabAPIHandler):
    """``GET runs``: one page of the run listing, with optional filters."""

    @web.authenticated
    @authorized
    def get(self) -> None:
        import polars as pl

        from llmlab.runs import RunStore

        offset = self.int_arg("offset", 0, 0, 10**9)
        limit = self.int_arg("limit", 100, 1, MAX_PAGE)
        frame = RunStore(self.store_path).list()
        for column in ("status", "kind"):
            wanted = self.get_query_argument(column, None)
            if wanted:
                frame = frame.filter(pl.col(column) == wanted)
        text = self.get_query_argument("q", None)
        if text:
            frame = frame.filter(pl.col("name").str.contains(text, literal=True)
                                 | pl.col("id").str.contains(text, literal=True))
        page = frame.slice(offset, limit).drop("path")
        self.reply({"total": frame.height, "offset": offset, "limit": limit,
                    "store": str(self.store_path), "runs": page.to_dicts()})


class RunHandler(LlmlabAPIHandler):
    """``GET runs/<id>``: the run's manifest and complete checkpoints."""

    @web.authenticated
    @authorized
    def get(self, run_id: str) -> None:
        run = self.run(run_id)
        self.reply({"id": run.id, "status": run.status, "manifest": run.manifest,
                    "checkpoints": [step for step, _ in run.checkpoints()]})


class MetricsHandler(LlmlabAPIHandler):
    """``GET runs/<id>/metrics``: the wide metrics table as JSON columns or Arrow IPC."""

    @web.authenticated
    @authorized
    def get(self, run_id: str) -> None:
        import io

        run = self.run(run_id)
        fmt = self.get_query_argument("format", "json")
        if fmt not in ("json", "arrow"):
            self.fail(400, f"format={fmt!r}; use json or arrow")
        frame = run.metrics
        names = self.get_query_argument("names", None)
        if names:
            wanted = [n for n in names.split(",") if n in frame.columns]
            frame = frame.select(["step", *[n for n in wanted if n != "step"]])
        if fmt == "json":
            self.reply({"id": run.id, "columns": frame.to_dict(as_series=False)})
            return
        buffer = io.BytesIO()
        frame.write_ipc(buffer)
        # APIHandler.finish would label the body JSON unless told otherwise
        self.finish(buffer.getvalue(), set_content_type="application/vnd.apache.arrow.file")


class PresetsHandler(LlmlabAPIHandler):
    """``GET configs/presets``: every preset as a full config."""

    @web.authenticated
    @authorized
    def get(self) -> None:
        from llmlab.config import ModelConfig

        self.reply({name: ModelConfig.preset(name).to_dict() for name in ModelConfig.presets()})


class SchemaHandler(LlmlabAPIHandler):
    """``GET configs/schema``: the JSON Schema of ModelConfig."""

    @web.authenticated
    @authorized
    def get(self) -> None:
        from llmlab.config import ModelConfig

        self.reply(ModelConfig.json_schema())


class EstimateHandler(LlmlabAPIHandler):
    """``POST configs/estimate``: validate a config and estimate its size, compute and memory."""

    @web.authenticated
    @authorized
    def post(self) -> None:
        from llmlab.errors import ConfigError

        body = self.json_body()
        if not isinstance(body, dict) or "config" not in body:
            self.fail(400, 'send {"config": {...}, "batch_size": 1, "seq_len": null, '
                           '"dtype": "float32"}')
        try:
            cfg = _config(body["config"])
            estimate = cfg.estimate(batch_size=body.get("batch_size", 1),
                                    seq_len=body.get("seq_len"), dtype=body.get("dtype", "float32"))
        except (ConfigError, TypeError) as err:
            self.fail(400, str(err))
        self.reply({"config": cfg.to_dict(), "estimate": estimate.to_dict(),
                    "text": str(estimate)})


class SavedConfigsHandler(LlmlabAPIHandler):
    """``GET configs/saved``: configs saved in the store's ``configs/`` folder."""

    @web.authenticated
    @authorized
    def get(self) -> None:
        folder = self.store_path / CONFIGS_DIR
        saved = {}
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            try:
                saved[path.stem] = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue  # a file being written or damaged by hand: skip it
        self.reply(saved)


class SavedConfigHandler(LlmlabAPIHandler):
    """``PUT configs/saved/<name>`` saves a validated config; ``GET`` reads it back."""

    @web.authenticated
    @authorized
    def put(self, name: str) -> None:
        from llmlab._files import write_text_atomic
        from llmlab.errors import ConfigError

        self._check_name(name)
        try:
            cfg = _config(self.json_body())
        except ConfigError as err:
            self.fail(400, str(err))
        write_text_atomic(self.store_path / CONFIGS_DIR / f"{name}.json",
                          cfg.to_json() + "\n")
        self.reply({"name": name, "config": cfg.to_dict()})

    @web.authenticated
    @authorized
    def get(self, name: str) -> None:
        self._check_name(name)
        path = self.store_path / CONFIGS_DIR / f"{name}.json"
        if not path.is_file():
            self.fail(404, f"no saved config named {name!r}")
        self.reply(json.loads(path.read_text(encoding="utf-8")))

    def _check_name(self, name: str) -> None:
        if not CONFIG_NAME.fullmatch(name):
            self.fail(400, f"config name {name!r} must be 1-64 letters, digits, '_', '.' or "
                           "'-', starting with a letter or digit")


class SnapshotAPIHandler(LlmlabAPIHandler):
    """Base of the attention snapshot endpoints: work runs off the event loop (reading and
    decompressing a layer takes a while), and SnapshotRequestError becomes its 4xx."""

    async def off_loop(self, fn, *args: Any) -> Any:
        from tornado.ioloop import IOLoop

        from llmlab.server.snapshots import SnapshotRequestError

        try:
            return await IOLoop.current().run_in_executor(None, fn, *args)
        except SnapshotRequestError as err:
            self.fail(err.status, str(err))

    async def snapshot(self, run_id: str, name: str):
        from llmlab.server.snapshots import check_name, open_snapshot

        run = self.run(run_id)
        return await self.off_loop(lambda: open_snapshot(run, check_name(name)))

    def binary(self, body: bytes, **headers: str) -> None:
        self.set_header("Cache-Control", "no-store")
        for name, value in headers.items():
            self.set_header(f"X-Llmlab-{name.title()}", value)
        self.finish(body, set_content_type="application/octet-stream")


class SnapshotsHandler(SnapshotAPIHandler):
    """``GET attention`` (every run) or ``GET runs/<id>/attention``: snapshot entries."""

    @web.authenticated
    @authorized
    async def get(self, run_id: str | None = None) -> None:
        from llmlab.runs import RunStore
        from llmlab.server.snapshots import list_snapshots

        run = self.run(run_id) if run_id is not None else None
        entries = await self.off_loop(list_snapshots, RunStore(self.store_path), run)
        self.reply({"store": str(self.store_path), "exists": self.store_path.is_dir(),
                    "snapshots": entries})


class SnapshotHandler(SnapshotAPIHandler):
    """``GET runs/<id>/attention/<name>``: what the snapshot holds and the inspector's meta."""

    @web.authenticated
    @authorized
    async def get(self, run_id: str, name: str) -> None:
        self.reply((await self.snapshot(run_id, name)).describe())


class SnapshotThumbsHandler(SnapshotAPIHandler):
    """``GET runs/<id>/attention/<name>/thumbs``: every kind's thumbnails, one uint8 body."""

    @web.authenticated
    @authorized
    async def get(self, run_id: str, name: str) -> None:
        self.binary((await self.snapshot(run_id, name)).thumbs, dtype="uint8")


class SnapshotMatrixHandler(SnapshotAPIHandler):
    """``GET runs/<id>/attention/<name>/matrix``: one head (or aggregate) as float16 LE, its
    shape in ``X-Llmlab-Shape: rows,cols``."""

    @web.authenticated
    @authorized
    async def get(self, run_id: str, name: str) -> None:
        from llmlab.server.snapshots import SnapshotRequestError, matrix_bytes, parse_head

        if self.get_query_argument("layer", None) is None:
            self.fail(400, "give the layer: matrix?kind=decoder&layer=0&head=0")
        layer = self.int_arg("layer", 0, 0, 10**6)
        kind = self.get_query_argument("kind", "")
        flags = {flag: self.bool_arg(flag) for flag in ("hide_first", "merge_words")}
        try:
            head = parse_head(self.get_query_argument("head", "mean"))
        except SnapshotRequestError as err:
            self.fail(err.status, str(err))
        snap = await self.snapshot(run_id, name)
        body, (rows, cols) = await self.off_loop(
            lambda: matrix_bytes(snap, kind, layer, head, **flags))
        self.binary(body, shape=f"{rows},{cols}", dtype="float16")


class SnapshotLensHandler(SnapshotAPIHandler):
    """``GET runs/<id>/attention/<name>/lens?position=N``: the top predictions after every
    layer at one token position (404 when the snapshot was saved without a logit lens)."""

    @web.authenticated
    @authorized
    async def get(self, run_id: str, name: str) -> None:
        from llmlab.server.snapshots import lens_rows

        if self.get_query_argument("position", None) is None:
            self.fail(400, "give the token position: lens?position=0")
        position = self.int_arg("position", 0, 0, 10**7)
        snap = await self.snapshot(run_id, name)
        self.reply(await self.off_loop(lens_rows, snap, position))


def _config(data: Any):
    from llmlab.config import ModelConfig

    return ModelConfig.from_dict(data)


ROUTES = [
    ("version", VersionHandler),
    ("runs", RunsHandler),
    (r"runs/([^/]+)", RunHandler),
    (r"runs/([^/]+)/metrics", MetricsHandler),
    ("configs/presets", PresetsHandler),
    ("configs/schema", SchemaHandler),
    ("configs/estimate", EstimateHandler),
    ("configs/saved", SavedConfigsHandler),
    (r"configs/saved/([^/]+)", SavedConfigHandler),
    ("attention", SnapshotsHandler),
    (r"runs/([^/]+)/attention", SnapshotsHandler),
    (r"runs/([^/]+)/attention/([^/]+)", SnapshotHandler),
    (r"runs/([^/]+)/attention/([^/]+)/thumbs", SnapshotThumbsHandler),
    (r"runs/([^/]+)/attention/([^/]+)/matrix", SnapshotMatrixHandler),
    (r"runs/([^/]+)/attention/([^/]+)/lens", SnapshotLensHandler),
]


def setup_handlers(web_app: web.Application, store_path: Path | None = None) -> None:
    """Add llmlab's handlers to a Jupyter server's tornado application."""
    base_url = web_app.settings["base_url"]
    web_app.settings["llmlab_store"] = Path(store_path or "llmlab-runs")
    web_app.add_handlers(".*$", [(url_path_join(base_url, API_PREFIX, route), handler)
                                 for route, handler in ROUTES])
