"""review.yaml: loaded with a safe loader that also refuses aliases, validated with clear errors.

The published schema is ``fairscan/schemas/review.schema.json``. Paths are relative to the
config file's folder and may not leave it unless ``allow_outside_paths: true``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from fairscan.errors import FairscanError, plain
from fairscan.params import AuditParams, audit_params
from fairscan.policy import parse_tolerances
from fairscan.validation import parse_budget

__all__ = ["MAX_CONFIG_BYTES", "MAX_DEPTH", "ReviewConfig", "load_config", "schema", "starter"]

MAX_CONFIG_BYTES = 64 << 10  # a review file is a few KB; PyYAML parses a hostile 1 MiB one for ~25 s
MAX_DEPTH = 50  # a review file nests 4 levels; PyYAML's composer recurses once per level


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader (no Python tags) that also refuses anchors and aliases, so a
    "billion laughs" file cannot blow up memory; review files never need them. Nesting is
    limited (10000 ``[`` would overflow the stack), and a scalar its constructor rejects
    (``2020-13-45``, ``!!int abc``, a 5000-digit number) is a YAML error with its line."""

    depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.YAMLError(f"aliases are not allowed (line {event.start_mark.line + 1})")
        event = self.peek_event()
        if getattr(event, "anchor", None):
            raise yaml.YAMLError(f"anchors are not allowed (line {event.start_mark.line + 1})")
        if self.depth >= MAX_DEPTH:
            raise yaml.YAMLError(f"nested more than {MAX_DEPTH} levels deep (line {event.start_mark.line + 1})")
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except yaml.YAMLError:
            raise
        except Exception as e:  # PyYAML's scalar constructors raise ValueError, IndexError, AttributeError...
            reason = str(e).splitlines()[0][:100] if str(e) else type(e).__name__
            raise yaml.YAMLError(f"cannot read {str(node.value)[:40]!r} as {node.tag.rsplit(':', 1)[-1]}: {reason} "
                                 f"(line {node.start_mark.line + 1})") from None


@dataclass
class ReviewConfig:
    """A validated review: the raw mapping, where it came from, and its hash."""

    raw: dict[str, Any]
    path: Path
    sha256: str

    @property
    def folder(self) -> Path:
        return self.path.parent

    @property
    def name(self) -> str:
        return str(self.raw["name"])

    def resolve_path(self, value: str, what: str) -> Path:
        """A path from the config, relative to its folder, refused if it escapes the folder."""
        p = Path(value)
        full = (p if p.is_absolute() else self.folder / p).resolve()
        if not self.raw.get("allow_outside_paths", False) and not full.is_relative_to(self.folder.resolve()):
            raise FairscanError(
                f"{self.path}: {what} '{value}' is outside the config's folder; move it there or set "
                "allow_outside_paths: true"
            )
        return full

    def audit_params(self, model: Any = None) -> AuditParams:
        """The audit this review runs, built by the validator every face shares; ``model``: the
        model file resolved against the config's folder (the raw spec is checked otherwise)."""
        raw = self.raw
        policy = raw.get("policy", {})
        decision = raw.get("decision", {})
        try:
            tolerances = parse_tolerances(policy.get("metrics"))
            if raw.get("metrics"):
                tolerances = {m: t for m, t in tolerances.items() if m in raw["metrics"]}
            return audit_params(
                target=raw["label"], positive_label=raw.get("positive_label"), prediction=raw.get("prediction"),
                score=raw.get("score"), model=model if model is not None else raw.get("model"),
                trust=raw.get("trust", ()), threshold=decision.get("threshold"),
                budget=parse_budget(decision.get("budget"), "decision budget"), sensitive=raw.get("sensitive", []),
                tiers=raw.get("tiers"), intersect=raw.get("intersect", False), reference=raw.get("reference"),
                weights=raw.get("weights"), favourable_decision=raw.get("favourable_decision", 1),
                min_group_size=policy.get("min_group_size", 30), suppress_below=policy.get("suppress_below", 10),
                n_boot=policy.get("n_boot", 1000), tolerances=tolerances, alpha=policy.get("alpha", 0.05),
            )
        except FairscanError as e:
            raise FairscanError(f"review file '{self.path}': {e}") from None


def schema() -> dict[str, Any]:
    from fairscan import schemas

    return schemas.load("review")


def load_config(path: str | Path) -> ReviewConfig:
    """Read and validate a review file; every problem is one FairscanError line."""
    p = Path(path)
    if not p.is_file():
        raise FairscanError(f"review file '{p}' not found")
    data = p.read_bytes()
    if len(data) > MAX_CONFIG_BYTES:
        raise FairscanError(f"review file '{p}' is larger than 64 KiB; that is not a review config")
    try:
        raw = yaml.load(data.decode("utf-8"), Loader=_StrictLoader)  # a SafeLoader subclass
    except UnicodeDecodeError:
        raise FairscanError(f"review file '{p}' is not UTF-8 text") from None
    except yaml.YAMLError as e:
        first = str(e).replace("\n", " ")
        raise FairscanError(f"review file '{p}' is not valid YAML: {first[:200]}") from None
    if not isinstance(raw, dict):
        raise FairscanError(f"review file '{p}' must be a mapping of settings (name, data, ...)")
    _check_keys(raw, p, [])
    _validate(raw, p)
    canonical = json.dumps(raw, sort_keys=True, default=str).encode()
    cfg = ReviewConfig(raw, p.resolve(), hashlib.sha256(canonical).hexdigest())
    if "label" in raw:
        cfg.audit_params()  # every setting the audit checks without data, checked now
    elif not raw.get("sensitive") and not raw.get("tiers"):
        raise FairscanError(f"review file '{p}': name the groups to compare: sensitive: [COL] or tiers: {{COL: N}}")
    return cfg


