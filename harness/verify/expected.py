"""The expected tables and their tolerances: loading `expected/` and refusing anything malformed.

`expected/` holds data only (see its files' headers):

- `summary.csv`: reproduction, protocol, metric (aAcc/mIoU/mAcc), value (percent; empty = no baseline yet),
  baseline (true: the harness's own regression baseline, not a published number), source;
- `per_class.csv`: reproduction, protocol, class (mmseg name, quoted), metric (IoU/Acc), value, source;
- `sources.csv`: source id -> file, origin, note (joined onto the rows, so every failure can name it);
- `upstream_configs.csv`: the authors' config names -> (reproduction, protocol), for `repro import`;
- `tolerances.toml`: per tier, per metric, an absolute tolerance in percentage points and its rationale.

Example::

    >>> from harness.verify.expected import published
    >>> published("eva02_L_sz512")
    {'baseline': False, 'protocols': {'ss': {'aAcc': 86.67, 'mIoU': 59.77, 'mAcc': 72.05}, 'ms': {...}}}
"""
from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from harness import paths, tomlcheck
from harness.choices import TIERS
from harness.errors import ReproError
from harness.registry import datasets
from harness.tomlcheck import Map, Optional, Table

if TYPE_CHECKING:
    import pandas as pd

SUMMARY_METRICS = ("aAcc", "mIoU", "mAcc")
CLASS_METRICS = ("IoU", "Acc")
SUMMARY_COLUMNS = ["reproduction", "protocol", "metric", "value", "baseline", "source"]
PER_CLASS_COLUMNS = ["reproduction", "protocol", "class", "metric", "value", "source"]
SOURCE_COLUMNS = ["source", "file", "origin", "note"]
TABLES_DATASET = datasets.DEFAULT         # per_class.csv holds ADE20K's classes: every published reproduction's


BASELINE_SOURCE = "harness-baseline"      # source id of baseline rows written by `repro verify --regen`


def registry_baselines() -> set[str]:
    """Reproductions whose reproduction.toml says `baseline = true` (empty if the registry cannot be read)."""
    try:
        from harness.registry import all_reproductions

        return {rid for rid, rep in all_reproductions().items() if rep.baseline}
    except Exception:  # noqa: BLE001 - expected/ must stay usable while a reproduction folder is half-written
        return set()


def zoo_expected(reproduction: str):
    """A model-zoo entry's published values, read from mmseg's metafile at run time (None: not a zoo id)."""
    from harness.registry import ZOO_PREFIX, get

    if not str(reproduction).startswith(ZOO_PREFIX):
        return None
    try:
        return get(reproduction).expected
    except ReproError:
        return None


def zoo_summary_rows(reproduction: str, protocol: str) -> pd.DataFrame:
    """summary.csv-shaped rows of a zoo entry: the metafile gives mIoU per protocol, so only mIoU is judged
    (aAcc, mAcc and per-class values stay in the record and the report, unjudged)."""
    import pandas as pd

    found = zoo_expected(reproduction)
    values = found.values.get(protocol, {}) if found else {}
    return pd.DataFrame([{"reproduction": reproduction, "protocol": protocol, "metric": metric, "value": value,
                          "baseline": False, "source": "mmseg-zoo", "source_text": found.source}
                         for metric, value in values.items()], columns=[*SUMMARY_COLUMNS, "source_text"])


def expected_dir() -> Path:
    """REPRO_EXPECTED, or the repository's expected/."""
    return paths.expected_dir()


@dataclass(frozen=True)
class Tolerance:
    tier: str
    group: str          # "metrics" or "per_class"
    metric: str
    abs: float
    rationale: str


