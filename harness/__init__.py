"""repro: reproduce published semantic-segmentation results and verify them against the published tables."""
__version__ = "0.1.0"
