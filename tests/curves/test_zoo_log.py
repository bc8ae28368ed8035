"""The zoo's log rule on the installed metafiles, and `repro download mmseg/<name> --log` through the verified
downloader (a loopback server standing in for download.openmmlab.com)."""
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.registry import zoo


@pytest.fixture(autouse=True)
def installed_zoo(monkeypatch):
    monkeypatch.delenv("REPRO_MMSEG_ZOO", raising=False)


def test_log_url_only_for_timestamped_weights_names():
    entries = zoo.zoo_reproductions().values()
    with_log = {rep.id: zoo.log_url(rep) for rep in entries if zoo.log_url(rep)}
    without = sorted(rep.id for rep in entries if zoo.log_url(rep) is None)
    print(f"zoo ADE20K entries: {len(with_log)} with a log URL, {len(without)} without: {without}")
    assert len(with_log) + len(without) == len(entries) and with_log and without
    for rep_id, url in with_log.items():
        weights = zoo.get(rep_id).weights.url
        assert zoo.STAMPED.search(weights) and url == weights[: -len("-12345678.pth")] + ".log.json"
    for rep_id in without:
        assert not zoo.STAMPED.search(getattr(zoo.get(rep_id).weights, "url", "") or "")


def test_no_log_url_known_is_said_never_guessed():
    from harness.curves.references import zoo_log_url
    from harness.errors import ReproError
    rep = next(r for r in zoo.zoo_reproductions().values() if zoo.log_url(r) is None)
    with pytest.raises(ReproError, match=f"no log URL known for {rep.id}"):
        zoo_log_url(rep)


def test_download_log_locks_its_hash_and_checks_it_after(server, reference, tmp_path):
    import hashlib

    from harness.fetch.weights import read_lock
    rep = next(r for r in zoo.zoo_reproductions().values() if zoo.log_url(r))
    url = zoo.log_url(rep)
    data = (reference / "curves/zoo_format_example.log.json").read_bytes()
    server.add(urlsplit(url).path, data)
    runner = CliRunner()
    first = runner.invoke(cli, ["download", rep.id, "--log", "--endpoint", server.url], catch_exceptions=False)
    assert first.exit_code == 0, first.output
    assert first.output.startswith(f"{rep.id} log: verified ")
    assert read_lock()[url]["sha256"] == hashlib.sha256(data).hexdigest()
    path = first.output.split("verified ", 1)[1].split(" (sha256")[0]
    again = runner.invoke(cli, ["download", rep.id, "--log", "--endpoint", server.url], catch_exceptions=False)
    assert again.exit_code == 0 and len(server.gets(urlsplit(url).path)) == 1      # on disk, checked, not fetched
    with open(path, "ab") as fh:
        fh.write(b"\n")                                                             # the file changed since
    bad = runner.invoke(cli, ["download", rep.id, "--log", "--endpoint", server.url])
    assert bad.exit_code == 2 and "failed verification: sha256" in bad.output and "quarantine" in bad.output
