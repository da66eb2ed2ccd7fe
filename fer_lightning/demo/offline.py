"""Serve gradio's page without references to other hosts, so that it loads offline and tells no third party
that someone opened it.

gradio 5's page template hard-codes a script from cdnjs.cloudflare.com (iframe-resizer, only useful when the
page is embedded in another site) and preconnects to Google's font servers; neither can be switched off. This
ASGI middleware drops every ``<script src>`` and ``<link>`` tag of the page that points at another host
(``<meta>`` tags stay: a browser never fetches them). ``tests/test_demo.py`` checks in a real browser that the
page then requests nothing from anywhere but the demo's own server.
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from typing import Any

Message = MutableMapping[str, Any]

_EXTERNAL_TAGS = re.compile(
    rb"<script\b[^>]*\bsrc=[\"']?(?:https?:)?//[^>]*>\s*</script>|<link\b[^>]*\bhref=[\"']?(?:https?:)?//[^>]*>",
    re.IGNORECASE,
)


def without_external_tags(html: bytes) -> bytes:
    """``html`` minus its ``<script src=...></script>`` and ``<link href=...>`` tags that name another
    host."""
    return _EXTERNAL_TAGS.sub(b"", html)


class LocalOnlyPage:
    """ASGI middleware: rewrites the HTML of ``GET /`` (the page itself) with :func:`without_external_tags`;
    every other request (files, the queue's event stream) passes through untouched."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Message, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or scope["path"] not in ("", "/"):
            await self.app(scope, receive, send)
            return
        start: Message = {}
        body: list[bytes] = []

        async def rewrite(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)  # held back: the length changes
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            body.append(message.get("body", b""))
            if message.get("more_body"):
                return
            content = b"".join(body)
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            if any(k.lower() == b"content-type" and v.startswith(b"text/html") for k, v in headers):
                content = without_external_tags(content)
            headers.append((b"content-length", str(len(content)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": content})

        await self.app(scope, receive, rewrite)
