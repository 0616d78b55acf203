"""A Pixelport WebSocket client in Python, written from docs/protocol.md alone.

Uses only the standard `msgpack` and `websockets` (asyncio API) libraries plus numpy. Runs a scenario
against the server at argv[1] (ws://host:port/ws) and prints one JSON object with what it saw; the
TypeScript test (ws.test.ts) checks it against the server's store.
"""
import asyncio
import hashlib
import json
import sys

import msgpack
import numpy as np
import websockets


class PixelportError(Exception):
    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")
        self.code = code


class Client:
    """Requests matched to replies by `req`; streams reassembled by `stream` (protocol.md §3, §6)."""

    def __init__(self, ws):
        self.ws = ws
        self.next_req = 1
        self.pending = {}       # req -> Future of the reply (or of the assembled frame, for gets)
        self.streams = {}       # stream -> {"frame": header, "buf": bytearray, "got": int}
        self.events = {}        # sub -> asyncio.Queue of (event, frame or None)
        self.waiting_frame = {} # sub -> event waiting for its frame (data: true)
        self.data_subs = set()
        self.reader = asyncio.ensure_future(self.read())

    @classmethod
    async def connect(cls, url):
        ws = await websockets.connect(url, max_size=None, compression=None)
        return cls(ws)

    def req(self):
        r = self.next_req
        self.next_req += 1
        return r

    async def send(self, message):
        await self.ws.send(msgpack.packb(message, use_bin_type=True))

    async def request(self, message):
        req = self.req()
        fut = asyncio.get_running_loop().create_future()
        self.pending[req] = fut
        await self.send({**message, "req": req})
        return await fut

    async def read(self):
        try:
            async for raw in self.ws:
                assert isinstance(raw, bytes), "the server sends binary frames only"
                self.dispatch(msgpack.unpackb(raw, raw=False))
        except websockets.ConnectionClosed:
            pass
        for fut in self.pending.values():
            if not fut.done():
                fut.set_exception(PixelportError("PXP_ERR_CLOSED", "connection closed"))

    def dispatch(self, m):
        op = m["op"]
        if op == "frame":
            self.streams[m["stream"]] = {"frame": m, "buf": bytearray(m["byteLength"]), "got": 0, "chunks": 0}
        elif op == "chunk":
            s = self.streams[m["stream"]]
            assert m["offset"] == s["got"], "chunks arrive in order"
            s["buf"][m["offset"]:m["offset"] + len(m["data"])] = m["data"]
            s["got"] += len(m["data"])
            s["chunks"] += 1
        elif op == "end":
            s = self.streams.pop(m["stream"])
            assert s["got"] == s["frame"]["byteLength"] == m["byteLength"]
            assert s["chunks"] == s["frame"]["chunks"]
            frame = s["frame"]
            result = (frame, bytes(s["buf"]))
            if "req" in frame:
                self.settle(frame["req"], result)
            else:
                event = self.waiting_frame.pop(frame["sub"])
                assert event["generation"] == frame["generation"]
                self.events[frame["sub"]].put_nowait((event, result))
        elif op == "event":
            if m["sub"] in self.data_subs and m["type"] != "deleted":
                self.waiting_frame[m["sub"]] = m
            else:
                self.events[m["sub"]].put_nowait((m, None))
        elif op == "error":
            if m.get("stream") is not None:
                self.streams.pop(m["stream"], None)
            if m["req"] is not None:
                fut = self.pending.pop(m["req"], None)
                if fut is not None and not fut.done():
                    fut.set_exception(PixelportError(m["code"], m["message"]))
        else:
            if op == "subscribed":
                self.events[m["sub"]] = asyncio.Queue()
            self.settle(m["req"], m)

    def settle(self, req, value):
        fut = self.pending.pop(req, None)
        if fut is not None and not fut.done():
            fut.set_result(value)

    # ---- operations --------------------------------------------------------------------------------

    async def hello(self):
        # fragmentSize: chunk messages arrive as fragmented WebSocket messages (websockets joins them).
        return await self.request({"op": "hello", "protocol": 1, "client": "python-interop", "fragmentSize": 8192})

    async def put(self, data, **fields):
        """Inline when small, else header + chunks + end (protocol.md §7)."""
        data = bytes(data)
        limit = min(self.limits["chunkSize"], self.limits["maxMessageBytes"] - 4096)
        if len(data) <= limit:
            return (await self.request({"op": "put", **fields, "data": data}))["descriptor"]
        req = self.req()
        fut = asyncio.get_running_loop().create_future()
        self.pending[req] = fut
        await self.send({"op": "put", "req": req, **fields, "byteLength": len(data)})
        for offset in range(0, len(data), limit):
            if fut.done():
                break
            await self.send({"op": "chunk", "req": req, "offset": offset, "data": data[offset:offset + limit]})
        await self.send({"op": "end", "req": req})
        return (await fut)["descriptor"]

    async def get(self, id, **options):
        frame, data = await self.request({"op": "get", "id": id, **options})
        array = np.frombuffer(data, dtype=np.dtype(frame["typestr"])).reshape(frame["shape"])
        return frame, array

    async def subscribe(self, **options):
        reply = await self.request({"op": "subscribe", **options})
        if options.get("data"):
            self.data_subs.add(reply["sub"])
        return reply["sub"]


