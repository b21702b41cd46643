"""Headers every answer carries: no MIME sniffing, no framing, no referrer leaking a path with
an id in it, and a Content-Security-Policy for anything a browser might render. Pages set a
fuller policy of their own (`pages._csp`); this one is the floor for everything else, JSON
and errors included, so a body that reflects input can never run as a page."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

BASE_CSP = b"default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
ALWAYS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                headers.extend(h for h in ALWAYS if h[0] not in names)
                if b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", BASE_CSP))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