@dataclass(frozen=True)
class Statistics:
    alpha: float
    min_runs: int
    olympic_min_runs: int
    reference: dict     # metric -> {"reference_std", "reference_runs", "rationale"}: the fallback
    per_reproduction: dict = field(default_factory=dict)   # (reproduction, protocol) -> {metric -> reference}

    def reference_for(self, reproduction: str, protocol: str) -> dict:
        """The authors' seed spread per metric for one reproduction and protocol (its own entries over the fallback)."""
        return {**self.reference, **self.per_reproduction.get((reproduction, protocol), {})}


@dataclass
class Expected:
    """The loaded tables (pandas DataFrames, sources joined) and tolerances of one `expected/` folder."""
    root: Path
    summary: pd.DataFrame
    per_class: pd.DataFrame
    upstream: pd.DataFrame
    tolerances: dict             # tier -> {"description", "metrics": {m: Tolerance}, "per_class": {m: Tolerance},
    #                                      "reproductions": {(reproduction, protocol): {m: Tolerance}}}
    statistics: Statistics | None

    @property
    def reproductions(self) -> list[str]:
        return sorted(set(self.summary["reproduction"]) | registry_baselines())

    def check_reproduction(self, reproduction: str) -> None:
        known = self.reproductions
        if reproduction in known or zoo_expected(reproduction) is not None:
            return
        close = difflib.get_close_matches(reproduction, known, n=3)
        hint = f"Did you mean: {', '.join(close)}? " if close else ""
        raise ReproError(f"Unknown reproduction '{reproduction}'. {hint}Available: {', '.join(known)}",
                         fix=f"add its rows to {self.root / 'summary.csv'} or fix the record's reproduction id")

    def is_baseline(self, reproduction: str) -> bool:
        rows = self.summary[self.summary["reproduction"] == reproduction]
        if not len(rows):
            return reproduction in registry_baselines()
        return bool(rows["baseline"].all())

    def summary_rows(self, reproduction: str, protocol: str) -> pd.DataFrame:
        """The expected summary rows of one reproduction + protocol. A baseline reproduction always gets all three
        metrics: a row that is not there yet comes back with an empty value ("no expected value"), never an error."""
        import pandas as pd

        table = self.summary
        rows = table[(table["reproduction"] == reproduction) & (table["protocol"] == protocol)]
        if not len(rows) and zoo_expected(reproduction) is not None:
            return zoo_summary_rows(reproduction, protocol)
        if not self.is_baseline(reproduction):
            return rows
        missing = [m for m in SUMMARY_METRICS if m not in set(rows["metric"])]
        if not missing:
            return rows
        extra = pd.DataFrame([{"reproduction": reproduction, "protocol": protocol, "metric": m, "value": math.nan,
                               "baseline": True, "source": BASELINE_SOURCE,
                               "source_text": f"{self.root / 'summary.csv'} has no row yet"} for m in missing])
        return pd.concat([rows, extra], ignore_index=True) if len(rows) else extra

    def tolerance(self, tier: str, group: str, metric: str, reproduction: str | None = None,
                  protocol: str | None = None) -> Tolerance | None:
        """The tier's tolerance of a metric: the reproduction and protocol's own entry when there is one."""
        if group == "metrics":
            own = self.tolerances[tier]["reproductions"].get((reproduction, protocol), {})
            if metric in own:
                return own[metric]
        return self.tolerances[tier][group].get(metric)


