"""API keys: random tokens, stored only as their SHA-256, each with a scope.

SHA-256 rather than a slow hash (scrypt, bcrypt): a key is 32 random bytes, so there is no
dictionary to guess from and 2**256 tokens to try; a slow hash would only add its cost to
every request (on Lambda, per cold key check). A fast hash also lets a key be found by its
digest instead of by trying each stored entry.

Stored as JSON {"keys": [{"id", "sha256", "scope", "created"}]}: locally a file
(ANALYTICS_API_KEYS_FILE), on AWS a Secrets Manager secret (ANALYTICS_API_KEYS_SECRET).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from analytics_pipeline.serving.scopes import Scope

TOKEN_PREFIX = "ak_"
# Shortest id prefix --revoke takes: fewer characters would too easily name a key by accident.
MIN_ID_PREFIX = 4


def key_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_key_entry(scope: Scope) -> tuple[str, dict[str, str]]:
    """A fresh token (shown once) and the entry that stores it hashed."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    digest = key_digest(token)
    created = datetime.now(UTC).isoformat(timespec="seconds")
    return token, {"id": digest[:12], "sha256": digest, "scope": str(scope), "created": created}


def parse_key_document(text: str, source: str) -> dict[str, Scope]:
    """digest -> scope; a malformed store is an error naming where it is, not 'no keys'."""
    try:
        entries = json.loads(text)["keys"]
        return {entry["sha256"]: Scope.parse(entry["scope"]) for entry in entries}
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"the API key store {source} is malformed: {error!r}") from None


class KeyStore:
    """Finds a presented token's scope; None for a key it does not hold."""

    name = "the key store"

    def load(self) -> dict[str, Any]:
        raise NotImplementedError

    def save(self, document: dict[str, Any]) -> None:
        raise NotImplementedError

    def scopes(self) -> dict[str, Scope]:
        raise NotImplementedError

    def scope_for(self, token: str) -> Scope | None:
        return self.scopes().get(key_digest(token))

    def add_key(self, scope: Scope) -> str:
        """Store a new key for the scope; return the token, which is not kept anywhere."""
        token, entry = new_key_entry(scope)
        document = self.load()
        document.setdefault("keys", []).append(entry)
        self.save(document)
        return token

    def entries(self) -> list[dict[str, str]]:
        """The stored keys' ids, scopes and creation times (never a key)."""
        keys: list[dict[str, str]] = self.load().get("keys", [])
        return [{name: entry[name] for name in ("id", "scope", "created")} for entry in keys]

    def revoke(self, selector: str) -> dict[str, str]:
        """Remove the one key the selector names: its id, a unique prefix of the id, or the
        key itself. Returns the removed entry; names no key or several -> ValueError."""
        document = self.load()
        keys: list[dict[str, str]] = document.get("keys", [])
        if selector.startswith(TOKEN_PREFIX):
            matches = [e for e in keys if e["sha256"] == key_digest(selector)]
        elif len(selector) < MIN_ID_PREFIX:
            raise ValueError(f"give at least {MIN_ID_PREFIX} characters of the key id")
        else:
            matches = [e for e in keys if e["id"].startswith(selector)]
        if not matches:
            shown = "that key" if selector.startswith(TOKEN_PREFIX) else f"id {selector!r}"
            raise ValueError(f"no API key with {shown} in {self.name}")
        if len(matches) > 1:
            ids = ", ".join(e["id"] for e in matches)
            raise ValueError(
                f"{selector!r} is the start of {len(matches)} key ids ({ids}): give more"
            )
        document["keys"] = [e for e in keys if e is not matches[0]]
        self.save(document)
        return matches[0]


class KeyFile(KeyStore):
    """A local JSON file, re-read when it changes (keys added while the API runs count)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = str(path)
        self._cached: tuple[tuple[int, int, int], dict[str, Scope]] | None = None

    def load(self) -> dict[str, Any]:
        if not self.path.exists():
            return {"keys": []}
        document: dict[str, Any] = json.loads(self.path.read_text())
        return document

    def save(self, document: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        # Owner-only: digests cannot be reversed, but scopes and ids are nobody else's business.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(document, handle, indent=2)
        os.replace(tmp, self.path)

    def scopes(self) -> dict[str, Scope]:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return {}
        # The inode too: every save replaces the file, so even a rewrite of the same size
        # within the clock's resolution is seen (a revoked key must stop working at once).
        version = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if self._cached is None or self._cached[0] != version:
            self._cached = (version, parse_key_document(self.path.read_text(), str(self.path)))
        return self._cached[1]


class SecretsManagerKeyStore(KeyStore):
    """A Secrets Manager secret, re-read at most every cache_seconds (a call per request
    would add a round trip and a charge to each)."""

    def __init__(self, secret_id: str, client: Any, cache_seconds: float = 60.0) -> None:
        self.secret_id = secret_id
        self.name = f"secret {secret_id}"
        self.client = client
        self.cache_seconds = cache_seconds
        self._cached: tuple[float, dict[str, Scope]] | None = None
        self._lock = threading.Lock()

    def _secret_text(self) -> str | None:
        try:
            text: str = self.client.get_secret_value(SecretId=self.secret_id)["SecretString"]
        except self.client.exceptions.ResourceNotFoundException:
            return None
        return text

    def load(self) -> dict[str, Any]:
        text = self._secret_text()
        document: dict[str, Any] = json.loads(text) if text else {"keys": []}
        return document

    def save(self, document: dict[str, Any]) -> None:
        text = json.dumps(document)
        if self._secret_text() is None:
            self.client.create_secret(Name=self.secret_id, SecretString=text)
        else:
            self.client.put_secret_value(SecretId=self.secret_id, SecretString=text)
        self._cached = None

    def scopes(self) -> dict[str, Scope]:
        with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._cached[0] > self.cache_seconds:
                text = self._secret_text()
                scopes = parse_key_document(text, self.name) if text else {}
                self._cached = (now, scopes)
            return self._cached[1]
