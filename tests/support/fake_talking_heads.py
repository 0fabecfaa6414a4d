"""Local fakes of the upstream talking-head checkouts, written into a temp folder at test time.

Each fake follows its repository's command-line contract: the same argparse arguments, the same place the video is
written (SoulX-FlashHead ``--save_file``; SoulX-LiveAct ``<image stem>_<audio stem>.mp4`` in its working directory;
LongCat-Video-Avatar ``<output_dir>/<stage_1>_demo_1.mp4`` or ``video_continue_<n>.mp4``), the same progress lines,
and an MP4 with the audio muxed in, as upstream does. Instead of a model, the frames are the condition image.

Test knobs, read from the environment by every fake: ``FAKE_RECORD`` (a JSON file per script and rank with argv,
working directory and the variables the launcher sets), ``FAKE_CHILD_PIDS`` (start a sleeping helper process and
append its pid, and the script's own, to this file), ``FAKE_SLEEP`` (seconds), ``FAKE_CRASH`` (print a traceback
and exit 3), ``FAKE_SILENT`` (write the video without audio).

``write_launcher_shims`` writes stand-ins for ``python -m torch.distributed.run`` and ``accelerate launch`` that
start one process per rank with ``RANK``/``LOCAL_RANK``/``WORLD_SIZE`` set (torch's real launcher takes seconds to
start, too slow for a unit test); any other ``python`` call runs this interpreter.
"""

from __future__ import annotations

import sys
from pathlib import Path

MEDIA = r"""
import json
import os
import subprocess
import sys
import time
import wave

RECORDED = ("CUDA_VISIBLE_DEVICES", "ASCEND_RT_VISIBLE_DEVICES", "RANK", "LOCAL_RANK", "WORLD_SIZE", "FAKE_MARK",
            "PLATFORM", "GPU_NUM", "FLASHHEAD_DEVICE", "FLASHHEAD_SAMPLE_STEPS", "FLASHHEAD_VAE_2D_SPLIT",
            "FLASHHEAD_LATENT_CARRY", "FLASHHEAD_NPU_FUSION_ATTENTION")


def behave(label):
    rank = os.environ.get("RANK", "0")
    record = os.environ.get("FAKE_RECORD")
    if record:
        with open(f"{record}.{label}.{rank}.json", "w") as handle:
            json.dump({"argv": sys.argv[1:], "cwd": os.getcwd(),
                       "env": {key: os.environ.get(key) for key in RECORDED}}, handle)
    pids = os.environ.get("FAKE_CHILD_PIDS")
    if pids:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        with open(pids, "a") as handle:
            handle.write(f"{os.getpid()}\n{child.pid}\n")
    if os.environ.get("FAKE_SLEEP"):
        print(f"[rank {rank}] loading weights...", flush=True)
        time.sleep(float(os.environ["FAKE_SLEEP"]))
    if os.environ.get("FAKE_CRASH"):
        print("Traceback (most recent call last):", flush=True)
        print('  File "pipeline.py", line 42, in generate', flush=True)
        print("RuntimeError: NPU out of memory. Tried to allocate 20.00 GiB", flush=True)
        sys.exit(3)


def read_wav(path):
    import numpy as np

    with wave.open(path, "rb") as handle:
        rate = handle.getframerate()
        pcm = np.frombuffer(handle.readframes(handle.getnframes()), dtype="<i2")
    return pcm.astype(np.float32) / 32768.0, rate


def write_video(path, image_path, audio_path, fps, num_frames=None, size=(64, 48)):
    import av
    import numpy as np
    from fractions import Fraction
    from PIL import Image

    samples, rate = read_wav(audio_path)
    if num_frames is None:
        num_frames = max(1, int(round(len(samples) / rate * fps)))
    if image_path:
        base = np.asarray(Image.open(image_path).convert("RGB").resize(size), dtype=np.int16)
    else:
        base = np.full((size[1], size[0], 3), 128, dtype=np.int16)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with av.open(path, mode="w") as container:
        video = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        video.width, video.height, video.pix_fmt = size[0], size[1], "yuv420p"
        audio = None
        if not os.environ.get("FAKE_SILENT"):
            audio = container.add_stream("aac", rate=rate)
            audio.layout = "mono"
        for index in range(num_frames):
            frame = np.clip(base + (index % 8) * 4, 0, 255).astype(np.uint8)
            for packet in video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        if audio is not None:
            pcm = (samples * 32767).astype("<i2").reshape(1, -1)
            chunk = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
            chunk.sample_rate = rate
            for packet in audio.encode(chunk):
                container.mux(packet)
            for packet in audio.encode():
                container.mux(packet)
"""

