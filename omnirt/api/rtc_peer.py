"""WebRTC delivery of realtime avatar sessions: the peer connections, their media tracks, data channels and media
pumps. The HTTP door (:mod:`omnirt.api.webrtc`) parses and authorises; this module owns everything after that, and
knows nothing of Flask: the blueprint hands it an open session lease and a speech source.

One asyncio event loop per process, in a dedicated OS thread, runs every peer connection (aiortc needs a real loop).
A fleet front end runs under gevent (:mod:`omnirt.serve` monkey-patches the standard library), so the loop thread is
started with the original ``_thread.start_new_thread``, the loop polls with the original selector, and aiortc's
encoder calls (``run_in_executor``) go to native worker threads; nothing on the loop thread blocks on a gevent
primitive, and the other side only hands it work through ``call_soon_threadsafe``, thread-safe deques and plain
attributes.

Per peer: an ``RTCPeerConnection`` with a video track (the session's fps, 90 kHz pts) and an audio track (20 ms
frames, 48 kHz s16 mono, resampled from the session's 16 kHz by PyAV); both pace themselves in real time, and both
are fed by a **media pump**, a plain thread that owns the session's lease. The pump sends the lease one audio chunk
at a time (speech from the TTS, silence when idle) and keeps about one chunk ahead of playout: audio chunk *k* and
the JPEG frames rendered for it enter their tracks together, stamped with their place in the content. The audio
track is the clock (silence while starved); the video track shows the frame of the instant the audio plays, decoding
only the frames it shows. The data channel (label ``omnirt``) carries the client's ``speak`` / ``cancel`` /
``ping`` / ``close`` and the session's events (README, "WebRTC").

A peer is freed (lease closed, tracks stopped, connection closed, threads ended) when its connection fails or
closes, its data channel closes, the client says ``close``, the session fails, or nothing arrives on the data channel
for the idle timeout.
"""

from __future__ import annotations

import array
import asyncio
import collections
import fractions
import importlib
import itertools
import json
import logging
import math
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import av
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from aiortc.sdp import SessionDescription

from omnirt.avatars.media import SAMPLE_RATE, SessionSpec, unpack_vidx
from omnirt.avatars.media import MessageKind as Kind

log = logging.getLogger(__name__)

DATA_CHANNEL = "omnirt"
AUDIO_RATE = 48000
AUDIO_FRAME = AUDIO_RATE // 50  # 20 ms
FRAME_S = AUDIO_FRAME / AUDIO_RATE
AUDIO_STALL_S = 0.25  # audio not pulled for this long: the video goes on by itself
VIDEO_CLOCK = 90000
CHUNK_S = 0.16  # the audio per lease round trip: 4 frames at 25 fps
MAX_SDP_CHARS = 100_000
MAX_SPEECH_CHARS = 4096
TICK_S = 0.01  # how often the pump looks at its commands and the playout queue while it waits
LEAD_MARGIN_S = 0.06  # the pump starts the next chunk when the queued video covers its round trip plus this
MAX_LATE_S = 0.5  # a track this far behind its clock starts a new one rather than catching up in a burst
NEGOTIATE_S = 20.0
MAX_RENDER_ERRORS = 3  # consecutive failed chunks before the session gives up
OK_DIRECTIONS = (None, "sendrecv", "recvonly")
ONSET_LEVEL = 100  # int16: quieter than this, the start of an utterance is silence and is skipped
ONSET_PREROLL = SAMPLE_RATE // 50  # 20 ms kept before the onset


