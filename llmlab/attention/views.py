"""bertviz's head view and model view, fed from a :class:`Capture` and made to work offline.

bertviz writes HTML that loads require.js, d3 and jQuery from a CDN, so offline (and in
locked-down JupyterLab or Notebook 7 installs) it draws nothing. :func:`offline_html` removes
its ``<script src=...>`` tags and its ``require.config({paths: ...})`` block and puts the same
libraries, built into ``llmlab/attention/static/vendor/`` from npm at install time, inline in
front: require.js itself, then d3 and jQuery registered as named AMD modules, which bertviz's
``requirejs(['jquery', 'd3'], ...)`` then finds without loading anything.

Weights are rounded to ``decimals`` (4) before bertviz turns them into JSON: the picture is
the same (bertviz draws opacity), the HTML about half the size. Pages that would pass
``max_html_mb`` (64 MB) are refused with the fix (fewer layers or heads, or ``cap.show()``).

>>> cap.head_view()                       # displays, and returns the HTML object  # doctest: +SKIP
>>> html = cap.model_view(html=True)      # the HTML string, not displayed        # doctest: +SKIP
"""

from __future__ import annotations

import re
import warnings
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from llmlab.attention.static import static_text, vendor_versions
from llmlab.errors import InputError

if TYPE_CHECKING:
    from llmlab.attention.capture import Capture

__all__ = ["head_view", "model_view", "offline_html"]

#: refuse to build bertviz HTML larger than this (MB) unless max_html_mb says otherwise
MAX_HTML_MB = 64
# bytes of HTML per attention weight, measured on bertviz 1.4 head views (causal, 12 heads):
# about 13 rounded to 4 decimals, about 27 as full float32 reprs
_BYTES_PER_WEIGHT = {True: 13, False: 27}

# a <script ... src="..."></script> tag (bertviz's require.js loader)
_SCRIPT_SRC = re.compile(r"<script\b[^>]*\bsrc\s*=\s*(['\"])[^'\"]*\1[^>]*>\s*</script\s*>", re.I)
# require.config({ paths: { name: 'url', ... } });  (bertviz's CDN paths for d3 and jQuery)
_REQUIRE_CONFIG = re.compile(
    r"require(?:js)?\s*\.\s*config\s*\(\s*\{\s*paths\s*:\s*\{[^{}]*\}\s*,?\s*\}\s*\)\s*;?", re.S)


def _inline_safe(js: str) -> str:
    """JavaScript that may sit inside a <script> element: ``</script`` and ``<!--`` would end
    or confuse the element; ``\\/`` and ``\\!`` mean the same in JS strings and regexes."""
    js = re.sub(r"</(script)", r"<\\/\1", js, flags=re.I)
    return js.replace("<!--", "<\\!--")


@lru_cache(maxsize=1)
def _prelude() -> str:
    versions = vendor_versions()
    require = static_text(f"vendor/{versions['requirejs']['file']}")
    modules = []
    for name, key in (("jquery", "jquery"), ("d3", "d3")):
        source = static_text(f"vendor/{versions[key]['file']}")
        # run the library's UMD wrapper in CommonJS mode, so it neither needs an AMD loader
        # context nor leaks globals, and register the result under bertviz's module name
        modules.append(
            f'define("{name}", [], function () {{ var module = {{ exports: {{}} }}, '
            f"exports = module.exports;\n{source}\n;return module.exports; }});"
        )
    note = (f"llmlab: require.js {versions['requirejs']['version']}, d3 "
            f"{versions['d3']['version']} and jQuery {versions['jquery']['version']} inlined so "
            "that this view needs no network (licences: llmlab/attention/static/vendor/)")
    return (f'<script type="text/javascript">/* {note} */\n{_inline_safe(require)}\n</script>\n'
            f'<script type="text/javascript">\n{_inline_safe(chr(10).join(modules))}\n</script>\n')


