"""One prepared check of the seed scale on the device that is here (CUDA if present, else CPU).

    python benchmarks/gpu_check.py --out results/gpu_check           # on a GPU: about 10 minutes
    python benchmarks/gpu_check.py --compile                         # also torch.compile rows (+1-2 min)
    python benchmarks/gpu_check.py --cpu-smoke --out /tmp/smoke      # same code path, tiny: ~2 min on 2 cores

Four parts; each is recorded even when another fails, and the JSON is rewritten after each:
1. repro: the project (git ls-files) copied into a throwaway git repo, profile seed-scratch applied
   (with --cpu-smoke, profile tiny on top), the real `dvc repro` run stage by stage in DAG order:
   wall time and peak GPU memory per stage, then a plain `dvc repro` that must find nothing to run.
2. multi-process: train_unet again in that copy with MINISD_ACCELERATE_ARGS="--multi_gpu
   --num_processes 2" (on one GPU both ranks share it), or the reason it could not.
3. step timing: one train_unet step (diffusion loss, backward, AdamW) at the profile's UNet, latent
   and text shapes and batch size, per precision (fp32, tf32, bf16 and fp16 autocast; tf32 and fp16
   on CUDA only), contiguous and channels_last, plus torch.compile with --compile: samples/s and
   achieved TFLOP/s against the device's dense peak.
4. cached vs encode: the same step fed from the caches (what train_unet does) vs encoding each batch
   with the VAE encoder and the text encoder (what diffusers' train_text_to_image.py does).

Writes DIR/gpu_check.log (the tables plus every child's full output) and DIR/gpu_check.json.
Models are random-init at the seed's shapes: speed and memory depend on shapes, not weights, and
nothing is downloaded (HF_HUB_OFFLINE=1 for every child).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # the library of this checkout, installed or not

import torch  # noqa: E402  (imports CUDA lazily: no context, so nvidia-smi sees only the stages)
import yaml  # noqa: E402
from transformers import CLIPTextConfig, CLIPTextModel  # noqa: E402

from minisd.vae.model import load_vae  # noqa: E402
from minisd.config import Params, load_params  # noqa: E402
from minisd.project_copy import copy_project  # noqa: E402
from minisd.stage import LAUNCH_ENV  # noqa: E402
from minisd.training.precision import resolve_mixed_precision  # noqa: E402
from minisd.unet.diffusion import draw_noise  # noqa: E402
from child_runs import (MARKER_ENV, GpuMemoryPeak, RanksSeen, Report, _terminated,  # noqa: E402
                        child_env, failure_reason, sh)
from unet_step import (TrainStep, autocast, batch_inputs, compiled_gradient_error, fake_cache, free,  # noqa: E402
                       matmul_peak, median_seconds, set_tf32, step_flops, sync)

PROFILE = "seed-scratch"
SMOKE_PROFILE = "tiny"  # applied on top in --cpu-smoke: the seed's recipe at tiny widths and steps
SMOKE_STEPS = {  # and then these, so the whole smoke run takes about 2 minutes on 2 cores
    "clip": {"warmup_steps": 1, "max_steps": 4, "val_every": 2, "log_every": 1, "checkpoint_every": 2},
    "vae": {"crop_size": 64, "warmup_steps": 1, "max_steps": 4, "full_size_steps": 2, "val_every": 2,
            "log_every": 1, "checkpoint_every": 2},  # crops, then full size: both of the trainer's paths
    "unet": {"warmup_steps": 1, "max_steps": 4, "val_every": 2, "sample_every": 4, "sample_steps": 4,
             "log_every": 1, "checkpoint_every": 2},
    "evaluate": {"steps": 2},
}
MULTI_PROCESS_ARGS = "--multi_gpu --num_processes 2"
CACHED_GOAL = 5.0  # the caches should make a train_unet step at least this much faster than encoding
VAE_SCALE = 0.18215  # SD's latent scaling; the value does not change the timing

# Dense (no sparsity) peak TFLOP/s from NVIDIA's datasheets, matched as a substring of
# torch.cuda.get_device_name(); first match wins, so the more specific names come first.
PEAK_TFLOPS = [
    ("H100 NVL", {"fp32": 60, "tf32": 418, "bf16": 835, "fp16": 835}),
    ("H100 PCIe", {"fp32": 51, "tf32": 378, "bf16": 756, "fp16": 756}),
    ("H100", {"fp32": 67, "tf32": 494, "bf16": 989, "fp16": 989}),  # SXM
    ("H200", {"fp32": 67, "tf32": 494, "bf16": 989, "fp16": 989}),
    ("A100", {"fp32": 19.5, "tf32": 156, "bf16": 312, "fp16": 312}),
    ("L40S", {"fp32": 91.6, "tf32": 183, "bf16": 362, "fp16": 362}),
    ("L40", {"fp32": 90.5, "tf32": 90.5, "bf16": 181, "fp16": 181}),
    ("L4", {"fp32": 30.3, "tf32": 60, "bf16": 121, "fp16": 121}),
    ("V100", {"fp32": 15.7, "fp16": 125}),
]
FORMULA = ("achieved TFLOP/s = FLOPs of one training step (torch.utils.flop_counter.FlopCounterMode: matmuls, "
           "convolutions, attention; forward + backward; AdamW's elementwise work not counted) / median step time; "
           "% peak = achieved / the device's dense peak for that precision (datasheet; measured matmul peak when "
           "the device is not in the table)")


# ----------------------------------------------------------------------------- part 1: the throwaway project


def prepare_copy(copy: Path, smoke: bool, report: Report) -> None:
    """Copy the project, apply the profile(s) with the real CLI, commit: a repo `dvc repro` can run in."""
    copy_project(ROOT, copy)
    env = child_env(copy)
    names = [PROFILE] + ([SMOKE_PROFILE, "gpu-check-smoke"] if smoke else [])
    if smoke:  # a profile file in the copy only, applied by the same CLI as the others
        (copy / "profiles" / "gpu-check-smoke.yaml").write_text(yaml.safe_dump(SMOKE_STEPS))
    steps = [["git", "init", "-q", "-b", "main"]] + [[sys.executable, "-m", "minisd", "profile", n] for n in names]
    if not (copy / ".dvc").is_dir():
        steps.append(["dvc", "init", "-q"])
    steps += [["git", "add", "-A"], ["git", "commit", "-qm", f"project on profile {PROFILE}"]]
    for cmd in steps:
        rc, output, _ = sh(cmd, copy, env, 120)
        report.child(" ".join(cmd[-3:]), output)
        if rc != 0:
            raise SystemExit(f"gpu_check: `{' '.join(cmd)}` failed in {copy}: {failure_reason(output, rc)}")


def stage_order(dvc_yaml: Path) -> list[str]:
    """Stages in an order where every stage comes after the stages whose outs it depends on."""
    stages = yaml.safe_load(dvc_yaml.read_text())["stages"]

    def paths(entries) -> list[str]:
        return [e if isinstance(e, str) else next(iter(e)) for e in entries or []]

    outs = {name: paths(stage.get("outs")) for name, stage in stages.items()}

    def producers(dep: str) -> set[str]:
        return {n for n, produced in outs.items() for o in produced
                if dep == o or dep.startswith(o + "/") or o.startswith(dep + "/")}

    needs = {name: set().union(*map(producers, paths(stage.get("deps")))) - {name} for name, stage in stages.items()}
    order: list[str] = []
    while len(order) < len(stages):
        ready = [n for n in stages if n not in order and needs[n] <= set(order)]
        if not ready:
            raise SystemExit(f"gpu_check: {dvc_yaml} has a dependency cycle among {set(stages) - set(order)}")
        order.append(ready[0])
    return order


def run_repro(copy: Path, timeout: float, report: Report) -> dict:
    """`dvc repro -s STAGE` in DAG order, timed and memory-polled; stops at the first failure."""
    env, rows = child_env(copy), []
    order = stage_order(copy / "dvc.yaml")
    for stage in order:
        with GpuMemoryPeak() as memory:
            rc, output, seconds = sh(["dvc", "repro", "-s", stage], copy, env, timeout)
        report.child(f"dvc repro -s {stage}", output)
        rows.append({"stage": stage, "seconds": round(seconds, 2), "peak_gpu_mib": memory.peak_mib, "rc": rc,
                     **({} if rc == 0 else {"reason": failure_reason(output, rc)})})
        report(f"  {stage:<15} {seconds:7.1f} s   peak GPU {_mib(memory.peak_mib)}   rc {rc}")
        if rc != 0:
            break
    ok = all(r["rc"] == 0 for r in rows) and len(rows) == len(order)
    result = {"stages": rows, "total_seconds": round(sum(r["seconds"] for r in rows), 2), "ok": ok}
    if ok:
        rc, output, seconds = sh(["dvc", "repro"], copy, env, timeout)
        report.child("dvc repro (must run nothing)", output)
        rerun = sorted(set(re.findall(r"Running stage '([\w-]+)'", output)))
        result.update(up_to_date=rc == 0 and not rerun, rerun_stages=rerun, noop_repro_seconds=round(seconds, 2),
                      metrics=read_metrics(copy))
    return result


def read_metrics(copy: Path) -> dict:
    """The metrics files dvc.yaml declares, as the run wrote them (sanity only: random-init models)."""
    declared = yaml.safe_load((copy / "dvc.yaml").read_text()).get("metrics", [])
    return {m: json.loads((copy / m).read_text()) for m in declared if (copy / m).is_file()}


def _mib(value: int | None) -> str:
    return "n/a on CPU" if value is None else f"{value} MiB"


# ----------------------------------------------------------------------------- part 2: two processes


def run_two_processes(copy: Path, repro: dict, timeout: float, report: Report) -> dict:
    """train_unet again under `accelerate launch` with 2 processes (the ranks are read from /proc)."""
    base = {"processes": 2, "accelerate_args": MULTI_PROCESS_ARGS, "cuda_devices": _cuda_count()}
    done = {r["stage"] for r in repro.get("stages", []) if r["rc"] == 0}
    if not {"embed_text", "encode_latents"} <= done:
        return {**base, "ran": False, "ok": False, "reason": "the repro did not build train_unet's caches"}
    marker = os.urandom(8).hex()
    env = child_env(copy, **{LAUNCH_ENV: MULTI_PROCESS_ARGS, MARKER_ENV: marker})
    with GpuMemoryPeak() as memory, RanksSeen(marker) as ranks:
        rc, output, seconds = sh(["dvc", "repro", "-f", "-s", "train_unet"], copy, env, timeout)
    report.child(f"{LAUNCH_ENV}='{MULTI_PROCESS_ARGS}' dvc repro -f -s train_unet", output)
    seen = sorted(ranks.ranks)
    ok = rc == 0 and (copy / "models/unet").is_dir() and [r for r, _ in seen] == [0, 1]
    result = {**base, "ran": True, "ok": ok, "rc": rc, "seconds": round(seconds, 2), "peak_gpu_mib": memory.peak_mib,
              "ranks_seen": [{"rank": r, "world_size": w} for r, w in seen], "relaunched": "relaunching:" in output}
    if not ok:
        result["reason"] = failure_reason(output, rc) if rc else f"ranks seen {seen}, expected ranks 0 and 1"
        if base["cuda_devices"] == 1:
            result["reason"] += (" (likely cause with one CUDA device: accelerate puts both ranks on cuda:0, "
                                 "local_rank % device_count, and NCCL rejects two ranks on one GPU)")
    return result


def _cuda_count() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


# ----------------------------------------------------------------------------- part 3: one training step


def precisions(device: torch.device, smoke: bool) -> list[str]:
    """fp32 and bf16 everywhere; tf32 and fp16 only mean something on CUDA (and --cpu-smoke skips fp16)."""
    if device.type != "cuda":
        return ["fp32", "bf16"]
    found = ["fp32", "tf32"] + (["bf16"] if torch.cuda.is_bf16_supported() else [])
    return found if smoke else found + ["fp16"]


def auto_precision(device: torch.device) -> str:
    """What `mixed_precision: auto` gives train_unet on this device, in this script's names."""
    return {"no": "fp32"}.get(resolve_mixed_precision("auto", device), resolve_mixed_precision("auto", device))


