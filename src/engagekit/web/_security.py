"""The headers every response of ``engagekit serve`` carries, and the signing of its
cookies.

The Content-Security-Policy allows scripts, styles and images from the server itself
only (no inline script, no inline style), forbids framing, and keeps forms and
``<base>`` on the site. Pages that show anything from a signed-in session must not be
cached (``Cache-Control: no-store``); the stylesheet may be.

Examples
--------
>>> headers = security_headers(static=False)
>>> headers["X-Content-Type-Options"], headers["Cache-Control"]
('nosniff', 'no-store')
>>> signer = CookieSigner("a secret of thirty-two characters or more", "session")
>>> signer.unsign(signer.sign("token"))
'token'
>>> signer.unsign(signer.sign("token")[:-1] + "x") is None
True
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "CookieSigner",
    "hash_token",
    "new_token",
    "same_token",
    "security_headers",
]

#: The policy of every response: what the pages may load, and from where.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)


def security_headers(*, static: bool) -> dict[str, str]:
    """The security headers of one response; ``static`` for the stylesheet (which holds
    nothing of a session, so it may be cached)."""
    return {
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cache-Control": "public, max-age=3600" if static else "no-store",
    }


def new_token() -> str:
    """A random token: 256 bits, URL-safe text."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The SHA-256 of a session token, as WEB_SESSIONS stores it (never the token).

    >>> len(hash_token("abc"))
    64
    """
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def same_token(a: object, b: object) -> bool:
    """Whether two tokens are the same non-empty text (compared in constant time).

    >>> same_token("x", "x"), same_token("x", "y"), same_token("", ""), same_token(None, "x")
    (True, False, False, False)
    """
    if not isinstance(a, str) or not isinstance(b, str) or not a or not b:
        return False
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


class CookieSigner:
    """Signs a cookie's value with the server's secret (itsdangerous), so that a cookie
    the server did not make, or one changed by a single character, is refused."""

    def __init__(self, secret: str, purpose: str) -> None:
        from itsdangerous import URLSafeSerializer

        self._serializer = URLSafeSerializer(secret, salt=f"engagekit-{purpose}")

    def sign(self, value: str) -> str:
        return str(self._serializer.dumps(value))

    def unsign(self, signed: str | None) -> str | None:
        """The value, or None when ``signed`` is missing, tampered with or not a text."""
        from itsdangerous import BadData

        if not signed:
            return None
        try:
            value = self._serializer.loads(signed)
        except BadData:
            return None
        return value if isinstance(value, str) and value else None
