"""The REST contract: the lab extension's route table (``labextension/src/api.ts`` ROUTES)
against the server's declared routes (``llmlab.server.handlers.ROUTES``). A route renamed,
added or dropped on one side fails here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from llmlab.server.handlers import ROUTES
from llmlab.server.routes import BYTES, Route

SRC = Path(__file__).resolve().parents[1] / "labextension" / "src"
API_TS = SRC / "api.ts"
ENTRY = re.compile(r"^\s*(\w+): '(GET|POST|PUT|DELETE) ([\w/{}]+)',?$")
CALL = re.compile(r"\b(requestAPI|requestBinary)\s*(<[^()]*?>)?\(")
NAMED_CALL = re.compile(r"\b(?:requestAPI|requestBinary)\s*(?:<[^()]*?>)?\(\s*'(\w+)'")


def client_routes(text: str) -> dict[str, tuple[str, str]]:
    """api.ts's ROUTES: name -> (method, path); every line of the table must parse."""
    match = re.search(r"export const ROUTES = \{\n(.*?)\n\} as const;", text, re.S)
    assert match, f"{API_TS} has no `export const ROUTES = {{ ... }} as const;` table"
    routes = {}
    for line in match.group(1).splitlines():
        entry = ENTRY.match(line)
        assert entry, f"cannot read this line of api.ts's ROUTES: {line!r}"
        routes[entry.group(1)] = (entry.group(2), entry.group(3))
    return routes


def contract_problems(server: tuple[Route, ...], client: dict[str, tuple[str, str]]) -> list[str]:
    """What does not match between the two tables (empty: they agree)."""
    declared = {(r.method, r.path): r for r in server}
    problems = [f"api.ts calls {method} {path} ({name}), which the server does not declare"
                for name, (method, path) in client.items() if (method, path) not in declared]
    called = set(client.values())
    problems += [f"the server declares {key[0]} {key[1]}, which api.ts does not call; call it "
                 "or mark it client=False (server-only)"
                 for key, route in declared.items() if route.client and key not in called]
    problems += [f"{key[0]} {key[1]} is marked server-only but api.ts calls it"
                 for key, route in declared.items() if not route.client and key in called]
    return problems


@pytest.fixture(scope="module")
def api_text() -> str:
    return API_TS.read_text(encoding="utf-8")


def test_api_ts_calls_exactly_the_declared_client_routes(api_text):
    assert contract_problems(ROUTES, client_routes(api_text)) == []


def test_a_route_renamed_on_either_side_is_caught(api_text):
    client = client_routes(api_text)
    renamed_client = {**client, "metrics": ("GET", "runs/{id}/metric")}
    assert contract_problems(ROUTES, renamed_client) == [
        "api.ts calls GET runs/{id}/metric (metrics), which the server does not declare",
        "the server declares GET runs/{id}/metrics, which api.ts does not call; call it or "
        "mark it client=False (server-only)"]
    renamed_server = tuple(
        Route(r.method, "configs/saved-configs", r.handler, r.summary, reply=r.reply)
        if r.path == "configs/saved" else r for r in ROUTES)
    assert "api.ts calls GET configs/saved (savedConfigs), which the server does not declare" \
        in contract_problems(renamed_server, client)
    wrong_method = {**client, "saveConfig": ("POST", "configs/saved/{name}")}
    assert len(contract_problems(ROUTES, wrong_method)) == 2


def test_every_request_in_api_ts_names_a_route(api_text):
    """Requests go through requestAPI/requestBinary with a route name (a string literal, so
    this test sees it); api.ts makes no other request and no other source file makes one."""
    names = set(client_routes(api_text))
    calls = [m for m in CALL.finditer(api_text)
             if not api_text[:m.start()].endswith("function ")]
    named = NAMED_CALL.findall(api_text)
    assert len(named) == len(calls), "a requestAPI/requestBinary call without a route name"
    assert set(named) <= names, f"calls of undeclared routes: {set(named) - names}"
    assert set(named) == names, f"routes in ROUTES that no function calls: {names - set(named)}"
    assert api_text.count("ServerConnection.makeRequest(") == 1  # in fetchAPI only
    others = [p for p in SRC.rglob("*.ts") if p != API_TS and re.search(
        r"makeRequest\(|XMLHttpRequest|llmlab/api|\brequest(API|Binary)\(", p.read_text())]
    assert others == []


def test_reply_and_body_shapes_are_types_of_the_lab_extension():
    declared = set()
    for path in SRC.rglob("*.ts"):
        declared |= set(re.findall(r"^export (?:interface|type|class) (\w+)",
                                   path.read_text(encoding="utf-8"), re.M))
    shapes = {shape for r in ROUTES if r.client for shape in (r.reply, r.body)
              if shape not in (None, BYTES)}
    assert shapes and shapes <= declared, f"not declared in labextension/src: {shapes - declared}"


def test_server_only_routes_are_few_and_named():
    assert sorted(f"{r.method} {r.path}" for r in ROUTES if not r.client) == [
        "GET configs/saved/{name}", "GET routes", "GET runs/{id}", "GET runs/{id}/attention",
        "GET version"]


def test_handlers_are_registered_one_per_path():
    from llmlab.server.routes import handler_table

    table = dict(handler_table(ROUTES))
    assert len(table) == len({r.path for r in ROUTES})
    assert table[r"configs/saved/([^/]+)"].__name__ == "SavedConfigHandler"  # its GET and PUT
    one, other = ROUTES[2], ROUTES[3]
    with pytest.raises(ValueError, match="declared twice"):
        handler_table([one, one])
    with pytest.raises(ValueError, match="served by both"):
        handler_table([one, Route("POST", one.path, other.handler, "x")])
    with pytest.raises(ValueError, match="relative to the API prefix"):
        Route("GET", r"runs/([^/]+)", object, "x")
    with pytest.raises(ValueError, match="method 'FETCH'"):
        Route("FETCH", "runs", object, "x")
