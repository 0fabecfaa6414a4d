// OmniRT playground: Talk (a live avatar over WebRTC, the native WebSocket protocol as the fallback), Generate
// (image and video jobs with live progress) and Fleet (models and workers). Plain JavaScript, no build step; it
// uses only the public API, as any client would.
//
// API keys: the page is served only with a valid key (header or the `omnirt_api_key` cookie that the key form sets
// for /playground). Every fetch sends `Authorization: Bearer <key>`; WebSocket URLs carry `?api_key=` (the only
// place the server takes a query key); SSE is read with fetch streaming, since EventSource cannot send headers.
//
// Measurements, for each Speak (window.omnirtMetrics): text -> first audible audio (an AnalyserNode on the voice
// the page plays, RMS over a threshold) and text -> first visible mouth movement (each displayed frame's mouth
// region drawn to a small canvas and compared with the frame shown when Speak was pressed, against the change the
// idle avatar makes over the same time).

const COOKIE = "omnirt_api_key";
const PCM_RATE = 16000; // the native protocol's PCM
const PING_MS = 5000; // data-channel keep-alive (the server frees a silent session after OMNIRT_SESSION_IDLE_S)
const AUDIBLE_RMS = 0.01; // about -40 dBFS
const AUDI_SAMPLES = 3200; // 0.2 s of 16 kHz audio per AUDI message on the fallback path
const MOUTH_SAMPLE = [48, 32]; // the mouth box, drawn this small (pixels)
const FRAME_SAMPLE = [48, 80]; // the whole frame when the session gives no mouth box
const MOUTH_CELL = 4; // change is the largest mean change over cells of 4x4 sampled pixels
const MOUTH_LAG_FRAMES = 12; // the idle change is measured over this many frames (about the time to first movement)
const MOUTH_FLOOR = 6; // least change (grey levels, 0-255, in the most changed cell) that counts as movement
const MOUTH_STILL = 12; // most change between consecutive frames of a mouth at rest
const SESSION_SIZE = { width: 416, height: 704, fps: 25 };

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value == null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child == null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const fmtMs = (value) => (value == null || Number.isNaN(value) ? "–" : `${Math.round(value)} ms`);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function percentile(values, q) {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (sorted.length - 1) * q;
  const low = Math.floor(rank);
  const high = Math.ceil(rank);
  return sorted[low] + (sorted[high] - sorted[low]) * (rank - low);
}

function ago(ms) {
  if (!ms) return "–";
  const seconds = Math.max(0, (Date.now() - ms) / 1000);
  if (seconds < 60) return `${Math.round(seconds)} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  return new Date(ms).toLocaleString();
}

// ---------------------------------------------------------------------------------------------------------------
// API access

function apiKey() {
  for (const part of document.cookie.split(";")) {
    const [name, ...rest] = part.trim().split("=");
    if (name === COOKIE) return decodeURIComponent(rest.join("="));
  }
  return "";
}

function authHeaders(headers = {}) {
  const key = apiKey();
  return key ? { ...headers, Authorization: `Bearer ${key}` } : { ...headers };
}

class ApiError extends Error {
  constructor(status, code, message, details = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

class TransportUnavailable extends Error {}

async function errorFrom(response) {
  let code = `http_${response.status}`;
  let message = response.statusText || "Request failed";
  let details = {};
  try {
    const body = await response.json();
    if (body && body.error) {
      code = body.error.code || code;
      message = body.error.message || message;
      details = body.error.details || {};
    }
  } catch {
    /* not JSON: keep the status line */
  }
  return new ApiError(response.status, code, message, details);
}

async function api(path, { method = "GET", body, headers = {}, raw = false, signal } = {}) {
  const init = { method, headers: authHeaders(headers), signal };
  if (body !== undefined) {
    if (body instanceof FormData) {
      init.body = body;
    } else {
      init.body = JSON.stringify(body);
      init.headers["Content-Type"] = "application/json";
    }
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, "network_error", `Could not reach the server (${err.message}).`);
  }
  if (!response.ok) {
    const error = await errorFrom(response);
    if (error.status === 401) keyRejected();
    throw error;
  }
  return raw ? response : response.json();
}

function wsUrl(path) {
  const url = new URL(path, location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  const key = apiKey();
  if (key) url.searchParams.set("api_key", key);
  return url.href;
}

async function blobUrl(url) {
  const response = await api(url, { raw: true });
  return URL.createObjectURL(await response.blob());
}

// Server-sent events through fetch (EventSource cannot send the Authorization header); resumes with Last-Event-ID.
async function followEvents(path, onEvent, { signal, isTerminal } = {}) {
  let lastId = null;
  for (let attempt = 0; attempt < 6; attempt += 1) {
    const headers = { Accept: "text/event-stream" };
    if (lastId) headers["Last-Event-ID"] = lastId;
    const response = await api(path, { raw: true, headers, signal });
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buffer += value.replace(/\r\n/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        let name = "message";
        let data = "";
        let id = null;
        for (const line of block.split("\n")) {
          if (line.startsWith(":")) continue;
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (field === "event") name = text;
          else if (field === "data") data += (data ? "\n" : "") + text;
          else if (field === "id") id = text;
        }
        if (id) lastId = id;
        if (!data) continue;
        let payload;
        try {
          payload = JSON.parse(data);
        } catch {
          continue;
        }
        onEvent(name, payload);
        if (isTerminal && isTerminal(name)) return;
      }
    }
    if (signal && signal.aborted) return;
    await sleep(500 * (attempt + 1)); // the stream dropped before the end: resume after the last event seen
  }
  throw new ApiError(0, "stream_lost", "The job's event stream kept dropping.");
}

// ---------------------------------------------------------------------------------------------------------------
// Errors, shown with the API's code and what to do about it

const HINTS = {
  unauthorized: "The API key was not accepted: use “Change API key” at the top right.",
  network_error: "Is the server still running? `make run` starts it.",
  no_capacity: "Every avatar worker is busy: end another session or try again in a moment.",
  model_unavailable: "That model cannot run on this server now: the Fleet tab says why.",
  unknown_model: "No model serves that name here: pick one from the list.",
  model_not_found: "No model has that name here: pick one from the list.",
  weights_not_found: "The model's weights are not on this server (README: “Where weights come from”).",
  avatar_not_found: "That avatar is no longer in the store: pick another or upload it again.",
  no_face_detected: "No face was found in the picture: try a well-lit, front-facing portrait.",
  bad_image: "The file is not a picture the server can read (PNG, JPEG or WebP).",
  payload_too_large: "The file is too large for this server.",
  too_many_queued: "Too many jobs are queued: wait for some to finish.",
  invalid_request: "The request was refused as it stands: the message says which field.",
  invalid_sdp: "The browser's WebRTC offer was refused.",
  bad_config: "A session setting was refused.",
  idle_timeout: "The session was idle too long and was closed: press Speak to open a new one.",
  worker_lost: "The worker running this stopped: press Speak again.",
  store_unavailable: "The job store (Redis) is unreachable: the server recovers by itself when it returns.",
  insufficient_memory: "Not enough memory for this model: try a smaller size.",
  timeout: "It took too long and was stopped.",
  cancelled: "It was cancelled.",
};

function showError(title, err) {
  const code = err && err.code ? err.code : null;
  $("banner").className = "banner";
  $("banner-title").textContent = `${title}:`;
  $("banner-message").textContent = err && err.message ? err.message : String(err);
  $("banner-code").hidden = !code;
  $("banner-code").textContent = code || "";
  $("banner-hint").textContent = (code && HINTS[code]) || "";
  $("banner").hidden = false;
  metrics.errors.push({ title, code, message: err && err.message ? err.message : String(err) });
  console.warn(title, err);
}

function showInfo(title, message) {
  $("banner").className = "banner info";
  $("banner-title").textContent = title;
  $("banner-message").textContent = message;
  $("banner-code").hidden = true;
  $("banner-hint").textContent = "";
  $("banner").hidden = false;
}

function hideBanner() {
  $("banner").hidden = true;
}

function keyRejected() {
  $("change-key").hidden = false;
}

// ---------------------------------------------------------------------------------------------------------------
// Tabs and server state

const tabs = ["talk", "generate", "fleet"];
let activeTab = "talk";

function selectTab(name) {
  if (!tabs.includes(name)) name = "talk";
  activeTab = name;
  for (const tab of tabs) {
    $(`tab-${tab}`).hidden = tab !== name;
    $(`tab-btn-${tab}`).setAttribute("aria-selected", String(tab === name));
  }
  if (history.replaceState) history.replaceState(null, "", `#${name}`);
  if (name === "generate") refreshJobs();
  if (name === "fleet") loadFleet();
}

