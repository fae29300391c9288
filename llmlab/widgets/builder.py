"""``ModelBuilder``: a form over :class:`~llmlab.ModelConfig` with live estimates and a diagram.

The form is generated from ``ModelConfig.json_schema()`` (a new config field gets a control
without touching this module); every change is validated by the config itself, whose message
shows under the form while Build stays disabled. Parameters, FLOPs per token and memory come
from :mod:`llmlab.estimate`; the diagram is SVG markup drawn from the config.

>>> builder = ModelBuilder(preset="baby-char")
>>> builder.fields["n_layer"].value = 2
>>> builder.config.n_layer
2
>>> model = builder.build()          # llmlab.build_model(builder.config, seed=0)
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from llmlab.config import PRESETS, ModelConfig
from llmlab.errors import ConfigError
from llmlab.widgets.snapshot import Snapshot, settings_html, snapshot_html, text_html
from llmlab.widgets.status import StatusLine

CUSTOM = "(custom)"
DTYPES = ("float32", "bfloat16", "float16")

# How the schema's fields are grouped in the form; fields not named here go under "other".
_SECTIONS = (
    ("shape", ("family", "n_layer", "n_decoder_layer", "n_head", "n_kv_head", "d_model", "d_ff",
               "vocab_size", "context_length")),
    ("components", ("pos_encoding", "rope_theta", "norm", "norm_position", "norm_eps",
                    "activation", "bias", "tie_embeddings")),
    ("training and heads", ("dropout", "init_std", "type_vocab_size", "n_labels", "name")),
)
_FIELD_IN_MESSAGE = re.compile(r"ModelConfig\.(\w+)")
#: wraps the estimates and the diagram of the last valid config while the form is invalid
_STALE = ('<div class="llmlab-stale" style="opacity:0.35" title="the last valid config\'s; '
          'fix the form to update">')


def _fields_of(exc: ConfigError) -> list[str]:
    """The fields a config error is about: its own list, else the one its message names."""
    fields = list(getattr(exc, "fields", ()) or ())
    named = _FIELD_IN_MESSAGE.search(str(exc))
    return fields or ([named.group(1)] if named else [])
_ERROR_COLOUR = "var(--jp-error-color1, #c62828)"
_BAD_FIELD_BORDER = f"1px solid {_ERROR_COLOUR}"
_FOLLOWING = ("tokens per sequence: follows context_length; type another number to estimate "
              "at that length")
_FIXED = "tokens per sequence; type 0 to follow context_length again"


class ModelBuilder(Snapshot, widgets.VBox):
    """Build a model by filling in a :class:`~llmlab.ModelConfig` form.

    ``.config`` is the form's config (:class:`~llmlab.errors.ConfigError` while it is
    invalid), ``.build()`` makes a fresh model from it, ``.model`` is the last one built,
    ``.tokenizer`` is yours to set (a trainer or generator reads it), ``.on_build(cb)`` calls
    ``cb(model)`` after every build and ``.load_config(cfg)`` fills the form.

    >>> builder = ModelBuilder(ModelConfig.preset("baby-char", n_layer=1))
    >>> builder.fields["d_model"].value = 100          # not divisible by n_head=4
    >>> builder.build_button.disabled, builder.problem.kind
    (True, 'error')
    """

    def __init__(self, config: ModelConfig | dict | str | None = None, *,
                 preset: str = "baby-char") -> None:
        self.model: Any = None
        self._tokenizer: Any = None
        self._callbacks: list[Callable[[Any], object]] = []
        self._loading = False
        self.schema = ModelConfig.json_schema()
        self.fields = {name: _field_widget(name, spec)
                       for name, spec in self.schema["properties"].items()}
        self._optional = {name for name, spec in self.schema["properties"].items()
                          if "null" in _types(spec)}
        self.preset = widgets.Dropdown(options=[CUSTOM, *ModelConfig.presets()],
                                       description="preset", value=CUSTOM)
        self.batch_size = widgets.BoundedIntText(12, min=1, max=1_000_000, description="batch")
        self.seq_len = widgets.BoundedIntText(1, min=0, max=10_000_000, description="seq len",
                                              tooltip=_FOLLOWING)
        self._seq_follows = True  # seq len shows context_length until the user types another
        self._context: int | None = None  # context_length of the last valid config
        self.dtype = widgets.Dropdown(options=DTYPES, description="dtype")
        self.seed = widgets.IntText(0, description="seed")
        self.build_button = widgets.Button(description="Build", button_style="primary",
                                           icon="cubes")
        self.problem = StatusLine()  # the config's own validation message, shown inline
        self.status = StatusLine()  # what the last action did
        self.estimate_view = widgets.HTML()
        self.diagram = widgets.HTML()
        self.estimate: Any = None

        for control in (*self.fields.values(), self.batch_size, self.dtype):
            control.observe(self._on_change, names="value")
        self.seq_len.observe(self._on_seq_len, names="value")
        self.preset.observe(self._on_preset, names="value")
        self.build_button.on_click(self._on_build_click)
        super().__init__(children=self._layout())
        self.add_class("llmlab-model-builder")
        if config is not None:
            self.load_config(config)
        else:
            self.load_config(ModelConfig.preset(preset))

    # ------------------------------------------------------------------ public API
    @property
    def config(self) -> ModelConfig:
        """The form's config; :class:`~llmlab.errors.ConfigError` naming the fix if invalid."""
        values = {name: _read(name, control, name in self._optional)
                  for name, control in self.fields.items()}
        return ModelConfig.from_dict(values)

    @property
    def tokenizer(self) -> Any:
        """The tokenizer models of this builder go with (None until you set it)."""
        return self._tokenizer

    @tokenizer.setter
    def tokenizer(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        self._refresh()

    def build(self) -> Any:
        """A fresh model from the form: ``llmlab.build_model(builder.config, seed=...)``.

        Stores it as ``.model`` and calls the ``on_build`` callbacks with it.
        """
        from llmlab.models import build_model

        cfg = self.config
        _check_tokenizer_fits(cfg, self._tokenizer)
        self.model = build_model(cfg, seed=self.seed.value)
        for callback in self._callbacks:
            callback(self.model)
        self.refresh_snapshot()
        return self.model

    def on_build(self, callback: Callable[[Any], object]) -> Callable[[Any], object]:
        """Call ``callback(model)`` after every build (usable as a decorator)."""
        if not callable(callback):
            raise TypeError(f"on_build needs a function taking the new model, got "
                            f"{type(callback).__name__}")
        self._callbacks.append(callback)
        return callback

    def load_config(self, config: ModelConfig | dict | str) -> ModelConfig:
        """Fill the form from a ModelConfig, a dict (``to_dict()``) or JSON text / a path."""
        cfg = _as_config(config)
        self._loading = True
        try:
            for name, value in cfg.to_dict().items():
                if name in self.fields:
                    self.fields[name].value = _shown(value)
        finally:
            self._loading = False
        self._refresh()
        return cfg

    @property
    def seq_len_follows(self) -> bool:
        """Whether "seq len" follows context_length (until a user types another length; 0, or
        the context length itself, makes it follow again)."""
        return self._seq_follows

    # ------------------------------------------------------------------ reacting to the form
    def _on_change(self, _change: dict) -> None:
        if not self._loading:
            self._refresh()

    def _on_seq_len(self, change: dict) -> None:
        if self._loading:
            return
        self._seq_follows = change["new"] in (0, self._context)
        self.seq_len.tooltip = _FOLLOWING if self._seq_follows else _FIXED
        self._refresh()

    def _on_preset(self, change: dict) -> None:
        if self._loading or change["new"] == CUSTOM:
            return
        with self.status.reporting("loading the preset"):
            self.load_config(ModelConfig.preset(change["new"]))
            self.status.show(f"loaded preset {change['new']!r}")

    def _on_build_click(self, _button: Any = None) -> None:
        with self.status.reporting("building the model"):
            model = self.build()
            n = sum(p.numel() for p in model.parameters())
            self.status.show(f"built a {model.config.family} model with {n:,} parameters "
                             f"(builder.model)", "ok")

    def _refresh(self) -> None:
        """Validate the form; update the message, Build, the estimates and the diagram."""
        for control in (*self.fields.values(), self.seq_len):
            control.layout.border = None
        try:
            cfg = self.config
            _check_tokenizer_fits(cfg, self._tokenizer)
        except ConfigError as exc:
            self.problem.error(str(exc))
            self.build_button.disabled = True
            for name in _fields_of(exc):
                if name in self.fields:
                    self.fields[name].layout.border = _BAD_FIELD_BORDER
            self._grey_out()
            return
        self.problem.clear()
        self.build_button.disabled = False
        self._follow_context(cfg)
        self._show_preset(cfg)
        self.diagram.value = architecture_svg(cfg)
        self._show_estimate(cfg)

    def _grey_out(self) -> None:
        """Keep the last valid estimates and diagram on screen, greyed and marked as such."""
        for view in (self.estimate_view, self.diagram):
            if view.value and not view.value.startswith(_STALE):
                view.value = f"{_STALE}{view.value}</div>"

    def _show_preset(self, cfg: ModelConfig) -> None:
        """Select the preset the form equals, or "(custom)" once a knob differs from it."""
        same = cfg.name in PRESETS and ModelConfig.preset(cfg.name) == cfg
        self._loading = True
        try:
            self.preset.value = cfg.name if same else CUSTOM
        finally:
            self._loading = False

    def _follow_context(self, cfg: ModelConfig) -> None:
        """Show the context length in "seq len" while it follows it."""
        self._context = cfg.context_length
        if self._seq_follows and self.seq_len.value != cfg.context_length:
            self._loading = True
            try:
                self.seq_len.value = min(cfg.context_length, self.seq_len.max)
            finally:
                self._loading = False

    def _show_estimate(self, cfg: ModelConfig) -> None:
        if not self._seq_follows and self.seq_len.value > cfg.context_length:
            self.estimate = None
            for control in (self.seq_len, self.fields["context_length"]):
                control.layout.border = _BAD_FIELD_BORDER
            self.estimate_view.value = (
                f'<i style="color:{_ERROR_COLOUR}">no estimate: seq len {self.seq_len.value:,} '
                f"is longer than context_length {cfg.context_length:,} (the most tokens the "
                "model reads); lower seq len, type 0 in it to follow context_length, or raise "
                "context_length</i>")
            return
        try:
            self.estimate = cfg.estimate(batch_size=self.batch_size.value,
                                         seq_len=None if self._seq_follows else self.seq_len.value,
                                         dtype=self.dtype.value)
        except ConfigError as exc:
            self.estimate = None
            self.estimate_view.value = (f"<i>no estimate: {html.escape(str(exc))}</i>")
            return
        self.estimate_view.value = self.estimate._repr_html_()

    def static_html(self) -> str:
        """The config as a table, the estimates and the diagram (or why the form is invalid)."""
        try:
            cfg = self.config
        except ConfigError as exc:
            return snapshot_html("builder", text_html(f"invalid config: {exc}", kind="error"),
                                 title="ModelBuilder")
        built = "built (builder.model)" if self.model is not None else "not built yet"
        estimate = (text_html(f"{self.estimate.params:,} parameters", kind="params")
                    + self.estimate_view.value) if self.estimate is not None else ""
        follows = " (context_length)" if self._seq_follows else ""
        cost = text_html(f"batch {self.batch_size.value}, seq len "
                         f"{self.seq_len.value}{follows}, {self.dtype.value}")
        columns = (f'<div style="display:flex;flex-wrap:wrap;gap:16px">'
                   f'<div>{settings_html(cfg.to_dict())}</div><div>{cost}{estimate}</div>'
                   f'<div>{architecture_svg(cfg)}</div></div>')
        return snapshot_html("builder", columns, text_html(self.status.message or built,
                                                           kind="status"),
                             title=f"ModelBuilder: {cfg.name or cfg.family}")

    # ------------------------------------------------------------------ layout and text
    def _layout(self) -> list[widgets.Widget]:
        sections = []
        placed: set[str] = set()
        for title, names in (*_SECTIONS, ("other", tuple(self.fields))):
            names = [n for n in names if n in self.fields and n not in placed]
            placed.update(names)
            if names:
                grid = widgets.GridBox([self.fields[n] for n in names], layout=widgets.Layout(
                    grid_template_columns="repeat(3, minmax(220px, 1fr))", grid_gap="2px 12px"))
                sections += [widgets.HTML(f"<b>{title}</b>"), grid]
        estimates = widgets.VBox([
            widgets.HTML("<b>cost</b>"),
            widgets.VBox([self.batch_size, self.seq_len, self.dtype]),
            self.estimate_view])
        right = widgets.VBox([widgets.HTML("<b>architecture</b>"), self.diagram],
                             layout=widgets.Layout(margin="0 0 0 16px"))
        return [widgets.HBox([self.preset, self.seed, self.build_button]),
                *sections, self.problem,
                widgets.HBox([estimates, right], layout=widgets.Layout(flex_flow="row wrap")),
                self.status]

    def __repr__(self) -> str:
        try:
            cfg = self.config
        except ConfigError as exc:
            return f"ModelBuilder (invalid: {exc})"
        built = "built" if self.model is not None else "not built"
        params = f"{self.estimate.params:,} params, " if self.estimate is not None else ""
        return (f"ModelBuilder: {cfg.family}, {cfg.n_layer} layers x {cfg.n_head} heads, "
                f"d_model {cfg.d_model}, {params}{built}")


# ---------------------------------------------------------------------- the form's controls
def _field_widget(name: str, spec: dict[str, Any]) -> widgets.ValueWidget:
    """The control for one schema property: dropdown, checkbox, number or text."""
    kinds = _types(spec)
    common = dict(description=name, tooltip=spec.get("description", ""),
                  style={"description_width": "110px"}, layout=widgets.Layout(width="auto"))
    if "enum" in spec:
        return widgets.Dropdown(options=spec["enum"], **common)
    if "null" in kinds:  # optional number: empty text means "the default"
        return widgets.Text(placeholder="default", **common)
    if "boolean" in kinds:
        return widgets.Checkbox(indent=False, **common)
    if "integer" in kinds:
        return widgets.IntText(**common)
    if "number" in kinds:
        return widgets.FloatText(**common)
    return widgets.Text(**common)


def _types(spec: dict[str, Any]) -> list[str]:
    return spec["type"] if isinstance(spec["type"], list) else [spec["type"]]


def _read(name: str, control: widgets.ValueWidget, optional: bool) -> Any:
    """A control's value as the config field expects it (text of an optional int parsed)."""
    if optional:
        text = control.value.strip()
        if not text:
            return None
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"ModelConfig.{name}={text!r} is not a whole number; type one, "
                              "or leave the box empty for the default.") from None
    return control.value


