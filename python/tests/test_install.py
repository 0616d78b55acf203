"""The package as installed: from site-packages (not the source tree), typed, numpy its only requirement."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys

import pixelport

HERE = os.path.dirname(os.path.abspath(__file__))


def test_imported_from_the_installed_package():
    path = os.path.abspath(pixelport.__file__)
    assert not path.startswith(os.path.dirname(HERE) + os.sep), 'pixelport must come from the install, not %s' % path
    if os.environ.get('PIXELPORT_EXPECT_PREFIX'):
        assert path.startswith(os.environ['PIXELPORT_EXPECT_PREFIX']), path


def test_typed_and_versioned():
    assert os.path.isfile(os.path.join(os.path.dirname(pixelport.__file__), 'py.typed'))
    assert importlib.metadata.version('pixelport') == pixelport.__version__
    meta = importlib.metadata.metadata('pixelport')
    assert meta['Requires-Python'] == '>=3.9'
    requires = importlib.metadata.requires('pixelport') or []
    plain = [r for r in requires if 'extra ==' not in r]
    assert plain == ['numpy'], 'numpy is the only required dependency: %s' % plain
    extras = {r.split(';')[1].split('==')[1].strip().strip('"\'') for r in requires if 'extra ==' in r}
    assert {'ws', 'pil'} <= extras


def test_imports_with_numpy_alone():
    # Without msgpack, websockets and Pillow importable, the package still loads (they are optional).
    code = ('import sys\n'
            'class Block:\n'
            '    def find_spec(self, name, *a):\n'
            '        if name.split(".")[0] in ("msgpack", "websockets", "PIL"): raise ImportError(name)\n'
            'sys.meta_path.insert(0, Block())\n'
            'import pixelport, pixelport.ws\n'
            'assert not pixelport.ws.available()\n'
            'try:\n'
            '    pixelport.ws.WsConnection("ws://127.0.0.1:1/ws")\n'
            'except pixelport.PixelportError as err:\n'
            '    assert err.code == "PXP_ERR_VALIDATION" and "pixelport[ws]" in err.message\n'
            'print("ok")\n')
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd='/')
    assert r.returncode == 0 and r.stdout.strip() == 'ok', r.stderr
