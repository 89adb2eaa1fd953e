"""DVC stage `ingest`: every source in params `ingest.sources` -> data/shards + data/ingest."""

from minisd import paths
from minisd.config import load_params
from minisd.ingest import run_ingest
from minisd.stage import main


def run() -> None:
    params = load_params().ingest
    run_ingest(params, paths.SHARDS, paths.INGEST_DIR)


if __name__ == "__main__":
    main(run, __file__)
