"""The sessions of one evaluation (harness/ledger/resume.py): the fast engine's windows per forward of the first
session is kept by every later one, whatever a later device would choose by itself."""
from __future__ import annotations

import json

from harness.ledger.resume import start_session, window_batch_of

JOB = {"checkpoint": {"sha256": "a" * 64}, "protocol": "ms", "eval_engine": "fast", "precision": "fp32",
       "dataset": {"manifest_sha256": "b" * 64}, "launch": {"world_size": 1, "launcher": "none"}}


def test_the_first_sessions_window_batch_is_the_one_kept(tmp_path):
    assert window_batch_of(tmp_path) is None                                  # a fresh evaluation: the device decides
    assert start_session(tmp_path, JOB, window_batch=12) == 1
    assert window_batch_of(tmp_path) == 12
    assert start_session(tmp_path, JOB, window_batch=window_batch_of(tmp_path)) == 2
    (tmp_path / "session3.json").write_text(json.dumps({"session": 3, "settings": {}, "window_batch": 4}))
    assert window_batch_of(tmp_path) == 12                                    # the first one recorded wins
    assert json.loads((tmp_path / "session2.json").read_text())["window_batch"] == 12