FLASHHEAD = r"""
import argparse
import os
from datetime import datetime

from _fake_media import behave, read_wav, write_video


def _validate_args(args):
    assert args.ckpt_dir is not None, "Please specify FlashHead model checkpoint directory."
    assert args.wav2vec_dir is not None, "Please specify the wav2vec checkpoint directory."
    assert args.model_type == "pro" or args.model_type == "lite", "Please specify the model name (pro, lite)."
    assert args.cond_image_dir is not None or args.cond_image is not None, "Please specify the condition image."
    assert args.audio_path is not None, "Please specify the audio path."


def _parse_args():
    parser = argparse.ArgumentParser(description="Generate video from one image using FlashHead")
    parser.add_argument("--ckpt_dir", type=str, default=None)
    parser.add_argument("--wav2vec_dir", type=str, default=None)
    parser.add_argument("--model_type", type=str, default=None)
    parser.add_argument("--save_file", type=str, default=None)
    parser.add_argument("--base_seed", type=int, default=42)
    parser.add_argument("--cond_image", type=str, default=None)
    parser.add_argument("--cond_image_dir", type=str, default=None)
    parser.add_argument("--audio_path", type=str, default=None)
    parser.add_argument("--audio_encode_mode", type=str, default="stream", choices=["stream", "once"])
    parser.add_argument("--use_face_crop", type=bool, default=False)
    args = parser.parse_args()
    _validate_args(args)
    return args


def infer_params():
    params = {}
    with open("flash_head/configs/infer_params.yaml") as handle:
        for line in handle:
            key, _, value = line.partition(":")
            params[key.strip()] = int(value)
    return params


if __name__ == "__main__":
    args = _parse_args()
    rank = int(os.environ.get("RANK", 0))
    behave("generate_video")
    params = infer_params()
    tgt_fps, slice_len = params["tgt_fps"], params["frame_num"] - params["motion_frames_num"]
    samples, rate = read_wav(args.audio_path)
    chunks = max(1, len(samples) // (slice_len * rate // tgt_fps))
    if rank == 0:
        print("Data preparation done. Start to generate video...", flush=True)
    for chunk_idx in range(chunks):
        if rank == 0:
            print(f"Generate video chunk-{chunk_idx} done, cost time: 0.001s", flush=True)
    if rank == 0:
        if args.save_file is None:
            os.makedirs("sample_results", exist_ok=True)
            args.save_file = os.path.join("sample_results", f"res_{datetime.now():%Y%m%d-%H:%M:%S-%f}.mp4")
        write_video(args.save_file, args.cond_image, args.audio_path, tgt_fps, num_frames=chunks * slice_len)
        print(f"Saving generated video to {args.save_file}", flush=True)
        print("Finished.", flush=True)
"""

