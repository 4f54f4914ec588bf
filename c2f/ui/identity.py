"""Who a visitor is on a public deployment: a random id signed by the server, kept in the browser.

A token is '<id>.<signature>' (32 + 32 lowercase hex digits, HMAC-SHA256 under the server's key);
anything else, or a signature that does not verify, is no identity at all and the browser gets a
new token. API clients without a browser are identified by their Gradio session. The names of a
visitor's media and export folders are further HMACs of the id, so a URL reveals nothing that
opens the library.

The key comes from `C2F_SECRET`; without it, a key is made once and kept in the library root
(`.c2f-secret`, mode 0600), so a restart keeps every visitor's id. Gradio's BrowserState encrypts
the token in the browser's storage with a secret it sends to the page: that secret is derived from
the key (never the key itself), and the same after every restart, so a browser reads its token back.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path

KEY_FILE = ".c2f-secret"
_TOKEN = re.compile(r"[0-9a-f]{32}\.[0-9a-f]{32}")
VISITOR_ID = re.compile(r"[0-9a-f]{32}")  # every visitor id, browser or API client
log = logging.getLogger(__name__)


def signing_key(library_root: Path, env: Mapping[str, str] | None = None) -> tuple[bytes, str]:
    """(key, where it comes from): C2F_SECRET, else the key file of the library root, made once
    (exclusive create, mode 0600: two processes starting together end with the same key)."""
    env = os.environ if env is None else env
    if env.get("C2F_SECRET"):
        return env["C2F_SECRET"].encode(), "C2F_SECRET"
    path = library_root / KEY_FILE
    library_root.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        os.chmod(path, 0o600)
        key = path.read_text().strip()
        if len(key) < 32:
            raise ValueError(f"{path} holds no usable key: remove it to make a new one") from None
        return key.encode(), str(path)
    key = secrets.token_hex(32)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    log.warning("c2f: made a new key for visitor ids in %s (mode 0600; set C2F_SECRET to choose it)", path)
    return key.encode(), str(path)


class VisitorKeys:
    def __init__(self, key: bytes | str) -> None:
        self._key = key.encode() if isinstance(key, str) else key

    def _mac(self, purpose: str, value: str) -> str:
        msg = f"{purpose}:{value}".encode(errors="surrogatepass")
        return hmac.new(self._key, msg, hashlib.sha256).hexdigest()[:32]

    def new_token(self) -> str:
        """A fresh signed visitor token: '<id>.<signature>'."""
        vid = secrets.token_hex(16)
        return f"{vid}.{self._mac('visitor', vid)}"

    def verify(self, token: object) -> str | None:
        """The visitor id of a token signed with this key, else None (any other value, of any type
        or characters, included)."""
        if not isinstance(token, str) or not _TOKEN.fullmatch(token):
            return None
        vid, sig = token.split(".")
        return vid if hmac.compare_digest(sig, self._mac("visitor", vid)) else None

    def from_session(self, session_hash: str) -> str:
        """A visitor id for an API client, stable for its Gradio session."""
        return self._mac("session", str(session_hash))

    def media_name(self, visitor_id: str) -> str:
        return self._mac("media", visitor_id)

    def export_name(self, visitor_id: str) -> str:
        return self._mac("export", visitor_id)

    def browser_secret(self) -> str:
        """The BrowserState's encryption secret: public (the page holds it), stable across restarts."""
        return self._mac("browser-state", "")


__all__ = ["KEY_FILE", "VISITOR_ID", "VisitorKeys", "signing_key"]
