"""Pixelport for Python: numpy arrays of a Pixelport server's images, over shared memory, HTTP or WebSocket.

    import pixelport
    store = pixelport.connect('http://127.0.0.1:8080')      # shared memory if the server is here with --shm
    a = store.get('demo/gradient')                          # a numpy array: one consistent generation
    store.open('demo/gradient').to_pil().show()             # Pillow

See README.md in this package for the whole API.
"""

from .descriptor import MODES, Descriptor
from .errors import PixelportError
from .image import Image, Loan, SharedImage
from .pil import from_pil, to_pil
from .shm import LAYOUT_VERSION, array, read, wait_for_change
from .store import Store, connect
from .subscription import Event, Subscription

__version__ = '0.1.0'


def describe(url: str, image_id: str, token: 'str | None' = None) -> Descriptor:
    """The descriptor of ``image_id`` from the server at ``url`` over HTTP (for ``array``/``read`` without a store)."""
    from .http import HttpClient, image_path
    return HttpClient(url, token).json('GET', image_path(image_id))


__all__ = [
    'PixelportError', 'connect', 'Store', 'Image', 'SharedImage', 'Loan', 'Event', 'Subscription',
    'from_pil', 'to_pil', 'describe', 'array', 'read', 'wait_for_change', 'MODES', 'LAYOUT_VERSION',
]
