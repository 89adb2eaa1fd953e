"""Ingest throughput per source kind next to a baseline on the same inputs, and peak memory.

    python benchmarks/bench_ingest.py                 # speed table (n=1000 per kind, 2 workers)
    python benchmarks/bench_ingest.py --memory        # + peak memory (PSS) at 1x and 10x input
    python benchmarks/bench_ingest.py --real ../shared/data/sketches/sketchy
    python benchmarks/bench_ingest.py --kinds none --scale 10000 100000   # README "Ingest at scale"
    python benchmarks/bench_ingest.py --kinds "png clean" --profile      # where one kind's time goes

The baseline decodes (or parses), rasterises or resizes to 128 px and encodes the PNG a shard holds
(`shards.encode_png`), in the same process pool with the same chunking: the least any ingest must
do. The ratio isolates what normalization, placement, gates, hashing, dedup and shard writing cost
on top (target >= 0.8 for every kind).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from minisd.params.ingest import IngestParams, QuickDrawSource
from minisd.ingest import run_ingest, synthetic
from minisd.ingest.pool import chunked, ordered_map
from minisd.ingest.quickdraw import parse_line
from minisd.ingest.render import render_strokes
from minisd.shards import encode_png

SIZE = 128
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")


# ----------------------------------------------------------------------------- inputs


def scan_like(rng, h: int, w: int) -> np.ndarray:
    """A doodle photographed on paper: uneven light, grain, grey ink."""
    image = np.full((h, w), 255, np.uint8)
    pts = (rng.random((8, 2)) * [w * 0.6, h * 0.6] + [w * 0.2, h * 0.2]).astype(np.int32)
    cv2.polylines(image, [pts.reshape(-1, 1, 2)], False, 40, max(2, w // 200), cv2.LINE_AA)
    light = np.linspace(0.6, 1.0, w)[None, :] * np.linspace(0.8, 1.0, h)[:, None]
    noisy = image * light + rng.normal(0, 4, (h, w))
    return np.clip(noisy, 0, 255).astype(np.uint8)


def _binary(gray: np.ndarray) -> np.ndarray:
    return np.where(gray < 128, 0, 255).astype(np.uint8)


def make_inputs(root: Path, n: int, wanted=lambda name: True) -> dict[str, dict]:
    """n inputs of every kind `wanted` (by case name); each kind has its own seed, so a filter changes nothing."""
    cases = {}
    folders = {
        "imagefolder png scan 256px": ("png256", ".png", lambda rng: scan_like(rng, 256, 256), []),
        "imagefolder png clean 256px": ("clean256", ".png", lambda rng: _binary(scan_like(rng, 256, 256)), []),
        "imagefolder jpeg 1600x1200": ("jpeg1600", ".jpg", lambda rng: scan_like(rng, 1200, 1600),
                                       [cv2.IMWRITE_JPEG_QUALITY, 90]),
    }  # fmt: skip
    for k, (name, (folder, suffix, make, flags)) in enumerate(folders.items()):
        if not wanted(name):
            continue
        rng, path = np.random.default_rng([0, k]), root / folder
        path.mkdir(parents=True)
        for i in range(n):
            cv2.imwrite(str(path / f"{i:05d}{suffix}"), make(rng), flags)
            (path / f"{i:05d}.txt").write_text(f"{folder} {i}")
        cases[name] = {"kind": "imagefolder", "path": str(path)}
    if wanted("quickdraw ndjson"):
        rng, lines = np.random.default_rng([0, 3]), []
        for i in range(n):
            strokes = [[rng.integers(0, 256, 12).tolist(), rng.integers(0, 256, 12).tolist()] for _ in range(4)]
            lines.append(json.dumps({"word": "zig", "recognized": True, "key_id": str(i), "drawing": strokes}))
        root.mkdir(parents=True, exist_ok=True)
        (root / "zig.ndjson").write_text("\n".join(lines))
        cases["quickdraw ndjson"] = {"kind": "quickdraw", "path": str(root / "zig.ndjson")}
        cases["quickdraw ndjson layout"] = {**cases["quickdraw ndjson"], "layout": True}
    if wanted("quickdraw npy"):
        rng, bitmaps = np.random.default_rng([0, 4]), np.zeros((n, 784), np.uint8)
        for i in range(n):
            b = np.zeros((28, 28), np.uint8)
            cv2.polylines(b, [rng.integers(3, 25, (5, 1, 2)).astype(np.int32)], False, 255, 2)
            bitmaps[i] = b.ravel()
        root.mkdir(parents=True, exist_ok=True)
        np.save(root / "zig.npy", bitmaps)
        cases["quickdraw npy"] = {"kind": "quickdraw", "path": str(root / "zig.npy")}
    if wanted("synthetic"):
        cases["synthetic"] = {"kind": "synthetic", "count": n, "seed": 0}
    return cases


# ----------------------------------------------------------------------------- bare decode + resize


def _bare(task):
    kind, payload = task
    if kind == "file":
        image = cv2.imdecode(np.fromfile(payload, np.uint8), cv2.IMREAD_GRAYSCALE)
    elif kind == "line":
        _, strokes = parse_line(payload, QuickDrawSource(kind="quickdraw", path=".", recognized_only=False))
        return len(encode_png(render_strokes(strokes, SIZE, 2.0, 0.08)))
    elif kind == "bitmap":
        image = np.frombuffer(payload, np.uint8).reshape(28, 28)
    else:
        return len(encode_png(synthetic.draw(list(synthetic.CLASSES)[payload % 14], np.random.default_rng(payload), SIZE)[0]))
    return len(encode_png(cv2.resize(image, (SIZE, SIZE), interpolation=cv2.INTER_AREA)))


def _no_init() -> None:
    cv2.setNumThreads(1)  # same as ingest's workers


def _bare_chunk(chunk):
    return [_bare(t) for t in chunk]


def bare_tasks(source: dict) -> list:
    path = Path(source.get("path", "."))
    if source["kind"] == "imagefolder":
        return [("file", str(p)) for p in sorted(path.rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES]
    if source["kind"] == "synthetic":
        return [("synthetic", i) for i in range(source["count"])]
    if path.suffix == ".npy":
        return [("bitmap", bytes(row)) for row in np.load(path)]
    files = sorted(path.glob("*.ndjson")) if path.is_dir() else [path]
    return [("line", line) for f in files for line in f.read_bytes().splitlines()]


def bare_rate(source: dict, workers: int) -> float:
    tasks = bare_tasks(source)
    start = time.perf_counter()
    for _ in ordered_map(_bare_chunk, chunked(tasks, 16), workers, _no_init, ()):
        pass
    return len(tasks) / (time.perf_counter() - start)


def ingest_rate(source: dict, workers: int, out: Path) -> tuple[float, int]:
    params = IngestParams.model_validate({"sources": [source], "workers": workers})
    start = time.perf_counter()
    report = run_ingest(params, out / "shards", out / "ingest")
    return report["total"]["seen"] / (time.perf_counter() - start), report["total"]["accepted"]


# ----------------------------------------------------------------------------- memory


def peak_memory(source: dict, workers: int, out: Path, shard_size: int = 2000) -> dict:
    """Peak memory in MiB of the main process and of the whole tree while a fresh interpreter ingests,
    with its wall seconds, the main process's CPU seconds and the accepted count.

    The tree (main, forkserver, workers) is sampled every 50 ms with PSS, which splits pages the
    forked workers share with their parent instead of counting them once per process.
    """
    import psutil  # an accelerate dependency; only this benchmark uses it

    code = (
        "import json, sys, time\n"
        "from minisd.config import IngestParams\n"
        "from minisd.ingest import run_ingest\n"
        "if __name__ == '__main__':\n"
        f"    p = IngestParams.model_validate({{'sources': [json.loads(sys.argv[1])], 'workers': {workers}, "
        f"'shard_size': {shard_size}}})\n"
        "    start, cpu = time.perf_counter(), time.process_time()\n"
        "    report = run_ingest(p, sys.argv[2] + '/shards', sys.argv[2] + '/ingest')\n"
        "    print(json.dumps({'seconds': time.perf_counter() - start, 'main_cpu': time.process_time() - cpu,\n"
        "                      'accepted': report['total']['accepted'], 'seen': report['total']['seen']}))\n"
    )
    script = out.parent / f"{out.name}_run.py"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(code)
    proc = subprocess.Popen([sys.executable, str(script), json.dumps(source), str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)  # fmt: skip
    root, peak_main, peak_tree = psutil.Process(proc.pid), 0, 0
    while proc.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
            sizes = [getattr(p.memory_full_info(), "pss", p.memory_info().rss) for p in tree]
        except psutil.Error:
            continue
        peak_main, peak_tree = max(peak_main, sizes[0]), max(peak_tree, sum(sizes))
        time.sleep(0.05)
    if proc.returncode:
        raise RuntimeError(f"ingest subprocess failed ({proc.returncode}) on {source}")
    timing = json.loads(proc.stdout.read().strip().splitlines()[-1])
    return {"main_mb": peak_main / 2**20, "tree_mb": peak_tree / 2**20, **timing}


def scale(sizes: list[int], workers: int, tmp: Path) -> None:
    """Quick Draw-like ndjson at growing sizes: rate, main-process share, memory slope; 10M extrapolated."""
    print(f"\ningest at scale: quickdraw ndjson, {workers} workers, load avg {_load()}")
    print(f"{'drawings':>9s} {'img/s':>7s} {'main us/img':>11s} {'main MiB':>9s} {'tree MiB':>9s} {'shards MB':>9s}")
    rows = []
    for n in sizes:
        out = tmp / "scale" / str(n)
        r = peak_memory(_doodles(tmp / f"scale{n}.ndjson", n), workers, out)
        disk = sum(p.stat().st_size for p in (out / "shards").glob("*.tar")) / 1e6
        rows.append({**r, "n": n, "disk_mb": disk})
        print(f"{n:9d} {n / r['seconds']:7.0f} {r['main_cpu'] / n * 1e6:11.0f} {r['main_mb']:9.0f} "
              f"{r['tree_mb']:9.0f} {disk:9.0f}")  # fmt: skip
    if len(rows) >= 2:
        a, b = rows[0], rows[-1]
        per = max((b["tree_mb"] - a["tree_mb"]) * 2**20 / (b["accepted"] - a["accepted"]), 0.0)  # noise at small n
        rate, disk = b["n"] / b["seconds"], b["disk_mb"] / b["accepted"] * 1e6
        print(f"memory slope {per:.0f} bytes per accepted drawing; at 10M drawings: "
              f"{1e7 / rate / 3600:.1f} h, {(b['tree_mb'] * 2**20 + per * (1e7 - b['accepted'])) / 2**30:.1f} GiB, "
              f"{disk * 1e7 / 1e9:.0f} GB of shards ({disk / 1e3:.1f} KB per sample), "
              f"main-process ceiling {1e6 / (b['main_cpu'] / b['n'] * 1e6):.0f} img/s")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000, help="inputs per source kind")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--memory", action="store_true", help="also measure peak memory at 1x and 10x input")
    parser.add_argument("--memory-n", type=int, default=2000, help="1x size for the memory test")
    parser.add_argument("--real", type=Path, action="append", default=[], help="extra imagefolder to time")
    parser.add_argument("--quickdraw", type=Path, action="append", default=[],
                        help="extra Quick, Draw! file or folder to time (placed, as profiles/quickdraw.yaml does)")
    parser.add_argument("--kinds", default="", help="comma-separated substrings: only these rows ('none': no table)")
    parser.add_argument("--scale", type=int, nargs="*", default=[], help="quickdraw ndjson sizes for the scale note")
    parser.add_argument("--profile", action="store_true",
                        help="instead of the table: each selected kind ingested in-process under cProfile, top functions")
    args = parser.parse_args()
    kinds = [k for k in args.kinds.split(",") if k]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.profile:
            profile(args, kinds, tmp)
        elif kinds != ["none"]:
            table(args, kinds, tmp)
        if args.memory:
            print(f"\npeak memory (PSS, MiB), {args.workers} workers, load avg {_load()}")
            print(f"{'source':28s} {'input':>8s} {'main':>8s} {'tree':>8s}")
            for name, make in (("synthetic", lambda k: {"kind": "synthetic", "count": k}),
                               ("quickdraw ndjson", lambda k: _ndjson(tmp / f"mem{k}.ndjson", k))):  # fmt: skip
                trees = []
                for factor in (1, 10):
                    k = args.memory_n * factor
                    r = peak_memory(make(k), args.workers, tmp / "mem" / f"{name}{k}".replace(" ", ""))
                    trees.append(r["tree_mb"])
                    print(f"{name:28s} {k:8d} {r['main_mb']:8.0f} {r['tree_mb']:8.0f}")
                print(f"{'':28s} 10x / 1x = {trees[1] / trees[0]:.2f}")
        if args.scale:
            scale(args.scale, args.workers, tmp)


def table(args, kinds: list[str], tmp: Path) -> None:
    """Bare decode+resize vs ingest, img/s per source kind (both run with `args.workers` workers)."""
    def wanted(name: str) -> bool:
        return not kinds or any(k in name for k in kinds)

    cases = make_inputs(tmp / "inputs", args.n, wanted)
    for path in args.real:
        cases[f"imagefolder {path.name}"] = {"kind": "imagefolder", "path": str(path)}
    for path in args.quickdraw:
        cases[f"quickdraw {path.name} layout"] = {"kind": "quickdraw", "path": str(path), "layout": True}
    bare_rate({"kind": "synthetic", "count": 64}, args.workers)  # warm-up: start the forkserver once
    print(f"ingest speed, {args.workers} workers, n={args.n} per kind (load avg {_load()})")
    print(f"{'source':30s} {'items/s':>8s} {'baseline items/s':>17s} {'ratio':>6s} {'accepted':>9s}")
    for name, source in cases.items():
        bare = bare_rate(source, args.workers)
        rate, accepted = ingest_rate(source, args.workers, tmp / "out" / name.replace(" ", "_"))
        print(f"{name:30s} {rate:8.0f} {bare:17.0f} {rate / bare:6.2f} {accepted:9d}")


def profile(args, kinds: list[str], tmp: Path, top: int = 15) -> None:
    """In-process (workers=0) so one profile sees the workers' share and the main process's together."""
    import cProfile
    import pstats

    cases = make_inputs(tmp / "inputs", args.n, lambda name: not kinds or any(k in name for k in kinds))
    _no_init()
    for name, source in cases.items():
        bare = bare_tasks(source)
        start = time.perf_counter()
        _bare_chunk(bare)
        bare_us = (time.perf_counter() - start) / len(bare) * 1e6
        params = IngestParams.model_validate({"sources": [source], "workers": 0})
        profiler = cProfile.Profile()
        start = time.perf_counter()
        profiler.runcall(run_ingest, params, tmp / "out" / name.replace(" ", "_") / "shards", tmp / "out" / "ingest")
        print(f"\n{name}: baseline {bare_us:.0f} us/item, ingest {(time.perf_counter() - start) / len(bare) * 1e6:.0f} "
              f"us/item under the profiler (one process)")  # fmt: skip
        pstats.Stats(profiler).sort_stats("tottime").print_stats(top)


def _ndjson(path: Path, n: int, words: int = 50) -> dict:
    rng = np.random.default_rng(1)
    with path.open("w") as f:
        for i in range(n):
            strokes = [[rng.integers(0, 256, 24).tolist(), rng.integers(0, 256, 24).tolist()] for _ in range(5)]
            line = {"word": f"w{i % words}", "recognized": True, "key_id": str(i), "drawing": strokes}
            f.write(json.dumps(line) + "\n")
    return {"kind": "quickdraw", "path": str(path)}


def _doodles(path: Path, n: int, words: int = 345) -> dict:
    """Quick Draw-like simplified lines: 2-6 random-walk strokes of 3-12 points in 0..255, as sparse
    as real doodles (about 3.7 KB per sample in the shards, like the real files), 345 classes."""
    rng = np.random.default_rng(2)
    with path.open("w") as f:
        for i in range(n):
            strokes = []
            for _ in range(int(rng.integers(2, 7))):
                steps = rng.normal(0, 30, (int(rng.integers(3, 13)), 2))
                points = np.clip(rng.integers(30, 226, 2) + np.cumsum(steps, axis=0), 0, 255).astype(int)
                strokes.append([points[:, 0].tolist(), points[:, 1].tolist()])
            line = {"word": f"w{i % words}", "recognized": True, "key_id": str(i), "drawing": strokes}
            f.write(json.dumps(line) + "\n")
    return {"kind": "quickdraw", "path": str(path)}


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in __import__("os").getloadavg())


if __name__ == "__main__":
    import bench_ingest  # workers unpickle `bench_ingest._bare_chunk`, not a function of __main__

    bench_ingest.main()
