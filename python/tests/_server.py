"""Start a real Pixelport server (the built CLI, dist/cli/main.js) for the tests, and stop it."""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import threading
import time
from typing import List, Optional

ROOT = os.environ.get('PIXELPORT_ROOT') or os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
NODE = os.environ.get('PIXELPORT_NODE', 'node')
CLI = os.path.join(ROOT, 'dist', 'cli', 'main.js')


class Server:
    """``node dist/cli/main.js serve --port 0 ...``; ``url`` parsed from its "listening on" line."""

    def __init__(self, *args: str, shm: bool = True, prefix: Optional[str] = None) -> None:
        # A restart passes the dead server's prefix, so the new one finds (and with --recover adopts) its segments.
        self.prefix = prefix or 'pxpy' + secrets.token_hex(5)
        argv = [NODE, CLI, 'serve', '--port', '0', '--capacity', '256M', '--block-size', '16M']
        if shm:
            argv += ['--shm', '--shm-prefix', self.prefix]
        argv += list(args)
        env = dict(os.environ)
        env.pop('NODE_OPTIONS', None)       # tap's loader must not follow us into the server
        for name in ('PIXELPORT_TOKENS', 'PIXELPORT_TOKEN_FILE', 'PIXELPORT_SHM', 'PORT', 'HOST'):
            env.pop(name, None)
        self.proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
        self.output: List[str] = []
        self.url: Optional[str] = None
        found = threading.Event()

        def pump() -> None:  # keep reading so the server never blocks on a full pipe
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                self.output.append(line)
                m = re.search(r'listening on (http://\S+)', line)
                if m and self.url is None:
                    self.url = m.group(1)
                    found.set()
            found.set()

        threading.Thread(target=pump, daemon=True).start()
        if not found.wait(30) or self.url is None:
            self.proc.kill()
            raise RuntimeError('the server did not start:\n' + ''.join(self.output))

    def kill(self, keep_segments: bool = False) -> None:
        """SIGKILL: the way a server dies without saying goodbye (its segments stay with ``keep_segments``)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        if not keep_segments:
            self._remove_segments()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._remove_segments()

    def _remove_segments(self) -> None:
        # After SIGKILL the segments stay (the next server with this prefix would remove them; there is none).
        for name in os.listdir('/dev/shm'):
            if name.startswith(self.prefix + '-'):
                try:
                    os.unlink(os.path.join('/dev/shm', name))
                except OSError:
                    pass

    def segments(self) -> List[str]:
        return [n for n in os.listdir('/dev/shm') if n.startswith(self.prefix + '-')]


def wait_until(predicate, timeout: float = 10.0, what: str = 'condition'):  # type: ignore[no-untyped-def]
    """Poll ``predicate`` until it returns a true value; FAIL (AssertionError) after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError('timed out after %s s waiting for %s' % (timeout, what))
        time.sleep(0.01)