def offline_html(html: str) -> str:
    """bertviz's HTML made self-contained: CDN script tags and require paths removed,
    require.js, d3 and jQuery inlined. Raises :class:`FrontendNotBuiltError` when the
    libraries were not built at install, and ``RuntimeError`` if bertviz's HTML changed shape
    so that a CDN reference would stay."""
    body, tags = _SCRIPT_SRC.subn("", html)
    body, configs = _REQUIRE_CONFIG.subn(
        "/* llmlab: the CDN paths of d3 and jquery were removed; both are defined inline */", body)
    leftover = re.search(r"<script\b[^>]*\bsrc\s*=|require(?:js)?\s*\.\s*config\s*\(", body, re.I)
    if leftover:
        raise RuntimeError(
            "bertviz's HTML has a script source or require.config that llmlab does not "
            f"recognise ({body[leftover.start():leftover.start() + 80]!r}); it would load "
            "from the network. llmlab supports bertviz 1.4; please report the bertviz version."
        )
    if not configs:
        warnings.warn("bertviz's HTML had no require.config block; rendering it anyway.",
                      stacklevel=2)
    return _prelude() + body


# ---------------------------------------------------------------------- feeding bertviz
def _layer_lists(cap: Capture, kinds: list[str], layers: list[int] | None,
                 decimals: int | None) -> tuple[dict[str, list[Any]], list[int] | None]:
    """One ``[1, heads, T, S]`` tensor per layer for each kind, and bertviz's include_layers.

    When every kind holds the same layers, lists are indexed by model layer number (so bertviz
    labels layers as the model does); otherwise they are compact and numbered from 0.
    """
    chosen: dict[str, list[int]] = {}
    for kind in kinds:
        want = cap.layers[kind] if layers is None else [
            cap.layers[kind][cap.layer_position(kind, n)] for n in layers]
        chosen[kind] = want
    same = len({tuple(v) for v in chosen.values()}) == 1
    lists: dict[str, list[Any]] = {}
    for kind in kinds:
        att = cap.attention[kind]
        tensors = {}
        for number in chosen[kind]:
            t = att[cap.layers[kind].index(number)].double()
            tensors[number] = (t.round(decimals=decimals) if decimals is not None else t)[None]
        if same:
            filler = next(iter(tensors.values()))
            lists[kind] = [tensors.get(n, filler) for n in range(max(chosen[kind]) + 1)]
        else:
            lists[kind] = [tensors[n] for n in chosen[kind]]
    include = next(iter(chosen.values())) if same else None
    return lists, include


def _size_check(cap: Capture, kinds: list[str], *, include: int, heads: int, max_html_mb: float,
                what: str, rounded: bool) -> None:
    values = 0
    for kind in kinds:
        _, _, T, S = cap.attention[kind].shape
        values += include * heads * T * S
    if cap.sentence_b_start is not None:
        values *= 2  # bertviz adds the four sentence A/B blocks beside the whole matrix
    mb = values * _BYTES_PER_WEIGHT[rounded] / 1e6
    if mb > max_html_mb:
        raise InputError(
            f"bertviz's {what} would be about {mb:.0f} MB of HTML (it writes every weight into "
            f"the page as JSON), over max_html_mb={max_html_mb}. Show fewer layers or heads "
            "(layers=[...], heads=[...]), use cap.show() (built for long inputs), or pass a "
            "larger max_html_mb."
        )


def _kinds(cap: Capture, kind: str | None) -> list[str]:
    return cap.kinds if kind is None else [cap._kind(kind)]


def _bertviz_args(cap: Capture, kinds: list[str], lists: dict[str, list[Any]]) -> dict[str, Any]:
    if len(kinds) == 1 and kinds[0] != "cross":
        side = cap.sides_of(kinds[0])[0]
        args: dict[str, Any] = {"attention": lists[kinds[0]], "tokens": side.tokens}
        if cap.sentence_b_start is not None:
            args["sentence_b_start"] = cap.sentence_b_start
        return args
    names = {"encoder": "encoder_attention", "decoder": "decoder_attention",
             "cross": "cross_attention"}
    args = {names[k]: lists[k] for k in kinds}
    if "encoder" in cap.sides:
        args["encoder_tokens"] = cap.sides["encoder"].tokens
    if "decoder" in cap.sides:
        args["decoder_tokens"] = cap.sides["decoder"].tokens
    return args


