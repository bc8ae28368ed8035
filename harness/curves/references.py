"""Where reference curves come from, each read once and recorded with the sha256 of the file read.

`--reference SPEC` (repeatable) of `repro train` and `repro watch`:

- a file: an mmseg `*.log.json` (its text `*.log` twin beside it is read too) or a text `*.log`;
- a URL (http/https): downloaded through the verified downloader into <REPRO_HOME>/references/, its sha256
  written to <REPRO_HOME>/weights/lock.json at the first download and checked after;
- a folder: an earlier `repro train` run of the same reproduction (its train.log.json and the exact lr and loss
  the harness's hook wrote), or a folder holding an imported `*.log.json`;
- `zoo`: a model-zoo entry's own log (the rule in harness/registry/zoo.py: `log_url`);
- `authors`: the reproduction's built-in references, the logs under `reproductions/<id>/reference_logs/` (for
  eva02_B_sz512 the authors' first 250 iterations). Without any --reference these are used; `none`: no reference.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from harness import paths
from harness.curves import logs
from harness.errors import ReproError
from harness.run.folder import JOB_FILE, read_json

BUILTIN_FOLDER = "reference_logs"


@dataclass
class Reference:
    name: str                    # as given (a path, a URL, a run folder, `authors`)
    origin: str                  # file | url | run | built-in | zoo
    path: Path                   # the log file read (a run: its folder)
    files: dict[str, str]        # every file read -> its sha256
    log: logs.TrainingLog

    @property
    def label(self) -> str:
        seed = f", seed {self.log.seed}" if self.log.seed is not None else ""
        return f"{self.origin} {self.path.name}{seed}"

    def record(self) -> dict:
        gpus, gpu_type = self.log.gpus
        return {"name": self.name, "origin": self.origin, "path": str(self.path), "files": dict(self.files),
                "sha256": next(iter(self.files.values()), None), "seed": self.log.seed, "gpus": gpus,
                "gpu_type": gpu_type, "train_points": len(self.log.train), "val_points": len(self.log.val)}


def _sha(path: Path) -> str:
    from harness.fileio import file_sha256
    return file_sha256(path)


def _from_file(name: str, origin: str, path: Path, known_sha: str | None = None) -> Reference:
    log = logs.read_log(path)
    files = {str(path): known_sha or _sha(path)}
    twin = logs.text_twin(path)
    if twin is not None:
        files[str(twin)] = _sha(twin)
    return Reference(name, origin, path, files, log)


def _from_run(name: str, folder: Path, reproduction: str | None) -> Reference:
    job = read_json(folder / JOB_FILE) or {}
    if reproduction and job.get("reproduction") not in (None, reproduction):
        raise ReproError(f"--reference {name} is a run of {job['reproduction']}, not of {reproduction}",
                         fix="pass a run (or log) of the same reproduction")
    log = logs.read_run(folder)
    read = [p for p in (folder / "train.log.json", folder / "train.log", folder / logs.EXACT_FILE) if p.is_file()]
    if not read:
        read = sorted(folder.glob("*.log.json"))[:1]
    return Reference(name, "run", folder, {str(p): _sha(p) for p in read}, log)


def download_log(url: str, endpoint: str | None = None) -> tuple[Path, str]:
    """A log at URL, downloaded once into <REPRO_HOME>/references/<12 hex of the URL's sha256>/, verified against
    the sha256 the lock file recorded at its first download. (path, sha256)."""
    from harness.fetch.weights import download_locked_url
    name = url.rstrip("/").rsplit("/", 1)[-1] or "log.json"
    dest = paths.repro_home() / "references" / hashlib.sha256(url.encode()).hexdigest()[:12] / name
    return download_locked_url(url, dest, endpoint=endpoint,
                               fix=f"run the same command again (it resumes), or download {url} yourself and pass "
                                   f"the file with --reference FILE")


def zoo_log_url(rep) -> str:
    from harness.registry.zoo import log_url
    url = log_url(rep) if rep.source == "mmseg-zoo" else None
    if url is None:
        raise ReproError(f"no log URL known for {rep.id}: its weights name carries no mmseg timestamp "
                         f"(`_YYYYMMDD_HHMMSS-<sha8>.pth`), so the `.log.json` beside it cannot be named",
                         fix="find the log link in the method's README and pass it with --reference URL")
    return url


def download_log_cli(ids, endpoint: str | None = None):
    """`repro download ID... --log`: each zoo entry's training log, verified; yields the lines to print."""
    from harness import registry
    if not ids:
        raise ReproError("--log needs a zoo entry", fix="e.g. `repro download mmseg/<entry> --log`")
    for rep_id in ids:
        rep = registry.get(rep_id)
        path, digest = download_log(zoo_log_url(rep), endpoint)
        yield f"{rep.id} log: verified {path} (sha256 {digest})"


def builtin(rep) -> list[Reference]:
    """The reproduction's own reference logs (reproductions/<id>/reference_logs/*.log.json, with text twins)."""
    folder = Path(rep.folder) / BUILTIN_FOLDER
    if rep.source != "folder" or not folder.is_dir():
        return []
    found = sorted(folder.glob("*.log.json")) or sorted(folder.glob("*.log"))
    return [_from_file("authors", "built-in", path) for path in found]


def resolve(spec: str, rep, endpoint: str | None = None) -> list[Reference]:
    """The references one --reference SPEC names (see the module docstring)."""
    if spec == "none":
        return []
    if spec == "authors":
        found = builtin(rep)
        if not found:
            raise ReproError(f"{rep.id} has no built-in reference logs (no {BUILTIN_FOLDER}/ in its folder)",
                             fix="pass a log file, URL or earlier run with --reference")
        return found
    if spec == "zoo":
        url = zoo_log_url(rep)
        path, digest = download_log(url, endpoint)
        return [_from_file(url, "zoo", path, digest)]
    if spec.startswith(("http://", "https://")):
        path, digest = download_log(spec, endpoint)
        return [_from_file(spec, "url", path, digest)]
    path = Path(spec).expanduser().resolve()
    if path.is_dir():
        return [_from_run(spec, path, rep.id)]
    if path.is_file():
        return [_from_file(spec, "file", path)]
    raise ReproError(f"--reference {spec}: no such file, folder or URL",
                     fix="pass an mmseg *.log.json / *.log, an http(s) URL, a `repro train` run folder, `authors`, "
                         "`zoo` or `none`")


def gather(specs: list[str] | tuple[str, ...] | None, rep, endpoint: str | None = None) -> list[Reference]:
    """Every reference the specs name; none given: the reproduction's built-in ones."""
    if not specs:
        return builtin(rep)
    found: list[Reference] = []
    for spec in specs:
        found += resolve(spec, rep, endpoint)
    return found


def from_records(records: list[dict]) -> list[Reference]:
    """The references a run recorded (job.json), read again and checked against the sha256 recorded then."""
    out = []
    for item in records:
        path = Path(item["path"])
        ref = (_from_run(item["name"], path, None) if item["origin"] == "run"
               else _from_file(item["name"], item["origin"], path))
        for file, sha in item.get("files", {}).items():
            now = ref.files.get(file)
            if item["origin"] != "run" and now is not None and now != sha:
                raise ReproError(f"reference {file} changed since the run recorded it (sha256 {now[:12]}…, "
                                 f"recorded {sha[:12]}…)", fix="restore it, or pass the references with --reference")
        out.append(ref)
    return out