def step_inputs(params: Params, device: torch.device):
    """A batch at the profile's shapes: latents C x s x s, caption states tokens x hidden, noise, timesteps."""
    g = torch.Generator().manual_seed(0)
    b, c, s = params.unet.batch_size, params.vae.latent_channels, params.unet.sample_size
    latents = torch.randn(b, c, s, s, generator=g)
    cond = torch.randn(b, params.tokenizer.max_length, params.text_encoder.hidden_size, generator=g)
    noise, timesteps = draw_noise(latents, g, params.unet.noise_scheduler.num_train_timesteps, 0.0)
    return tuple(x.to(device) for x in (latents, cond, noise, timesteps))


def make_step(params: Params, device: torch.device, precision: str, channels_last: bool, compiled: bool) -> TrainStep:
    return TrainStep(params.unet, params.text_encoder.hidden_size, params.vae.latent_channels, device, precision,
                     channels_last, compiled)


def count_flops(params: Params, device: torch.device, inputs) -> tuple[int, float]:
    """(FLOPs of one step, UNet params in millions): the same at every precision, so counted once in fp32."""
    step = make_step(params, device, "fp32", False, False)
    flops, params_m = step_flops(step, inputs), step.parameters_m()
    del step
    free(device)
    return flops, params_m


def spec_peaks(device: torch.device) -> tuple[str, dict]:
    """(device name, datasheet peaks by precision); empty for CPUs and GPUs not in PEAK_TFLOPS."""
    if device.type != "cuda":
        return cpu_name(), {}
    name = torch.cuda.get_device_name(device)
    return name, next((peaks for key, peaks in PEAK_TFLOPS if key in name), {})


