"""The HTTP transport: the standard library's urllib, every failure as a PixelportError (docs/http.md)."""

from __future__ import annotations

import http.client
import json
import socket
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

import numpy as np

from .errors import PixelportError, closed

Headers = Mapping[str, str]


def image_path(image_id: str) -> str:
    """``/images/<id>`` with the id as one path segment (its ``/`` percent-encoded)."""
    return '/images/' + urllib.parse.quote(image_id, safe='')


class HttpClient:
    """Requests to one server, with its bearer token."""

    def __init__(self, url: str, token: Optional[str] = None, timeout: float = 30.0) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ('http', 'https') or not parsed.netloc:
            raise PixelportError('PXP_ERR_VALIDATION', 'url must be http://host:port, not %r' % url)
        self.base = '%s://%s' % (parsed.scheme, parsed.netloc)
        self.token = token
        self.timeout = timeout
        # No proxies: a Pixelport server is addressed directly (an environment proxy would see the token).
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def request(self, method: str, path: str, body: Optional[bytes] = None,
                content_type: Optional[str] = None, query: Optional[Mapping[str, Any]] = None,
                json_body: Any = None, read: Optional[Callable[[Any], Any]] = None) -> Tuple[int, Headers, Any]:
        """One request: (status, headers, body). A ``{code, message}`` answer raises PixelportError."""
        url = self.base + path
        if query:
            url += '?' + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        headers: Dict[str, str] = {}
        if json_body is not None:
            body = json.dumps(json_body).encode()
            content_type = 'application/json'
        if content_type is not None:
            headers['Content-Type'] = content_type
        if self.token is not None:
            headers['Authorization'] = 'Bearer ' + self.token
        req = urllib.request.Request(url, data=body, method=method, headers=headers)
        try:
            with self._opener.open(req, timeout=self.timeout) as res:
                return res.status, res.headers, (read(res) if read is not None else res.read())
        except urllib.error.HTTPError as err:
            raw = b''
            try:
                raw = err.read()
                parsed = json.loads(raw)
            except (ValueError, OSError):
                parsed = None
            raise PixelportError.from_body(parsed, '%s %s: HTTP %d %s' % (method, path, err.code, raw[:200].decode('utf8', 'replace')))
        except urllib.error.URLError as err:
            if isinstance(err.reason, socket.timeout):
                raise PixelportError('PXP_ERR_TIMEOUT', '%s %s: no answer within %s s' % (method, path, self.timeout))
            raise closed('%s: %s' % (self.base, err.reason))
        except socket.timeout:
            raise PixelportError('PXP_ERR_TIMEOUT', '%s %s: no answer within %s s' % (method, path, self.timeout))
        except (http.client.HTTPException, OSError) as err:
            # RemoteDisconnected, IncompleteRead, BrokenPipeError, ConnectionResetError: the server went away.
            raise closed('%s %s: %s' % (method, path, err.__class__.__name__))

    def upload(self, method: str, path: str, body: memoryview, query: Optional[Mapping[str, Any]] = None,
               content_type: str = 'application/octet-stream') -> Any:
        """Send a raw body in 1 MiB pieces; the JSON answer.

        http.client rather than urllib: a server that refuses an upload answers at once and stops reading
        (an id that does not exist, a body too large), and the refusal is still read after our send fails.
        """
        target = path + ('?' + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None}) if query else '')
        parts = urllib.parse.urlsplit(self.base)
        kind = http.client.HTTPSConnection if parts.scheme == 'https' else http.client.HTTPConnection
        conn = kind(parts.netloc, timeout=self.timeout)
        view = memoryview(body).cast('B')
        try:
            try:
                conn.putrequest(method, target, skip_accept_encoding=True)
                conn.putheader('Content-Type', content_type)
                conn.putheader('Content-Length', str(len(view)))
                if self.token is not None:
                    conn.putheader('Authorization', 'Bearer ' + self.token)
                conn.endheaders()
                for offset in range(0, len(view), 1 << 20):
                    conn.send(view[offset:offset + (1 << 20)])
            except (BrokenPipeError, ConnectionResetError):
                pass                         # refused early, or gone: the answer (if any) says which
            try:
                res = conn.getresponse()
                raw = res.read()
            except socket.timeout:
                raise PixelportError('PXP_ERR_TIMEOUT', '%s %s: no answer within %s s' % (method, path, self.timeout))
            except (http.client.HTTPException, OSError) as err:
                raise closed('%s %s: %s' % (method, path, err.__class__.__name__))
        except socket.timeout:
            raise PixelportError('PXP_ERR_TIMEOUT', '%s %s: no answer within %s s' % (method, path, self.timeout))
        except OSError as err:
            raise closed('%s: %s' % (self.base, err))
        finally:
            conn.close()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        if res.status >= 400:
            raise PixelportError.from_body(parsed, '%s %s: HTTP %d' % (method, path, res.status))
        return parsed

    def download(self, path: str) -> Tuple[Headers, np.ndarray]:
        """GET ``path`` into a fresh byte array (one copy: read straight into it). (headers, uint8 array)."""
        def into_array(res: Any) -> np.ndarray:
            length = res.headers.get('Content-Length')
            if length is None:
                return np.frombuffer(bytearray(res.read()), np.uint8)
            out = np.empty(int(length), np.uint8)
            view = memoryview(out)
            got = 0
            while got < len(out):
                n = res.readinto(view[got:])
                if not n:
                    raise closed('GET %s: the body ended after %d of %d bytes' % (path, got, len(out)))
                got += n
            return out
        _, headers, data = self.request('GET', path, read=into_array)
        return headers, data

    def json(self, method: str, path: str, **kw: Any) -> Any:
        _, _, raw = self.request(method, path, **kw)
        return json.loads(raw) if raw else None