def _shown(value: Any) -> Any:
    """A config value as its control holds it (None as an empty text box)."""
    return "" if value is None else value


def _as_config(config: Any) -> ModelConfig:
    if isinstance(config, ModelConfig):
        return config
    if isinstance(config, dict):
        return ModelConfig.from_dict(config)
    if isinstance(config, str):
        return ModelConfig.from_json(config)
    raise ConfigError(f"load_config needs a ModelConfig, a dict or JSON text, got "
                      f"{type(config).__name__}")


def _check_tokenizer_fits(cfg: ModelConfig, tokenizer: Any) -> None:
    size = getattr(tokenizer, "vocab_size", None)
    if size is not None and cfg.vocab_size < size:
        raise ConfigError(f"ModelConfig.vocab_size={cfg.vocab_size} is smaller than the "
                          f"tokenizer's {size} tokens; set vocab_size to at least {size}.")


# ---------------------------------------------------------------------- the diagram
_BOX_W, _BOX_H, _GAP, _COL_GAP = 300, 24, 12, 40
_COLOURS = {"embed": "#d8c8e8", "attn": "#f7c99b", "cross": "#f3a8a8", "mlp": "#b9dcee",
            "norm": "#e4e4e4", "head": "#c3e6c8"}


def architecture_svg(cfg: ModelConfig) -> str:
    """An SVG block diagram of ``cfg``: embeddings -> N x [attention, MLP] -> head.

    seq2seq draws the encoder and the decoder side by side, the encoder feeding every
    decoder block's cross-attention.

    >>> "causal self-attention" in architecture_svg(ModelConfig.preset("baby-char"))
    True
    """
    if cfg.family == "seq2seq":
        columns = [_stack(cfg, "encoder", cfg.n_layer, causal=False, cross=False, head=False),
                   _stack(cfg, "decoder", cfg.decoder_layers, causal=True, cross=True, head=True)]
    else:
        columns = [_stack(cfg, cfg.family, cfg.n_layer, causal=cfg.is_causal, cross=False,
                          head=True)]
    parts, height = [], 0
    for i, column in enumerate(columns):
        x = i * (_BOX_W + _COL_GAP) + 4
        markup, bottom, tops = _draw_column(column, x)
        parts.append(markup)
        height = max(height, bottom)
        column["tops"] = tops
    if len(columns) == 2:  # encoder output -> decoder cross-attention
        y_enc = columns[0]["tops"]["last"] + _BOX_H / 2
        y_cross = columns[1]["tops"]["cross"] + _BOX_H / 2
        x0, x1 = 4 + _BOX_W, 4 + _BOX_W + _COL_GAP
        parts.append(f'<path d="M{x0} {y_enc} C{x0 + 30} {y_enc} {x1 - 30} {y_cross} {x1} '
                     f'{y_cross}" fill="none" stroke="#888" marker-end="url(#llmlab-arrow)"/>')
    width = len(columns) * (_BOX_W + _COL_GAP) - _COL_GAP + 8
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 4}" '
            f'font-family="sans-serif" font-size="11" role="img" '
            f'aria-label="{html.escape(cfg.family)} architecture">'
            '<defs><marker id="llmlab-arrow" viewBox="0 0 6 6" refX="6" refY="3" '
            'markerWidth="6" markerHeight="6" orient="auto"><path d="M0 0L6 3L0 6z" '
            'fill="#888"/></marker></defs>' + "".join(parts) + "</svg>")


