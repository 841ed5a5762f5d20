"""MkDocs hook: keep the placeholders of the click help text (``<stem>.bpf.o``).

mkdocs-click renders each command's help as Markdown, where a word in angle
brackets is taken for an HTML tag and the browser drops it. Only the command
line reference embeds click help, so only that page is touched.
"""

from __future__ import annotations

import re
from typing import Any

# Inline HTML the docs may really use; any other <word> is a placeholder of the help.
_HTML = {"a", "b", "blockquote", "br", "code", "dd", "details", "div", "dl", "dt", "em",
         "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "kbd", "li", "ol", "p", "pre",
         "small", "span", "strong", "sub", "summary", "sup", "table", "tbody", "td", "th",
         "thead", "tr", "ul"}
_PLACEHOLDER = re.compile(r"<(/?)([A-Za-z_][\w.-]*)>")


def _escape(match: re.Match[str]) -> str:
    if match.group(2).lower() in _HTML:
        return match.group(0)
    return f"&lt;{match.group(1)}{match.group(2)}&gt;"


def on_page_content(html: str, page: Any, **_: Any) -> str:
    if not page.file.src_uri.startswith("reference/cli"):
        return html
    return _PLACEHOLDER.sub(_escape, html)