def _read_csv(path: Path, columns: list[str]):
    import pandas as pd

    if not path.is_file():
        raise ReproError(f"missing expected table {path}", fix="restore it from git (`git checkout -- expected/`)")
    try:
        frame = pd.read_csv(path, keep_default_na=False, na_values={"value": [""]}, dtype={"baseline": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ReproError(f"{path} is not a readable CSV table ({exc})", fix="compare it with `git diff expected/`") from exc
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ReproError(f"{path} lacks the column(s) {', '.join(missing)}", fix=f"its header must be {','.join(columns)}")
    if "value" in columns:
        values = pd.to_numeric(frame["value"], errors="coerce")
        bad = frame[values.isna() & frame["value"].notna()]
        if len(bad):
            raise ReproError(f"{path}: value {bad['value'].iloc[0]!r} on line {bad.index[0] + 2} is not a number",
                             fix="write values as plain numbers in percent, or leave a baseline value empty")
        frame["value"] = values.astype(float)
    return frame


_TOLERANCE = Table({"abs": float, "rationale": str})
_REFERENCE = Table({"reference_std": float, "reference_runs": int, "rationale": str})


def _per_metric(names: tuple[str, ...], entry, required: bool = False) -> Table:
    return Table({m: entry if required else Optional(entry) for m in names})


def _tier(statistics: bool = False) -> Table:
    fields = {"description": Optional(str, ""), "metrics": _per_metric(SUMMARY_METRICS, _TOLERANCE, required=True),
              "per_class": Optional(_per_metric(CLASS_METRICS, _TOLERANCE), {}),
              "reproductions": Optional(Map(Map(_per_metric(SUMMARY_METRICS, _TOLERANCE))), {})}
    if statistics:
        fields["statistics"] = Optional(Table({
            "alpha": float, "min_runs": int, "olympic_min_runs": int,
            **_per_metric(SUMMARY_METRICS, _REFERENCE).fields,
            "reproductions": Optional(Map(Map(_per_metric(SUMMARY_METRICS, _REFERENCE))), {})}))
    return Table(fields)


TOLERANCES_SCHEMA = Table({"released": _tier(), "retrain": _tier(statistics=True), "baseline": _tier()})
TOLERANCES_FIX = "tolerances are absolute percentage points >= 0, each with a rationale; compare with `git diff expected/`"


def _present(entries: dict) -> dict:
    """A checked table of optional per-metric entries, without the ones the file leaves out."""
    return {metric: entry for metric, entry in entries.items() if entry is not None}


def _rationale(path: Path, where: str, entry: dict) -> str:
    if not entry["rationale"].strip():
        raise tomlcheck.fail(path, f"{where}.rationale", "is empty", "say in one sentence why the value is what it is")
    return entry["rationale"].strip()


def _tolerance(path: Path, tier: str, group: str, metric: str, entry: dict) -> Tolerance:
    where = f"{tier}.{group}.{metric}"
    value = tomlcheck.finite(path, f"{where}.abs", entry["abs"], TOLERANCES_FIX)
    if value < 0:
        raise tomlcheck.fail(path, f"{where}.abs", f"must be >= 0, found {value}", TOLERANCES_FIX)
    return Tolerance(tier, group, metric, value, _rationale(path, where, entry))


def _statistics(path: Path, data: dict | None) -> Statistics | None:
    if data is None:
        return None
    fix = "see the comment above [retrain.statistics] in the file"
    where = "retrain.statistics"
    alpha = tomlcheck.finite(path, f"{where}.alpha", data["alpha"], fix)
    if not 0 < alpha < 1:
        raise tomlcheck.fail(path, f"{where}.alpha", f"must lie between 0 and 1, found {alpha}", fix)
    if data["min_runs"] < 2:
        raise tomlcheck.fail(path, f"{where}.min_runs", f"must be at least 2, found {data['min_runs']}", fix)

    def references(entries: dict, at: str) -> dict:
        out = {}
        for metric, entry in _present(entries).items():
            std = tomlcheck.finite(path, f"{at}.{metric}.reference_std", entry["reference_std"], fix)
            if std <= 0 or entry["reference_runs"] < 1:
                raise tomlcheck.fail(path, f"{at}.{metric}", "needs reference_std > 0 and reference_runs >= 1", fix)
            out[metric] = {"reference_std": std, "reference_runs": entry["reference_runs"],
                           "rationale": _rationale(path, f"{at}.{metric}", entry)}
        return out

    reference = references({m: data[m] for m in SUMMARY_METRICS}, where)
    per_reproduction = {(rid, protocol): references(entries, f"{where}.reproductions.{rid}.{protocol}")
                        for rid, protocols in data["reproductions"].items() for protocol, entries in protocols.items()}
    return Statistics(alpha, data["min_runs"], data["olympic_min_runs"], reference, per_reproduction)


def load_tolerances(path: Path) -> tuple[dict, Statistics | None]:
    """expected/tolerances.toml, checked against TOLERANCES_SCHEMA (harness/tomlcheck.py) and the values' own rules."""
    data = tomlcheck.read(path, TOLERANCES_SCHEMA, "tolerances", TOLERANCES_FIX)
    tiers = {}
    for tier in TIERS:
        section = data[tier]
        tiers[tier] = {"description": " ".join(section["description"].split()), "metrics": {}, "per_class": {},
                       "reproductions": {}}
        for group in ("metrics", "per_class"):
            for metric, entry in _present(section[group]).items():
                tiers[tier][group][metric] = _tolerance(path, tier, group, metric, entry)
        for rid, protocols in section["reproductions"].items():
            for protocol, entries in protocols.items():
                group = f"reproductions.{rid}.{protocol}"
                tiers[tier]["reproductions"][(rid, protocol)] = {
                    metric: replace(_tolerance(path, tier, group, metric, entry), group="metrics")
                    for metric, entry in _present(entries).items()}
    return tiers, _statistics(path, data["retrain"]["statistics"])


def load_expected(root: Path | None = None) -> Expected:
    """Read and validate every table of `root` (default: expected_dir()); cached per folder and file times."""
    root = Path(root or expected_dir()).resolve()
    stamp = tuple(p.stat().st_mtime_ns for p in sorted(root.glob("*")) if p.is_file()) if root.is_dir() else ()
    return _load(root, stamp)


@lru_cache(maxsize=8)
def _load(root: Path, _stamp: tuple) -> Expected:
    if not root.is_dir():
        raise ReproError(f"no expected tables at {root}", fix="pass --expected DIR or restore expected/")
    sources = _read_csv(root / "sources.csv", SOURCE_COLUMNS)
    sources["source_text"] = sources["file"] + " (" + sources["origin"] + ")"
    summary = _read_csv(root / "summary.csv", SUMMARY_COLUMNS)
    summary["baseline"] = summary["baseline"].str.strip().str.lower().map({"true": True, "false": False})
    if summary["baseline"].isna().any():
        raise ReproError(f"{root / 'summary.csv'}: baseline must be true or false", fix="write true or false on every row")
    per_class = _read_csv(root / "per_class.csv", PER_CLASS_COLUMNS)
    upstream = _read_csv(root / "upstream_configs.csv", ["config", "reproduction", "protocol"])

    for name, frame, metrics in (("summary.csv", summary, SUMMARY_METRICS), ("per_class.csv", per_class, CLASS_METRICS)):
        bad = frame[~frame["metric"].isin(metrics)]
        if len(bad):
            raise ReproError(f"{root / name}: unknown metric {bad['metric'].iloc[0]!r}", fix=f"use one of {', '.join(metrics)}")
        if (frame["value"] < 0).any():
            raise ReproError(f"{root / name}: negative expected value", fix="values are percentages in [0, 100]")
        unknown = set(frame["source"]) - set(sources["source"])
        if unknown:
            raise ReproError(f"{root / name}: source(s) {', '.join(sorted(unknown))} not in sources.csv",
                             fix="add a row per source to expected/sources.csv")
        keys = ["reproduction", "protocol", "metric"] + (["class"] if "class" in frame else [])
        if frame.duplicated(keys).any():
            dup = frame[frame.duplicated(keys)].iloc[0]
            raise ReproError(f"{root / name}: duplicate row for {', '.join(str(dup[k]) for k in keys)}",
                             fix="keep one row per key")
    tables = datasets.get(TABLES_DATASET)
    unknown_classes = set(per_class["class"]) - set(tables.classes)
    if unknown_classes:
        raise ReproError(f"{root / 'per_class.csv'}: unknown class name(s) {sorted(unknown_classes)[:3]}",
                         fix=tables.class_names_fix)
    joined = {}
    for name, frame in (("summary", summary), ("per_class", per_class)):
        joined[name] = frame.merge(sources[["source", "source_text"]], on="source", how="left", validate="many_to_one")
    tolerances, statistics = load_tolerances(root / "tolerances.toml")
    known = set(zip(summary["reproduction"], summary["protocol"]))
    named = [key for tier in tolerances.values() for key in tier["reproductions"]]
    named += list(statistics.per_reproduction) if statistics else []
    unknown_keys = sorted({key for key in named if key not in known})
    if unknown_keys:
        rep_id, protocol = unknown_keys[0]
        raise ReproError(f"tolerances.toml names {rep_id} {protocol}, which has no rows in {root / 'summary.csv'}",
                         fix="use a reproduction id and protocol of summary.csv")
    return Expected(root, joined["summary"], joined["per_class"], upstream, tolerances, statistics)


def published(reproduction_id: str, root: Path | None = None) -> dict:
    """For `repro list`: {"baseline": bool, "protocols": {protocol: {metric: value or None}}}.

    `baseline` is True when the numbers are the harness's own regression baseline, not published results;
    a value is None while that baseline has not been measured yet. Unknown ids raise ReproError.
    """
    expected = load_expected(root)
    expected.check_reproduction(reproduction_id)
    rows = expected.summary[expected.summary["reproduction"] == reproduction_id]
    protocols: dict[str, dict] = {}
    for row in rows.itertuples():
        value = None if math.isnan(row.value) else float(row.value)
        protocols.setdefault(row.protocol, {})[row.metric] = value
    ordered = {p: {m: protocols[p].get(m) for m in SUMMARY_METRICS if m in protocols[p]} for p in protocols}
    return {"baseline": expected.is_baseline(reproduction_id), "protocols": ordered}


def infer_from_config(config: str, root: Path | None = None) -> tuple[str, str] | None:
    """(reproduction, protocol) of a config path: ours (reproductions/<id>/config[_ms].py) or the authors'."""
    path = Path(str(config))
    if path.parent.name and path.stem in ("config", "config_ms"):
        expected = load_expected(root)
        if path.parent.name in expected.reproductions:
            return path.parent.name, "ms" if path.stem.endswith("_ms") else "ss"
    upstream = load_expected(root).upstream
    match = upstream[upstream["config"] == path.stem.removesuffix(".py")]
    if len(match):
        return str(match["reproduction"].iloc[0]), str(match["protocol"].iloc[0])
    return None


EVIDENCE_COLUMNS = ["reproduction", "protocol", "role", "aAcc", "mIoU", "mAcc", "decimals", "file", "origin", "sha256",
                    "note"]


def load_evidence(root: Path | None = None):
    """expected/evidence.csv: the authors' result files behind the bands (released evals, their earlier runs)."""
    import pandas as pd

    path = Path(root or expected_dir()).resolve() / "evidence.csv"
    if not path.is_file():
        raise ReproError(f"missing evidence table {path}", fix="restore it from git (`git checkout -- expected/`)")
    frame = pd.read_csv(path, keep_default_na=False, na_values={m: [""] for m in SUMMARY_METRICS})
    missing = [c for c in EVIDENCE_COLUMNS if c not in frame.columns]
    if missing:
        raise ReproError(f"{path} lacks the column(s) {', '.join(missing)}", fix=f"its header must be {','.join(EVIDENCE_COLUMNS)}")
    return frame


def released_eval_files(root: Path | None = None) -> dict:
    """sha256 -> (reproduction, protocol, origin path) of the authors' eval files of the released weights."""
    frame = load_evidence(root)
    rows = frame[(frame["role"] == "released") & (frame["sha256"] != "")]
    return {row.sha256: (row.reproduction, row.protocol, f"{row.origin} {row.file}") for row in rows.itertuples()}
