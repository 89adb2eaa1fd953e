"""Both caching stages under `accelerate launch` with 2 CPU processes (gloo) write exactly the bytes
of a one-process run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from minisd.caches.embed import embed_text
from minisd.caches.encode import encode_latents
from minisd.config import load_params
from minisd.tokenizer import save_tokenizer
from _caches import (
    tiny_text_encoder, tiny_tokenizer, tiny_vae, write_shards,
)

PARAMS = """
ingest: {sources: [{kind: synthetic, count: 10}]}
tokenizer: {vocab_size: 600}
text_encoder: {hidden_size: 32, num_layers: 2, num_heads: 2, intermediate_size: 64}
embed_text: {batch_size: 4, dtype: float16, mixed_precision: auto}
encode_latents: {batch_size: 4, chunk_size: 5, dtype: float16, mixed_precision: auto}
prompts: {per_class: 2, extra: [a tree]}
"""
DRIVER = """
from minisd.caches.embed import embed_text
from minisd.caches.encode import encode_latents
from minisd.config import load_params
from minisd.stage import main

def run():
    params = load_params()
    embed_text(params.embed_text, params.prompts)
    encode_latents(params.encode_latents)

main(run)
"""
OUTPUTS = ("data/cache/text", "data/cache/latents")


def project(root: Path) -> Path:
    write_shards(root, n_train=30, n_val=15, shards=3)  # 6 shards: uneven shares for 2 processes
    tiny_vae().save_pretrained(root / "models" / "vae")
    tokenizer = tiny_tokenizer()  # what train_clip would have saved
    save_tokenizer(tokenizer, root / "models" / "tokenizer")
    tiny_text_encoder(tokenizer).save_pretrained(root / "models" / "text_encoder")
    (root / "params.yaml").write_text(PARAMS)
    return root


def snapshot(root: Path) -> dict[str, bytes]:
    files = {}
    for out in OUTPUTS:
        for path in sorted((root / out).rglob("*")):
            if path.is_file():
                files[str(path.relative_to(root))] = path.read_bytes()
    return files


def test_two_processes_equal_one(tmp_path, monkeypatch):
    one, two = project(tmp_path / "one"), project(tmp_path / "two")
    monkeypatch.chdir(one)
    params = load_params()
    embed_text(params.embed_text, params.prompts)
    encode_latents(params.encode_latents)
    monkeypatch.undo()

    (two / "driver.py").write_text(DRIVER)
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "driver.py"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MINISD_", "ACCELERATE_", "RANK", "WORLD_"))}
    result = subprocess.run(command, cwd=two, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 process(es)" in result.stderr, "the launch did not run as two cooperating processes"

    expected, got = snapshot(one), snapshot(two)
    assert sorted(got) == sorted(expected)
    different = [name for name in expected if expected[name] != got[name]]
    assert not different, f"differ between 1 and 2 processes: {different}"
    assert not list((two / "data/cache/text").glob(".parts*")), "part files left behind"
    assert any(name.startswith("data/cache/latents/val-000002") for name in got)


@pytest.mark.parametrize("stage", ["embed_text", "encode_latents"])
def test_missing_inputs_fail_clearly(tmp_path, monkeypatch, stage):
    (tmp_path / "params.yaml").write_text(PARAMS)
    monkeypatch.chdir(tmp_path)
    if stage == "encode_latents":
        write_shards(tmp_path, n_train=4, n_val=2, shards=1)
        with pytest.raises(FileNotFoundError, match="run `dvc repro train_vae`"):
            encode_latents(load_params().encode_latents)
    else:
        with pytest.raises(FileNotFoundError, match="run `dvc repro train_clip`"):
            params = load_params()
            embed_text(params.embed_text, params.prompts)