LIVEACT = r"""
import argparse
import json
import os

from _fake_media import behave, read_wav, write_video


def _parse_args():
    parser = argparse.ArgumentParser(description="Generate a video from a text prompt, image and audio")
    parser.add_argument("--size", type=str, default="480*832")
    parser.add_argument("--ckpt_dir", type=str, default=None)
    parser.add_argument("--wav2vec_dir", type=str, default=None)
    parser.add_argument("--t5_cpu", action="store_true", default=False)
    parser.add_argument("--offload_cache", action="store_true", default=False)
    parser.add_argument("--fp8_kv_cache", action="store_true", default=False)
    parser.add_argument("--block_offload", action="store_true", default=False)
    parser.add_argument("--fps", type=int, default=24)
    parser.add_argument("--audio_cfg", type=float, default=1.0)
    parser.add_argument("--dura_print", action="store_true", default=False)
    parser.add_argument("--input_json", type=str, default="examples.json")
    parser.add_argument("--steam_audio", action="store_true", default=False)
    parser.add_argument("--mean_memory", action="store_true", default=False)
    parser.add_argument("--seed", type=int, default=42)
    if os.path.exists("prepare_text_cache.py"):  # the Ascend checkout's extensions
        parser.add_argument("--rank0_t5_only", action="store_true", default=False)
        parser.add_argument("--sample_steps", type=int, default=4)
    return parser.parse_args()


if __name__ == "__main__":
    args = _parse_args()
    rank = int(os.getenv("RANK", 0))
    behave("generate")
    width, height = [int(_) for _ in args.size.split("*")]
    with open(args.input_json, "r", encoding="utf-8") as f:
        input_data = json.load(f)
    for data in input_data:
        image_path, audio_path, prompt = data["cond_image"], data["cond_audio"], data["prompt"]
        stems = [os.path.basename(path).split(".")[0] for path in (image_path, audio_path)]
        out_path = stems[0] + "_" + stems[1] + ".mp4"
        samples, rate = read_wav(audio_path)
        iter_total_num = int(len(samples) / rate / (4 * 8 / args.fps)) + 1
        print("----iter_total_num=", iter_total_num, flush=True)
        for block in range(iter_total_num):
            if args.dura_print and rank == 0:
                print(f"Done Block {block}: duration {8 * 4 / args.fps * 1000}ms video cost 1.00 ms", flush=True)
        if rank == 0:
            write_video("tmp.mp4", image_path, audio_path, args.fps, size=(width // 8, height // 8))
            os.replace("tmp.mp4", out_path)
"""

LIVEACT_TEXT_CACHE = r"""
import argparse

from _fake_media import behave

parser = argparse.ArgumentParser()
parser.add_argument("--ckpt_dir", type=str, required=True)
parser.add_argument("--input_json", type=str, required=True)
parser.add_argument("--device", type=str, default="npu")
parser.add_argument("--force", action="store_true")
args = parser.parse_args()
behave("prepare_text_cache")
print("[text-cache-profile] total=0.01s", flush=True)
"""

LONGCAT = r"""
import argparse
import json
import os
from pathlib import Path

from _fake_media import behave, write_video

NUM_FRAMES, NUM_COND_FRAMES = 93, 13


def generate(args):
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    num_segments = max(1, args.num_segments)
    paths = [output_dir / f"{args.stage_1}_demo_1.mp4"]
    paths += [output_dir / f"video_continue_{i}.mp4" for i in range(2, num_segments + 1)]
    save_fps = 25 if args.model_type == "avatar-v1.5" else 16
    with open(args.input_json, "r", encoding="utf-8") as f:
        input_data = json.load(f)
    raw_speech_path = input_data["cond_audio"]["person1"]
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    behave("longcat")
    image = input_data["cond_image"] if args.stage_1 == "ai2v" else None
    frames = NUM_FRAMES
    for segment_idx in range(num_segments):
        if local_rank == 0:
            print(f"Generating segment {segment_idx + 1}/{num_segments}...", flush=True)
        if segment_idx:
            frames += NUM_FRAMES - NUM_COND_FRAMES
        if rank == 0:
            write_video(str(paths[segment_idx]), image, raw_speech_path, save_fps, num_frames=frames)


def _parse_args():
    parser = argparse.ArgumentParser()
    parser.add_argument("--input_json", type=str, default="assets/avatar/single_example_1.json")
    parser.add_argument("--output_dir", type=str, default="./outputs_avatar_single")
    parser.add_argument("--resolution", type=str, default="480p", choices=["480p", "720p"])
    parser.add_argument("--num_segments", type=int, default=1)
    parser.add_argument("--num_inference_steps", type=int, default=50)
    parser.add_argument("--ref_img_index", type=int, default=10)
    parser.add_argument("--mask_frame_range", type=int, default=3)
    parser.add_argument("--text_guidance_scale", type=float, default=4.0)
    parser.add_argument("--audio_guidance_scale", type=float, default=4.0)
    parser.add_argument("--stage_1", type=str, default="ai2v", choices=["ai2v", "at2v"])
    parser.add_argument("--context_parallel_size", type=int, default=1)
    parser.add_argument("--checkpoint_dir", type=str, default="./weights/LongCat-Video-Avatar")
    parser.add_argument("--model_type", type=str, default="avatar-v1.0")
    parser.add_argument("--use_distill", action="store_true")
    parser.add_argument("--use_int8", action="store_true")
    return parser.parse_args()


if __name__ == "__main__":
    generate(_parse_args())
"""

