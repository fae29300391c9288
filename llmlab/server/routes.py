"""The REST contract of the server extension, declared once.

Each :class:`Route` names a method and a path under ``<base_url>/llmlab/api/`` (``{name}``
stands for one path part), what it does, its query arguments, and the shapes of its request
body and reply as ``labextension/src/api.ts`` names them. ``llmlab.server.handlers.ROUTES``
lists them; the server registers its handlers from that list, serves it at ``GET routes``
and builds its docstring table from it, and ``tests/test_server_contract.py`` holds
``api.ts``'s own route table to it.

>>> route = Route("GET", "runs/{id}/metrics", object, "a run's metrics", query=("format",),
...               reply="IMetricsReply")
>>> route.pattern
'runs/([^/]+)/metrics'
>>> route.to_dict()["query"]
['format']
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

METHODS = ("GET", "POST", "PUT", "DELETE")
#: Reply shape of the routes that answer with raw bytes (their headers describe them).
BYTES = "bytes"
_PART = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Route:
    """One method on one path of the REST API."""

    method: str
    path: str
    handler: type
    summary: str
    query: tuple[str, ...] = ()
    body: str | None = None
    reply: str = ""
    client: bool = True  # False: server-only, the lab extension does not call it

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"route {self.path!r}: method {self.method!r} is not one of "
                             f"{METHODS}")
        if self.path.startswith("/") or "(" in self.path:
            raise ValueError(f"route {self.path!r}: write the path relative to the API prefix, "
                             "with {name} for a path part (no regular expression)")

    @property
    def pattern(self) -> str:
        """The path as tornado matches it: each ``{name}`` one path part."""
        return _PART.sub("([^/]+)", self.path)

    @property
    def parts(self) -> list[str]:
        """The names of the path parts, in order."""
        return _PART.findall(self.path)

    def to_dict(self) -> dict[str, object]:
        """The route as JSON (``GET routes`` answers a list of these)."""
        return {"method": self.method, "path": self.path, "summary": self.summary,
                "query": list(self.query), "body": self.body, "reply": self.reply,
                "client": self.client}


def handler_table(routes: Iterable[Route]) -> list[tuple[str, type]]:
    """``(pattern, handler)`` pairs for tornado: one per path, the methods of a path served by
    one handler (a ``ValueError`` when two routes of one path name different handlers, or
    one method and path are declared twice)."""
    handlers: dict[str, type] = {}
    seen: set[tuple[str, str]] = set()
    for route in routes:
        if (route.method, route.path) in seen:
            raise ValueError(f"route {route.method} {route.path} is declared twice")
        seen.add((route.method, route.path))
        if handlers.setdefault(route.pattern, route.handler) is not route.handler:
            raise ValueError(f"path {route.path!r} is served by both "
                             f"{handlers[route.pattern].__name__} and {route.handler.__name__}")
    return list(handlers.items())


def route_table(routes: Sequence[Route]) -> str:
    """The routes as a reStructuredText table (the handlers module's docstring shows it)."""
    rows = [(f"``{r.method} {r.path}``" + (f" ``?{'&'.join(q + '=' for q in r.query)}``"
                                             if r.query else ""),
             r.summary + ("" if r.client else " (server-only)")) for r in routes]
    width = max(len(left) for left, _ in rows)
    rule = "=" * width + "  " + "=" * max(len(right) for _, right in rows)
    lines = [rule, *(f"{left:<{width}}  {right}" for left, right in rows), rule]
    return "\n".join(lines) + "\n"
