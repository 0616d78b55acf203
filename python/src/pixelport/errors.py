"""One error type for every failure: ``PixelportError`` with the server's stable ``PXP_ERR_*`` code."""

from __future__ import annotations

from typing import Any, Dict, Optional

CLOSED = 'PXP_ERR_CLOSED'


class PixelportError(Exception):
    """An error with a stable ``code`` (``PXP_ERR_*``), as the server and every client report it.

    Match on ``code``, never on the message. The message is for people.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__('%s: %s' % (code, message))
        self.code = code
        self.message = message

    @classmethod
    def from_body(cls, body: Optional[Dict[str, Any]], fallback: str) -> 'PixelportError':
        """From a server's ``{code, message}`` body (or ``fallback`` as message when there is none)."""
        if isinstance(body, dict) and isinstance(body.get('code'), str):
            return cls(body['code'], str(body.get('message', fallback)))
        return cls('PXP_ERR_INTERNAL', fallback)


def closed(detail: str = '') -> PixelportError:
    """The server went away (or the store was closed): what every transport raises instead of socket errors."""
    message = 'The connection to the server is closed'
    return PixelportError(CLOSED, message + (' (%s)' % detail if detail else ''))