def cpu_name() -> str:
    try:
        models = re.findall(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
    except OSError:
        models = []
    return models[0] if models else platform.processor() or platform.machine()


def time_variant(params, device, precision, channels_last, compiled, inputs, flops, peaks, iters, warmup) -> dict:
    """One row of the step table; a failing variant (OOM, compile error) is recorded, not fatal."""
    row = {"precision": precision, "channels_last": channels_last, "compile": compiled,
           "batch": params.unet.batch_size}
    step = None
    try:
        step = make_step(params, device, precision, channels_last, compiled)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        if compiled:
            start = time.perf_counter()
            step(*inputs)
            sync(device)
            row["compile_s"] = round(time.perf_counter() - start, 1)
            row["grad_error_vs_eager"] = round(compiled_gradient_error(step, inputs), 4)  # > 0.1: a wrong step
        seconds = median_seconds(lambda: step(*inputs), device, iters, warmup)
    except Exception as error:  # noqa: BLE001  (the table should show every variant that ran)
        row["error"] = f"{type(error).__name__}: {str(error).splitlines()[0][:300] if str(error) else ''}"
        return row
    finally:
        del step
        free(device)
    achieved = flops / seconds / 1e12
    spec, measured = peaks["spec"].get(precision), peaks["measured"].get(precision)
    row.update(step_ms=round(1000 * seconds, 2), samples_per_s=round(params.unet.batch_size / seconds, 1),
               flops_per_step=flops, achieved_tflops=round(achieved, 3), spec_peak_tflops=spec,
               pct_spec_peak=round(100 * achieved / spec, 1) if spec else None,
               matmul_peak_tflops=round(measured, 3) if measured else None,
               pct_matmul_peak=round(100 * achieved / measured, 1) if measured else None)
    if device.type == "cuda":
        row["peak_mem_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
    return row


def run_step_timing(params: Params, device: torch.device, args, report: Report) -> dict:
    """Every precision x layout (x compile) at the profile's batch; FLOPs counted once (same for all)."""
    inputs = step_inputs(params, device)
    flops, unet_m = count_flops(params, device, inputs)
    names = precisions(device, args.cpu_smoke)
    name, spec = spec_peaks(device)
    n = 8192 if device.type == "cuda" else (512 if args.cpu_smoke else 1024)
    measured = {p: matmul_peak(device, p, n, max(3, args.iters)) for p in names}
    set_tf32("bf16")  # back to torch's defaults
    peaks = {"spec": spec, "measured": measured}
    variants = [(p, cl, False) for p in names for cl in (False, True)]
    if args.compile and not args.cpu_smoke:
        variants += [(auto_precision(device), cl, True) for cl in (False, True)]
    rows = []
    report(STEP_HEADER)
    for precision, channels_last, compiled in variants:
        rows.append(time_variant(params, device, precision, channels_last, compiled, inputs, flops, peaks,
                                 args.iters, args.warmup))
        report(_step_line(rows[-1]))
    set_tf32("bf16")
    return {"device_name": name, "unet_params_m": round(unet_m, 1), "flops_per_step": flops,
            "gflops_per_sample": round(flops / params.unet.batch_size / 1e9, 2), "formula": FORMULA,
            "spec_peak_tflops": spec, "matmul_peak_tflops": {k: round(v, 3) for k, v in measured.items()},
            "matmul_n": n, "iters": args.iters, "warmup": args.warmup, "rows": rows,
            "shapes": {"unet_block_out_channels": list(params.unet.block_out_channels),
                       "latents": [params.vae.latent_channels, params.unet.sample_size, params.unet.sample_size],
                       "text_states": [params.tokenizer.max_length, params.text_encoder.hidden_size],
                       "batch": params.unet.batch_size}}


# ----------------------------------------------------------------------------- part 4: cached vs encode


def text_encoder(params: Params) -> CLIPTextModel:
    """The text tower at the profile's shape (components.text_config without a tokenizer to read)."""
    t = params.text_encoder
    return CLIPTextModel(CLIPTextConfig(vocab_size=params.tokenizer.vocab_size, hidden_size=t.hidden_size,
                                        num_hidden_layers=t.num_layers, num_attention_heads=t.num_heads,
                                        intermediate_size=t.intermediate_size, hidden_act="quick_gelu",
                                        max_position_embeddings=params.tokenizer.max_length))


def run_cached_vs_encode(params: Params, device: torch.device, args) -> dict:
    """Same UNet step, fed from the caches or from pixels + token ids encoded every step, at `auto` precision."""
    precision, batch = auto_precision(device), params.unet.batch_size
    step = make_step(params, device, precision, params.unet.channels_last, False)
    vae = load_vae(params.vae).to(device).eval().requires_grad_(False)
    text = text_encoder(params).to(device).eval().requires_grad_(False)
    size = params.unet.sample_size
    data = fake_cache(2 * batch, params.vae.latent_channels, size, params.tokenizer.max_length,
                      params.text_encoder.hidden_size)
    g = torch.Generator().manual_seed(1)
    images = torch.rand(batch, 3, params.ingest.image_size, params.ingest.image_size, generator=g) * 2 - 1
    ids = torch.randint(0, params.tokenizer.vocab_size, (batch, params.tokenizer.max_length), generator=g)
    timesteps = params.unet.noise_scheduler.num_train_timesteps

    def cached():
        step(*batch_inputs(data, batch, g, timesteps, device))

    def encoded():
        with torch.no_grad(), autocast(device, precision):
            latents = vae.encode(images.to(device)).latent_dist.sample() * VAE_SCALE
            cond = text(ids.to(device)).last_hidden_state
        if latents.shape[-1] != size:  # a VAE with another downsampling factor than the profile's UNet
            latents = torch.nn.functional.interpolate(latents, size=size)
        noise, t = draw_noise(latents.cpu(), g, timesteps, 0.0)
        step(latents.float(), cond.float(), noise, t)

    t_cached = median_seconds(cached, device, args.iters, args.warmup)
    t_encoded = median_seconds(encoded, device, args.iters, args.warmup)
    del step, vae, text
    free(device)
    ratio = t_encoded / t_cached
    return {"precision": precision, "batch": batch, "cached_samples_per_s": round(batch / t_cached, 1),
            "encode_samples_per_s": round(batch / t_encoded, 1), "ratio": round(ratio, 2), "goal": CACHED_GOAL,
            "goal_met": ratio >= CACHED_GOAL}


# ----------------------------------------------------------------------------- tables and main


STEP_HEADER = ("| precision | layout | compile | batch | ms/step | samples/s | TFLOP/s | peak TFLOP/s | % peak "
               "| % matmul peak | peak mem GiB | compile s |\n|---|---|---|---|---|---|---|---|---|---|---|---|")


def _step_line(r: dict) -> str:
    layout = "channels_last" if r["channels_last"] else "contiguous"
    head = f"| {r['precision']} | {layout} | {'yes' if r['compile'] else 'no'} | {r['batch']} |"
    if "error" in r:
        return f"{head} failed: {r['error']} |"
    pct = lambda v: "" if v is None else f"{v:.0f}%"  # noqa: E731
    spec = "" if r["spec_peak_tflops"] is None else f"{r['spec_peak_tflops']:g}"
    return (f"{head} {r['step_ms']:.1f} | {r['samples_per_s']:.1f} | {r['achieved_tflops']:.2f} | {spec} | "
            f"{pct(r['pct_spec_peak'])} | {pct(r['pct_matmul_peak'])} | {r.get('peak_mem_gib', '')} | "
            f"{r.get('compile_s', '')} |")


def print_tables(data: dict, report: Report) -> None:
    device = data["device"]
    report(f"\n## gpu_check on {device['name']} ({device['type']}{', cpu-smoke' if device['smoke'] else ''}), "
           f"torch {device['torch']}")
    repro = data.get("repro", {})
    if repro.get("stages"):
        report(f"\nProfile {data['profile']}: dvc repro stage by stage "
               f"({'all ran, then nothing left to run' if repro.get('up_to_date') else 'NOT complete'}), "
               f"total {repro['total_seconds']:.0f} s")
        report("| stage | seconds | peak GPU memory | rc |\n|---|---|---|---|")
        for r in repro["stages"]:
            report(f"| {r['stage']} | {r['seconds']:.1f} | {_mib(r['peak_gpu_mib'])} | {r['rc']} |")
    mp = data.get("multi_process")
    if mp:
        ranks = ", ".join(f"{r['rank']}/{r['world_size']}" for r in mp.get("ranks_seen", []))
        state = (f"ok in {mp['seconds']:.0f} s, ranks/world seen: {ranks}, peak GPU {_mib(mp['peak_gpu_mib'])}"
                 if mp["ok"] else f"not ok: {mp['reason']}")
        report(f"\ntrain_unet with {LAUNCH_ENV}='{MULTI_PROCESS_ARGS}': {state}")
    st = data.get("step_timing")
    if st:
        s = st["shapes"]
        report(f"\nUNet training step (forward + backward + AdamW): channels {s['unet_block_out_channels']}, "
               f"{st['unet_params_m']}M params, latents {s['latents']}, text states {s['text_states']}, "
               f"batch {s['batch']}; {st['flops_per_step'] / 1e12:.3f} TFLOP/step "
               f"({st['gflops_per_sample']} GFLOP/sample); median of {st['iters']}")
        report(f"{FORMULA}\nmeasured {st['matmul_n']}^2 matmul peak TFLOP/s: {st['matmul_peak_tflops']}; "
               f"datasheet: {st['spec_peak_tflops'] or 'device not in the table'}")
        report(STEP_HEADER)
        for r in st["rows"]:
            report(_step_line(r))
    ce = data.get("cached_vs_encode")
    if ce:
        report(f"\nCached latents + caption states vs encoding every batch ({ce['precision']}, batch {ce['batch']}):")
        report("| cached samples/s | encode samples/s | cached speedup | goal |\n|---|---|---|---|")
        report(f"| {ce['cached_samples_per_s']} | {ce['encode_samples_per_s']} | {ce['ratio']:.2f}x | "
               f">= {ce['goal']:g}x: {'met' if ce['goal_met'] else 'NOT met'} |")
    for part, error in data.get("errors", {}).items():
        report(f"\n{part} failed: {error}")


def device_info(device: torch.device, smoke: bool) -> dict:
    info = {"type": device.type, "smoke": smoke, "torch": torch.__version__, "python": platform.python_version(),
            "cuda_devices": _cuda_count(), "name": cpu_name(),
            "cpu_threads": torch.get_num_threads()}
    if device.type == "cuda":
        query = ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"]
        out = subprocess.run(query, capture_output=True, text=True).stdout.strip() if shutil.which("nvidia-smi") else ""
        info.update(name=out.splitlines()[0].split(",")[0] if out else "cuda", nvidia_smi=out,
                    cuda=torch.version.cuda)
    return info


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=None, help="folder for gpu_check.log and gpu_check.json")
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny everything, no fp16/compile: a 2-core check")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile at the auto precision")
    parser.add_argument("--iters", type=int, default=None, help="timed steps per variant (median)")
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--stage-timeout", type=float, default=600, help="seconds per dvc command")
    parser.add_argument("--multi-timeout", type=float, default=300,
                        help="seconds for the 2-process train_unet (a hung NCCL start should not eat the budget)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["repro", "multi", "steps", "encode"],
                        help="parts to leave out (e.g. on a rerun with little device time left)")
    parser.add_argument("--keep", action="store_true", help="keep the throwaway project copy")
    args = parser.parse_args()
    args.iters = args.iters or (2 if args.cpu_smoke else 10)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.cpu_smoke else 3)
    args.out = args.out or Path(tempfile.mkdtemp(prefix="gpu-check-"))
    return args