def head_view(
    cap: Capture,
    kind: str | None = None,
    *,
    layer: int | None = None,
    heads: list[int] | None = None,
    layers: list[int] | None = None,
    decimals: int | None = 4,
    max_html_mb: float = MAX_HTML_MB,
    prettify_tokens: bool = True,
    display: bool = True,
    html: bool = False,
):
    """bertviz's head view of a capture, offline.

    ``kind`` picks one kind (default: all, with bertviz's selector for seq2seq); ``layer`` is
    the layer shown first and ``heads`` the heads ticked first (model numbers); ``layers``
    keeps only some layers in the page. ``html=True`` returns the HTML string; otherwise the
    view is displayed (in IPython) and an ``IPython.display.HTML`` is returned.
    """
    from bertviz import head_view as bertviz_head_view

    kinds = _kinds(cap, kind)
    lists, include = _layer_lists(cap, kinds, layers, decimals)
    n_include = len(include) if include is not None else max(len(v) for v in lists.values())
    _size_check(cap, kinds, include=n_include, heads=len(cap.heads), max_html_mb=max_html_mb,
                what="head view", rounded=decimals is not None)
    args = _bertviz_args(cap, kinds, lists)
    if layer is not None:
        number = cap.layers[kinds[0]][cap.layer_position(kinds[0], layer)]
        layer = number if include is not None else cap.layers[kinds[0]].index(number)
    head_pos = None if heads is None else [cap.head_position(h) for h in heads]
    out = bertviz_head_view(**args, layer=layer, heads=head_pos, include_layers=include,
                            prettify_tokens=prettify_tokens, html_action="return")
    return _deliver(offline_html(out.data), display=display, html=html)


def model_view(
    cap: Capture,
    kind: str | None = None,
    *,
    layers: list[int] | None = None,
    heads: list[int] | None = None,
    decimals: int | None = 4,
    max_html_mb: float = MAX_HTML_MB,
    display_mode: str = "light",
    prettify_tokens: bool = True,
    display: bool = True,
    html: bool = False,
):
    """bertviz's model view (a grid of every layer and head), offline; ``layers`` / ``heads``
    keep a subset (model numbers). Returns like :func:`head_view`."""
    from bertviz import model_view as bertviz_model_view

    kinds = _kinds(cap, kind)
    lists, include = _layer_lists(cap, kinds, layers, decimals)
    head_pos = None if heads is None else [cap.head_position(h) for h in heads]
    n_include = len(include) if include is not None else max(len(v) for v in lists.values())
    _size_check(cap, kinds, include=n_include, heads=len(head_pos or cap.heads),
                max_html_mb=max_html_mb, what="model view", rounded=decimals is not None)
    args = _bertviz_args(cap, kinds, lists)
    out = bertviz_model_view(**args, include_layers=include, include_heads=head_pos,
                             display_mode=display_mode, prettify_tokens=prettify_tokens,
                             html_action="return")
    return _deliver(offline_html(out.data), display=display, html=html)


def _deliver(page: str, *, display: bool, html: bool):
    if html:
        return page
    from IPython.display import HTML

    shown = _shown_class()(page)  # the class is made on first use: IPython loads lazily
    if display:
        from IPython import get_ipython
        from IPython.display import display as show

        ip = get_ipython()
        if ip is not None:
            show(HTML(page))
            shown._shown_in = ip.execution_count
    return shown


@lru_cache(maxsize=1)
def _shown_class():
    from IPython.display import HTML

    class ShownHTML(HTML):
        """The view's HTML; already displayed by the call that made it, so evaluating it as a
        cell's last expression does not show it a second time (``display(obj)`` still does,
        in a later cell)."""

        _shown_in: int | None = None

        def _ipython_display_(self) -> None:
            from IPython import get_ipython
            from IPython.display import display as show

            ip = get_ipython()
            if ip is not None and self._shown_in == ip.execution_count:
                self._shown_in = None
                return
            show(HTML(self.data))

    return ShownHTML

