"""Getting files onto disk and proving they are the right ones.

One job per module:
  hashing    streaming file hashes (sha256/md5/sha1) with a progress bar
  http       a generic URL download: HTTP Range resume, urllib3 retries, a `.part` file renamed only when whole
  weights    released and pretrained weights through huggingface_hub, then our size/sha256 check and lock file
  layout     a registered dataset's folder layout check and the per-file manifest (write, quick check, full check)
  unpack     one pass per zip member in worker processes: extract, hash, label facts; archive md5/sha1 alongside
  atomic     build beside the destination, rename into place; leftovers of dead processes cleaned or restored
  ownership  which data roots may be replaced (only ours, never real data by synthetic); one prepare per root
  dataroot   `repro prepare <dataset>`: fetch the zip, check its hash, extract atomically, verify, record facts
  synthetic  a dataset in a registered dataset's format (ADE20K's) generated from a seed, for the demo and the tests

What a dataset is (archive, counts, layout, labels) comes from datasets/<id>/dataset.toml (harness.registry.datasets).

Nothing here imports torch or mmcv.
"""
