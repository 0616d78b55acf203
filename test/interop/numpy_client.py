#!/usr/bin/python3
"""A Pixelport client in another language that knows only HTTP and numpy's array interface.

Usage: numpy_client.py BASE_URL

Uses nothing but the Python standard library (urllib) and numpy. Creates images (zero-filled from JSON and
from raw bytes, every common dtype, an id with a '/'), lists them, reads them back through
`numpy.asarray` of an object whose `__array_interface__` is the descriptor's with `data` filled in, reads a
view from its base image's bytes by its strides and offset, checks every byte, and deletes everything.
Prints one `ok <check>` line per check and `ALL OK <n> checks` at the end; exits 1 on the first failure.
"""
import json
import sys
import urllib.error
import urllib.parse
import urllib.request

import numpy as np

BASE = sys.argv[1].rstrip("/")
checks = 0


def ok(name):
    global checks
    checks += 1
    print("ok", name, flush=True)


def fail(message):
    print("FAIL", message, flush=True)
    sys.exit(1)


def expect(condition, name):
    if not condition:
        fail(name)
    ok(name)


def request(method, path, body=None, headers=None):
    """(status, headers, body bytes); HTTP errors are answers too."""
    req = urllib.request.Request(BASE + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req) as res:
            return res.status, res.headers, res.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def call(method, path, obj=None):
    body = None if obj is None else json.dumps(obj).encode()
    headers = {} if obj is None else {"Content-Type": "application/json"}
    status, _, data = request(method, path, body, headers)
    return status, (json.loads(data) if data else None)


def image_path(image_id):
    # Ids may contain '/': one path segment, percent-encoded.
    return "/images/" + urllib.parse.quote(image_id, safe="")


def upload(array, image_id, **fields):
    """Create an image from an array's raw C-order bytes; the dtype's typestr names the element type."""
    query = {"shape": ",".join(str(n) for n in array.shape), "typestr": array.dtype.str, "id": image_id, **fields}
    path = "/images?" + urllib.parse.urlencode(query)
    data = np.ascontiguousarray(array).tobytes()
    status, _, body = request("POST", path, data, {"Content-Type": "application/octet-stream"})
    return status, json.loads(body)


def put_pixels(image_id, array):
    data = np.ascontiguousarray(array).tobytes()
    status, _, body = request("PUT", image_path(image_id) + "/data", data, {"Content-Type": "application/octet-stream"})
    return status, json.loads(body)


def download(image_id, headers=None):
    status, res_headers, data = request("GET", image_path(image_id) + "/data", headers=headers)
    if status not in (200, 206):
        fail("download %s: %s %s" % (image_id, status, data[:200]))
    return res_headers, data


class Pixels:
    """What numpy.asarray reads: the descriptor's array interface with `data` filled by downloaded bytes.

    JSON has no tuples, so the lists of the wire format become the tuples numpy asks for.
    """

    def __init__(self, interface, data):
        ai = dict(interface)
        ai["shape"] = tuple(ai["shape"])
        ai["descr"] = [tuple(d) for d in ai["descr"]]
        if ai.get("strides") is not None:
            ai["strides"] = tuple(ai["strides"])
        ai["data"] = data
        self.__array_interface__ = ai


def read(descriptor):
    """The image as a numpy array. A view's strides and offset refer to its base's bytes, so read those."""
    _, data = download(descriptor["base"])
    return np.asarray(Pixels(descriptor["__array_interface__"], data))


