"""An independent check of Telegram's HTML parse mode: only its tags, properly nested, only its
entities, no stray markup characters; and the text a reader sees once the tags are parsed."""

from __future__ import annotations

import html
import re

# https://core.telegram.org/bots/api#html-style (tags without attributes; `a` needs href).
ALLOWED_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "code", "pre"}
_TOKEN = re.compile(r"<(/?)([a-z-]+)>|&(lt|gt|amp|quot|#\d+);|([<>&])")


def check_telegram_html(text: str) -> str:
    """Raise AssertionError unless `text` parses as Telegram HTML; return its visible text."""
    stack: list[str] = []
    for match in _TOKEN.finditer(text):
        closing, tag, _entity, stray = match.groups()
        assert stray is None, f"stray {stray!r} at {match.start()} in {text[:200]!r}"
        if tag is None:
            continue
        assert tag in ALLOWED_TAGS, f"tag <{tag}> is not Telegram HTML"
        if closing:
            assert stack[-1:] == [tag], f"</{tag}> closes {stack[-1:]} in {text[:200]!r}"
            stack.pop()
        else:
            stack.append(tag)
    assert not stack, f"unclosed {stack} in {text[:200]!r}"
    return html.unescape(re.sub(r"</?[a-z-]+>", "", text))


def utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2
