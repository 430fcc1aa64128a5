"""The FortiOS refusals every part of the state raises: an error envelope, or a refusal before any handler."""

from __future__ import annotations


class FortiOSError(Exception):
    """A refusal the device answers with an error envelope (status, FortiOS error code, CLI text)."""

    def __init__(self, http_status: int, error: int | None = None, cli_error: str | None = None, mkey=None):
        super().__init__(f"HTTP {http_status} error {error}")
        self.http_status, self.error, self.cli_error, self.mkey = http_status, error, cli_error, mkey


class AuthFailure(Exception):
    """The request is refused before any handler runs: 401 (credential or trusthost) or 429 (lockout)."""

    def __init__(self, http_status: int, reason: str):
        super().__init__(reason)
        self.http_status, self.reason = http_status, reason