async function serverState() {
  try {
    const response = await fetch("/readyz");
    const body = await response.json();
    const pill = $("server-status");
    pill.textContent = `${body.ok ? "ready" : "not ready"} · ${body.mode || "?"}`;
    pill.className = `pill ${body.ok ? "ok" : "bad"}`;
    pill.title = (body.reasons || []).join("\n");
  } catch {
    $("server-status").textContent = "server unreachable";
    $("server-status").className = "pill bad";
  }
}

// ---------------------------------------------------------------------------------------------------------------
// What the page measured, for people (the tiles) and for tests and benchmarks (window.omnirtMetrics)

const metrics = {
  transport: null,
  session_id: null,
  model: null,
  mouth_box: null,
  frames_decoded: 0, // WebRTC: getStats() inbound video framesDecoded; WebSocket: frames drawn
  frames_presented: 0, // frames this page saw displayed (requestVideoFrameCallback / canvas draws)
  audio_bytes_received: 0,
  chunk_latency_ms: [],
  chunks: [],
  session_ttff_ms: null,
  mouth_change_now: null, // while a sentence is spoken: the mouth region's change from the frame shown at Speak
  last: null,
  utterances: [],
  errors: [],
  events: [],
};
window.omnirtMetrics = metrics;

function logEvent(text, kind = "") {
  const list = $("talk-log");
  const stamp = new Date().toLocaleTimeString([], { hour12: false });
  list.prepend(el("li", { class: kind }, el("span", { class: "t" }, stamp), text));
  while (list.children.length > 60) list.lastChild.remove();
  metrics.events.push({ at: performance.now(), text });
  if (metrics.events.length > 200) metrics.events.shift();
}

function tile(id, value, target = 500) {
  const node = $(id);
  node.textContent = fmtMs(value);
  node.classList.toggle("good", value != null && value <= target);
  node.classList.toggle("slow", value != null && value > target);
}

function drawChart() {
  const canvas = $("m-chart");
  const ctx = canvas.getContext("2d");
  const { width, height } = canvas;
  ctx.clearRect(0, 0, width, height);
  const values = metrics.chunks.slice(-60);
  if (!values.length) {
    ctx.fillStyle = "#94a3b8";
    ctx.font = "12px system-ui, sans-serif";
    ctx.fillText("per-chunk latency appears here while the avatar speaks", 12, height / 2 + 4);
    return;
  }
  const top = Math.max(100, ...values.map((c) => c.latency_ms || 0)) * 1.15;
  const barW = width / 60;
  values.forEach((chunk, index) => {
    const x = index * barW;
    const total = chunk.latency_ms || 0;
    const infer = Math.min(total, chunk.infer_ms || 0);
    const h = (total / top) * (height - 16);
    ctx.fillStyle = "#c7d2fe";
    ctx.fillRect(x + 1, height - h, barW - 2, h);
    ctx.fillStyle = "#6366f1";
    ctx.fillRect(x + 1, height - (infer / top) * (height - 16), barW - 2, (infer / top) * (height - 16));
  });
  ctx.fillStyle = "#64748b";
  ctx.font = "11px system-ui, sans-serif";
  ctx.fillText(`${Math.round(top)} ms`, 6, 12);
  ctx.fillText("■ infer  ■ total", width - 96, 12);
}

function showChunk(event) {
  const chunk = {
    chunk_index: event.chunk_index,
    infer_ms: event.infer_ms,
    encode_ms: event.encode_ms,
    latency_ms: event.latency_ms,
  };
  metrics.chunks.push(chunk);
  if (metrics.chunks.length > 500) metrics.chunks.shift();
  if (chunk.latency_ms != null) metrics.chunk_latency_ms.push(chunk.latency_ms);
  if (metrics.chunk_latency_ms.length > 500) metrics.chunk_latency_ms.shift();
  tile("m-chunk", chunk.latency_ms, 200);
  const p50 = percentile(metrics.chunk_latency_ms, 0.5);
  $("m-chunk-sub").textContent =
    `p50 ${fmtMs(p50)} · infer ${fmtMs(chunk.infer_ms)} · encode ${fmtMs(chunk.encode_ms)}`;
  drawChart();
}

// ---------------------------------------------------------------------------------------------------------------
// Detectors: the first audible audio, and the first visible mouth movement

class AudioMeter {
  constructor(context, node) {
    this.analyser = context.createAnalyser();
    this.analyser.fftSize = 1024;
    node.connect(this.analyser);
    this.node = node;
    this.samples = new Float32Array(this.analyser.fftSize);
    this.level = 0;
    this.waiting = null;
    this.heardQuiet = false;
    this.quietSince = performance.now();
    this.timer = setInterval(() => this.poll(), 5);
  }

  poll() {
    this.analyser.getFloatTimeDomainData(this.samples);
    let sum = 0;
    for (const value of this.samples) sum += value * value;
    this.level = Math.sqrt(sum / this.samples.length);
    const now = performance.now();
    if (this.level <= AUDIBLE_RMS) {
      this.heardQuiet = true;
      if (this.quietSince == null) this.quietSince = now;
      return;
    }
    this.quietSince = null;
    if (this.waiting && this.heardQuiet) {
      const callback = this.waiting;
      this.waiting = null;
      callback(now);
    }
  }

  // Counts the first sound after a quiet moment: the tail of the previous sentence is not the new one.
  arm(callback) {
    this.waiting = callback;
    this.heardQuiet = this.level <= AUDIBLE_RMS;
  }

  // Resolves once the output has been quiet for quietMs (or after maxMs).
  async quiet(quietMs, maxMs) {
    const until = performance.now() + maxMs;
    while (performance.now() < until) {
      if (this.quietSince != null && performance.now() - this.quietSince >= quietMs) return;
      await sleep(20);
    }
  }

  stop() {
    clearInterval(this.timer);
    try {
      this.node.disconnect(this.analyser);
    } catch {
      /* already gone */
    }
  }
}

class MouthWatcher {
  constructor() {
    this.canvas = document.createElement("canvas");
    this.ctx = this.canvas.getContext("2d", { willReadFrequently: true });
    this.box = null;
    this.recent = []; // the last frames' mouth regions (grey), for the idle change over MOUTH_LAG_FRAMES
    this.idleChanges = [];
    this.watch = null;
    this.quietUntil = 0;
    this.idleFrames = 0; // idle frames sampled since the session opened
    this.stillSince = null; // since when consecutive frames have barely changed (the mouth at rest)
  }

  reset() {
    this.watch = null;
    this.stillSince = null;
    this.recent = [];
    this.idleChanges = [];
    this.idleFrames = 0;
    this.quietUntil = 0;
  }

  // Resolves once the idle face has been watched long enough to know its own motion (or after maxMs).
  async settled(maxMs) {
    const until = performance.now() + maxMs;
    while (this.idleChanges.length < MOUTH_LAG_FRAMES && performance.now() < until) await sleep(40);
  }

  // Resolves once the mouth has been at rest for stillMs (the last sentence's mouth has closed), or after maxMs.
  async still(stillMs, maxMs) {
    const until = performance.now() + maxMs;
    while (performance.now() < until) {
      if (this.stillSince != null && performance.now() - this.stillSince >= stillMs) return;
      await sleep(20);
    }
  }

