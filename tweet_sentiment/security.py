"""Response headers that keep browsers from misusing the service's answers: no sniffing, no framing, no
referrer, and a Content-Security-Policy that allows the page's own inline script and style by hash only."""

from __future__ import annotations

import base64
import hashlib
import re

_COMMON = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
# JSON answers are data: nothing in them may load, run or be framed, and no cache keeps them.
JSON_HEADERS = {
    **_COMMON,
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Cache-Control": "no-store",
}


def _hashes(page: str, tag: str) -> str:
    blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", page, flags=re.DOTALL)
    return " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(block.encode("utf-8")).digest()).decode() + "'" for block in blocks
    )


def page_headers(page: bytes) -> dict[str, str]:
    """Headers of the HTML page: its inline <script> and <style> run because their hashes are listed, and it
    may call the API of its own origin only."""
    text = page.decode("utf-8")
    policy = (
        f"default-src 'none'; script-src {_hashes(text, 'script')}; style-src {_hashes(text, 'style')}; "
        "connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    return {**_COMMON, "Content-Security-Policy": policy, "Cache-Control": "no-cache"}