class PeerError(Exception):
    """A coded refusal: ``invalid_sdp`` and ``no_capacity`` at the door; on a data channel, any error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class SpeechSource(Protocol):
    """Streaming TTS for one peer (the blueprint gives one bound to its app and TTS model)."""

    def stream(self, text: str, voice: str | None, on_job: Callable[[str], None]) -> Iterator[bytes]:
        """Yield int16 mono PCM at 16 kHz as it is synthesised; call ``on_job`` with the synthesis job's id once it
        is known. Raises :class:`PeerError` when the synthesis is refused or fails."""
        ...

    def cancel(self, job_id: str) -> None:
        """Stop a synthesis."""
        ...


def chunk_frames(fps: int) -> int:
    """Frames per lease round trip: about ``CHUNK_S`` of video, and a whole number of 16 kHz samples (so audio and
    video never drift apart)."""
    for frames in range(max(1, round(CHUNK_S * fps)), fps + 1):
        if frames * SAMPLE_RATE % fps == 0:
            return frames
    return fps


def check_offer(sdp: Any) -> None:
    """``invalid_sdp`` unless ``sdp`` is an SDP offer with a data channel and video and audio the client receives."""
    if not isinstance(sdp, str) or not sdp.strip():
        raise PeerError("invalid_sdp", "The offer's sdp must be a non-empty string.")
    if len(sdp) > MAX_SDP_CHARS:
        raise PeerError("invalid_sdp", f"The offer's sdp is longer than {MAX_SDP_CHARS} characters.")
    try:
        parsed = SessionDescription.parse(sdp)
    except Exception as exc:  # noqa: BLE001 - the parser's errors are as varied as the input
        raise PeerError("invalid_sdp", f"The offer is not valid SDP ({type(exc).__name__}).") from None
    used = [media for media in parsed.media if media.kind == "application" or media.direction in OK_DIRECTIONS]
    missing = [kind for kind in ("application", "video", "audio") if kind not in {media.kind for media in used}]
    if missing:
        names = {"application": f"a data channel (label '{DATA_CHANNEL}')", "video": "video", "audio": "audio"}
        raise PeerError(
            "invalid_sdp",
            f"The offer needs {', '.join(names[kind] for kind in missing)} (video and audio recvonly or sendrecv).",
        )
    for media in used:
        if media.dtls is None or not media.dtls.fingerprints:
            raise PeerError("invalid_sdp", f"The offer's {media.kind} section has no DTLS fingerprint.")
        if media.ice is None or not media.ice.usernameFragment or not media.ice.password:
            raise PeerError("invalid_sdp", f"The offer's {media.kind} section has no ICE credentials.")


# -- the loop thread ---------------------------------------------------------------------------------------------------


def _original(module: str, name: str) -> Any:
    """``module.name`` as it was before gevent's monkey-patching (the attribute itself when nothing patched it)."""
    try:
        from gevent import monkey
    except ImportError:
        return getattr(importlib.import_module(module), name)
    return monkey.get_original(module, name)


class _RtcLoop(asyncio.SelectorEventLoop):
    """An event loop whose default executor is native threads fed through a C queue, so aiortc's encoder calls run
    in parallel (the codecs release the GIL) even in a gevent-patched process, without concurrent.futures' locks."""

    def __init__(self, selector: Any, workers: int) -> None:
        super().__init__(selector)
        from _queue import SimpleQueue  # the C queue: native locks whatever gevent patched

        self._jobs: Any = SimpleQueue()
        start = _original("_thread", "start_new_thread")
        for _ in range(workers):
            start(self._work, ())

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            future, func, args = job
            try:
                result, error = func(*args), None
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
                result, error = None, exc
            try:
                self.call_soon_threadsafe(_settle, future, result, error)
            except RuntimeError:  # the loop is closed
                return

    def run_in_executor(self, executor: Any, func: Any, *args: Any) -> asyncio.Future:  # type: ignore[override]
        if executor is not None:
            return super().run_in_executor(executor, func, *args)
        future = self.create_future()
        self._jobs.put((future, func, args))
        return future


