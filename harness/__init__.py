"""repro: reproduce published semantic-segmentation results and verify them against the published tables."""
from pathlib import Path

__version__ = "0.1.0"
# the checkout: reproductions/, datasets/, expected/ (a leaf name, so that harness.paths and the registry, which
# import each other's functions, need not import each other for it)
REPO_ROOT = Path(__file__).resolve().parent.parent
