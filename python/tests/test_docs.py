"""Every Python example in python/README.md and in the README's "From Python" section runs, as written,
against a real server (the URL in the text replaced by the test server's)."""

from __future__ import annotations

import os
import re
from typing import List, Tuple

import numpy as np
import pytest
from PIL import Image as PILImage

import pixelport
from _server import ROOT, Server

DOC_URL = 'http://127.0.0.1:8080'


def python_blocks(path: str, section: str = '') -> List[Tuple[str, str]]:
    """(name, code) of each ```python block of ``path`` (of its ``## section`` only, when given)."""
    with open(path, encoding='utf8') as f:
        text = f.read()
    if section:
        start = text.index('\n## ' + section + '\n')
        end = text.find('\n## ', start + 1)
        text = text[start:end if end >= 0 else len(text)]
    blocks = re.findall(r'```python\n(.*?)```', text, re.S)
    assert blocks, 'no python examples in %s %s' % (path, section)
    name = os.path.relpath(path, ROOT)
    return [('%s#%d' % (name, i + 1), code) for i, code in enumerate(blocks)]


EXAMPLES = (python_blocks(os.path.join(ROOT, 'python', 'README.md'))
            + python_blocks(os.path.join(ROOT, 'README.md'), 'From Python'))


@pytest.fixture(scope='module')
def doc_server():
    s = Server()
    with pixelport.connect(s.url) as store:          # what the examples expect to find
        ramp = np.linspace(0, 255, 256).astype(np.uint8)
        store.put('demo/gradient', np.stack([np.tile(ramp, (256, 1)), np.tile(ramp[:, None], (1, 256)),
                                             np.full((256, 256), 128, np.uint8)], axis=-1), mode='RGB')
    yield s
    s.stop()


@pytest.mark.parametrize('name,code', EXAMPLES, ids=[n for n, _ in EXAMPLES])
def test_example_runs(doc_server, monkeypatch, capsys, name, code):
    shown = []
    monkeypatch.setattr(PILImage.Image, 'show', lambda self, *a, **k: shown.append(self))
    assert DOC_URL in code, '%s should use %s' % (name, DOC_URL)
    exec(compile(code.replace(DOC_URL, doc_server.url), name, 'exec'), {'__name__': '__doc_example__'})
    if '.show()' in code:
        assert shown and shown[0].size == (256, 256), 'the example showed the picture'
    if 'print(' in code:
        assert capsys.readouterr().out, 'the example printed something'