def _settle(future: asyncio.Future, result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class PeerService:
    """This process's WebRTC peers: the loop thread (started on first use), admission (``max_peers``), and the
    peers themselves until each is freed."""

    def __init__(self, *, max_peers: int, idle_s: float) -> None:
        self.max_peers, self.idle_s = max_peers, idle_s
        self.peers: dict[str, Peer] = {}
        self._lock = _original("_thread", "allocate_lock")()  # taken briefly, from the loop thread too
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ids = itertools.count()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                self._loop = self._start_loop()
            return self._loop

    @staticmethod
    def _start_loop() -> asyncio.AbstractEventLoop:
        box: list[Any] = []

        def run() -> None:
            loop = _RtcLoop(_original("selectors", "DefaultSelector")(), workers=min(4, os.cpu_count() or 1))
            box.append(loop)
            loop.run_forever()

        _original("_thread", "start_new_thread")(run, ())
        while not box:
            _original("time", "sleep")(0.001)
        return box[0]

    def call(self, coroutine: Any, timeout: float) -> Any:
        """Run ``coroutine`` on the loop and wait for its result from any thread or greenlet (by polling: a gevent
        greenlet cannot block on a lock the loop thread releases)."""
        done: list[asyncio.Future] = []

        def start() -> None:
            asyncio.ensure_future(coroutine).add_done_callback(done.append)

        self.loop.call_soon_threadsafe(start)
        deadline = time.monotonic() + timeout
        while not done:
            if time.monotonic() > deadline:
                raise PeerError("timeout", "The WebRTC negotiation took too long.")
            time.sleep(0.002)
        return done[0].result()

    def open(self, offer_sdp: str, spec: SessionSpec) -> Peer:
        """A peer for ``spec`` that has answered ``offer_sdp`` (``peer.answer``); ``no_capacity`` when this process
        holds ``max_peers`` already, ``invalid_sdp`` when the offer cannot be negotiated. Start it with
        :meth:`Peer.start` once the session's lease is open, or let it go with :meth:`Peer.discard`."""
        check_offer(offer_sdp)
        loop = self.loop
        with self._lock:
            if len(self.peers) >= self.max_peers:
                raise PeerError("no_capacity", f"This server holds {self.max_peers} WebRTC peers; try again later.")
            key = f"peer_{next(self._ids)}"
            peer = self.peers[key] = Peer(self, key, spec, loop)
        try:
            peer.answer = self.call(peer.negotiate(offer_sdp), NEGOTIATE_S)
        except BaseException:
            peer.discard()
            raise
        return peer

    def forget(self, peer: Peer) -> None:
        with self._lock:
            self.peers.pop(peer.key, None)


# -- media tracks ------------------------------------------------------------------------------------------------------


class _Pacer:
    """Real-time pacing of a track: tick ``n`` is due ``n * period`` after the first."""

    def __init__(self, period: float) -> None:
        self.period = period
        self.start: float | None = None
        self.index = -1

    async def tick(self) -> int:
        now = time.monotonic()
        self.index += 1
        if self.start is None:
            self.start = now
        delay = self.start + self.index * self.period - now
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -MAX_LATE_S:  # the loop stalled: go on from now rather than send a burst
            self.start = now - self.index * self.period
        return self.index


class SpeechAudioTrack(MediaStreamTrack):
    """48 kHz mono s16 audio in 20 ms frames: the pump appends ``(content_s, frame)``; silence while it is starved.

    It is the session's clock: :meth:`content_time` says which instant of the content is being played now, and the
    video track shows the frame of that instant (lip sync survives a stalled loop or a starved queue)."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self.frames: collections.deque[tuple[float, av.AudioFrame]] = collections.deque()
        self._pacer = _Pacer(AUDIO_FRAME / AUDIO_RATE)
        self._time_base = fractions.Fraction(1, AUDIO_RATE)
        self._playing: float | None = None  # the content time at the start of the frame playing, None: silence
        self._played = 0.0  # the content time at the end of the last frame of content played
        self._ticked_at: float | None = None

    def content_time(self) -> float | None:
        """The content time being played now; None while the audio does not play (not started or stalled)."""
        if self._ticked_at is None:
            return None
        elapsed = time.monotonic() - self._ticked_at
        if elapsed > AUDIO_STALL_S:
            return None
        return self._played if self._playing is None else self._playing + min(elapsed, FRAME_S)

    async def recv(self) -> av.AudioFrame:
        index = await self._pacer.tick()
        if self.readyState != "live":
            raise MediaStreamError
        if self.frames:
            self._playing, frame = self.frames.popleft()
            self._played = self._playing + FRAME_S
        else:  # starved: silence, and the content clock waits
            self._playing, frame = None, silence(AUDIO_FRAME)
        self._ticked_at = time.monotonic()
        frame.pts = index * AUDIO_FRAME
        frame.sample_rate = AUDIO_RATE
        frame.time_base = self._time_base
        return frame


class AvatarVideoTrack(MediaStreamTrack):
    """The avatar's frames at ``fps``: the pump appends ``(content_s, jpeg)``. Each tick shows the frame of the
    content instant the audio plays (frames behind it are skipped, undecoded; the last one repeats while the next is
    ahead or missing); without playing audio, frames go out in order. Nothing is sent before the first frame.
    JPEGs are decoded on the loop's native worker threads, off the thread that feeds the track."""

    kind = "video"

    def __init__(self, spec: SessionSpec, audio: SpeechAudioTrack) -> None:
        super().__init__()
        self.fps, self.audio = spec.fps, audio
        self.size = (spec.width, spec.height)
        self.frames: collections.deque[tuple[float, bytes]] = collections.deque()
        self._pacer = _Pacer(1 / spec.fps)
        self._last: av.VideoFrame | None = None
        self._decoder = av.CodecContext.create("mjpeg", "r")
        self._time_base = fractions.Fraction(1, VIDEO_CLOCK)

    async def recv(self) -> av.VideoFrame:
        while self._last is None and not self.frames:
            if self.readyState != "live":
                raise MediaStreamError
            await asyncio.sleep(TICK_S)
        index = await self._pacer.tick()
        if self.readyState != "live":
            raise MediaStreamError
        jpeg, now = None, self.audio.content_time()
        if now is None:
            if self.frames:
                jpeg = self.frames.popleft()[1]
        else:
            while self.frames and self.frames[0][0] <= now:
                jpeg = self.frames.popleft()[1]
            if jpeg is None and self._last is None:  # the audio has not reached the first frame yet
                jpeg = self.frames.popleft()[1]
        if jpeg is not None:
            self._last = await asyncio.get_running_loop().run_in_executor(None, self._decode, jpeg)
        frame = self._last
        assert frame is not None
        frame.pts = round(index * VIDEO_CLOCK / self.fps)
        frame.time_base = self._time_base
        return frame

    def _decode(self, jpeg: bytes) -> av.VideoFrame:
        try:
            frame = self._decoder.decode(av.Packet(jpeg))[-1]  # yuvj420p: full range, as JPEG has it
            return frame.reformat(format="yuv420p", src_color_range="JPEG", dst_color_range="MPEG")
        except (av.FFmpegError, IndexError):
            log.warning("a frame from the worker is not a JPEG; showing the previous one")
            if self._last is not None:
                return self._last
            width, height = self.size
            return av.VideoFrame(width, height, "yuv420p")


def silence(samples: int) -> av.AudioFrame:
    frame = av.AudioFrame(format="s16", layout="mono", samples=samples)
    frame.planes[0].update(bytes(frame.planes[0].buffer_size))
    frame.sample_rate = AUDIO_RATE
    return frame


# -- one peer ----------------------------------------------------------------------------------------------------------


@dataclass
class Utterance:
    """One ``speak``: its TTS stream's PCM (appended by its TTS thread, taken by the pump) and its timings."""

    id: str
    text: str
    voice: str | None
    received_at: float
    chunks: collections.deque[bytes] = field(default_factory=collections.deque)
    job_id: str | None = None
    synthesised: bool = False  # the TTS stream ended (finished, failed or cancelled)
    cancelled: bool = False
    first_audio_sent: bool = False
    started_playing: bool = False
    voiced: bool = False  # the speech's onset has come (the silence a TTS puts before it is not played)
    thread: threading.Thread | None = None

    def trim_leading_silence(self, pcm: bytes) -> bytes:
        """``pcm`` from ``ONSET_PREROLL`` samples before the first one louder than ``ONSET_LEVEL``; nothing while
        the utterance has not begun (TTS voices start with a few hundred milliseconds of silence)."""
        samples = array.array("h", pcm)
        if sys.byteorder == "big":
            samples.byteswap()
        onset = next((index for index, value in enumerate(samples) if abs(value) > ONSET_LEVEL), None)
        if onset is None:
            return b""
        self.voiced = True
        return pcm[max(0, onset - ONSET_PREROLL) * 2 :]


class Peer:
    """One WebRTC peer: its connection and tracks (loop side), its data channel, and its media pump (a thread)."""

    def __init__(self, service: PeerService, key: str, spec: SessionSpec, loop: asyncio.AbstractEventLoop) -> None:
        self.service, self.key, self.spec, self.loop = service, key, spec, loop
        self.audio = SpeechAudioTrack()
        self.video = AvatarVideoTrack(spec, self.audio)
        self.pc: RTCPeerConnection | None = None
        self.channel: Any = None
        self.answer = ""
        self.session_created: dict[str, Any] | None = None
        self.last_heard = time.monotonic()
        self.commands: collections.deque[tuple[Any, ...]] = collections.deque()
        self.stop_reason: str | None = None
        self.pump: MediaPump | None = None
        self._released = False
        self._closing: asyncio.Future | None = None

    # -- loop side -------------------------------------------------------------------------------------------------

    async def negotiate(self, offer_sdp: str) -> str:
        pc = self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))  # host candidates: no STUN lookups
        pc.on("datachannel", self._on_datachannel)
        pc.on("connectionstatechange", self._on_state)
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            pc.addTrack(self.video)
            pc.addTrack(self.audio)
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as exc:  # noqa: BLE001 - whatever aiortc refuses in an offer is the offer's fault
            raise PeerError("invalid_sdp", f"The offer cannot be negotiated: {exc or type(exc).__name__}") from None
        return pc.localDescription.sdp

    def _on_state(self) -> None:
        if self.pc is not None and self.pc.connectionState in ("failed", "closed"):
            self.stop(f"connection_{self.pc.connectionState}")

    def _on_datachannel(self, channel: Any) -> None:
        if channel.label != DATA_CHANNEL or self.channel is not None:
            return
        self.channel = channel
        self.last_heard = time.monotonic()
        channel.on("message", self._on_message)
        channel.on("close", lambda: self.stop("channel_closed"))
        if self.session_created is not None:
            self._send(self.session_created)

    def _on_message(self, message: Any) -> None:
        self.last_heard = time.monotonic()
        try:
            payload = json.loads(message) if isinstance(message, str) else None
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            self._error("bad_json", "Data channel messages must be JSON objects with a 'type'.")
            return
        kind = payload.get("type")
        if kind == "speak":
            text, voice = payload.get("text"), payload.get("voice")
            if not isinstance(text, str) or not text.strip():
                self._error("bad_message", "speak needs a non-empty 'text'.")
            elif len(text) > MAX_SPEECH_CHARS:
                self._error("bad_message", f"speak's text is longer than {MAX_SPEECH_CHARS} characters.")
            elif voice is not None and not isinstance(voice, str):
                self._error("bad_message", "speak's 'voice' must be a string.")
            else:
                self.commands.append(("speak", text, voice or None, self.last_heard))
        elif kind == "cancel":
            self.commands.append(("cancel",))
        elif kind == "ping":
            self._send({"type": "pong"})
        elif kind == "close":
            self.stop("client_closed")
        elif isinstance(kind, str):
            self._error("unsupported_message", f"Unsupported message type: {kind}")
        else:
            self._error("bad_message", "The message's 'type' must be a string.")

    def _error(self, code: str, message: str) -> None:
        self._send({"type": "error", "code": code, "message": message})

    def _send(self, payload: dict[str, Any]) -> None:
        channel = self.channel
        if channel is not None and channel.readyState == "open":
            try:
                channel.send(json.dumps(payload))
            except Exception:  # a channel closing under us: the close handler frees the peer
                log.debug("peer %s: could not send %s", self.key, payload.get("type"), exc_info=True)

    async def _close(self) -> None:
        self.video.stop()
        self.audio.stop()
        try:
            if self.pc is not None:
                await self.pc.close()
        except Exception:  # closing must free the peer whatever aiortc says
            log.warning("peer %s: closing the connection failed", self.key, exc_info=True)
        finally:
            self.service.forget(self)

    # -- any thread ------------------------------------------------------------------------------------------------

    def send(self, payload: dict[str, Any]) -> None:
        """Send an event on the data channel (from any thread)."""
        try:
            self.loop.call_soon_threadsafe(self._send, payload)
        except RuntimeError:  # the loop is gone (interpreter exit)
            pass

    def stop(self, reason: str) -> None:
        """Ask the peer to end; the pump frees it (or :meth:`discard` does when it never started)."""
        if self.stop_reason is None:
            self.stop_reason = reason
            log.info("peer %s: stopping (%s)", self.key, reason)
        if self.pump is None:
            self.discard()

    def discard(self) -> None:
        """Free the loop side: stop the tracks, close the connection, forget the peer. Idempotent."""
        if self._released:
            return
        self._released = True
        self.stop_reason = self.stop_reason or "discarded"

        def close() -> None:
            self._closing = asyncio.ensure_future(self._close())

        try:
            self.loop.call_soon_threadsafe(close)
        except RuntimeError:
            self.service.forget(self)

    # -- the pump ----------------------------------------------------------------------------------------------------

    def start(self, lease: Any, speech: SpeechSource, session_created: dict[str, Any]) -> None:
        """Hand the peer its open session lease and start the media pump; ``session_created`` goes out when the
        data channel opens."""
        self.pump = MediaPump(self, lease, speech, self.service.idle_s)
        self.last_heard = time.monotonic()

        def announce() -> None:
            self.session_created = session_created
            if self.channel is not None:
                self._send(session_created)

        self.loop.call_soon_threadsafe(announce)
        if self.stop_reason is not None:  # stopped while the lease opened
            self.pump.finish()
            return
        thread = threading.Thread(target=self.pump.run, name=f"omnirt-webrtc-{lease.id}", daemon=True)
        self.pump.thread = thread
        thread.start()


