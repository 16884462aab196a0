"""rtagent's benchmarks against the floor and the peers; run with ``python -m bench``."""