def same(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def main():
    rng = np.random.default_rng(20240521)

    status, health = call("GET", "/healthz")
    expect(status == 200 and health["ok"] is True, "healthz")

    # Zero-filled from JSON, then overwritten with PUT.
    status, d = call("POST", "/images", {"width": 640, "height": 480, "mode": "RGB", "id": "py/rgb"})
    expect(status == 201 and d["shape"] == [480, 640, 3] and d["typestr"] == "|u1", "create RGB from JSON")
    expect(not read(d).any(), "a new image is zero-filled")
    rgb = rng.integers(0, 256, size=(480, 640, 3), dtype=np.uint8)
    status, d = put_pixels("py/rgb", rgb)
    expect(status == 200 and d["generation"] == 1, "PUT bumps the generation")
    expect(same(read(d), rgb), "RGB read back byte-exact through __array_interface__")

    # Raw uploads of every common dtype, both byte orders, and a float array with NaN and infinities.
    arrays = {
        "py/u1": rng.integers(0, 256, size=(31, 17), dtype=np.uint8),
        "py/i1": rng.integers(-128, 128, size=(7, 5, 2), dtype=np.int8),
        "py/b1": rng.integers(0, 2, size=(9, 11)).astype(np.bool_),
        "py/u2": rng.integers(0, 65536, size=(13, 29), dtype=np.uint16),
        "py/u2be": rng.integers(0, 65536, size=(13, 29)).astype(">u2"),
        "py/i2": rng.integers(-32768, 32768, size=(6, 6), dtype=np.int16),
        "py/u4": rng.integers(0, 2**32, size=(5, 9), dtype=np.uint32),
        "py/i4": rng.integers(-2**31, 2**31, size=(12, 3), dtype=np.int32),
        "py/f4": rng.standard_normal((16, 16, 4)).astype(np.float32),
        "py/f4be": rng.standard_normal((4, 4)).astype(">f4"),
        "py/f8": rng.standard_normal((10, 10, 3)),
    }
    arrays["py/f4"][0, 0, :] = [np.nan, np.inf, -np.inf, -0.0]
    for image_id, array in arrays.items():
        status, d = upload(array, image_id)
        if status != 201:
            fail("upload %s: %s %s" % (image_id, status, d))
        if d["typestr"] != array.__array_interface__["typestr"] or tuple(d["shape"]) != array.shape:
            fail("descriptor of %s: %s %s" % (image_id, d["typestr"], d["shape"]))
        back = read(d)
        if not same(back, array):
            fail("%s is not byte-exact" % image_id)
    ok("raw uploads of %d dtypes read back byte-exact" % len(arrays))

    # A mode picked from Pillow's names: I;16 is little-endian uint16 of shape (h, w).
    i16 = rng.integers(0, 65536, size=(20, 30), dtype="<u2")
    status, _, body = request("POST", "/images?" + urllib.parse.urlencode({"width": 30, "height": 20, "mode": "I;16", "id": "py/mode"}),
                              i16.tobytes(), {"Content-Type": "application/octet-stream"})
    d = json.loads(body)
    expect(status == 201 and d["mode"] == "I;16" and same(read(d), i16), "upload by mode I;16")

    # Rows spread over blocks: still one contiguous copy to read.
    status, d = upload(rgb[:100, :200], "py/lines", layout="lines")
    expect(status == 201 and d["layout"] == "lines" and d["copied"] is True and d["readonly"] is True, "line-based image described")
    expect(same(read(d), rgb[:100, :200]), "line-based image read back byte-exact")

    # Listing.
    status, listing = call("GET", "/images")
    ids = {x["id"] for x in listing["images"]}
    expect(status == 200 and {"py/rgb", "py/mode", "py/lines", *arrays} <= ids, "list has every image")
    status, one = call("GET", image_path("py/rgb"))
    expect(status == 200 and one["id"] == "py/rgb" and one["generation"] == 1, "describe one image")

    # A view: zero-copy on the server; here, read from the base image's bytes by its strides and offset.
    status, v = call("POST", image_path("py/rgb") + "/views", {"x": 100, "y": 50, "width": 200, "height": 120, "id": "py/rgb/roi"})
    ai = v["__array_interface__"]
    expect(status == 201 and v["base"] == "py/rgb" and ai["strides"] == [640 * 3, 3, 1] and ai["offset"] == (50 * 640 + 100) * 3,
           "view descriptor has the base's strides and an offset")
    roi = read(v)
    expect(same(np.ascontiguousarray(roi), rgb[50:170, 100:300]), "view read by strides + offset is byte-exact")
    expect(roi.strides == (640 * 3, 3, 1) and not roi.flags["C_CONTIGUOUS"], "numpy reads the view in place, by its strides")
    _, compact = download("py/rgb/roi")
    expect(compact == rgb[50:170, 100:300].tobytes(), "view download is the compact ROI")
    # Writing through the view changes the base.
    patch = rng.integers(0, 256, size=(120, 200, 3), dtype=np.uint8)
    status, v = put_pixels("py/rgb/roi", patch)
    expected = rgb.copy()
    expected[50:170, 100:300] = patch
    expect(status == 200 and same(read(one), expected) and same(np.ascontiguousarray(read(v)), patch), "PUT through the view lands in the base")

    # A byte range and a conditional GET.
    headers, part = download("py/u2", {"Range": "bytes=10-19"})
    expect(part == arrays["py/u2"].tobytes()[10:20] and headers["Content-Range"] == "bytes 10-19/%d" % arrays["py/u2"].nbytes, "Range")
    status, _, _ = request("GET", image_path("py/u2") + "/data", headers={"If-None-Match": headers["ETag"]})
    expect(status == 304, "If-None-Match")

    # Errors are { code, message }.
    status, err = call("POST", "/images", {"width": 4, "height": 4, "mode": "NOPE"})
    expect(status == 400 and err["code"] == "PXP_ERR_BAD_MODE", "unknown mode is PXP_ERR_BAD_MODE")

    # Delete everything.
    status, listing = call("GET", "/images")
    for x in listing["images"]:
        if x["view"] is None:
            status, _ = call("DELETE", image_path(x["id"]))
            if status != 204:
                fail("delete %s: %s" % (x["id"], status))
    status, listing = call("GET", "/images")
    expect(status == 200 and listing["images"] == [], "deleted everything (views went with their bases)")
    status, err = call("GET", image_path("py/rgb") + "/data")
    expect(status == 404 and err["code"] == "PXP_ERR_NOT_FOUND", "a deleted image is 404")

    print("ALL OK %d checks" % checks, flush=True)


if __name__ == "__main__":
    main()