def _stack(cfg: ModelConfig, title: str, n_blocks: int, *, causal: bool, cross: bool,
           head: bool) -> dict[str, Any]:
    """One column of the diagram: what comes before, inside and after the repeated block."""
    positions = {"learned": " + learned pos.", "sinusoidal": " + sinusoidal pos."}
    embed = f"embedding {cfg.vocab_size}×{cfg.d_model}{positions.get(cfg.pos_encoding, '')}"
    if cfg.type_vocab_size:
        embed += " + segments"
    heads = f"{cfg.n_head} heads" + (f", {cfg.kv_heads} kv" if cfg.kv_heads != cfg.n_head else "")
    rope = " · RoPE" if cfg.pos_encoding == "rope" else ""
    block = [("attn", f"{'causal ' if causal else ''}self-attention · {heads}{rope}")]
    if cross:
        block.append(("cross", f"cross-attention · {heads}"))
    block.append(("mlp", f"MLP {cfg.d_model}→{cfg.ffn_dim}→{cfg.d_model} · {cfg.activation}"))
    norm = "LayerNorm" if cfg.norm == "layernorm" else "RMSNorm"
    after = [("final", f"final {norm}")] if cfg.norm_position == "pre" else []
    if head:
        after.append(("head", _head_label(cfg)))
    return {"title": title, "before": [("embed", embed)], "block": block, "n": n_blocks,
            "note": f"× {n_blocks} · {norm}, {cfg.norm_position}-norm · residual", "after": after}