  region(width, height) {
    if (this.box && this.box.length === 4) {
      const [x, y, w, h] = this.box;
      const sx = width / SESSION_SIZE.width; // mouth_box is in session video pixels; the frame may be scaled
      const sy = height / SESSION_SIZE.height;
      return [x * sx, y * sy, Math.max(2, w * sx), Math.max(2, h * sy)];
    }
    return [0, 0, width, height]; // no mouth_box: the whole frame (the change is the most changed cell's)
  }

  sample(source, width, height, at) {
    if (!width || !height) return;
    const [x, y, w, h] = this.region(width, height);
    const [sw, sh] = this.box ? MOUTH_SAMPLE : FRAME_SAMPLE;
    if (this.canvas.width !== sw || this.canvas.height !== sh) {
      this.canvas.width = sw;
      this.canvas.height = sh;
      this.recent = [];
    }
    this.ctx.drawImage(source, x, y, w, h, 0, 0, sw, sh);
    const pixels = this.ctx.getImageData(0, 0, sw, sh).data;
    const grey = new Float32Array(sw * sh);
    grey.width = sw;
    for (let i = 0, j = 0; j < grey.length; i += 4, j += 1) {
      grey[j] = 0.299 * pixels[i] + 0.587 * pixels[i + 1] + 0.114 * pixels[i + 2];
    }
    const previous = this.recent[this.recent.length - 1];
    if (previous && meanChange(grey, previous) <= MOUTH_STILL) this.stillSince ??= performance.now();
    else this.stillSince = null;
    const watch = this.watch;
    if (watch && !watch.reference) {
      watch.reference = grey; // nothing was shown before this utterance: its first frame is the reference
    } else if (watch) {
      const change = meanChange(grey, watch.reference);
      watch.maxChange = Math.max(watch.maxChange, change);
      metrics.mouth_change_now = change;
      if (watch.callback && change > watch.threshold) {
        const callback = watch.callback;
        watch.callback = null;
        callback(at, change);
      }
    } else if (at >= this.quietUntil) {
      this.idleFrames += 1;
      if (this.recent.length >= MOUTH_LAG_FRAMES) {
        this.idleChanges.push(meanChange(grey, this.recent[this.recent.length - MOUTH_LAG_FRAMES]));
        if (this.idleChanges.length > 125) this.idleChanges.shift(); // the last 5 s of idle motion
      }
    }
    this.recent.push(grey);
    if (this.recent.length > MOUTH_LAG_FRAMES) this.recent.shift();
  }

  idleChange() {
    return this.idleChanges.length ? Math.max(...this.idleChanges) : 0;
  }

  arm(callback) {
    const reference = this.recent[this.recent.length - 1] || null;
    const idle = this.idleChange();
    this.watch = {
      reference,
      callback,
      idle,
      threshold: Math.max(MOUTH_FLOOR, idle * 1.5),
      maxChange: 0,
    };
    return this.watch;
  }

  disarm() {
    const watch = this.watch;
    this.watch = null;
    this.recent = [];
    this.quietUntil = performance.now() + 1000; // the mouth closing after speech is not idle motion
    return watch;
  }
}

// The largest mean absolute change (grey levels) over the MOUTH_CELL x MOUTH_CELL cells of two samples: a mouth
// opening changes a few cells a lot, where noise changes every cell a little.
function meanChange(a, b) {
  if (!a || !b || a.length !== b.length) return 0;
  const width = a.width;
  const height = a.length / width;
  let most = 0;
  for (let cy = 0; cy + MOUTH_CELL <= height; cy += MOUTH_CELL) {
    for (let cx = 0; cx + MOUTH_CELL <= width; cx += MOUTH_CELL) {
      let sum = 0;
      for (let y = cy; y < cy + MOUTH_CELL; y += 1) {
        for (let x = cx; x < cx + MOUTH_CELL; x += 1) sum += Math.abs(a[y * width + x] - b[y * width + x]);
      }
      most = Math.max(most, sum / (MOUTH_CELL * MOUTH_CELL));
    }
  }
  return most;
}

// ---------------------------------------------------------------------------------------------------------------
// Transports

let audioContext = null;

function audio() {
  if (!audioContext) audioContext = new AudioContext({ latencyHint: "interactive" });
  if (audioContext.state === "suspended") audioContext.resume();
  return audioContext;
}

function iceGathered(pc, timeoutMs) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      pc.removeEventListener("icegatheringstatechange", check);
      resolve();
    };
    const check = () => pc.iceGatheringState === "complete" && done();
    pc.addEventListener("icegatheringstatechange", check);
    setTimeout(done, timeoutMs);
  });
}

function withTimeout(promise, ms, message) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new ApiError(0, "timeout", message)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

// The route is missing or WebRTC is off on this server: use the WebSocket path. Errors about the model, the avatar
// or capacity would fail there too, so they are shown as they are.
const DOMAIN_CODES = new Set(["unknown_model", "avatar_not_found", "model_unavailable", "no_capacity", "bad_config"]);

function webrtcMissing(err) {
  return err instanceof ApiError && [404, 405, 501, 503].includes(err.status) && !DOMAIN_CODES.has(err.code);
}

class RtcSession {
  constructor(options, handlers) {
    this.transport = "webrtc";
    this.options = options;
    this.handlers = handlers;
    this.stream = new MediaStream();
    this.closed = false;
  }

  async open() {
    if (typeof RTCPeerConnection !== "function") {
      throw new TransportUnavailable("this browser has no WebRTC");
    }
    const pc = new RTCPeerConnection({ iceServers: [] }); // host candidates: the server is on this network
    this.pc = pc;
    const channel = pc.createDataChannel("omnirt");
    this.channel = channel;
    pc.addTransceiver("video", { direction: "recvonly" });
    pc.addTransceiver("audio", { direction: "recvonly" });
    pc.ontrack = (event) => {
      // interactive playback: no extra jitter buffering beyond what the network needs (Chrome 114+)
      if ("jitterBufferTarget" in event.receiver) event.receiver.jitterBufferTarget = 0;
      else if ("playoutDelayHint" in event.receiver) event.receiver.playoutDelayHint = 0;
      this.stream.addTrack(event.track);
      this.handlers.onTrack(this.stream, event.track);
    };
    pc.onconnectionstatechange = () => {
      if (["failed", "closed"].includes(pc.connectionState) && !this.closed) {
        this.handlers.onClosed(`the peer connection ${pc.connectionState}`);
      }
    };
    const created = new Promise((resolve, reject) => {
      this.created = { resolve, reject };
    });
    channel.onmessage = (event) => this.onMessage(event.data);
    channel.onclose = () => {
      if (!this.closed) this.handlers.onClosed("the data channel closed");
    };
    await pc.setLocalDescription(await pc.createOffer());
    await iceGathered(pc, 2000);
    const { model, avatarId, ttsModel, voice } = this.options;
    let answer;
    try {
      answer = await api("/v1/avatar/webrtc", {
        method: "POST",
        body: {
          sdp: pc.localDescription.sdp,
          type: "offer",
          model,
          avatar_id: avatarId || null,
          tts_model: ttsModel || null,
          voice: voice || null,
          ...SESSION_SIZE,
        },
      });
    } catch (err) {
      this.close();
      if (webrtcMissing(err)) throw new TransportUnavailable(`the server answered ${err.status} ${err.code}`);
      throw err;
    }
    this.id = answer.session_id;
    await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
    const info = await withTimeout(created, 20000, "The WebRTC session did not start (no session.created).");
    this.ping = setInterval(() => this.send({ type: "ping" }), PING_MS);
    return info;
  }

  onMessage(raw) {
    let message;
    try {
      message = JSON.parse(raw);
    } catch {
      return;
    }
    if (!this.info) {
      // before session.created: that message opens the session, an error fails the open
      if (message.type === "session.created") {
        this.info = message;
        this.created.resolve(message);
        this.handlers.onEvent(message);
      } else if (message.type === "error") {
        this.created.reject(new ApiError(0, message.code || "error", message.message || "The session failed."));
      }
      return;
    }
    this.handlers.onEvent(message);
  }

