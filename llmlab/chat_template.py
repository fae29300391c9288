"""Chat templates: the Jinja programs chat models ship to turn a conversation into a prompt.

Rendered the way ``transformers`` renders them, so a prompt built here is the one the model
was trained on: a sandboxed Jinja environment (a template cannot reach Python objects or the
file system), ``trim_blocks`` and ``lstrip_blocks``, the ``loopcontrols`` extension, a
``tojson`` filter that keeps non-ASCII text as it is, and the helpers templates call
(``raise_exception``, ``strftime_now``).

>>> template = ("{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}\\n{% endfor %}"
...             "{% if add_generation_prompt %}<assistant>{% endif %}")
>>> render_chat(template, [{"role": "user", "content": "Hi"}], add_generation_prompt=True)
'<user>Hi\\n<assistant>'
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from llmlab.errors import TokenizerError


def render_chat(template: str, messages: Sequence[Mapping[str, Any]], *,
                add_generation_prompt: bool = False, **variables: Any) -> str:
    """``template`` rendered for ``messages`` (dicts with "role" and "content").

    >>> render_chat("{{ messages[0]['content'] | upper }}", [{"role": "user", "content": "a"}])
    'A'
    """
    _check_messages(messages)
    import jinja2

    try:
        program = _compiled(template)
        return program.render(messages=list(messages), add_generation_prompt=add_generation_prompt,
                              **variables)
    except TokenizerError:
        raise
    except jinja2.TemplateError as err:
        raise TokenizerError(
            f"the chat template failed: {type(err).__name__}: {err}. Check the messages "
            "(a list of {'role': ..., 'content': ...}) and the template's own rules (some "
            "allow no system message, or need user and assistant turns to alternate)."
        ) from None


def _check_messages(messages: Sequence[Mapping[str, Any]]) -> None:
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence):
        raise TokenizerError(
            f"messages must be a list of {{'role': ..., 'content': ...}} dicts, got "
            f"{type(messages).__name__}.")
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping) or "role" not in message:
            raise TokenizerError(
                f"message {index} is {message!r}; each message is a dict with a 'role' "
                "('system', 'user', 'assistant') and a 'content'.")


@lru_cache(maxsize=16)
def _compiled(template: str) -> Any:
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.datetime.now().strftime(fmt)
    try:
        return env.from_string(template)
    except jinja2.TemplateSyntaxError as err:
        raise TokenizerError(
            f"the chat template is not valid Jinja (line {err.lineno}: {err.message}); fix "
            "chat_template in tokenizer_config.json or chat_template.jinja."
        ) from None


def _tojson(value: Any, ensure_ascii: bool = False, indent: int | None = None,
            separators: tuple[str, str] | None = None, sort_keys: bool = False) -> str:
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)


def _raise_exception(message: str) -> None:
    raise TokenizerError(f"the chat template refused these messages: {message}")
