"""REST handlers of the llmlab server extension, under ``<base_url>/llmlab/api/``.

The routes are declared once, in :data:`ROUTES` (see :mod:`llmlab.server.routes`): the
handlers are registered from it, ``GET routes`` answers it as JSON, and the table at the
end of this docstring is made from it.

Every handler is authenticated (token or login) and authorized against the ``llmlab``
resource. Bad requests get a 4xx with ``{"message": ..., "status": ...}``; a config or
estimate input that fails validation also carries ``"errors": [{"field", "message",
"related"}]`` (the field at fault and the other fields the problem is about). Run ids and
config names are checked against strict patterns, so no request reaches a path outside the
run store. Files
the store cannot read (a manifest that is not JSON, a FIFO where a file belongs) give a 422
saying why and what to do. Every file read runs on a small thread pool
(:mod:`llmlab.server.pool`), never on the event loop; one that takes too long gives a 504.
Anything unexpected gives a 500 with a generic message (the traceback goes to the log).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from llmlab._version import __version__
from llmlab.server.pool import DEFAULT_TIMEOUT, DEFAULT_WORKERS, ReadPool, ReadTimeout, SharedReads
from llmlab.server.routes import BYTES, Route, handler_table, route_table
from llmlab.server.snapshots import json_type

#: URL prefix of every llmlab endpoint, relative to the server's base URL.
API_PREFIX = "llmlab/api"

#: Resource name that jupyter_server authorizers see for llmlab requests.
AUTH_RESOURCE = "llmlab"

#: Saved configs live in this folder of the run store (not a run id, so run listings skip it).
CONFIGS_DIR = "configs"
CONFIG_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
MAX_PAGE = 500
#: Longest message a reply carries (a config value quoted in an error can be huge).
MAX_MESSAGE = 2000
#: Largest saved config file read back (a ModelConfig is well under 2 kB).
MAX_CONFIG_BYTES = 1 << 20
#: Bounds of an estimate request's batch and sequence sizes.
MAX_BATCH = 1_000_000
MAX_SEQ_LEN = 1 << 20


class LlmlabAPIHandler(APIHandler):
    """Base class: JSON replies, jupyter_server auth, llmlab auth resource, 4xx on bad input,
    file reads on the bounded read pool, and a 500 with a generic message (never a hung
    request or a Python error text) for anything unexpected."""

    auth_resource = AUTH_RESOURCE

    @property
    def store_path(self) -> Path:
        return self.settings["llmlab_store"]

    @property
    def pool(self) -> ReadPool:
        return self.settings["llmlab_pool"]

    def reply(self, data: Any) -> None:
        """Send ``data`` as strict JSON (NaN and infinities become null)."""
        self.send_json(encode(data))

    def send_json(self, body: bytes) -> None:
        """Send a body :func:`encode` made."""
        self.set_header("Content-Type", "application/json")
        self.finish(body)

    def fail(self, status: int, message: str, fields: Sequence[str] = ()) -> None:
        """Stop with ``status`` and ``{"message": message}``; ``fields`` (the field at fault
        first, then the others the problem is about) adds the structured ``errors``."""
        raise Refusal(status, message, fields)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.set_header("Content-Type", "application/json")
        err = kwargs.get("exc_info", (None, None))[1]
        message = getattr(err, "log_message", None) if isinstance(err, web.HTTPError) else None
        if message is None and status_code >= 500:
            message = (f"llmlab could not answer {self.request.method} {self.request.path} "
                       "because of an unexpected error; the Jupyter server log has the "
                       "details. Please report it.")
        fields = err.fields if isinstance(err, Refusal) else ()
        self.finish(json.dumps(refusal_body(status_code, message or self._reason, fields)))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, web.HTTPError):
            super().log_exception(typ, value, tb)
        else:
            self.log.error("llmlab: unexpected error in %s %s", self.request.method,
                           self.request.path, exc_info=(typ, value, tb))

    async def _execute(self, *args: Any, **kwargs: Any) -> None:
        """Tornado turns an ``Exception`` into a 500; this does the same for any other
        ``BaseException`` (a polars panic is one), so no request hangs unanswered."""
        try:
            await super()._execute(*args, **kwargs)
        except (KeyboardInterrupt, SystemExit, GeneratorExit):
            raise
        except BaseException as exc:  # noqa: BLE001 - the safety net of every llmlab route
            import asyncio

            if isinstance(exc, asyncio.CancelledError):
                raise
            self.log_exception(type(exc), exc, exc.__traceback__)
            if not self._finished:
                self.send_error(500)

    async def off_loop(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` on the read pool; store problems become their 4xx, a read that takes
        too long a 504, and non-``Exception`` errors (a polars panic) an ``Exception``."""
        try:
            return await self.pool.run(_guarded, fn, *args)
        except ReadTimeout:
            self.fail(504, f"reading the run store {self.store_path} took longer than "
                           f"{self.pool.timeout:g} s; it may be on a slow or hung disk, or hold "
                           "a file that blocks readers. Check the store folder and try again.")
        except Exception as err:
            refusal = refusal_of(err)
            if refusal is None:
                raise
            self.fail(*refusal)

    async def reply_off_loop(self, fn: Callable[..., Any], *args: Any) -> None:
        """Compute ``fn(*args)`` and its JSON text on the read pool, then send it."""
        self.send_json(await self.off_loop(lambda: encode(fn(*args))))

    def json_body(self) -> Any:
        try:
            return json.loads(self.request.body or b"null")
        except ValueError as err:  # JSONDecodeError, UnicodeDecodeError, a 5,000-digit number
            self.fail(400, f"the request body is not valid JSON ({err}); send a JSON object")
        except RecursionError:
            self.fail(400, "the request body nests JSON arrays or objects too deeply to read; "
                           "send a flat JSON object such as a config")

    def int_arg(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.get_query_argument(name, str(default))
        try:
            value = int(raw)
        except ValueError:
            self.fail(400, f"query argument {name}={raw[:40]!r} is not an integer")
        if not low <= value <= high:
            self.fail(400, f"query argument {name}={value} must be between {low} and {high}")
        return value

    def bool_arg(self, name: str) -> bool:
        raw = self.get_query_argument(name, "0")
        if raw not in ("0", "1", "true", "false"):
            self.fail(400, f"query argument {name}={raw[:40]!r}; use 1 or 0 (true or false)")
        return raw in ("1", "true")

    def run(self, run_id: str):
        """The run ``run_id`` of the store, or a 404 (a blocking read: call it on the pool)."""
        from llmlab.runs import InvalidRunIdError, RunNotFoundError, RunStore

        try:
            return RunStore(self.store_path).get(run_id)
        except InvalidRunIdError:
            self.fail(404, f"{run_id[:80]!r} is not a run id (runs are named like "
                           "20261123-071800-3f9a2c)")
        except RunNotFoundError:
            self.fail(404, f"no run {run_id!r} in the run store")


def encode(data: Any) -> bytes:
    """``data`` as strict JSON bytes (NaN and infinities become null)."""
    from llmlab.runs.manifest import to_jsonable

    return json.dumps(to_jsonable(data), allow_nan=False).encode("utf-8")


def refusal_of(err: BaseException) -> tuple[int, str] | None:
    """The 4xx status and message for an error that a bad request or a damaged store
    causes, or None for a bug (which becomes a 500)."""
    from llmlab._files import UnsafeFileError
    from llmlab.errors import ConfigError
    from llmlab.runs import RunStoreError
    from llmlab.server.snapshots import SnapshotRequestError

    if isinstance(err, SnapshotRequestError):
        return err.status, str(err)
    if isinstance(err, (RunStoreError, UnsafeFileError)):
        return 422, str(err)
    if isinstance(err, ConfigError):
        return 422, f"a config in the run store is not valid: {err}"
    if isinstance(err, OSError):
        name = f" {err.filename}" if err.filename else ""
        return 422, (f"the run store file{name} cannot be read ({err.strerror or err}); "
                     "check that it is a readable file, or remove it")
    return None


class Refusal(web.HTTPError):
    """A 4xx with a message and, for a bad config or estimate input, the fields it is about."""

    def __init__(self, status: int, message: str, fields: Sequence[str] = ()) -> None:
        super().__init__(status, reason=message.splitlines()[0][:200] if message else None,
                         log_message=_clip(message))
        self.fields = tuple(fields)


def refusal_body(status: int, message: str, fields: Sequence[str] = ()) -> dict[str, Any]:
    """``{"message", "status"}`` and, when ``fields`` name the fields at fault (that field
    first, then the others the problem is about), ``errors: [{field, message, related}]``."""
    body: dict[str, Any] = {"message": message, "status": status}
    if fields:
        body["errors"] = [{"field": fields[0], "message": message, "related": list(fields[1:])}]
    return body


class WorkerError(Exception):
    """A non-``Exception`` error raised by a read (a polars panic), carried as an Exception."""


def _guarded(fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except BaseException as exc:
        if isinstance(exc, (Exception, KeyboardInterrupt, SystemExit)):
            raise
        raise WorkerError(f"{type(exc).__name__}: {exc}") from exc


def _clip(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE else message[:MAX_MESSAGE] + " [...]"


class VersionHandler(LlmlabAPIHandler):
    """``GET version``: the llmlab version the server runs."""

    @web.authenticated
    @authorized
    def get(self) -> None:
        """Reply ``{"version": "<llmlab.__version__>"}``."""
        self.reply({"version": __version__})


class PlotlyBundleHandler(LlmlabAPIHandler):
    """``GET plotly/bundle``: plotly's widget bundle as the server's plotly has it, its
    version in ``X-Llmlab-Version``. The lab extension evaluates it while the page is idle so
    the first llmlab chart does not wait for it (``llmlab.widgets.plotly_widget``)."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        from llmlab.widgets.plotly_widget import installed_bundle

        found = await self.off_loop(installed_bundle)
        if found is None:
            self.fail(404, "plotly is not installed where the Jupyter server runs; "
                      "`pip install plotly` there (charts still load from the kernel)")
        version, body = found
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Llmlab-Version", version)
        self.finish(body, set_content_type="text/javascript")


class RunsHandler(LlmlabAPIHandler):
    """``GET runs``: one page of the run listing, with optional filters (``q``: text in the
    name, id, family, kind or a tag, as ``llmlab.runs.store.filter_runs``)."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        offset = self.int_arg("offset", 0, 0, 10**9)
        limit = self.int_arg("limit", 100, 1, MAX_PAGE)
        filters = {column: self.get_query_argument(column, None) for column in ("status", "kind")}
        text = self.get_query_argument("q", None)
        frame = await self.settings["llmlab_listings"].run(self.store_path, self._list)
        await self.reply_off_loop(self._page, frame, offset, limit, filters, text)

    async def _list(self):
        """The store's listing (requests that overlap share one: it reads every manifest)."""
        from llmlab.runs import RunStore

        return await self.off_loop(RunStore(self.store_path).list)

    def _page(self, frame: Any, offset: int, limit: int, filters: dict[str, str | None],
              text: str | None) -> dict[str, Any]:
        import polars as pl

        from llmlab.runs.store import filter_runs

        for column, wanted in filters.items():
            if wanted:
                frame = frame.filter(pl.col(column) == wanted)
        frame = filter_runs(frame, text)
        page = frame.slice(offset, limit).drop("path")
        return {"total": frame.height, "offset": offset, "limit": limit,
                "store": str(self.store_path), "exists": self.store_path.is_dir(),
                "runs": page.to_dicts()}


class RunHandler(LlmlabAPIHandler):
    """``GET runs/<id>``: the run's manifest and complete checkpoints (422 when the manifest
    cannot be read, saying why)."""

    @web.authenticated
    @authorized
    async def get(self, run_id: str) -> None:
        await self.reply_off_loop(self._describe, run_id)

    def _describe(self, run_id: str) -> dict[str, Any]:
        run = self.run(run_id)
        manifest = run.manifest
        return {"id": run.id, "status": run.status, "manifest": manifest,
                "checkpoints": [step for step, _ in run.checkpoints()]}


class MetricsHandler(LlmlabAPIHandler):
    """``GET runs/<id>/metrics``: the wide metrics table as JSON columns or Arrow IPC."""

    @web.authenticated
    @authorized
    async def get(self, run_id: str) -> None:
        fmt = self.get_query_argument("format", "json")
        if fmt not in ("json", "arrow"):
            self.fail(400, f"format={fmt[:40]!r}; use json or arrow")
        names = self.get_query_argument("names", None)
        body = await self.off_loop(self._metrics, run_id, fmt, names)
        if fmt == "json":
            self.send_json(body)
        else:  # APIHandler.finish would label the body JSON unless told otherwise
            self.finish(body, set_content_type="application/vnd.apache.arrow.file")

    def _metrics(self, run_id: str, fmt: str, names: str | None) -> bytes:
        import io

        run = self.run(run_id)
        frame = run.metrics
        if names:
            wanted = [n for n in names.split(",") if n in frame.columns]
            frame = frame.select(["step", *[n for n in wanted if n != "step"]])
        if fmt == "json":
            return encode({"id": run.id, "columns": frame.to_dict(as_series=False)})
        buffer = io.BytesIO()
        frame.write_ipc(buffer)
        return buffer.getvalue()


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
    """``POST configs/estimate``: validate a config and estimate its size, compute and memory.

    With ``"check": true`` (a form validating as the user types) an invalid config or
    estimate input is an answer, not an error: ``200 {"valid": false, "message", "errors"}``
    (a browser logs every 4xx as a console error); valid ones add ``"valid": true``."""

    @web.authenticated
    @authorized
    def post(self) -> None:
        body = self.json_body()
        if not isinstance(body, dict) or "config" not in body:
            self.fail(400, 'send {"config": {...}, "batch_size": 1, "seq_len": null, '
                           '"dtype": "float32", "check": false}')
        check = body.get("check", False)
        if not isinstance(check, bool):
            self.fail(400, f"check must be true or false, got {json_type(check)}", ("check",))
        try:
            reply = self._estimate(body)
        except Refusal as refusal:
            if not check or refusal.status_code != 400:
                raise
            self.reply({"valid": False, **refusal_body(400, refusal.log_message or "",
                                                       refusal.fields)})
            return
        self.reply({**reply, "valid": True} if check else reply)

    def _estimate(self, body: dict[str, Any]) -> dict[str, Any]:
        from llmlab.errors import ConfigError

        batch_size = _size(body, "batch_size", 1, MAX_BATCH)
        seq_len = _size(body, "seq_len", None, MAX_SEQ_LEN)
        dtype = body.get("dtype", "float32")
        if not isinstance(dtype, str):
            self.fail(400, f"dtype must be a string such as \"float32\" or \"bfloat16\", got "
                           f"{json_type(dtype)}", ("dtype",))
        cfg = _config_or_400(self, body["config"])
        try:
            estimate = cfg.estimate(batch_size=batch_size, seq_len=seq_len, dtype=dtype)
        except ConfigError as err:
            self.fail(400, str(err), err.fields)
        return {"config": cfg.to_dict(), "estimate": estimate.to_dict(), "text": str(estimate)}


class SavedConfigsHandler(LlmlabAPIHandler):
    """``GET configs/saved``: configs saved in the store's ``configs/`` folder (files that are
    not readable JSON objects are left out of the listing, and logged)."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        await self.reply_off_loop(self._saved)

    def _saved(self) -> dict[str, Any]:
        folder = self.store_path / CONFIGS_DIR
        saved = {}
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            try:
                saved[path.stem] = read_saved_config(path)
            except (OSError, ValueError) as err:  # damaged by hand, or not a file
                self.log.warning("llmlab: skipping saved config %s: %s", path, err)
        return saved


class SavedConfigHandler(LlmlabAPIHandler):
    """``PUT configs/saved/<name>`` saves a validated config; ``GET`` reads it back (422 when
    the saved file is not a readable JSON object)."""

    @web.authenticated
    @authorized
    async def put(self, name: str) -> None:
        from llmlab._files import write_text_atomic

        self._check_name(name)
        cfg = _config_or_400(self, self.json_body())
        path = self.store_path / CONFIGS_DIR / f"{name}.json"
        await self.off_loop(write_text_atomic, path, cfg.to_json() + "\n")
        self.reply({"name": name, "config": cfg.to_dict()})

    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        self._check_name(name)
        await self.reply_off_loop(self._read, name)

    def _read(self, name: str) -> Any:
        path = self.store_path / CONFIGS_DIR / f"{name}.json"
        if not path.exists():
            self.fail(404, f"no saved config named {name!r}")
        try:
            return read_saved_config(path)
        except ValueError as err:
            self.fail(422, f"saved config {name!r} cannot be read: {err}. Save it again "
                           f"(PUT configs/saved/{name}) or delete {CONFIGS_DIR}/{name}.json")

    def _check_name(self, name: str) -> None:
        if not CONFIG_NAME.fullmatch(name):
            self.fail(400, f"config name {name[:80]!r} must be 1-64 letters, digits, '_', '.' "
                           "or '-', starting with a letter or digit")


def read_saved_config(path: Path) -> dict[str, Any]:
    """A saved config file's JSON object; ``ValueError`` saying why when it is not one,
    :class:`~llmlab._files.UnsafeFileError` when it is not a regular file (never blocks)."""
    from llmlab._files import read_regular_text

    try:
        data = json.loads(read_regular_text(path, MAX_CONFIG_BYTES))
    except RecursionError:
        raise ValueError("it nests JSON too deeply") from None
    except ValueError as err:  # JSONDecodeError and UnicodeDecodeError
        raise ValueError(f"it is not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise ValueError(f"it holds {json_type(data)}, not a JSON object")
    return data


class SnapshotAPIHandler(LlmlabAPIHandler):
    """Base of the attention snapshot endpoints: the work runs on the read pool (reading and
    decompressing a layer takes a while), and SnapshotRequestError becomes its 4xx."""

    async def snapshot(self, run_id: str, name: str):
        from llmlab.server.snapshots import check_name, open_snapshot

        return await self.off_loop(lambda: open_snapshot(self.run(run_id), check_name(name)))

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
        await self.reply_off_loop(self._entries, run_id)

    def _entries(self, run_id: str | None) -> dict[str, Any]:
        from llmlab.runs import RunStore
        from llmlab.server.snapshots import list_snapshots

        run = self.run(run_id) if run_id is not None else None
        return {"store": str(self.store_path), "exists": self.store_path.is_dir(),
                "snapshots": list_snapshots(RunStore(self.store_path), run)}


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
        await self.reply_off_loop(lens_rows, snap, position)


def _config_or_400(handler: LlmlabAPIHandler, data: Any):
    """``ModelConfig.from_dict(data)``, or a 400 with the config error."""
    from llmlab.config import ModelConfig
    from llmlab.errors import ConfigError

    try:
        return ModelConfig.from_dict(data)
    except ConfigError as err:
        handler.fail(400, str(err), err.fields)


def _size(body: dict[str, Any], name: str, default: int | None, high: int) -> int | None:
    """An estimate request's ``batch_size`` or ``seq_len``: an int in ``[1, high]`` (or the
    default); a 400 naming the field otherwise."""
    value = body.get(name, default)
    if value is None and default is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= high:
        small = isinstance(value, int) and not isinstance(value, bool) and abs(value) < 10**12
        shown = value if small else json_type(value)
        raise Refusal(400, f"{name} must be a whole number from 1 to {high:,}"
                      + (" or null (the config's context_length)" if default is None else "")
                      + f", got {shown}", (name,))
    return value


class RoutesHandler(LlmlabAPIHandler):
    """``GET routes``: the declared REST contract (:data:`ROUTES`) as JSON."""

    @web.authenticated
    @authorized
    def get(self) -> None:
        self.reply({"prefix": API_PREFIX, "routes": [route.to_dict() for route in ROUTES]})


#: The REST API, declared once (reply and body names are ``labextension/src/api.ts``'s types).
ROUTES: tuple[Route, ...] = (
    Route("GET", "version", VersionHandler, "the llmlab version the server runs",
          reply="IVersionReply", client=False),
    Route("GET", "routes", RoutesHandler, "this table as JSON", reply="{prefix, routes}",
          client=False),
    Route("GET", "plotly/bundle", PlotlyBundleHandler,
          "plotly's widget bundle (version in X-Llmlab-Version), evaluated before the first chart",
          reply=BYTES),
    Route("GET", "runs", RunsHandler, "runs of the store, newest first, paged",
          query=("offset", "limit", "status", "kind", "q"), reply="IRunsPage"),
    Route("GET", "runs/{id}", RunHandler, "one run: manifest, checkpoints",
          reply="{id, status, manifest, checkpoints}", client=False),
    Route("GET", "runs/{id}/metrics", MetricsHandler,
          "its metrics, wide: JSON columns (format=json) or Arrow IPC (format=arrow)",
          query=("format", "names"), reply="IMetricsReply"),
    Route("GET", "configs/presets", PresetsHandler, "the built-in ModelConfig presets",
          reply="ConfigsByName"),
    Route("GET", "configs/schema", SchemaHandler,
          "the JSON Schema of ModelConfig (the panel's form)", reply="IConfigSchema"),
    Route("POST", "configs/estimate", EstimateHandler,
          "validate a config and estimate its size, compute and memory",
          body="IEstimateRequest", reply="IEstimateReply"),
    Route("GET", "configs/saved", SavedConfigsHandler, "the configs saved in the store",
          reply="ConfigsByName"),
    Route("PUT", "configs/saved/{name}", SavedConfigHandler, "save a validated config",
          body="Config", reply="ISavedConfigReply"),
    Route("GET", "configs/saved/{name}", SavedConfigHandler, "one saved config",
          reply="Config", client=False),
    Route("GET", "attention", SnapshotsHandler,
          "attention snapshots of every run (readable or not)", reply="ISnapshotList"),
    Route("GET", "runs/{id}/attention", SnapshotsHandler, "the snapshots of one run",
          reply="ISnapshotList", client=False),
    Route("GET", "runs/{id}/attention/{name}", SnapshotHandler,
          "one snapshot: tokens, layers, heads, format version and the inspector's meta",
          reply="ISnapshotInfo"),
    Route("GET", "runs/{id}/attention/{name}/thumbs", SnapshotThumbsHandler,
          "all thumbnails, uint8 (offsets in the meta)", reply=BYTES),
    Route("GET", "runs/{id}/attention/{name}/matrix", SnapshotMatrixHandler,
          "one matrix, little-endian float16 (shape in X-Llmlab-Shape)",
          query=("kind", "layer", "head", "hide_first", "merge_words"), reply=BYTES),
    Route("GET", "runs/{id}/attention/{name}/lens", SnapshotLensHandler,
          "the saved logit lens at one token position", query=("position",),
          reply="ILensRows"),
)

if __doc__ is not None:  # python -OO drops docstrings
    __doc__ += "\nRoutes\n------\n\n" + route_table(ROUTES)


def setup_handlers(web_app: web.Application, store_path: Path | None = None, *,
                   workers: int = DEFAULT_WORKERS, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Add llmlab's handlers to a Jupyter server's tornado application; their file reads run
    on a pool of ``workers`` threads and give up (504) after ``timeout`` seconds."""
    base_url = web_app.settings["base_url"]
    web_app.settings["llmlab_store"] = Path(store_path or "llmlab-runs")
    web_app.settings["llmlab_pool"] = ReadPool(workers, timeout)
    web_app.settings["llmlab_listings"] = SharedReads()
    web_app.add_handlers(".*$", [(url_path_join(base_url, API_PREFIX, pattern), handler)
                                 for pattern, handler in handler_table(ROUTES)])
