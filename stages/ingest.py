"""DVC stage `ingest`: every source in params `ingest.sources` -> data/shards + data/ingest.

Relative source paths are read under data/raw/, a dependency of this stage in dvc.yaml; a source
outside every declared dependency is refused before any work (DVC would not see its files change).
"""

from minisd import paths
from minisd.config import load_params
from minisd.ingest import run_ingest
from minisd.ingest.raw import RAW, check_declared
from minisd.stage import main


def run() -> None:
    params = load_params().ingest
    check_declared(params, RAW)
    run_ingest(params, paths.SHARDS, paths.INGEST_DIR, RAW)


if __name__ == "__main__":
    main(run, __file__)