def sha(b):
    return hashlib.sha256(bytes(b)).hexdigest()


async def main(url):
    out = {}
    c = await Client.connect(url)
    welcome = await c.hello()
    c.limits = welcome["limits"]
    out["welcome"] = {"protocol": welcome["protocol"], "server": welcome["server"], "limitKeys": sorted(welcome["limits"]),
                      "fragmentSize": welcome["fragmentSize"]}

    # An image made by the TypeScript side: bytes and array interface.
    frame, ts = await c.get("ts/gray16")
    out["tsImage"] = {"shape": list(ts.shape), "dtype": ts.dtype.str, "sha": sha(ts.tobytes()), "sum": int(ts.astype(np.int64).sum())}
    d = (await c.request({"op": "describe", "id": "ts/gray16"}))["descriptor"]
    ai = d["__array_interface__"]
    out["arrayInterface"] = {"shape": ai["shape"], "typestr": ai["typestr"], "version": ai["version"]}

    # Small upload in one message, large one in chunks, each read back.
    small = np.arange(4 * 3 * 3, dtype=np.uint8).reshape(3, 4, 3)
    await c.put(small.tobytes(), id="py/small", width=4, height=3, mode="RGB")
    rng = np.random.default_rng(42)
    big = rng.integers(0, 255, size=(400, 600, 4), dtype=np.uint8)
    desc = await c.put(big.tobytes(), id="py/big", width=600, height=400, mode="RGBA")
    out["bigDescriptor"] = {"id": desc["id"], "shape": desc["shape"], "generation": desc["generation"]}
    frame, got = await c.get("py/big")
    out["bigRoundTrip"] = bool(np.array_equal(got, big))
    out["bigChunks"] = frame["chunks"]
    out["bigSha"] = sha(big.tobytes())

    # A region, against numpy slicing.
    frame, part = await c.get("py/big", region={"x": 17, "y": 33, "width": 101, "height": 57})
    out["region"] = {"equal": bool(np.array_equal(part, big[33:90, 17:118])), "shape": frame["shape"]}

    # A float image (little-endian, 4-byte items).
    f = rng.random((50, 70), dtype=np.float32)
    await c.put(f.tobytes(), shape=[50, 70], typestr="<f4", id="py/float")
    _, gotf = await c.get("py/float")
    out["floatRoundTrip"] = bool(np.array_equal(gotf, f))

    # A live feed: subscribe with data, overwrite, receive the event and its frame.
    sub = await c.subscribe(ids=["py/big"], policy="latest", data=True)
    new = 255 - big
    await c.put(new.tobytes(), id="py/big")
    event, (fr, data) = await asyncio.wait_for(c.events[sub].get(), 20)
    arr = np.frombuffer(data, dtype=np.dtype(fr["typestr"])).reshape(fr["shape"])
    out["event"] = {"type": event["type"], "generation": event["generation"], "skipped": event["skipped"], "frameEqual": bool(np.array_equal(arr, new))}
    await c.request({"op": "unsubscribe", "sub": sub})

    # Errors by code.
    errors = {}
    for name, message in [("missing", {"op": "describe", "id": "nope"}), ("unknownOp", {"op": "fly"}),
                          ("badType", {"op": "create", "width": "10", "height": 1, "mode": "L"}),
                          ("badRegion", {"op": "get", "id": "py/small", "region": {"x": 3, "y": 0, "width": 2, "height": 1}})]:
        try:
            await c.request(message)
            errors[name] = None
        except PixelportError as e:
            errors[name] = e.code
    out["errors"] = errors

    await c.request({"op": "delete", "id": "py/small"})
    out["list"] = sorted(d["id"] for d in (await c.request({"op": "list"}))["images"])
    await c.ws.close()
    await c.reader
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
