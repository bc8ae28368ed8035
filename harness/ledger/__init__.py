"""The per-image ledger of an evaluation: each val image's four area histograms (store.py), and what is computed
from them without the model: bootstrap intervals, paired comparisons, mmseg's other metrics."""
