"""The standard library's HTTP transport for the agent's flow: one for the reference agent
(:mod:`mockfgt.probe`), the conformance matrix's urllib column and ``mockfgt diagnose``.

Client side only: nothing here knows the mock.
"""

from __future__ import annotations

import http.cookiejar
import ssl
import urllib.error
import urllib.request


class UrllibSender:
    """``send(method, path, headers, body) -> (status, body)`` to ``base_url`` over urllib, with a cookie
    jar (``cookies()`` lists it for the CSRF token) and ``context`` for TLS. An HTTP error status is an
    answer, returned like any other; what raises is a failure below HTTP, for the flow to classify."""

    def __init__(self, base_url: str, context: ssl.SSLContext | None, timeout: float) -> None:
        self.base_url, self.timeout = base_url, timeout
        self.jar = http.cookiejar.CookieJar()
        handlers: list = [urllib.request.ProxyHandler({}),  # loopback and the agent's own path: never a proxy
                          urllib.request.HTTPCookieProcessor(self.jar)]
        if base_url.startswith("https:") and context is not None:
            handlers.append(urllib.request.HTTPSHandler(context=context))
        self.opener = urllib.request.build_opener(*handlers)

    def __call__(self, method: str, path: str, headers: dict, body: bytes | None) -> tuple[int, bytes]:
        request = urllib.request.Request(self.base_url + path, data=body, method=method, headers=headers)
        try:
            with self.opener.open(request, timeout=self.timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def cookies(self) -> list[tuple[str, str | None]]:
        return [(c.name, c.value) for c in self.jar]
