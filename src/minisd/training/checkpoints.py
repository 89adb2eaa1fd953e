"""Resumable checkpoints outside DVC's outputs, keyed by the stage's params and input hashes.

A run killed at any point (even `kill -9`) resumes from the latest complete checkpoint of the
*same* configuration: the folder name hashes the params section and the input contents, so a
changed param or dataset never resumes from stale weights. Each checkpoint is written to a temp
folder and renamed into place, so a half-written one is never seen. Tensors go to safetensors,
everything else to JSON: nothing is pickled.

Nested state dicts (optimizer, EMA, LR scheduler) become JSON + a flat tensor dict: every tensor in
the tree is replaced by {"__tensor__": key} and stored under that key in the safetensors file;
tuples keep their type via {"__tuple__": [...]}, non-string dict keys via {"__dict__": [[key, value],
...]}, so `unflatten(flatten(x))` rebuilds x exactly.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from minisd import paths
from minisd.training import rng

log = logging.getLogger("minisd.training")

_STEP_DIR = re.compile(r"^step-(\d{8})$")
_STATE = "state.json"  # written last inside the temp folder: its presence marks a complete checkpoint
_TENSORS = "tensors.safetensors"
_FILES = "files"


def flatten(tree, prefix: str) -> tuple[object, dict[str, torch.Tensor]]:
    """A state dict -> (a JSON-able tree, its tensors by key)."""
    tensors: dict[str, torch.Tensor] = {}

    def walk(node, path: str):
        if isinstance(node, torch.Tensor):
            tensors[path] = node.detach().to("cpu").contiguous().clone()
            return {"__tensor__": path}
        if isinstance(node, dict):
            if all(isinstance(k, str) for k in node):
                return {k: walk(v, f"{path}.{k}") for k, v in node.items()}
            return {"__dict__": [[k, walk(v, f"{path}.{k}")] for k, v in node.items()]}
        if isinstance(node, tuple):
            return {"__tuple__": [walk(v, f"{path}.{i}") for i, v in enumerate(node)]}
        if isinstance(node, list):
            return [walk(v, f"{path}.{i}") for i, v in enumerate(node)]
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        raise TypeError(f"cannot store {type(node).__name__} at {path} without pickling")

    return walk(tree, prefix), tensors


def unflatten(tree, tensors: dict[str, torch.Tensor]):
    """The inverse of `flatten`."""
    if isinstance(tree, dict):
        if set(tree) == {"__tensor__"}:
            return tensors[tree["__tensor__"]]
        if set(tree) == {"__tuple__"}:
            return tuple(unflatten(v, tensors) for v in tree["__tuple__"])
        if set(tree) == {"__dict__"}:
            return {k: unflatten(v, tensors) for k, v in tree["__dict__"]}
        return {k: unflatten(v, tensors) for k, v in tree.items()}
    if isinstance(tree, list):
        return [unflatten(v, tensors) for v in tree]
    return tree


def _md5(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.md5()
    with path.open("rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def fingerprint_inputs(input_paths: list[Path | str]) -> dict[str, str]:
    """Content hash of each input file/folder (relative names, sizes and md5 of every file)."""
    result = {}
    for root in map(Path, input_paths):
        if not root.exists():
            raise FileNotFoundError(f"{root}: input not found (run the stage that produces it first)")
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        digest = hashlib.sha256()
        for f in files:
            name = f.name if f == root else f.relative_to(root).as_posix()
            digest.update(f"{name}\0{f.stat().st_size}\0{_md5(f)}\n".encode())
        result[root.as_posix()] = digest.hexdigest()
    return result


def _moments_in_parameter_layout(optimizer: torch.optim.Optimizer) -> None:
    """Restored optimizer state comes back contiguous (safetensors); give each per-element tensor its
    parameter's strides. Fused AdamW pairs a parameter with its moments by memory order, so a
    channels_last weight with contiguous moments would be updated with other elements' moments."""
    for group in optimizer.param_groups:
        for param in group["params"]:
            state = optimizer.state.get(param, {})
            for key, value in state.items():
                if isinstance(value, torch.Tensor) and value.shape == param.shape and value.stride() != param.stride():
                    state[key] = torch.empty_like(param, dtype=value.dtype).copy_(value)


