"""DVC stage `ingest`: every source in params `ingest.sources` -> data/shards + data/ingest.

Relative source paths are read under data/raw/, a dependency of this stage in dvc.yaml; a source
outside every declared dependency is refused before any work (DVC would not see its files change).
"""

from minisd import paths
from minisd.ingest import run_ingest
from minisd.ingest.raw import RAW, check_declared
from minisd.params.base import load_section
from minisd.params.ingest import IngestParams
from minisd.stage import main


def run() -> None:
    params = load_section("ingest", IngestParams)
    check_declared(params, RAW)
    run_ingest(params, paths.SHARDS, paths.INGEST_DIR, RAW)


if __name__ == "__main__":
    main(run, __file__)