def _check_keys(node: Any, p: Path, where: list[str]) -> None:
    """Every key is text: YAML reads ``1:``, ``yes:``, ``null:`` or ``2020-01-01:`` as other types,
    which the schema cannot name and the canonical JSON cannot sort."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for k, v in items:
        if isinstance(node, dict) and not isinstance(k, str):
            at = ".".join(where) or "(top level)"
            raise FairscanError(f"review file '{p}': {at}: key {plain(k)} is not text; put it in quotes")
        _check_keys(v, p, [*where, str(k)])


def _validate(raw: dict[str, Any], p: Path) -> None:
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema())
    # an unknown key usually explains a "required" error too: report it first
    errors = sorted(validator.iter_errors(raw),
                    key=lambda e: (e.validator != "additionalProperties", [str(x) for x in e.absolute_path]))
    if errors:
        e = errors[0]
        where = ".".join(str(x) for x in e.absolute_path) or "(top level)"
        msg = e.message
        if e.validator == "additionalProperties":
            from fairscan.errors import suggest

            extra = sorted(set(e.instance) - set(e.schema.get("properties", {})))
            msg = f"unknown setting '{extra[0]}'{suggest(extra[0], e.schema.get('properties', {}))}" if extra else msg
        elif e.validator == "enum":
            from fairscan.errors import suggest

            msg = f"{plain(e.instance)} is not one of {', '.join(map(str, e.validator_value))}" + suggest(
                str(e.instance), [str(v) for v in e.validator_value])
        if len(msg) > 300:  # the value of a 60 KiB string, say
            msg = msg[:300] + "..."
        raise FairscanError(f"review file '{p}': {where}: {msg}")
    if raw["name"].endswith("\n"):  # the pattern's $ also matches before a final newline
        raise FairscanError(f"review file '{p}': name: {plain(raw['name'])} does not match '^[A-Za-z0-9_.-]+$'")
    if "label" not in raw:  # a review of the offer's value alone
        if "value" not in raw:
            raise FairscanError(f"review file '{p}': give label (with a model, score or prediction) to review "
                                "decisions, or a value: block to review the offer's value, or both")
        extra = [k for k in ("model", "score", "prediction", "decision", "baseline", "metrics") if k in raw]
        if extra:
            raise FairscanError(f"review file '{p}': {extra[0]} reviews decisions and needs label")
        return
    if ("score" in raw) + ("prediction" in raw) + ("model" in raw) != 1:
        raise FairscanError(f"review file '{p}': give exactly one of model, score or prediction")
    if ("score" in raw or "model" in raw) and "decision" not in raw:
        raise FairscanError(f"review file '{p}': a score or model needs decision: {{threshold: T}} or {{budget: K}}")


def starter(dataset: str) -> str:
    """A working review.yaml for a bundled dataset and its reference model."""
    from fairscan import datasets

    card = datasets.card(dataset)
    tiers = card.get("default_tiers") or {}
    sens = [c for c in card["sensitive"] if c not in tiers][:2]
    lines = [
        f"# fairscan review of the reference {dataset} model: `fairscan review run review.yaml`",
        "# exit codes: 0 pass, 1 fail (or regression, if policy.regression is fail), 2 config/input error,",
        "# 3 insufficient evidence (if policy.insufficient is fail)",
        f"name: {dataset}-reference",
        f"data: dataset:{dataset}",
        f"model: reference:{dataset}",
        f"label: {card['target']}",
        f"positive_label: {json.dumps(card['positive_label'])}",
        f"sensitive: [{', '.join(sens)}]",
    ]
    if tiers:
        lines.append("tiers:")
        lines += [f"  {k}: {json.dumps(v)}" for k, v in tiers.items()]
    lines += [
        "decision:",
        "  budget: 0.2            # the top 20% by score get the offer (or: threshold: 0.5)",
        "policy:",
        "  alpha: 0.05",
        "  min_group_size: 30",
        "  insufficient: warn     # or fail: exit 3 when there are too few people to tell",
        "  regression: warn       # or fail: exit 1 on a significant worsening since the last run",
        "  metrics:",
        "    selection_rate: {min_ratio: 0.8}",
        "    true_positive_rate: {min_ratio: 0.8}",
        "    false_negative_rate: {max_difference: 0.1}",
        "outputs:",
        "  dir: reports",
        "  formats: [json, md, html, junit]",
        "history: fairscan-history.sqlite",
    ]
    return "\n".join(lines) + "\n"
