"""Getting files onto disk and proving they are the right ones.

One job per module:
  hashing    streaming file hashes (sha256/md5/sha1) with a progress bar
  http       a generic URL download: HTTP Range resume, urllib3 retries, a `.part` file renamed only when whole
  weights    released and pretrained weights through huggingface_hub, then our size/sha256 check and lock file
  layout     the ADE20K folder layout check and the per-file manifest (write, quick check, full check)
  unpack     one pass per zip member in worker processes: extract, hash, label facts; archive md5/sha1 alongside
  atomic     build beside the destination, rename into place; leftovers of dead processes cleaned or restored
  ownership  which data roots may be replaced (only ours, never real data by synthetic); one prepare per root
  ade20k     `repro prepare ade20k`: fetch the zip, check its hash, extract atomically, verify, record facts
  synthetic  an ADE20K-format dataset generated from a seed, for the demo and the tests

Nothing here imports torch or mmcv.
"""