def _head_label(cfg: ModelConfig) -> str:
    if cfg.n_labels:
        pooled = "pooler + " if cfg.family == "bert" else "last token → "
        return f"{pooled}classifier → {cfg.n_labels} classes"
    tied = " (tied)" if cfg.tie_embeddings else ""
    what = "masked-LM head" if cfg.family == "bert" else "LM head"
    return f"{what} → {cfg.vocab_size} logits{tied}"


def _rows(column: dict[str, Any]) -> list[tuple[str, str]]:
    return [*column["before"], *column["block"], *column["after"]]


def _draw_column(column: dict[str, Any], x: float) -> tuple[str, float, dict[str, float]]:
    """SVG of one column at ``x``; its bottom, and the top of each kind of box."""
    out = [f'<text x="{x + _BOX_W / 2}" y="12" text-anchor="middle" font-weight="bold">'
           f'{html.escape(column["title"])}</text>']
    rows = _rows(column)
    first_block, last_block = len(column["before"]), len(column["before"]) + len(column["block"])
    y, frame_top, tops = 20.0, 0.0, {}
    for i, (kind, label) in enumerate(rows):
        if i == first_block:
            frame_top = y
            out.append(f'<text x="{x + 6}" y="{y + 11}" fill="#555">'
                       f'{html.escape(column["note"])}</text>')
            y += 16
        tops.setdefault(kind, y)
        tops["last"] = y
        colour = _COLOURS.get(kind, _COLOURS["norm"])
        out.append(f'<rect x="{x + 10}" y="{y}" width="{_BOX_W - 20}" height="{_BOX_H}" rx="4" '
                   f'fill="{colour}" stroke="#999"/><text x="{x + _BOX_W / 2}" '
                   f'y="{y + _BOX_H / 2 + 4}" text-anchor="middle" fill="#222">'
                   f'{html.escape(label)}</text>')
        if i < len(rows) - 1:
            out.append(f'<line x1="{x + _BOX_W / 2}" y1="{y + _BOX_H}" x2="{x + _BOX_W / 2}" '
                       f'y2="{y + _BOX_H + _GAP - 1}" stroke="#888" '
                       'marker-end="url(#llmlab-arrow)"/>')
        y += _BOX_H + _GAP
        if i == last_block - 1:
            out.append(f'<rect x="{x + 2}" y="{frame_top}" width="{_BOX_W - 4}" '
                       f'height="{y - frame_top - _GAP + 6}" rx="6" fill="none" '
                       'stroke="#666" stroke-dasharray="4 3"/>')
            y += 8
    return "".join(out), y, tops