LAUNCHER_SHIM = r'''#!{python}
"""Stand-in for `python -m torch.distributed.run --nproc_per_node=N` and `accelerate launch --num_processes N`."""
import os
import subprocess
import sys
import time

args = sys.argv[1:]
world = None
if args[:2] == ["-m", "torch.distributed.run"]:
    args = args[2:]
    world = 1
    while args and args[0].startswith("--"):
        option = args.pop(0)
        if option.startswith("--nproc_per_node="):
            world = int(option.split("=", 1)[1])
elif args[:1] == ["launch"]:
    args = args[1:]
    world = 1
    while args and args[0].startswith("--"):
        option = args.pop(0)
        if option == "--num_processes":
            world = int(args.pop(0))
if world is None:
    os.execv(sys.executable, [sys.executable, *args])
ranks = [
    subprocess.Popen(
        [sys.executable, *args],
        env={{**os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world)}},
    )
    for rank in range(world)
]
while True:
    codes = [rank.poll() for rank in ranks]
    failed = [code for code in codes if code not in (None, 0)]
    if failed:
        for rank in ranks:
            if rank.poll() is None:
                rank.terminate()
        sys.exit(failed[0])
    if all(code == 0 for code in codes):
        sys.exit(0)
    time.sleep(0.02)
'''


def _repo(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "_fake_media.py").write_text(MEDIA)
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def make_flashhead_repo(root: Path) -> Path:
    """A SoulX-FlashHead checkout: generate_video.py, its inference config, weights folders."""
    repo = _repo(
        root,
        {
            "generate_video.py": FLASHHEAD,
            "flash_head/configs/infer_params.yaml": "tgt_fps: 25\nframe_num: 33\nmotion_frames_num: 5\n",
        },
    )
    (repo / "models/SoulX-FlashHead-1_3B").mkdir(parents=True)
    (repo / "models/wav2vec2-base-960h").mkdir(parents=True)
    return repo


def make_liveact_repo(root: Path, *, ascend: bool = False) -> Path:
    """A SoulX-LiveAct checkout (the public one, or the Ascend one with prepare_text_cache.py)."""
    files = {"generate.py": LIVEACT}
    if ascend:
        files["prepare_text_cache.py"] = LIVEACT_TEXT_CACHE
    repo = _repo(root, files)
    (repo / "models/LiveAct").mkdir(parents=True)
    (repo / "models/chinese-wav2vec2-base").mkdir(parents=True)
    return repo


def make_longcat_repo(root: Path) -> Path:
    """A LongCat-Video checkout with the avatar demo script and the avatar weights folder."""
    repo = _repo(root, {"run_demo_avatar_single_audio_to_video.py": LONGCAT})
    (repo / "weights/LongCat-Video-Avatar").mkdir(parents=True)
    return repo


def write_launcher_shims(folder: Path) -> dict[str, Path]:
    """``{"python": ..., "accelerate": ...}``: executables that start one process per rank (see the module doc)."""
    folder.mkdir(parents=True, exist_ok=True)
    shims = {}
    for name in ("python", "accelerate"):
        path = folder / name
        path.write_text(LAUNCHER_SHIM.format(python=sys.executable))
        path.chmod(0o755)
        shims[name] = path
    return shims