  send(message) {
    if (this.channel && this.channel.readyState === "open") this.channel.send(JSON.stringify(message));
  }

  speak(text, voice) {
    this.send(voice ? { type: "speak", text, voice } : { type: "speak", text });
  }

  cancel() {
    this.send({ type: "cancel" });
  }

  async stats() {
    if (!this.pc) return null;
    const report = await this.pc.getStats();
    const out = { frames_decoded: 0, frames_received: 0, fps: null, audio_bytes: 0 };
    report.forEach((entry) => {
      if (entry.type !== "inbound-rtp") return;
      if (entry.kind === "video") {
        out.frames_decoded = entry.framesDecoded || 0;
        out.frames_received = entry.framesReceived || 0;
        out.fps = entry.framesPerSecond ?? null;
      } else if (entry.kind === "audio") {
        out.audio_bytes = entry.bytesReceived || 0;
      }
    });
    return out;
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.ping);
    try {
      this.send({ type: "close" });
    } catch {
      /* the channel may be gone */
    }
    try {
      if (this.channel) this.channel.close();
      if (this.pc) this.pc.close();
    } catch {
      /* already closed */
    }
  }
}

// The fallback: TTS PCM from /v1/text2audio/stream, sent as AUDI over the native WebSocket protocol; VIDX frames
// drawn on a canvas. The video clocks the voice: each frame that arrives releases the 40 ms of PCM it was rendered
// from, scheduled on the WebAudio clock together with the frame, so voice and face stay in sync even when rendering
// runs slower than real time (the voice then pauses rather than running ahead of the face).
class WsPlayer {
  constructor(context, canvas, onFrame) {
    this.context = context;
    this.canvas = canvas;
    this.draw = canvas.getContext("2d");
    this.onFrame = onFrame;
    this.output = context.createGain();
    this.output.connect(context.destination);
    this.fps = SESSION_SIZE.fps;
    this.reset();
    this.loop = () => {
      this.tick();
      this.raf = requestAnimationFrame(this.loop);
    };
    this.raf = requestAnimationFrame(this.loop);
  }

  reset() {
    for (const source of this.sources || []) {
      try {
        source.stop();
      } catch {
        /* not started */
      }
    }
    for (const frame of this.frames || []) frame.bitmap.close();
    this.sources = [];
    this.audio = []; // PCM received and not yet scheduled (Float32Array pieces)
    this.frames = [];
    this.cursor = 0; // where the next frame and its audio go on the AudioContext clock
    this.endAt = 0;
  }

  pushAudio(pcm) {
    const floats = new Float32Array(pcm.length);
    for (let i = 0; i < pcm.length; i += 1) floats[i] = pcm[i] / 32768;
    this.audio.push(floats);
  }

  takeAudio(count) {
    const out = new Float32Array(count);
    let filled = 0;
    while (filled < count && this.audio.length) {
      const head = this.audio[0];
      const take = Math.min(head.length, count - filled);
      out.set(head.subarray(0, take), filled);
      filled += take;
      if (take === head.length) this.audio.shift();
      else this.audio[0] = head.subarray(take);
    }
    return out.subarray(0, filled);
  }

  schedule(floats, at) {
    if (!floats.length) return;
    const buffer = this.context.createBuffer(1, floats.length, PCM_RATE);
    buffer.copyToChannel(floats, 0);
    const source = this.context.createBufferSource();
    source.buffer = buffer;
    source.connect(this.output);
    source.start(at);
    this.sources.push(source);
    if (this.sources.length > 400) this.sources.shift();
    this.endAt = Math.max(this.endAt, at + floats.length / PCM_RATE);
  }

  pushFrames(bitmaps) {
    if (!bitmaps.length) return;
    const at = Math.max(this.cursor, this.context.currentTime + 0.05);
    this.schedule(this.takeAudio(Math.round((bitmaps.length * PCM_RATE) / this.fps)), at);
    bitmaps.forEach((bitmap, index) => this.frames.push({ bitmap, at: at + index / this.fps }));
    this.cursor = at + bitmaps.length / this.fps;
    this.endAt = Math.max(this.endAt, this.cursor);
  }

  drainAudio() {
    // the tail shorter than a frame (the server rendered every whole frame the audio covers)
    const rest = this.takeAudio(this.audio.reduce((sum, piece) => sum + piece.length, 0));
    this.schedule(rest, Math.max(this.cursor, this.context.currentTime + 0.05));
  }

  tick() {
    const now = this.context.currentTime;
    let shown = null;
    while (this.frames.length && this.frames[0].at <= now) {
      if (shown) shown.bitmap.close();
      shown = this.frames.shift();
    }
    if (!shown) return;
    if (this.canvas.width !== shown.bitmap.width) this.canvas.width = shown.bitmap.width;
    if (this.canvas.height !== shown.bitmap.height) this.canvas.height = shown.bitmap.height;
    this.draw.drawImage(shown.bitmap, 0, 0);
    shown.bitmap.close();
    this.onFrame(this.canvas);
  }

  stop() {
    cancelAnimationFrame(this.raf);
    this.reset();
    this.output.disconnect();
  }
}

function unpackVidx(buffer) {
  const view = new DataView(buffer);
  const magic = String.fromCharCode(...new Uint8Array(buffer, 0, 4));
  if (magic !== "VIDX") throw new Error("not a VIDX message");
  const count = view.getUint32(4, true);
  const frames = [];
  let offset = 8;
  for (let i = 0; i < count; i += 1) {
    const length = view.getUint32(offset, true);
    frames.push(new Uint8Array(buffer, offset + 4, length));
    offset += 4 + length;
  }
  return frames;
}

class WsSession {
  constructor(options, handlers, player) {
    this.transport = "websocket";
    this.options = options;
    this.handlers = handlers;
    this.player = player;
    this.sent = []; // send times of AUDI / flush messages not yet answered (the server answers them in order)
    this.closed = false;
    this.decoding = Promise.resolve();
  }

