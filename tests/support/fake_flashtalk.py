"""A local stand-in for the SoulX-FlashTalk WebSocket server, speaking its protocol, for tests only.

Single session, like the real server: ``init`` -> ``init_ok`` (frame_num, motion_frames_num, slice_len, fps, height,
width), each ``AUDI`` chunk of exactly slice_len*16000/fps samples -> one ``VIDX`` with ``slice_len`` JPEGs whose
brightness follows the chunk's loudness, ``close`` -> ``close_ok``.

    python -m tests.support.fake_flashtalk --port 8765 [--crash]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import threading

import numpy as np


def frames_for(pcm: bytes, slice_len: int, width: int, height: int) -> list[bytes]:
    from PIL import Image

    samples = np.frombuffer(pcm, "<i2").astype(np.float32) / 32768
    level = int(min(255, float(np.sqrt(np.mean(samples * samples))) * 2000)) if len(samples) else 0
    jpegs = []
    for index in range(slice_len):
        buffer = io.BytesIO()
        Image.new("RGB", (width, height), (level, index * 8 % 256, 90)).save(buffer, format="JPEG", quality=70)
        jpegs.append(buffer.getvalue())
    return jpegs


def create_app() -> object:
    from flask import Flask
    from flask_sock import Sock

    from omnirt.models.avatar import pack_vidx

    app = Flask("fake-flashtalk")
    sock = Sock(app)
    busy = threading.Lock()

    @sock.route("/")
    def session(ws: object) -> None:
        if not busy.acquire(blocking=False):
            ws.send(json.dumps({"type": "error", "message": "server busy: single-session"}))
            return
        try:
            spec = None
            while True:
                message = ws.receive()
                if isinstance(message, (bytes, bytearray)):
                    chunk = spec["slice_len"] * 16000 // spec["fps"] if spec else 0
                    if spec is None or message[:4] != b"AUDI" or len(message) - 4 != chunk * 2:
                        ws.send(json.dumps({"type": "error", "message": "bad audio chunk"}))
                        continue
                    ws.send(pack_vidx(frames_for(bytes(message[4:]), spec["slice_len"], spec["width"], spec["height"])))
                    continue
                payload = json.loads(message)
                if payload.get("type") == "init":
                    spec = {
                        "frame_num": payload.get("slice_len", 28) + 1,
                        "motion_frames_num": 1,
                        "slice_len": payload.get("slice_len", 28),
                        "fps": payload.get("fps", 25),
                        "height": payload.get("height", 704),
                        "width": payload.get("width", 416),
                    }
                    ws.send(json.dumps({"type": "init_ok", **spec}))
                elif payload.get("type") == "close":
                    ws.send(json.dumps({"type": "close_ok"}))
                    return
        finally:
            busy.release()

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--crash", action="store_true", help="print a line and exit 3, like a broken launch")
    args = parser.parse_args()
    if args.crash:
        print("boom: CUDA error: out of memory while loading the DiT", flush=True)
        sys.exit(3)
    from werkzeug.serving import make_server

    print(f"fake FlashTalk listening on {args.port}", flush=True)
    make_server("127.0.0.1", args.port, create_app(), threaded=True).serve_forever()


if __name__ == "__main__":
    main()
