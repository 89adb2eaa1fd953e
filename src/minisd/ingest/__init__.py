"""The ingest stage's library: sources -> clean line art -> deterministic WebDataset shards."""

from minisd.ingest.run import run_ingest

__all__ = ["run_ingest"]
