"""The feature spec: one file that names every column, its type and its checks.

Preprocessing, the model's input transform, the Feature Store groups (CDK), and the monitoring
baseline all read the spec through this module, so they cannot disagree.  Loading validates
the whole file and fails with a message that names the field and the offending value.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipeline_steps.common.contract import ConfigError

COLUMN_TYPES = ("string", "category", "integer", "number", "boolean", "date")
AGGREGATE_FUNCTIONS = ("mean", "sum", "max", "min", "count", "std")
# Feature Store's three feature types, by spec type.
FEATURE_STORE_TYPES = {
    "string": "String",
    "category": "String",
    "date": "String",
    "boolean": "Integral",
    "integer": "Integral",
    "number": "Fractional",
}
# Model inputs are numeric; identifiers and free text are not features.
MODEL_INPUT_TYPES = ("category", "integer", "number", "boolean")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_GROUP_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,40}$")
# Names of the columns preprocessing adds when the data has no id or no time column.
GENERATED_ID = "row_id"  # "<file name>:<row number>": deterministic, unique across shards
GENERATED_TIME = "event_time"  # the run's as-of time (Feature Store event time)
DEFAULT_SPLIT_SEED = 7


class SpecError(ConfigError):
    """The feature spec is invalid; the message names the field."""


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    categories: tuple[str, ...] = ()

    @property
    def feature_store_type(self) -> str:
        return FEATURE_STORE_TYPES[self.type]


@dataclass(frozen=True)
class Aggregate:
    name: str
    column: str
    fn: str
    months: int


@dataclass(frozen=True)
class Derived:
    name: str
    numerator: str
    denominator: str


@dataclass(frozen=True)
class History:
    key: str
    time: str
    columns: tuple[Column, ...]
    aggregates: tuple[Aggregate, ...]


@dataclass(frozen=True)
class FeatureGroup:
    name: str
    description: str
    features: tuple[str, ...]


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    description: str
    entity_id: str
    entity_time: str
    entity_key: str | None
    label: str
    positive_labels: tuple[Any, ...]
    columns: tuple[Column, ...]
    history: History | None
    derived: tuple[Derived, ...]
    feature_groups: tuple[FeatureGroup, ...]
    validation_fraction: float
    test_fraction: float
    max_invalid_fraction: float
    source_text: str = field(repr=False, default="")
    # False when the data has no such column: preprocessing adds `row_id` / `event_time`.
    id_in_data: bool = True
    time_in_data: bool = True
    split_seed: int = DEFAULT_SPLIT_SEED

    @property
    def column_names(self) -> list[str]:
        """Columns the entity table must have, in spec order (id, time, label first)."""
        given = [self.entity_id] if self.id_in_data else []
        given += [self.entity_time] if self.time_in_data else []
        return given + [self.label] + [c.name for c in self.columns]

    @property
    def split_method(self) -> str:
        """ "time" (oldest rows train) with a time column, else a seeded stratified random split."""
        return "time" if self.time_in_data else "stratified_random"

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def aggregate_names(self) -> list[str]:
        return [a.name for a in self.history.aggregates] if self.history else []

    @property
    def derived_names(self) -> list[str]:
        return [d.name for d in self.derived]

    @property
    def feature_names(self) -> list[str]:
        """Every named feature: entity columns, aggregates, derived ratios."""
        return [c.name for c in self.columns] + self.aggregate_names + self.derived_names

    @property
    def model_features(self) -> list[str]:
        """The model's inputs, in the order of the model matrix's columns."""
        numeric = [c.name for c in self.columns if c.type in MODEL_INPUT_TYPES]
        return numeric + self.aggregate_names + self.derived_names

    def feature_type(self, name: str) -> str:
        """The spec type of any feature (aggregates and ratios are numbers)."""
        for c in self.columns:
            if c.name == name:
                return c.type
        if self.history:
            for a in self.history.aggregates:
                if a.name == name:
                    return "integer" if a.fn == "count" else "number"
        if name in self.derived_names:
            return "number"
        if name == self.entity_id:
            return "string"
        if name == self.entity_time:
            return "date"
        raise KeyError(name)

    def feature_store_definitions(self, group: FeatureGroup) -> list[dict[str, str]]:
        """FeatureDefinitions for one group: record id, event time, then its features."""
        defs = [
            {"FeatureName": self.entity_id, "FeatureType": "String"},
            {"FeatureName": self.entity_time, "FeatureType": "String"},
        ]
        for name in group.features:
            defs.append({"FeatureName": name, "FeatureType": FEATURE_STORE_TYPES[self.feature_type(name)]})
        return defs

    @property
    def digest(self) -> str:
        """sha256 of the spec's text: recorded with every model and baseline."""
        return hashlib.sha256(self.source_text.encode()).hexdigest()

    def to_json(self) -> str:
        return json.dumps(yaml.safe_load(self.source_text), sort_keys=True)


