"""`repro download` and `repro prepare`: flags and messages only; the work is in harness.fetch."""
from __future__ import annotations

from pathlib import Path

import click

from harness.cli.group import cli
from harness.errors import ReproError

PREPARE_EPILOG = """\b
Examples:
  repro prepare ade20k                                  # official URL, resumable, checked, extracted, verified
  repro prepare ade20k --zip ~/Downloads/ADEChallengeData2016.zip --data-root /data/ade/ADEChallengeData2016
  repro prepare ade20k --verify                         # re-hash every file against the manifest
  repro prepare ade20k --synthetic 64 --val 16 --data-root /tmp/syn/ADEChallengeData2016

\b
DATASET is an id under datasets/ (datasets/<id>/dataset.toml describes it; ade20k is ADE20K).
The data root is the folder mmseg configs call data_root (ADE20K: it holds images/ and annotations/).
Default: <REPRO_HOME>/data/<id>/<its folder>, e.g. <REPRO_HOME>/data/ade20k/ADEChallengeData2016 (REPRO_DATA
overrides it); with --synthetic: <REPRO_HOME>/data/<id>-synthetic/<its folder> (REPRO_DATA never moves it).
A data root is replaced (--force) only if `repro prepare` made it, and a synthetic dataset never replaces a real one.
The zip is kept in <REPRO_HOME>/downloads/ (a broken transfer resumes from its .part file);
REPRO_HTTP_TIMEOUT (default 30) is the seconds without data before a transfer counts as stalled.
"""


class DatasetId(click.ParamType):
    """An id of the dataset registry, read when the command runs (not at every `repro` start)."""

    name = "dataset"

    def convert(self, value, param, ctx):
        from harness.registry import datasets

        datasets.all_datasets()         # a malformed dataset.toml is its own one-line error, not a usage error
        try:
            return datasets.get(value).id
        except ReproError as exc:       # an unknown id, with the close ones
            self.fail(exc.message, param, ctx)


@cli.command("prepare", epilog=PREPARE_EPILOG)
@click.argument("dataset", type=DatasetId())
@click.option("--data-root", type=click.Path(path_type=Path), default=None,
              help="the data root: the folder that will hold the dataset  [default: see below]")
@click.option("--zip", "zip_path", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="use this local archive (ADE20K: ADEChallengeData2016.zip) instead of downloading")
@click.option("--url", default=None, help="download from this mirror instead of the official URL")
@click.option("--md5", default=None, help="expected md5 of the zip, replacing the published one")
@click.option("--sha1", default=None, help="expected sha1 of the zip, replacing the published one")
@click.option("--counts", default=None, metavar="TRAIN,VAL",
              help="expected image counts  [default: the published ones, ADE20K's 20210,2000]")
@click.option("--verify", is_flag=True, help="only verify a prepared data root against its manifest (full hashes)")
@click.option("--synthetic", type=click.IntRange(min=1), default=None, metavar="N",
              help="generate a synthetic dataset in its format, of N training images, instead")
@click.option("--val", type=click.IntRange(min=1), default=None, metavar="N",
              help="validation images of the synthetic dataset  [default: N // 4]")
@click.option("--seed", type=int, default=0, help="seed of the synthetic dataset")
@click.option("--force", is_flag=True, help="replace an existing data root that `repro prepare` made")
def prepare_cmd(dataset, data_root, zip_path, url, md5, sha1, counts, verify, synthetic, val, seed, force) -> None:
    """Prepare a dataset (ADE20K: `ade20k`): download (HTTP Range resume), check md5/sha1, extract atomically,
    check the layout and labels, and write a per-file manifest (size + sha256) that --verify checks later."""
    if synthetic is not None:
        if zip_path or url or md5 or sha1 or counts or verify:
            raise click.UsageError("--synthetic takes only --data-root, --val, --seed and --force")
        from harness.fetch.synthetic import generate_cli
        click.echo(generate_cli(data_root, synthetic, val, seed, force, dataset))
        return
    if val is not None:
        raise click.UsageError("--val applies only with --synthetic")
    from harness.fetch.dataroot import prepare_cli
    click.echo(prepare_cli(data_root=data_root, zip_path=zip_path, url=url, md5=md5, sha1=sha1, counts=counts,
                           verify_only=verify, force=force, dataset=dataset))


DOWNLOAD_EPILOG = """\b
Examples:
  repro download eva02_L_sz512                     # released seg weights, checked and locked
  repro download --all --pretrained --endpoint https://hf-mirror.com
  repro download eva02_B_sz512 --from-file ~/eva02_B_ade_seg_upernet_sz512.pth
  repro download mmseg/segformer_mit-b0_512x512_160k_ade20k     # a model-zoo entry, from its URL

\b
Files go to the huggingface_hub cache under <REPRO_HOME>/weights/hf, pinned to the revision in each
reproduction.toml; <REPRO_HOME>/weights/lock.json holds the sha256 of every verified file, and files that fail
verification are moved to <REPRO_HOME>/weights/quarantine/. HF_HUB_OFFLINE=1 uses only what is on disk.
A model-zoo entry's file comes from its URL into <REPRO_HOME>/weights/url (an interrupted transfer resumes), and
must match the sha256 prefix its name carries; --endpoint then names a mirror host serving the same paths.
"""


@cli.command("download", epilog=DOWNLOAD_EPILOG)
@click.argument("ids", nargs=-1)
@click.option("--pretrained", is_flag=True,
              help="also the pretrained (MIM) weights a retrain starts from; with --from-file: the file is those")
@click.option("--all", "all_", is_flag=True, help="every reproduction that lists weights")
@click.option("--endpoint", default=None, metavar="URL",
              help="Hugging Face endpoint or mirror (for a zoo entry: a host serving the URL's path)  "
                   "[default: $HF_ENDPOINT or https://huggingface.co]")
@click.option("--from-file", type=click.Path(path_type=Path, dir_okay=False), default=None, metavar="PATH",
              help="verify a file already on disk and register it (kept where it is) instead of downloading")
def download_cmd(ids, pretrained, all_, endpoint, from_file) -> None:
    """Download released (and with --pretrained, pretrained) weights and verify size and sha256: against the
    published hash where there is one, else against the hash locked at the first verified download."""
    from harness.fetch.weights import download_cli

    for line in download_cli(ids, pretrained, all_, endpoint, from_file):
        click.echo(line)