  open() {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(wsUrl("/v1/avatar/realtime"));
      socket.binaryType = "arraybuffer";
      this.socket = socket;
      let opened = false;
      socket.onopen = () => {
        const inputs = this.options.avatarId ? { avatar_id: this.options.avatarId } : {};
        socket.send(
          JSON.stringify({ type: "session.create", model: this.options.model, inputs, config: { ...SESSION_SIZE } }),
        );
      };
      socket.onerror = () => {
        if (!opened) reject(new ApiError(0, "network_error", "The avatar WebSocket could not be opened."));
      };
      socket.onclose = (event) => {
        if (!opened) reject(new ApiError(0, "closed", `The avatar WebSocket closed (${event.code}).`));
        else if (!this.closed) this.handlers.onClosed("the WebSocket closed");
      };
      socket.onmessage = (event) => {
        if (typeof event.data !== "string") {
          this.onVideo(event.data);
          return;
        }
        const message = JSON.parse(event.data);
        if (!opened) {
          if (message.type === "session.created") {
            opened = true;
            this.id = message.session_id;
            this.info = message;
            this.ping = setInterval(() => this.send({ type: "ping" }), PING_MS);
            this.handlers.onEvent(message);
            resolve(message);
          } else if (message.type === "error") {
            reject(new ApiError(0, message.code || "error", message.message));
          }
          return;
        }
        if (message.type === "metrics") {
          const sentAt = this.sent.shift();
          message.latency_ms = sentAt == null ? null : performance.now() - sentAt;
        } else if (message.type === "error") {
          this.sent.shift();
        }
        this.handlers.onEvent(message);
      };
    });
  }

  send(message) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  sendAudio(pcm) {
    const message = new Uint8Array(4 + pcm.byteLength);
    message.set([65, 85, 68, 73]); // "AUDI"
    message.set(new Uint8Array(pcm.buffer, pcm.byteOffset, pcm.byteLength), 4);
    this.sent.push(performance.now());
    this.socket.send(message.buffer);
  }

  onVideo(buffer) {
    let jpegs;
    try {
      jpegs = unpackVidx(buffer);
    } catch (err) {
      this.handlers.onEvent({ type: "error", code: "bad_video", message: err.message });
      return;
    }
    // decode in arrival order, then hand over together
    this.decoding = this.decoding.then(async () => {
      const bitmaps = await Promise.all(
        jpegs.map((jpeg) => createImageBitmap(new Blob([jpeg], { type: "image/jpeg" }))),
      );
      if (bitmaps.length && this.utterance && this.utterance.firstFrameAt == null) {
        this.utterance.firstFrameAt = performance.now();
        this.handlers.onEvent({
          type: "speech.first_frame",
          utterance_id: this.utterance.id,
          ms: this.utterance.firstFrameAt - this.utterance.startedAt,
        });
      }
      this.player.pushFrames(bitmaps);
    });
  }

  async speak(text, voice) {
    const utterance = { id: `utt_${Date.now()}`, startedAt: performance.now(), firstFrameAt: null };
    this.utterance = utterance;
    this.abort = new AbortController();
    this.player.reset();
    this.handlers.onEvent({ type: "speech.started", utterance_id: utterance.id, text });
    const body = { text, sample_rate: PCM_RATE };
    if (this.options.ttsModel) body.model = this.options.ttsModel;
    if (voice) body.voice = voice;
    const response = await api("/v1/text2audio/stream", { method: "POST", body, raw: true, signal: this.abort.signal });
    const reader = response.body.getReader();
    let carry = new Uint8Array(0);
    let first = true;
    let queued = new Int16Array(0);
    for (;;) {
      let chunk;
      try {
        chunk = await reader.read();
      } catch (err) {
        if (err.name === "AbortError") return;
        throw err;
      }
      if (chunk.done) break;
      const bytes = new Uint8Array(carry.length + chunk.value.length);
      bytes.set(carry);
      bytes.set(chunk.value, carry.length);
      const whole = bytes.length - (bytes.length % 2);
      carry = bytes.slice(whole);
      if (!whole) continue;
      const pcm = new Int16Array(bytes.slice(0, whole).buffer);
      if (first) {
        first = false;
        this.handlers.onEvent({
          type: "speech.first_audio",
          utterance_id: utterance.id,
          ms: performance.now() - utterance.startedAt,
        });
      }
      this.player.pushAudio(pcm);
      const merged = new Int16Array(queued.length + pcm.length);
      merged.set(queued);
      merged.set(pcm, queued.length);
      let offset = 0;
      while (merged.length - offset >= AUDI_SAMPLES) {
        this.sendAudio(merged.subarray(offset, offset + AUDI_SAMPLES));
        offset += AUDI_SAMPLES;
      }
      queued = merged.slice(offset);
    }
    if (this.utterance !== utterance) return;
    if (queued.length) this.sendAudio(queued);
    this.sent.push(performance.now());
    this.send({ type: "session.flush" }); // every frame the audio covers
    let drained = false;
    const wait = async () => {
      if (this.utterance !== utterance) return;
      if (this.sent.length) {
        setTimeout(wait, 50); // every AUDI and the flush answered
        return;
      }
      if (!drained) {
        await this.decoding;
        this.player.drainAudio();
        drained = true;
      }
      const left = (this.player.endAt - this.player.context.currentTime) * 1000;
      if (left > 0) setTimeout(wait, Math.max(50, Math.min(left, 500)));
      else this.handlers.onEvent({ type: "speech.ended", utterance_id: utterance.id });
    };
    wait();
  }

  cancel() {
    if (this.abort) this.abort.abort();
    if (this.utterance) this.handlers.onEvent({ type: "speech.ended", utterance_id: this.utterance.id });
    this.utterance = null;
    this.player.reset();
    this.send({ type: "session.cancel" });
  }

  async stats() {
    return null;
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.ping);
    if (this.abort) this.abort.abort();
    this.send({ type: "session.close" });
    try {
      this.socket.close();
    } catch {
      /* already closed */
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Talk

const talk = {
  session: null,
  opening: null,
  meter: null,
  mouth: new MouthWatcher(),
  player: null,
  utterance: null,
  statsTimer: null,
  framesSeen: 0,
};

function talkOptions() {
  return {
    model: $("talk-model").value,
    avatarId: $("talk-avatar").value || null,
    ttsModel: $("talk-voice").value || null,
    voice: null,
    forceWs: $("talk-force-ws").checked,
  };
}

function sameOptions(a, b) {
  return a.model === b.model && a.avatarId === b.avatarId && a.ttsModel === b.ttsModel && a.forceWs === b.forceWs;
}

function setStage(mode) {
  $("stage-placeholder").hidden = mode !== "idle";
  $("talk-video").hidden = mode !== "webrtc";
  $("talk-canvas").hidden = mode !== "websocket";
}

function setSpeaking(on) {
  $("stage-speaking").hidden = !on;
  $("talk-stop").disabled = !on;
}

// Whether a speech event is about the utterance being measured (not one cancelled before it).
function current(message) {
  return Boolean(talk.utterance) && message.utterance_id === talk.utterance.server_id;
}

const handlers = {
  onTrack(stream, track) {
    const video = $("talk-video");
    if (video.srcObject !== stream) video.srcObject = stream;
    video.play().catch(() => {});
    if (track.kind === "audio") {
      if (talk.meter) talk.meter.stop();
      talk.meter = new AudioMeter(audio(), audio().createMediaStreamSource(stream));
    }
  },
  onEvent(message) {
    switch (message.type) {
      case "session.created":
        metrics.session_id = message.session_id;
        metrics.model = message.model;
        metrics.mouth_box = message.mouth_box || null;
        talk.mouth.box = message.mouth_box || null;
        $("talk-session").textContent = message.session_id || "";
        logEvent(`session.created ${message.model} ${message.avatar_id || "(bundled portrait)"}`);
        break;
      case "speech.started":
        if (talk.utterance && talk.utterance.server_id == null) talk.utterance.server_id = message.utterance_id;
        logEvent(`speech.started “${(message.text || "").slice(0, 40)}”`);
        break;
      case "speech.first_audio":
        if (current(message)) talk.utterance.server_first_audio_ms = message.ms;
        $("m-ttff-sub").textContent = `first audio packet ${fmtMs(message.ms)}`;
        logEvent(`speech.first_audio ${fmtMs(message.ms)}`);
        break;
      case "speech.first_frame":
        if (current(message)) talk.utterance.server_first_frame_ms = message.ms;
        tile("m-ttff", message.ms, 300);
        logEvent(`speech.first_frame ${fmtMs(message.ms)}`);
        break;
      case "metrics":
        showChunk(message);
        if (message.ttff_ms != null && metrics.session_ttff_ms == null) metrics.session_ttff_ms = message.ttff_ms;
        break;
      case "speech.ended":
        logEvent("speech.ended");
        // the end of this utterance (a cancelled one's end may arrive after the next one started)
        if (current(message)) finishUtterance(false);
        break;
      case "error":
        logEvent(`error ${message.code || ""}: ${message.message || ""}`, "err");
        showError("The avatar session reported an error", message);
        if (talk.utterance) finishUtterance(true);
        break;
      case "pong":
      case "session.cancelled":
        break;
      default:
        if (message.type) logEvent(message.type);
    }
  },
  onClosed(reason) {
    if (!talk.session) return;
    logEvent(`session ended: ${reason}`, "err");
    endSession();
  },
};

function watchVideoFrames() {
  const video = $("talk-video");
  if (!("requestVideoFrameCallback" in HTMLVideoElement.prototype)) return;
  const onFrame = (now, meta) => {
    if (!talk.session || talk.session.transport !== "webrtc") return;
    metrics.frames_presented = meta.presentedFrames;
    try {
      talk.mouth.sample(video, meta.width, meta.height, meta.expectedDisplayTime || now);
    } finally {
      video.requestVideoFrameCallback(onFrame); // one bad frame must not end the watching
    }
  };
  video.requestVideoFrameCallback(onFrame);
}

async function openSession(options) {
  const context = audio();
  let session = null;
  if (!options.forceWs) {
    session = new RtcSession(options, handlers);
    try {
      setStage("webrtc");
      await session.open();
    } catch (err) {
      session.close();
      session = null;
      if (!(err instanceof TransportUnavailable)) throw err;
      logEvent(`WebRTC unavailable (${err.message}): using the WebSocket protocol`);
    }
  }
  if (!session) {
    setStage("websocket");
    talk.player = new WsPlayer(context, $("talk-canvas"), (canvas) => {
      metrics.frames_presented += 1;
      metrics.frames_decoded += 1;
      talk.mouth.sample(canvas, canvas.width, canvas.height, performance.now());
    });
    talk.meter = new AudioMeter(context, talk.player.output);
    session = new WsSession(options, handlers, talk.player);
    try {
      await session.open();
    } catch (err) {
      session.close();
      talk.player.stop();
      talk.player = null;
      talk.meter.stop();
      talk.meter = null;
      setStage("idle");
      throw err;
    }
  }
  session.options = options;
  talk.session = session;
  talk.mouth.reset();
  metrics.transport = session.transport;
  metrics.frames_decoded = 0;
  metrics.frames_presented = 0;
  $("talk-transport").textContent = session.transport === "webrtc" ? "WebRTC" : "WebSocket (fallback)";
  $("talk-transport").className = `pill ${session.transport === "webrtc" ? "ok" : "warn"}`;
  $("talk-disconnect").disabled = false;
  if (session.transport === "webrtc") watchVideoFrames();
  talk.statsTimer = setInterval(updateStats, 250);
  return session;
}

async function updateStats() {
  const session = talk.session;
  if (!session) return;
  const stats = await session.stats();
  if (stats) {
    metrics.frames_decoded = stats.frames_decoded;
    metrics.audio_bytes_received = stats.audio_bytes;
    $("m-fps").textContent = stats.fps != null ? `${Math.round(stats.fps)} fps` : "";
  }
  $("m-frames").textContent = `${metrics.frames_decoded} frames`;
  const level = talk.meter ? talk.meter.level : 0;
  $("m-audio-level").textContent = level > 0.001 ? `voice ${Math.round(20 * Math.log10(level))} dBFS` : "silent";
}

function endSession() {
  const session = talk.session;
  talk.session = null;
  if (talk.utterance) finishUtterance(true);
  clearInterval(talk.statsTimer);
  if (session) session.close();
  if (talk.meter) talk.meter.stop();
  talk.meter = null;
  if (talk.player) talk.player.stop();
  talk.player = null;
  talk.mouth.reset();
  const video = $("talk-video");
  video.srcObject = null;
  setStage("idle");
  setSpeaking(false);
  $("talk-transport").textContent = "not connected";
  $("talk-transport").className = "pill muted";
  $("talk-session").textContent = "";
  $("talk-disconnect").disabled = true;
}

async function ensureSession() {
  const options = talkOptions();
  if (talk.session && sameOptions(talk.session.options, options)) return talk.session;
  if (talk.session) endSession();
  if (!talk.opening) {
    talk.opening = openSession(options).finally(() => {
      talk.opening = null;
    });
  }
  return talk.opening;
}

function startUtterance(text) {
  const utterance = {
    text,
    transport: talk.session.transport,
    started_at: performance.now(),
    text_to_audio_ms: null,
    text_to_mouth_ms: null,
    server_first_audio_ms: null,
    server_first_frame_ms: null,
    server_id: null,
    mouth_change_speaking: null,
    mouth_change_idle: null,
    ended: false,
  };
  talk.utterance = utterance;
  metrics.last = utterance;
  tile("m-audio", null);
  tile("m-mouth", null);
  tile("m-ttff", null);
  if (talk.meter) {
    talk.meter.arm((at) => {
      utterance.text_to_audio_ms = at - utterance.started_at;
      tile("m-audio", utterance.text_to_audio_ms);
      logEvent(`audible after ${fmtMs(utterance.text_to_audio_ms)}`);
    });
  }
  const watch = talk.mouth.arm((at) => {
    utterance.text_to_mouth_ms = Math.max(0, at - utterance.started_at);
    tile("m-mouth", utterance.text_to_mouth_ms);
    logEvent(`mouth moved after ${fmtMs(utterance.text_to_mouth_ms)}`);
  });
  utterance.mouth_change_idle = watch.idle;
  setSpeaking(true);
  return utterance;
}

function finishUtterance(failed) {
  const utterance = talk.utterance;
  if (!utterance) return;
  talk.utterance = null;
  const watch = talk.mouth.disarm();
  if (talk.meter) talk.meter.arm(null);
  utterance.ended = true;
  utterance.failed = failed;
  utterance.mouth_change_speaking = watch ? watch.maxChange : null;
  metrics.utterances.push(utterance);
  setSpeaking(false);
  $("talk-speak").disabled = false;
}

async function speak() {
  const text = $("talk-text").value.trim();
  if (!text) {
    showError("Nothing to say", new ApiError(0, "invalid_request", "Type a sentence first."));
    return;
  }
  hideBanner();
  audio(); // created and resumed inside the click: browsers allow sound after a gesture
  $("talk-speak").disabled = true;
  try {
    const session = await ensureSession();
    if (talk.utterance) {
      session.cancel();
      finishUtterance(true);
    }
    // a session just opened: watch the idle face for a moment first, so that its own motion (blinks, sway, the
    // encoder settling) is known before the mouth is watched for speech
    if (session.transport === "webrtc") await talk.mouth.settled(3000);
    // the previous sentence may still be playing (the browser buffers a little): let it finish first, voice and mouth
    if (talk.meter) await talk.meter.quiet(250, 1500);
    if (session.transport === "webrtc") await talk.mouth.still(200, 1500);
    startUtterance(text);
    await session.speak(text, talkOptions().voice);
  } catch (err) {
    if (talk.utterance) finishUtterance(true);
    showError("Could not speak", err);
  } finally {
    $("talk-speak").disabled = false; // speaking again interrupts the current sentence
  }
}

function stopSpeaking() {
  if (talk.session) talk.session.cancel();
  finishUtterance(true);
}

async function loadVoices() {
  const select = $("talk-voice");
  select.replaceChildren(el("option", { value: "" }, "Server default voice"));
  try {
    const body = await api("/v1/text2audio/models");
    for (const status of body.statuses || []) {
      const label = status.connected ? status.id : `${status.id} (${status.reason || "not connected"})`;
      select.append(el("option", { value: status.id, disabled: !status.connected, title: status.summary }, label));
    }
  } catch (err) {
    showError("Could not list the voices", err);
  }
}

async function loadAvatarModels() {
  const select = $("talk-model");
  select.replaceChildren();
  try {
    const body = await api("/v1/avatar/models");
    const statuses = body.statuses || [];
    const connected = statuses.filter((status) => status.connected);
    for (const status of connected) {
      select.append(el("option", { value: status.id }, status.alias ? `${status.id} → ${status.model}` : status.id));
    }
    for (const status of statuses.filter((item) => !item.connected)) {
      select.append(el("option", { value: status.id, disabled: true }, `${status.id} (${status.reason})`));
    }
    let preferred = null;
    try {
      preferred = (await api("/playground/config.json")).default_avatar_model;
    } catch {
      /* keep the first connected model */
    }
    if (connected.some((status) => status.id === preferred)) select.value = preferred;
    if (!connected.length) showInfo("No avatar model is connected.", "The Fleet tab shows why.");
  } catch (err) {
    showError("Could not list the avatar models", err);
  }
}

async function loadAvatars(selectId) {
  const select = $("talk-avatar");
  const keep = selectId ?? select.value;
  select.replaceChildren(el("option", { value: "" }, "Bundled portrait"));
  try {
    const body = await api("/v1/avatars");
    for (const avatar of body.avatars || []) {
      const label = `${avatar.name || avatar.id} · ${avatar.kind}${avatar.width ? ` ${avatar.width}×${avatar.height}` : ""}`;
      select.append(el("option", { value: avatar.id }, label));
    }
    if ([...select.options].some((option) => option.value === keep)) select.value = keep;
  } catch (err) {
    showError("Could not list the stored avatars", err);
  }
}

async function uploadPortrait(event) {
  const file = event.target.files[0];
  if (!file) return;
  const status = $("talk-upload-status");
  status.textContent = `Uploading ${file.name}…`;
  const form = new FormData();
  form.append("image", file);
  form.append("name", file.name.replace(/\.[^.]+$/, "").slice(0, 200));
  try {
    const avatar = await api("/v1/avatars", { method: "POST", body: form });
    status.textContent = `Stored as ${avatar.id}${avatar.face_box ? " (face found)" : ""}.`;
    await loadAvatars(avatar.id);
  } catch (err) {
    status.textContent = "Upload refused.";
    showError("The portrait was not stored", err);
  } finally {
    event.target.value = "";
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Generate

const gen = { models: [], current: null, abort: null, jobsTimer: null };

const GEN_TASKS = { text2image: "image", text2video: "video" };

async function loadGenModels() {
  try {
    const body = await api("/v1/models");
    gen.models = body.data || [];
  } catch (err) {
    showError("Could not list the models", err);
  }
  fillGenModels();
}

function fillGenModels() {
  const task = $("gen-task").value;
  const select = $("gen-model");
  const keep = select.value;
  select.replaceChildren();
  const models = gen.models.filter((model) => model.task === task);
  for (const model of models) select.append(el("option", { value: model.id, title: model.summary }, model.id));
  if (!models.length) select.append(el("option", { value: "" }, "no model for this task"));
  const preferred = [keep, "sd15", "wan2.1-t2v-1.3b"].find((id) => models.some((m) => m.id === id));
  if (preferred) select.value = preferred;
}

function optionalInt(id) {
  const value = $(id).value.trim();
  return value === "" ? null : Number.parseInt(value, 10);
}

function setProgress(percent, label, state = "") {
  const bar = $("gen-progress");
  const clamped = Math.max(0, Math.min(100, percent));
  $("gen-progress-fill").style.width = `${clamped}%`;
  $("gen-progress-label").textContent = label ?? `${Math.round(clamped)}%`;
  bar.setAttribute("aria-valuenow", String(Math.round(clamped)));
  bar.classList.toggle("done", state === "succeeded");
  bar.classList.toggle("failed", state === "failed" || state === "cancelled");
}

function setJobState(state) {
  const node = $("gen-job-state");
  node.textContent = state;
  node.className = `state ${state}`;
  $("gen-cancel").hidden = !["queued", "running"].includes(state);
  if (gen.current) gen.current.state = state;
}

async function submitJob(event) {
  event.preventDefault();
  hideBanner();
  const task = $("gen-task").value;
  const config = {};
  for (const [field, id] of [
    ["num_inference_steps", "gen-steps"],
    ["width", "gen-width"],
    ["height", "gen-height"],
    ["seed", "gen-seed"],
  ]) {
    const value = optionalInt(id);
    if (value != null) config[field] = value;
  }
  if (task !== "text2image") {
    const frames = optionalInt("gen-frames");
    if (frames != null) config.num_frames = frames;
  }
  const body = {
    task,
    model: $("gen-model").value,
    inputs: { prompt: $("gen-prompt").value },
    config,
    async_run: true,
  };
  $("gen-submit").disabled = true;
  try {
    const job = await api("/v1/generate", { method: "POST", body });
    followJob(job);
    refreshJobs();
  } catch (err) {
    showError("The job was not accepted", err);
  } finally {
    $("gen-submit").disabled = false;
  }
}

async function followJob(job) {
  if (gen.abort) gen.abort.abort();
  const abort = new AbortController();
  gen.abort = abort;
  gen.current = { id: job.job_id || job.id, state: job.state, model: job.model, task: job.task };
  $("gen-current").classList.remove("empty");
  $("gen-job-id").textContent = `${gen.current.id} · ${job.model}`;
  $("gen-preview").replaceChildren();
  $("gen-stage").textContent = "";
  setJobState(job.state);
  setProgress(job.state === "succeeded" ? 100 : 0);
  const id = gen.current.id;
  const terminal = new Set(["job_finished", "job_failed", "job_cancelled"]);
  try {
    await followEvents(`/v1/jobs/${encodeURIComponent(id)}/events`, (name, event) => onJobEvent(id, name, event), {
      signal: abort.signal,
      isTerminal: (name) => terminal.has(name),
    });
  } catch (err) {
    if (err.name !== "AbortError") showError("Lost the job's progress", err);
  }
}

function onJobEvent(id, name, event) {
  if (!gen.current || gen.current.id !== id) return;
  const data = event.data || {};
  switch (name) {
    case "job_enqueued":
      setJobState("queued");
      $("gen-stage").textContent = `queued on ${data.queue || "a worker"}`;
      break;
    case "job_started":
      setJobState("running");
      $("gen-stage").textContent = "started";
      break;
    case "stage_start":
      $("gen-stage").textContent = `${event.stage || data.stage || "stage"}…`;
      break;
    case "progress": {
      const total = data.total || 0;
      if (total) setProgress((100 * (data.step || 0)) / total, `${data.step}/${total} · ${Math.round((100 * data.step) / total)}%`);
      $("gen-stage").textContent = `${event.stage || "denoise"}: step ${data.step} of ${total}`;
      break;
    }
    case "job_requeued":
      $("gen-stage").textContent = "its worker stopped: re-queued on another";
      break;
    case "job_finished":
      setJobState("succeeded");
      setProgress(100, "100%", "succeeded");
      $("gen-stage").textContent = "done";
      showResult(id);
      refreshJobs();
      break;
    case "job_failed": {
      setJobState("failed");
      setProgress(100, "failed", "failed");
      const error = data.error || {};
      $("gen-stage").textContent = `${error.code || "failed"}: ${error.message || ""}`;
      showError("The job failed", new ApiError(0, error.code || "failed", error.message || "The job failed."));
      refreshJobs();
      break;
    }
    case "job_cancelled":
      setJobState("cancelled");
      setProgress(100, "cancelled", "cancelled");
      $("gen-stage").textContent = "cancelled";
      refreshJobs();
      break;
    default:
      break;
  }
}

async function showResult(id) {
  try {
    const job = await api(`/v1/jobs/${encodeURIComponent(id)}`);
    const outputs = (job.result && job.result.outputs) || [];
    const preview = $("gen-preview");
    preview.replaceChildren();
    for (const output of outputs) {
      if (!output.url) continue;
      const url = await blobUrl(output.url);
      const mime = output.mime || "";
      let node;
      if (mime.startsWith("image/")) node = el("img", { src: url, alt: `result of ${id}`, id: "gen-result" });
      else if (mime.startsWith("video/")) node = el("video", { src: url, controls: true, autoplay: true, loop: true, muted: true, id: "gen-result" });
      else if (mime.startsWith("audio/")) node = el("audio", { src: url, controls: true, id: "gen-result" });
      else node = el("a", { href: url, download: output.path ? output.path.split("/").pop() : "artifact" }, "Download the result");
      preview.append(node);
      const took = job.finished_at_ms && job.started_at_ms ? job.finished_at_ms - job.started_at_ms : null;
      const size = output.width ? ` · ${output.width}×${output.height}` : "";
      const frames = output.num_frames ? ` · ${output.num_frames} frames` : "";
      $("gen-stage").textContent = `done${size}${frames} · ran ${fmtMs(took)}`;
      break;
    }
  } catch (err) {
    showError("Could not load the result", err);
  }
}

async function cancelJob(id) {
  try {
    await api(`/v1/jobs/${encodeURIComponent(id)}`, { method: "DELETE" });
  } catch (err) {
    showError("Could not cancel the job", err);
  }
  refreshJobs();
}

async function refreshJobs() {
  let body;
  try {
    body = await api("/v1/jobs?limit=20");
  } catch (err) {
    if (activeTab === "generate") showError("Could not list the jobs", err);
    return;
  }
  const rows = (body.data || []).map((job) => {
    const id = job.job_id || job.id;
    const took = job.finished_at_ms && job.started_at_ms ? `${((job.finished_at_ms - job.started_at_ms) / 1000).toFixed(1)} s` : "–";
    const actions = [];
    if (["queued", "running"].includes(job.state)) {
      actions.push(el("button", { class: "secondary small", onclick: () => cancelJob(id) }, "Cancel"));
    }
    if (job.state === "succeeded") {
      actions.push(el("button", { class: "secondary small", onclick: () => followJob(job) }, "Show"));
    }
    return el(
      "tr",
      { "data-job": id },
      el("td", { class: "mono", title: id }, id.length > 18 ? `…${id.slice(-12)}` : id),
      el("td", {}, job.model),
      el("td", {}, job.task),
      el("td", {}, el("span", { class: `state ${job.state}` }, job.state)),
      el("td", { class: "muted" }, ago(job.enqueued_at_ms)),
      el("td", { class: "muted" }, took),
      el("td", {}, actions),
    );
  });
  const tbody = $("jobs-body");
  tbody.replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 7, class: "muted" }, "No jobs yet."))]));
}