class MediaPump:
    """Feeds a peer's tracks from its session lease, one chunk at a time, about one chunk ahead of playout."""

    def __init__(self, peer: Peer, lease: Any, speech: SpeechSource, idle_s: float) -> None:
        self.peer, self.lease, self.speech, self.idle_s = peer, lease, speech, idle_s
        self.spec: SessionSpec = lease.spec
        self.chunk_bytes = self.spec.chunk_samples * 2
        self.utterances: collections.deque[Utterance] = collections.deque()
        self.thread: threading.Thread | None = None
        self.turnaround_s = 0.1
        self.errors = 0
        self.chunks = 0
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=AUDIO_RATE)
        self._fifo = av.AudioFifo()
        self._video_out = 0  # frames and audio samples handed to the tracks so far: the content clock
        self._audio_out = 0
        self._finished = False

    def run(self) -> None:
        try:
            self._loop()
        except Exception as exc:  # reported, then the peer is freed
            code = getattr(exc, "code", None)
            if isinstance(code, str):
                self.peer.send({"type": "error", "code": code, "message": getattr(exc, "message", str(exc))})
            else:
                log.exception("peer %s: the media pump failed", self.peer.key)
                self.peer.send({"type": "error", "code": "runtime_error", "message": f"The session failed: {exc}"})
        finally:
            self.finish()

    def finish(self) -> None:
        """Cancel the speech, close the lease, free the peer. Idempotent."""
        if self._finished:
            return
        self._finished = True
        for utterance in self.utterances:
            self._cancel(utterance)
        self.utterances.clear()
        try:
            self.lease.close()
        finally:
            self.peer.discard()

    @property
    def lead_frames(self) -> int:
        """Queued frames below which the next chunk is rendered: enough to cover its round trip."""
        return min(self.spec.slice_len, max(1, math.ceil((self.turnaround_s + LEAD_MARGIN_S) * self.spec.fps)))

    def _loop(self) -> None:
        peer = self.peer
        while peer.stop_reason is None:
            self._commands()
            if time.monotonic() - peer.last_heard > self.idle_s:
                message = f"Nothing arrived on the data channel for {self.idle_s:g} s; the session is closed."
                peer.send({"type": "error", "code": "idle_timeout", "message": message})
                peer.stop("idle_timeout")
                return
            if len(peer.video.frames) >= self.lead_frames:
                time.sleep(TICK_S)
                continue
            self._chunk()

    def _commands(self) -> None:
        while self.peer.commands:
            command = self.peer.commands.popleft()
            if command[0] == "speak":
                self._speak(*command[1:])
            elif command[0] == "cancel":
                for utterance in self.utterances:
                    self._cancel(utterance)
                    self.peer.send({"type": "speech.ended", "utterance_id": utterance.id, "cancelled": True})
                self.utterances.clear()
                self.peer.video.frames.clear()  # what is queued is at most a chunk: the face stops now
                self.peer.audio.frames.clear()

    def _speak(self, text: str, voice: str | None, received_at: float) -> None:
        utterance = Utterance(f"utt_{uuid.uuid4().hex[:16]}", text, voice, received_at)
        self.utterances.append(utterance)
        self.peer.send({"type": "speech.started", "utterance_id": utterance.id, "text": text})
        utterance.thread = threading.Thread(
            target=self._synthesise, args=(utterance,), name=f"omnirt-webrtc-tts-{utterance.id}", daemon=True
        )
        utterance.thread.start()

    def _synthesise(self, utterance: Utterance) -> None:
        """The utterance's TTS thread: its PCM goes to the pump as it arrives."""

        def on_job(job_id: str) -> None:
            utterance.job_id = job_id
            if utterance.cancelled:
                self.speech.cancel(job_id)

        stream = self.speech.stream(utterance.text, utterance.voice, on_job)
        try:
            for pcm in stream:
                if utterance.cancelled:
                    break
                pcm = pcm[: len(pcm) - len(pcm) % 2]
                if pcm and not utterance.first_audio_sent:
                    utterance.first_audio_sent = True
                    ms = round((time.monotonic() - utterance.received_at) * 1000, 1)
                    self.peer.send({"type": "speech.first_audio", "utterance_id": utterance.id, "ms": ms})
                if not utterance.voiced:
                    pcm = utterance.trim_leading_silence(pcm)
                if pcm:
                    utterance.chunks.append(pcm)
        except PeerError as exc:
            if not utterance.cancelled:
                self.peer.send({"type": "error", "code": exc.code, "message": exc.message})
        except Exception as exc:  # reported on the channel; the session goes on
            log.exception("peer %s: speech failed", self.peer.key)
            self.peer.send({"type": "error", "code": "runtime_error", "message": f"The speech failed: {exc}"})
        finally:
            stream.close()
            utterance.synthesised = True

    def _cancel(self, utterance: Utterance) -> None:
        utterance.cancelled = True
        if utterance.job_id is not None and not utterance.synthesised:
            try:
                self.speech.cancel(utterance.job_id)
            except Exception:  # the job ends anyway; the stream stops reading it
                log.warning("peer %s: could not cancel speech job %s", self.peer.key, utterance.job_id, exc_info=True)

    def _take_speech(self) -> tuple[bytes, list[Utterance], list[Utterance]]:
        """One chunk of PCM: queued speech, padded with silence. Returns it with the utterances whose first audio
        and whose end are in it."""
        pcm = bytearray()
        started: list[Utterance] = []
        ended: list[Utterance] = []
        while self.utterances and len(pcm) < self.chunk_bytes:
            utterance = self.utterances[0]
            if utterance.chunks:
                if not utterance.started_playing:
                    utterance.started_playing = True
                    started.append(utterance)
                head = utterance.chunks.popleft()
                room = self.chunk_bytes - len(pcm)
                pcm += head[:room]
                if len(head) > room:
                    utterance.chunks.appendleft(head[room:])
            elif utterance.synthesised:
                self.utterances.popleft()
                ended.append(utterance)
            else:
                break  # the next sentence is still being synthesised: silence until it comes
        pcm += bytes(self.chunk_bytes - len(pcm))
        return bytes(pcm), started, ended

    def _chunk(self) -> None:
        pcm, started, ended = self._take_speech()
        sent = time.monotonic()
        self.lease.send(Kind.AUDIO, pcm)
        reply = self._video_reply()
        received = time.monotonic()
        if reply is None:
            return
        frames = unpack_vidx(reply.data)
        audio = self._resample(pcm)
        self.turnaround_s = 0.7 * self.turnaround_s + 0.3 * (received - sent)
        peer = self.peer
        # chunk k's audio and frames enter their tracks together, each stamped with its place in the content
        fps = self.spec.fps
        peer.video.frames.extend(((self._video_out + index) / fps, frame) for index, frame in enumerate(frames))
        peer.audio.frames.extend(
            ((self._audio_out + index * AUDIO_FRAME) / AUDIO_RATE, f) for index, f in enumerate(audio)
        )
        self._video_out += len(frames)
        self._audio_out += len(audio) * AUDIO_FRAME
        handed = time.monotonic()
        for utterance in started:
            ms = round((handed - utterance.received_at) * 1000, 1)
            peer.send({"type": "speech.first_frame", "utterance_id": utterance.id, "ms": ms})
        for utterance in ended:
            peer.send({"type": "speech.ended", "utterance_id": utterance.id})
        peer.send(
            {
                "type": "metrics",
                "chunk_index": reply.meta.get("chunk_index", self.chunks),
                "infer_ms": reply.meta.get("infer_ms"),
                "encode_ms": reply.meta.get("encode_ms"),
                "latency_ms": round((received - sent) * 1000, 1),
            }
        )
        self.chunks += 1

    def _video_reply(self) -> Any:
        """The lease's answer to the chunk just sent: its ``video`` message, or None when the worker could not render
        it (reported; ``MAX_RENDER_ERRORS`` in a row end the session)."""
        while True:
            message = self.lease.receive()
            if message.kind == Kind.VIDEO:
                self.errors = 0
                return message
            if message.kind == Kind.ERROR:
                code, text = message.meta.get("code", "runtime_error"), message.meta.get("message", "")
                self.errors += 1
                if self.errors >= MAX_RENDER_ERRORS:
                    raise PeerError(code, text)
                self.peer.send({"type": "error", "code": code, "message": text})
                return None

    def _resample(self, pcm: bytes) -> list[av.AudioFrame]:
        frame = av.AudioFrame(format="s16", layout="mono", samples=len(pcm) // 2)
        frame.planes[0].update(pcm)
        frame.sample_rate = SAMPLE_RATE
        for resampled in self._resampler.resample(frame):
            self._fifo.write(resampled)
        out = []
        while self._fifo.samples >= AUDIO_FRAME:
            out.append(self._fifo.read(AUDIO_FRAME))
        return out
