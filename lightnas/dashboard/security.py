"""Safe by default: a token on every request when the dashboard is reachable from elsewhere, the
Host header checked on loopback (no DNS rebinding), no cross-site form posts, form bodies
refused past their size limit before they are read whole."""

from __future__ import annotations

import ipaddress
import secrets
from urllib.parse import urlsplit

from starlette.datastructures import FormData
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message

from lightnas.errors import ConfigError

COOKIE = "lightnas_dashboard_token"
LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
# scripts only from the dashboard itself (Plotly sets inline styles; SVGs are shown as blob: URLs)
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or an address) only accepts connections from this machine."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def new_token() -> str:
    return secrets.token_urlsafe(24)


def _hostname(value: str) -> str:
    return urlsplit(f"//{value}").hostname or ""


def presented_token(request: Request) -> str | None:
    """The token of a request: `?token=`, the cookie set after it, or `Authorization: Bearer`."""
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.query_params.get("token") or request.cookies.get(COOKIE)


class Guard(BaseHTTPMiddleware):
    """Refuses requests without the token (when one is set), with a foreign Host header (when
    bound to loopback) and unsafe requests from another site."""

    def __init__(self, app: ASGIApp, token: str | None, loopback: bool) -> None:
        super().__init__(app)
        self.token = token
        self.loopback = loopback

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        host = request.headers.get("host", "")
        if self.loopback and not is_loopback(_hostname(host)):
            return PlainTextResponse("forbidden host", status_code=403)
        if request.method in UNSAFE and not self._same_origin(request, host):
            return PlainTextResponse("cross-site request refused", status_code=403)
        if self.token is not None:
            given = presented_token(request) or ""
            if not secrets.compare_digest(given.encode(), self.token.encode()):
                return PlainTextResponse(
                    "token required: open the URL that `lightnas dashboard` printed",
                    status_code=401,
                )
        response = await call_next(request)
        response.headers.update(HEADERS)
        if self.token is not None and request.query_params.get("token") == self.token:
            response.set_cookie(COOKIE, self.token, httponly=True, samesite="strict")
        return response

    @staticmethod
    def _same_origin(request: Request, host: str) -> bool:
        """Browsers send Origin with every POST (and Sec-Fetch-Site, the newer ones): both must
        say this very origin, scheme included. A request with neither comes from a program
        (curl, a script), not from a page another site serves."""
        origin = request.headers.get("origin")
        site = request.headers.get("sec-fetch-site")
        if site is not None and site not in ("same-origin", "none"):
            return False
        if origin is None:
            return True
        if origin == "null":  # a sandboxed or privacy-sensitive context: only its own word counts
            return site == "same-origin"
        return origin.lower() == f"{request.url.scheme}://{host}".lower()


class BodyTooLarge(ConfigError):
    """A request body over its limit: refused before it is read whole."""


async def limited_form(request: Request, limit: int) -> FormData:
    """The request's form; BodyTooLarge when its body is over `limit` bytes: by its
    Content-Length before anything is read, else as soon as the bytes received pass it (a
    chunked body declares no length)."""
    refused = BodyTooLarge(f"the form is larger than {limit // 1024} KiB")
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise refused
    received = 0

    async def receive() -> Message:
        nonlocal received
        message = await request.receive()
        received += len(message.get("body", b""))
        if received > limit:
            raise refused
        return message

    return await Request(request.scope, receive).form(max_files=1, max_fields=8)