// ---------------------------------------------------------------------------------------------------------------
// Fleet

const STATE_TITLES = {
  connected: "Something can run it now (discovery: weights and libraries checked).",
  "queue served": "A live worker consumes a queue for this model; its weights are checked when a job runs.",
  "no worker": "No live worker consumes a queue for this model.",
  no_worker: "No live worker serves this model.",
  weights_not_found: "The weights are not on the server (README: Where weights come from).",
  not_installed: "Its libraries are not installed.",
  not_configured: "A service-backed model without its upstream address.",
};

function servedBy(model, workers) {
  return workers.some((worker) =>
    (worker.queues || []).some((queue) => queue.startsWith(`omnirt.${model.tier}.`) || queue === model.id),
  );
}

async function loadFleet() {
  const [workersR, modelsR, avatarsR, voicesR, readyR] = await Promise.allSettled([
    api("/v1/workers"),
    api("/v1/models"),
    api("/v1/avatar/models"),
    api("/v1/text2audio/models"),
    fetch("/readyz").then((response) => response.json()),
  ]);
  const failed = [workersR, modelsR, avatarsR, voicesR].find((result) => result.status === "rejected");
  if (failed) showError("Could not read the fleet", failed.reason);
  const workers = workersR.status === "fulfilled" ? workersR.value.data || [] : [];
  const ready = readyR.status === "fulfilled" ? readyR.value : {};
  $("fleet-mode").textContent = `${ready.mode || "?"} · ${workers.length} worker${workers.length === 1 ? "" : "s"}`;
  renderWorkers(workers);
  const avatarStatus = new Map();
  if (avatarsR.status === "fulfilled") {
    for (const status of avatarsR.value.statuses || []) if (status.model) avatarStatus.set(status.model, status);
    for (const status of avatarsR.value.statuses || []) avatarStatus.set(status.id, status);
  }
  const voiceStatus = new Map();
  if (voicesR.status === "fulfilled") for (const status of voicesR.value.statuses || []) voiceStatus.set(status.id, status);
  const models = modelsR.status === "fulfilled" ? modelsR.value.data || [] : [];
  const onlyConnected = $("fleet-connected-only").checked;
  const rows = [];
  for (const model of models) {
    let connected;
    let detail;
    let kind;
    if (model.task === "audio2video" && avatarStatus.has(model.id)) {
      const status = avatarStatus.get(model.id);
      connected = status.connected;
      detail = connected ? "connected" : status.reason || "not connected";
    } else if (model.task === "text2audio" && voiceStatus.has(model.id)) {
      const status = voiceStatus.get(model.id);
      connected = status.connected;
      detail = connected ? "connected" : status.reason || "not connected";
    } else {
      connected = servedBy(model, workers);
      detail = connected ? "queue served" : "no worker";
      kind = connected ? "" : "bad";
    }
    kind ??= connected ? "ok" : "bad";
    if (onlyConnected && !connected) continue;
    rows.push(
      el(
        "tr",
        { "data-model": model.id },
        el("td", { class: "mono" }, model.id),
        el("td", {}, model.task),
        el("td", {}, model.tier),
        el("td", {}, el("span", { class: `pill ${kind}`, title: STATE_TITLES[detail] || "" }, detail)),
        el("td", { class: "summary" }, model.summary || ""),
      ),
    );
  }
  $("models-body").replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 5, class: "muted" }, "No models."))]));
}