def run_part(name: str, fn, report: Report):
    """Run one part; a failure is recorded with its reason and the others still run."""
    start = time.perf_counter()
    try:
        result = fn()
    except Exception as error:  # noqa: BLE001
        report(f"{name} failed: {type(error).__name__}: {error}")
        report.data.setdefault("errors", {})[name] = f"{type(error).__name__}: {error}"
        report.save()
        return None
    report(f"{name}: done in {time.perf_counter() - start:.0f} s")
    report.save(**{name: result})
    return result


def main() -> int:
    signal.signal(signal.SIGTERM, _terminated)
    args = parse_args()
    report = Report(args.out)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if args.cpu_smoke and device.type == "cpu":  # on a small busy CPU, 2 OpenMP threads per process spin
        os.environ.setdefault("OMP_NUM_THREADS", "1")  # against each other (10x slower); children inherit
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="gpu-check-project-"))
    copy = work / "project"
    profile = PROFILE + (f" + {SMOKE_PROFILE} + fewer steps" if args.cpu_smoke else "")
    report.save(device=device_info(device, args.cpu_smoke), profile=profile,
                args={k: str(v) for k, v in vars(args).items()}, project_copy=str(copy))
    try:
        report(f"gpu_check: {device.type}, profile {report.data['profile']}, project copy {copy}")
        prepare_copy(copy, args.cpu_smoke, report)
        params = load_params(copy / "params.yaml")
        repro: dict = {}
        if "repro" not in args.skip:
            report("part 1: dvc repro, stage by stage")
            repro = run_part("repro", lambda: run_repro(copy, args.stage_timeout, report), report) or {}
        if "multi" not in args.skip:
            report(f"part 2: train_unet with {MULTI_PROCESS_ARGS}")
            run_part("multi_process", lambda: run_two_processes(copy, repro, args.multi_timeout, report), report)
        if "steps" not in args.skip:
            report("part 3: UNet step timing")
            run_part("step_timing", lambda: run_step_timing(params, device, args, report), report)
        if "encode" not in args.skip:
            report("part 4: cached vs encode")
            run_part("cached_vs_encode", lambda: run_cached_vs_encode(params, device, args), report)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    report.save(total_seconds=round(time.perf_counter() - started, 1))
    print_tables(report.data, report)
    report(f"\ntotal {report.data['total_seconds']:.0f} s; log {report.log_path}; json {report.json_path}"
           + (f"; project copy kept at {copy}" if args.keep else ""))
    failed = report.data.get("errors") or ("repro" not in args.skip and not report.data.get("repro", {}).get("ok"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