def _unwrap(module, accelerator):
    if accelerator is not None:
        return accelerator.unwrap_model(module)
    return getattr(module, "module", module)


class CheckpointManager:
    """save(step, objects, extra) / restore(objects) / clear() for one stage + configuration.

    objects: name -> anything with state_dict()/load_state_dict() (nn.Module, diffusers EMAModel,
    Optimizer, LR scheduler); None values are skipped. `files` (name -> file or folder) are copied
    into the checkpoint and back on restore, e.g. a DVCLive folder that DVC wipes before a rerun.
    Under accelerate every process must call save() and restore(): RNG states of all ranks are
    gathered, only the main process writes.
    """

    def __init__(self, stage: str, fingerprint: dict, keep: int, root: Path | str = paths.CHECKPOINTS,
                 accelerator=None):
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        blob = json.dumps(fingerprint, sort_keys=True, default=str).encode()
        self.folder = Path(root) / f"{stage}-{hashlib.sha256(blob).hexdigest()[:12]}"
        self.fingerprint = fingerprint
        self.keep = keep
        self.accelerator = accelerator

    @classmethod
    def for_stage(cls, stage: str, sections: dict, inputs: list[Path | str], keep: int, accelerator,
                  root: Path | str = paths.CHECKPOINTS) -> CheckpointManager:
        """Keyed by the stage's params `sections`, its inputs' contents and the number of processes
        (which changes the data order): what a checkpoint must share with the run resuming it."""
        fingerprint = {**sections, "inputs": fingerprint_inputs(inputs), "processes": accelerator.num_processes}
        return cls(stage, fingerprint, keep, root, accelerator)

    # ------------------------------------------------------------------ process topology
    @property
    def _rank(self) -> int:
        return self.accelerator.process_index if self.accelerator is not None else 0

    @property
    def _is_main(self) -> bool:
        return self.accelerator is None or self.accelerator.is_main_process

    def _barrier(self) -> None:
        if self.accelerator is not None:
            self.accelerator.wait_for_everyone()

    # ------------------------------------------------------------------ listing
    def steps(self) -> list[int]:
        """Steps of the complete checkpoints, oldest first."""
        if not self.folder.is_dir():
            return []
        found = []
        for d in self.folder.iterdir():
            m = _STEP_DIR.match(d.name)
            if m and (d / _STATE).is_file() and (d / _TENSORS).is_file():
                found.append(int(m.group(1)))
        return sorted(found)

    def _dir(self, step: int) -> Path:
        return self.folder / f"step-{step:08d}"

    # ------------------------------------------------------------------ save
    def _gather_rng(self) -> list[tuple[dict, dict]]:
        meta, tensors = rng.capture()
        mine = (meta, {k: v.numpy().tobytes() for k, v in tensors.items()})
        if self.accelerator is None or self.accelerator.num_processes == 1:
            return [mine]
        from accelerate.utils import gather_object

        return gather_object([mine])

    def save(self, step: int, objects: dict, extra: dict | None = None, files: dict | None = None) -> Path:
        rng_states = self._gather_rng()
        target = self._dir(step)
        if self._is_main:
            structure, tensors = {}, {}
            for name, obj in objects.items():
                if obj is None:
                    continue
                if isinstance(obj, torch.nn.Module):
                    obj = _unwrap(obj, self.accelerator)
                structure[name], found = flatten(obj.state_dict(), name)
                tensors.update(found)
            rng_meta = []
            for rank, (meta, raw) in enumerate(rng_states):
                rng_meta.append(meta)
                for key, data in raw.items():
                    tensors[f"rng.{rank}.{key}"] = torch.frombuffer(bytearray(data), dtype=torch.uint8)
            state = {"step": step, "extra": extra or {}, "objects": structure, "rng": rng_meta,
                     "fingerprint": self.fingerprint}
            self.folder.mkdir(parents=True, exist_ok=True)
            for stale in self.folder.glob(".tmp-*"):  # left behind by a killed save
                shutil.rmtree(stale, ignore_errors=True)
            tmp = self.folder / f".tmp-{target.name}-{os.getpid()}"
            tmp.mkdir()
            save_file(tensors, str(tmp / _TENSORS))
            for name, source in (files or {}).items():
                source, dest = Path(source), tmp / _FILES / name
                if source.is_dir():
                    shutil.copytree(source, dest)
                elif source.is_file():
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(source, dest)
            with (tmp / _STATE).open("w") as f:
                json.dump(state, f)
                f.flush()
                os.fsync(f.fileno())
            if target.exists():  # same step saved by an earlier attempt: replace it
                shutil.rmtree(target)
            os.replace(tmp, target)
            for old in self.steps()[: -self.keep]:
                shutil.rmtree(self._dir(old), ignore_errors=True)
            log.info("checkpoint saved: %s", target)
        self._barrier()
        return target

    # ------------------------------------------------------------------ restore
    def _read(self, step: int) -> tuple[dict, dict] | None:
        folder = self._dir(step)
        try:
            with (folder / _STATE).open() as f:
                state = json.load(f)
            return state, load_file(str(folder / _TENSORS))
        except Exception as error:  # truncated/corrupt: fall back to an older checkpoint
            log.warning("ignoring unreadable checkpoint %s: %s", folder, error)
            return None

    def restore(self, objects: dict, files: dict | None = None) -> tuple[int, dict] | None:
        """Load the latest complete checkpoint into `objects` (and `files`); None when there is none."""
        for step in reversed(self.steps()):
            loaded = self._read(step)
            if loaded is None:
                continue
            state, tensors = loaded
            for name, obj in objects.items():
                if obj is None:
                    continue
                if name not in state["objects"]:
                    raise KeyError(f"checkpoint {self._dir(step)} has no {name!r}")
                if isinstance(obj, torch.nn.Module):
                    obj = _unwrap(obj, self.accelerator)
                value = unflatten(state["objects"][name], tensors)
                if hasattr(obj, "shadow_params"):  # EMAModel: keep its tensors where they were
                    device = obj.shadow_params[0].device if obj.shadow_params else "cpu"
                    obj.load_state_dict(value)
                    obj.to(device=device)
                else:
                    obj.load_state_dict(value)
                if isinstance(obj, torch.optim.Optimizer):
                    _moments_in_parameter_layout(obj)
            rank = self._rank
            if rank < len(state["rng"]):
                rng_tensors = {k.split(".", 2)[2]: v for k, v in tensors.items() if k.startswith(f"rng.{rank}.")}
                rng.restore(state["rng"][rank], rng_tensors)
            else:
                log.warning("checkpoint has no RNG state for process %d (fewer processes before)", rank)
            if self._is_main:
                for name, dest in (files or {}).items():
                    self._restore_file(self._dir(step) / _FILES / name, Path(dest))
            self._barrier()
            log.info("resumed from %s", self._dir(step))
            return state["step"], state["extra"]
        return None

    @staticmethod
    def _restore_file(source: Path, dest: Path) -> None:
        if not source.exists():
            return
        if dest.is_dir():
            shutil.rmtree(dest)
        elif dest.exists():
            dest.unlink()
        if source.is_dir():
            shutil.copytree(source, dest)
        elif source.is_file():
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest)

    def clear(self) -> None:
        """Remove this configuration's checkpoints (a finished run no longer needs them)."""
        self._barrier()
        if self._is_main:
            shutil.rmtree(self.folder, ignore_errors=True)
        self._barrier()