function renderWorkers(workers) {
  const box = $("workers");
  if (!workers.length) {
    box.replaceChildren(el("p", { class: "muted" }, "No live worker. Start one: omnirt worker --device cpu"));
    return;
  }
  box.replaceChildren(
    ...workers.map((worker) => {
      const rows = [
        ["device", worker.device || "?"],
        ["mode", worker.mode || "fleet"],
        ["process", [worker.node, worker.pid].filter(Boolean).join(" · ") || "–"],
        [
          "sessions",
          worker.sessions ? `${worker.sessions.active} of ${worker.sessions.capacity}` : "–",
        ],
        ["memory", worker.memory && worker.memory.rss_mb ? `${worker.memory.rss_mb} MB` : "–"],
        [
          "loaded",
          (worker.loaded_models || []).length
            ? el("div", { class: "chips" }, worker.loaded_models.map((m) => el("span", { class: "chip" }, typeof m === "string" ? m : m.model || JSON.stringify(m))))
            : "none",
        ],
        ["queues", el("div", { class: "chips" }, (worker.queues || []).map((queue) => el("span", { class: "chip" }, queue)))],
      ];
      return el(
        "div",
        { class: "worker", "data-worker": worker.worker_id },
        el("div", { class: "name" }, worker.worker_id || "worker"),
        el("dl", {}, rows.map(([name, value]) => [el("dt", {}, name), el("dd", {}, value)])),
      );
    }),
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Start

function start() {
  for (const tab of tabs) $(`tab-btn-${tab}`).addEventListener("click", () => selectTab(tab));
  $("banner-close").addEventListener("click", hideBanner);
  $("change-key").hidden = !apiKey();
  $("change-key").addEventListener("click", () => {
    document.cookie = `${COOKIE}=; Path=/playground; Max-Age=0; SameSite=Strict`;
    location.reload();
  });
  $("talk-speak").addEventListener("click", speak);
  $("talk-text").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) speak();
  });
  $("talk-stop").addEventListener("click", stopSpeaking);
  $("talk-disconnect").addEventListener("click", endSession);
  $("talk-upload").addEventListener("change", uploadPortrait);
  $("gen-form").addEventListener("submit", submitJob);
  $("gen-task").addEventListener("change", fillGenModels);
  $("gen-cancel").addEventListener("click", () => gen.current && cancelJob(gen.current.id));
  $("jobs-refresh").addEventListener("click", refreshJobs);
  $("fleet-refresh").addEventListener("click", loadFleet);
  $("fleet-connected-only").addEventListener("change", loadFleet);
  window.addEventListener("beforeunload", () => talk.session && talk.session.close());
  setStage("idle");
  drawChart();
  selectTab(location.hash.slice(1) || "talk");
  serverState();
  setInterval(serverState, 10000);
  setInterval(() => activeTab === "generate" && refreshJobs(), 3000);
  Promise.all([loadVoices(), loadAvatarModels(), loadAvatars(), loadGenModels()]).then(() => {
    document.body.dataset.ready = "true";
  });
}

start();