def load_spec(path: str | Path) -> FeatureSpec:
    path = Path(path)
    if path.is_dir():
        candidates = sorted(path.glob("*.y*ml")) + sorted(path.glob("*.json"))
        if len(candidates) != 1:
            raise SpecError(f"feature spec: expected one .yaml/.json file in {path}, found {len(candidates)}")
        path = candidates[0]
    try:
        text = path.read_text()
    except OSError as err:
        raise SpecError(f"feature spec: cannot read {path}: {err.strerror}") from err
    return parse_spec(text, source=str(path.name))


def parse_spec(text: str, *, source: str = "<spec>") -> FeatureSpec:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise SpecError(f"feature spec {source}: not valid YAML: {err}") from err
    if not isinstance(raw, dict):
        raise SpecError(f"feature spec {source}: expected a mapping at the top level")
    p = _Parser(source)
    spec = p.spec(raw, text)
    _check_references(spec, source)
    return spec


class _Parser:
    def __init__(self, source: str):
        self.source = source

    def fail(self, where: str, message: str) -> SpecError:
        return SpecError(f"feature spec {self.source}: field '{where}': {message}")

    def get(self, node: dict, key: str, where: str, kind: type | tuple, default: Any = ...) -> Any:
        if key not in node:
            if default is ...:
                raise self.fail(f"{where}.{key}".lstrip("."), "is required")
            return default
        value = node[key]
        kinds = _as_tuple(kind)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            names = "/".join(t.__name__ for t in kinds)
            raise self.fail(f"{where}.{key}".lstrip("."), f"expected {names}, got {value!r}")
        return value

    def name(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not _NAME.match(value):
            raise self.fail(where, f"{value!r} is not a valid column name (letters, digits, _; at most 64)")
        return value

    def column(self, node: Any, where: str) -> Column:
        if not isinstance(node, dict):
            raise self.fail(where, f"expected a mapping, got {node!r}")
        unknown = set(node) - {"name", "type", "nullable", "min", "max", "categories"}
        if unknown:
            raise self.fail(where, f"unknown keys {sorted(unknown)}")
        name = self.name(node.get("name"), f"{where}.name")
        ctype = self.get(node, "type", where, str)
        if ctype not in COLUMN_TYPES:
            raise self.fail(f"{where}.type", f"{ctype!r} is not one of {list(COLUMN_TYPES)}")
        lo = self.get(node, "min", where, (int, float), None)
        hi = self.get(node, "max", where, (int, float), None)
        if lo is not None and hi is not None and lo > hi:
            raise self.fail(where, f"min {lo} is greater than max {hi}")
        cats = self.get(node, "categories", where, list, [])
        if ctype == "category" and not cats:
            raise self.fail(f"{where}.categories", "a category column needs its list of categories")
        if ctype != "category" and cats:
            raise self.fail(f"{where}.categories", f"only category columns take categories, not {ctype}")
        if len(set(map(str, cats))) != len(cats):
            raise self.fail(f"{where}.categories", "has duplicates")
        return Column(
            name=name,
            type=ctype,
            nullable=self.get(node, "nullable", where, bool, False),
            min=lo,
            max=hi,
            categories=tuple(str(c) for c in cats),
        )

    def spec(self, raw: dict, text: str) -> FeatureSpec:
        entity = raw.get("entity") or {}  # every key is optional: an empty section is fine
        if not isinstance(entity, dict):
            raise self.fail("entity", f"expected a mapping (id, time, key; each optional), got {entity!r}")
        unknown = set(entity) - {"id", "time", "key"}
        if unknown:
            raise self.fail("entity", f"unknown keys {sorted(unknown)}; allowed: id, time, key")
        label = self.get(raw, "label", "", dict)
        positive = label.get("positive", [1])
        if not isinstance(positive, list) or not positive:
            raise self.fail("label.positive", f"expected a non-empty list of values, got {positive!r}")
        columns = tuple(
            self.column(c, f"columns[{i}]") for i, c in enumerate(self.get(raw, "columns", "", list))
        )
        history = self.history(raw) if raw.get("history") is not None else None
        derived = tuple(self.derived(d, f"derived[{i}]") for i, d in enumerate(raw.get("derived") or []))
        groups = tuple(
            self.group(g, f"feature_groups[{i}]") for i, g in enumerate(raw.get("feature_groups") or [])
        )
        vf, tf, mif, seed = self.fractions(raw)
        return FeatureSpec(
            name=self.get(raw, "name", "", str),
            description=self.get(raw, "description", "", str, ""),
            entity_id=self.name(entity["id"], "entity.id") if entity.get("id") is not None else GENERATED_ID,
            entity_time=(
                self.name(entity["time"], "entity.time") if entity.get("time") is not None else GENERATED_TIME
            ),
            entity_key=self.name(entity["key"], "entity.key") if entity.get("key") else None,
            label=self.name(label.get("name"), "label.name"),
            positive_labels=tuple(positive),
            columns=columns,
            history=history,
            derived=derived,
            feature_groups=groups,
            validation_fraction=vf,
            test_fraction=tf,
            max_invalid_fraction=mif,
            source_text=text,
            id_in_data=entity.get("id") is not None,
            time_in_data=entity.get("time") is not None,
            split_seed=seed,
        )

    def history(self, raw: dict) -> History:
        h = self.get(raw, "history", "", dict)
        hcols = tuple(
            self.column(c, f"history.columns[{i}]")
            for i, c in enumerate(self.get(h, "columns", "history", list))
        )
        aggs = tuple(
            self.aggregate(a, f"history.aggregates[{i}]")
            for i, a in enumerate(self.get(h, "aggregates", "history", list))
        )
        return History(
            key=self.name(h.get("key"), "history.key"),
            time=self.name(h.get("time"), "history.time"),
            columns=hcols,
            aggregates=aggs,
        )

    def aggregate(self, a: Any, where: str) -> Aggregate:
        if not isinstance(a, dict):
            raise self.fail(where, f"expected a mapping, got {a!r}")
        fn = self.get(a, "fn", where, str)
        if fn not in AGGREGATE_FUNCTIONS:
            raise self.fail(f"{where}.fn", f"{fn!r} is not one of {list(AGGREGATE_FUNCTIONS)}")
        months = self.get(a, "months", where, int)
        if not 1 <= months <= 120:
            raise self.fail(f"{where}.months", f"{months} is outside 1..120")
        return Aggregate(
            self.name(a.get("name"), f"{where}.name"), self.get(a, "column", where, str), fn, months
        )

    def derived(self, d: Any, where: str) -> Derived:
        if not isinstance(d, dict):
            raise self.fail(where, f"expected a mapping, got {d!r}")
        return Derived(
            self.name(d.get("name"), f"{where}.name"),
            self.get(d, "numerator", where, str),
            self.get(d, "denominator", where, str),
        )

    def group(self, g: Any, where: str) -> FeatureGroup:
        gname = self.get(g, "name", where, str)
        if not _GROUP_NAME.match(gname):
            raise self.fail(
                f"{where}.name", f"{gname!r}: letters, digits and single hyphens, at most 41 characters"
            )
        feats = self.get(g, "features", where, list)
        if not feats:
            raise self.fail(f"{where}.features", "a feature group needs at least one feature")
        return FeatureGroup(gname, self.get(g, "description", where, str, ""), tuple(feats))

    def fractions(self, raw: dict) -> tuple[float, float, float, int]:
        """The split's validation and test fractions, the validation's max invalid fraction and the
        split's seed (for data without a time column)."""
        split = self.get(raw, "split", "", dict, {})
        vf = float(self.get(split, "validation_fraction", "split", (int, float), 0.15))
        tf = float(self.get(split, "test_fraction", "split", (int, float), 0.15))
        if not (0 < vf < 1 and 0 < tf < 1 and vf + tf < 0.9):
            raise self.fail(
                "split",
                f"validation_fraction {vf} and test_fraction {tf} must be in (0, 1) and sum below 0.9",
            )
        seed = self.get(split, "seed", "split", int, DEFAULT_SPLIT_SEED)
        if not 0 <= seed < 2**32:
            raise self.fail("split.seed", f"{seed} is outside 0..4294967295")
        validation = self.get(raw, "validation", "", dict, {})
        mif = float(self.get(validation, "max_invalid_fraction", "validation", (int, float), 0.2))
        if not 0 <= mif < 1:
            raise self.fail("validation.max_invalid_fraction", f"{mif} is outside [0, 1)")
        return vf, tf, mif, seed


def _check_references(spec: FeatureSpec, source: str) -> None:
    def fail(where: str, message: str) -> SpecError:
        return SpecError(f"feature spec {source}: field '{where}': {message}")

    names = [spec.entity_id, spec.entity_time, spec.label] + [c.name for c in spec.columns]
    for given, generated, where in (
        (spec.id_in_data, GENERATED_ID, "entity.id"),
        (spec.time_in_data, GENERATED_TIME, "entity.time"),
    ):
        if not given and names.count(generated) > 1:
            raise fail(
                where,
                f"is not set, so preprocessing adds a column {generated!r}, but the spec already has "
                f"a column of that name: name it in {where} or rename it",
            )
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise fail("columns", f"names used twice: {dupes}")
    if spec.history:
        if not spec.time_in_data:
            raise fail(
                "entity.time", "is required when a history table is given (aggregates are point-in-time)"
            )
        if spec.entity_key is None:
            raise fail("entity.key", "is required when a history table is given")
        if spec.entity_key not in [c.name for c in spec.columns]:
            raise fail("entity.key", f"{spec.entity_key!r} is not one of the columns")
        hcols = {c.name: c for c in spec.history.columns}
        for i, a in enumerate(spec.history.aggregates):
            if a.column not in hcols:
                raise fail(
                    f"history.aggregates[{i}].column",
                    f"{a.column!r} is not a history column; have {sorted(hcols)}",
                )
            if a.fn != "count" and hcols[a.column].type not in ("integer", "number", "boolean"):
                raise fail(
                    f"history.aggregates[{i}].fn",
                    f"{a.fn} needs a numeric column, {a.column} is {hcols[a.column].type}",
                )
    known = set(names) | set(spec.aggregate_names)
    for i, d in enumerate(spec.derived):
        for part in ("numerator", "denominator"):
            ref = getattr(d, part)
            if ref not in known:
                raise fail(f"derived[{i}].{part}", f"{ref!r} is not a column or aggregate")
            if ref in {c.name for c in spec.columns} and spec.column(ref).type not in ("integer", "number"):
                raise fail(f"derived[{i}].{part}", f"{ref!r} is not numeric")
        known.add(d.name)
    all_features = spec.feature_names
    feature_dupes = sorted({n for n in all_features if all_features.count(n) > 1})
    if feature_dupes:
        raise fail("features", f"names used twice: {feature_dupes}")
    group_names = [g.name for g in spec.feature_groups]
    if len(set(group_names)) != len(group_names):
        raise fail("feature_groups", "group names used twice")
    for i, g in enumerate(spec.feature_groups):
        for f in g.features:
            if f not in all_features:
                raise fail(
                    f"feature_groups[{i}].features", f"{f!r} is not a column, aggregate or derived feature"
                )
            if f in (spec.entity_id, spec.entity_time):
                raise fail(
                    f"feature_groups[{i}].features",
                    f"{f!r} is the record id or event time; it is added to every group",
                )
    if not spec.model_features:
        raise fail("columns", "no numeric, category or boolean column: the model would have no inputs")


def _as_tuple(kind: type | tuple) -> tuple:
    return kind if isinstance(kind, tuple) else (kind,)
