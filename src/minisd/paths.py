"""Where every stage reads and writes; dvc.yaml declares the same paths."""

from pathlib import Path

DATA = Path("data")
SHARDS = DATA / "shards"  # {train,val}-%06d.tar
INGEST_DIR = DATA / "ingest"  # report.json, rejects.csv, preview.png
TEXT_CACHE = DATA / "cache" / "text"  # embeddings.safetensors + index.json + prompts.json
LATENT_CACHE = DATA / "cache" / "latents"  # chunked safetensors + index.json

MODELS = Path("models")
TOKENIZER = MODELS / "tokenizer"
TEXT_ENCODER = MODELS / "text_encoder"
CLIP = MODELS / "clip"  # the whole CLIPModel trained by train_clip (+ its tokenizer)
VAE = MODELS / "vae"
UNET = MODELS / "unet"
SCHEDULER = MODELS / "scheduler"  # the DDPM config used in training
JUDGE = MODELS / "judge"
PIPELINE = MODELS / "pipeline"

RESULTS = Path("results")
CLIP_LIVE = RESULTS / "clip"
VAE_LIVE = RESULTS / "vae"
UNET_LIVE = RESULTS / "unet"
JUDGE_LIVE = RESULTS / "judge"
EVAL_DIR = RESULTS / "eval"

CHECKPOINTS = Path(".checkpoints")  # git- and dvc-ignored; survives DVC's output cleanup
