"""fairscan in MLflow: results logged as runs, and fairscan as an MLflow model evaluator.

:func:`log_result` logs any fairscan result (audit, value, recommendations, comparison,
discovery, review) to an MLflow run: one metric per unsuppressed group number, named
``fairscan/{attribute}/{group}/{metric}`` (:func:`metric_name` makes every part safe),
``fairscan/findings/fail`` and ``fairscan/findings/insufficient``; the JSON and HTML
reports as artifacts ``fairscan/{kind}.json`` and ``fairscan/{kind}.html``; and the tags
``fairscan.verdict`` (``fail`` when any finding fails, else ``insufficient`` when any is
insufficient, else ``pass``), ``fairscan.data_sha256`` and ``fairscan.model``. Suppressed
groups are never logged: the numbers come from the same frames the reports publish, after
the one suppression rule.

:class:`FairscanEvaluator` is registered under the entry point group
``mlflow.model_evaluator`` as ``fairscan``: ``mlflow.models.evaluate(...,
evaluators=["fairscan"], evaluator_config={"fairscan": {...}})`` runs :func:`fairscan.audit`
on the evaluation data and logs as above. It claims nothing without a fairscan config, so a
plain ``mlflow.models.evaluate`` is unchanged by installing fairscan.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd

from fairscan.errors import FairscanError, plain
from fairscan.registry import require_mlflow

try:  # the evaluator's base class, when MLflow is installed (fairscan works without it)
    from mlflow.models.evaluation.base import EvaluationResult, ModelEvaluator
except ImportError:  # pragma: no cover - exercised only without MLflow
    EvaluationResult = None
    ModelEvaluator = object

__all__ = ["DEFAULT_EXPERIMENT", "FairscanEvaluator", "log_result", "metric_name", "result_metrics",
           "result_verdict"]

DEFAULT_EXPERIMENT = "fairscan"
#: MLflow's longest metric name
_MAX_KEY = 250
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\- :]")


def _part(text: object) -> str:
    """One safe path part: characters MLflow does not allow in names become ``_``, a part
    that would read as a folder step (``.``, ``..``) or is empty gets a ``_`` in front, a long
    one is cut; whenever the text had to change, 8 hex digits of its sha256 follow, so that
    two groups never share a name (``a/b`` and ``a_b`` stay apart)."""
    raw = str(text)
    out = _UNSAFE.sub("_", raw).strip()
    if out in ("", ".", "..") or out.startswith("."):
        out = "_" + out
    if out != raw or len(out) > 60:
        out = out[:50] + "_" + hashlib.sha256(raw.encode()).hexdigest()[:8]
    return out


def metric_name(*parts: object) -> str:
    """``fairscan/part/part/...`` with every part made safe for MLflow (see :func:`_part`)."""
    return "/".join(["fairscan", *(_part(p) for p in parts)])[:_MAX_KEY]


def _finite(v: Any) -> float | None:
    """``v`` as a float when it is a finite number (not a flag, not missing), else None."""
    if isinstance(v, bool | np.bool_) or not isinstance(v, int | float | np.integer | np.floating):
        return None
    return float(v) if not pd.isna(v) and math.isfinite(float(v)) else None


def _numbers(row: Mapping[str, Any], skip: set[str]) -> Iterator[tuple[str, float]]:
    """The point estimates of a published row: finite numbers, no interval bound or flag."""
    for k, v in row.items():
        if k in skip or k.endswith(("_ci_low", "_ci_high")) or "_ci_" in k:
            continue
        if (x := _finite(v)) is not None:
            yield k, x


_STRUCTURE = {"attribute", "group", "reference", "suppressed", "suppression", "p_value", "p_value_adjusted",
              "metric", "reference_group", "verdict", "message", "test", "id", "parent", "depth", "row", "table"}


def result_metrics(result: Any) -> dict[str, float]:
    """Every unsuppressed group number of ``result`` as ``{metric name: value}`` (see the
    module docstring), with the findings' counts."""
    out: dict[str, float] = {}

    def put(parts: tuple[object, ...], value: float) -> None:
        key = metric_name(*parts)
        if key in out:  # two names made equal by the safe rule: keep both apart
            key = f"{key[:_MAX_KEY - 9]}_{hashlib.sha256(repr(parts).encode()).hexdigest()[:8]}"
        out[key] = value

    def published(frame: pd.DataFrame) -> list[dict[str, Any]]:
        if frame is None or not len(frame):
            return []
        rows = frame.to_dict("records")
        return [r for r in rows if not r.get("suppressed")]

    kind = _kind(result)
    if kind in ("audit", "value", "review"):
        audit = result.result if kind == "review" else result
        if audit is not None:
            for r in published(audit.groups):
                for k, v in _numbers(r, _STRUCTURE):
                    put((r["attribute"], r["group"], k), v)
        if kind == "review" and getattr(result, "value", None) is not None:
            for r in published(result.value.groups):
                for k, v in _numbers(r, _STRUCTURE):
                    put(("value", r["attribute"], r["group"], k), v)
    elif kind == "compare":
        for r in published(result.changes):
            for side in ("value_a", "value_b", "change", "gap_change"):
                if (v := _finite(r.get(side))) is not None:
                    put((r["attribute"], r["group"], f"{r['metric']}_{side.removeprefix('value_')}"), v)
    elif kind == "recs":
        for r in published(result.gaps):
            for k in ("group_value", "reference_value", "ratio"):
                if (v := _finite(r.get(k))) is not None:
                    name = r["metric"] if k == "group_value" else f"{r['metric']}_{k.removesuffix('_value')}"
                    put((r.get("item_group") or "all", r["group"], name), v)
    elif kind == "discover":
        for r in published(result.listed):
            for k in ("count", "value", "difference", "ratio"):
                if (v := _finite(r.get(k))) is not None:
                    put(("subgroups", r["id"], k), v)
    counts = _counts(result)
    for verdict in ("fail", "insufficient"):
        out[f"fairscan/findings/{verdict}"] = float(counts.get(verdict, 0))
    return out


def _kind(result: Any) -> str:
    name = type(result).__name__
    return {"AuditResult": "audit", "ValueResult": "value", "RecsAuditResult": "recs",
            "ComparisonResult": "compare", "DiscoveryResult": "discover", "ReviewOutcome": "review"}.get(name, "")


def _counts(result: Any) -> dict[str, int]:
    """Findings by fail / insufficient / pass: a review's judged ones (what set its status); a
    comparison's ``worse`` groups are fails, ``better`` and ``not worse`` passes."""
    counts = result.verdict_counts()
    if _kind(result) == "compare":
        return {"fail": counts.get("worse", 0), "insufficient": counts.get("insufficient", 0),
                "pass": counts.get("better", 0) + counts.get("not worse", 0)}
    return counts


def result_verdict(result: Any) -> str:
    """The run's verdict: ``fail`` when any finding fails, else ``insufficient`` when any is
    insufficient, else ``pass`` (a review: its own status)."""
    if _kind(result) == "review":
        return result.status
    counts = _counts(result)
    return "fail" if counts.get("fail") else "insufficient" if counts.get("insufficient") else "pass"


def _meta(result: Any) -> dict[str, Any]:
    if _kind(result) == "review":
        return (result.result or result.value).meta
    return result.meta


def log_result(result: Any, *, run_id: str | None = None, experiment: str | None = None) -> str:
    """Log ``result`` to MLflow (see the module docstring) and return the run's id: into
    ``run_id``, else into the active run, else into a new run of ``experiment`` (default
    ``fairscan``), which is ended. The tracking server: ``MLFLOW_TRACKING_URI``."""
    mlflow = require_mlflow()
    from mlflow import MlflowClient
    from mlflow.entities import Metric, RunTag
    from mlflow.exceptions import MlflowException

    kind = _kind(result)
    if not kind:
        raise FairscanError(f"cannot log a {type(result).__name__} to MLflow: log an audit, value, recommendation, "
                            "comparison, discovery or review result")
    client = MlflowClient()
    own = False
    try:
        if run_id is None and mlflow.active_run() is not None:
            run_id = mlflow.active_run().info.run_id
        if run_id is None:
            name = experiment or DEFAULT_EXPERIMENT
            exp = client.get_experiment_by_name(name)
            exp_id = exp.experiment_id if exp is not None else client.create_experiment(name)
            run_id = client.create_run(exp_id, run_name=f"fairscan {kind}").info.run_id
            own = True
        else:
            client.get_run(run_id)  # a clear error for an unknown run
        meta = _meta(result)
        model = meta.get("model") or {}
        tags = {"fairscan.verdict": result_verdict(result), "fairscan.analysis": kind,
                "fairscan.version": str(meta.get("fairscan_version", ""))}
        if meta.get("data_sha256"):
            tags["fairscan.data_sha256"] = str(meta["data_sha256"])
        if isinstance(model, Mapping) and (model.get("uri") or model.get("path") or model.get("name")):
            tags["fairscan.model"] = str(model.get("uri") or model.get("path") or model.get("name"))
        stamp = int(pd.Timestamp.now("UTC").timestamp() * 1000)
        metrics = [Metric(k, v, stamp, 0) for k, v in result_metrics(result).items()]
        for i in range(0, len(metrics), 1000):  # MLflow's batch limit
            client.log_batch(run_id, metrics=metrics[i:i + 1000], tags=[RunTag(k, v) for k, v in tags.items()]
                             if i == 0 else [])
        client.log_text(run_id, result.to_json(), f"fairscan/{kind}.json")
        client.log_text(run_id, result.to_html(), f"fairscan/{kind}.html")
        if own:
            client.set_terminated(run_id, "FINISHED")
    except BaseException as e:  # our own run never stays RUNNING, whatever stopped the log
        if own and run_id:
            client.set_terminated(run_id, "FAILED")
        if not isinstance(e, MlflowException):
            raise
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise FairscanError(f"MLflow refused the log ({first}) at {mlflow.get_tracking_uri()}") from None
    return run_id


# -- the evaluator -------------------------------------------------------------------------------
class FairscanEvaluator(ModelEvaluator):
    """``mlflow.models.evaluate(..., evaluators=["fairscan"], evaluator_config={"fairscan":
    {...}})``: the config takes :func:`fairscan.audit`'s keywords; ``sensitive`` names columns
    of the evaluation data or maps names to arrays aligned with its rows. The score: with a
    model, the positive class's probability where the underlying model has one, else its
    prediction; with ``predictions="COL"`` and no model, that column."""

    def can_evaluate(self, *, model_type: str | None = None, evaluator_config: Any = None, **kwargs: Any) -> bool:
        """Only when asked: a config that names fairscan's groups (``sensitive`` or ``tiers``)."""
        return isinstance(evaluator_config, Mapping) and bool(
            evaluator_config.get("sensitive") or evaluator_config.get("tiers"))

    def evaluate(self, *, model_type: str | None = None, dataset: Any = None, run_id: str | None = None,
                 evaluator_config: Mapping[str, Any] | None = None, model: Any = None, extra_metrics: Any = None,
                 custom_artifacts: Any = None, predictions: Any = None, **kwargs: Any) -> Any:
        from mlflow.models.evaluation.artifacts import JsonEvaluationArtifact

        import fairscan

        config = dict(evaluator_config or {})
        frame = pd.DataFrame(dataset.features_data).reset_index(drop=True).copy()
        target = dataset.targets_name or "label"
        frame[target] = np.asarray(dataset.labels_data)
        sensitive = config.pop("sensitive", None)
        names: list[str] = []
        if isinstance(sensitive, Mapping):
            for name, values in sensitive.items():
                values = np.asarray(values)
                if len(values) != len(frame):
                    raise FairscanError(f"sensitive {plain(name)} has {len(values):,} values for {len(frame):,} rows "
                                        "of the evaluation data; align them with its rows")
                frame[str(name)] = values
                names.append(str(name))
        elif sensitive:
            names = [sensitive] if isinstance(sensitive, str) else list(sensitive)
        frame["__fairscan_score__"] = self._scores(model, dataset, frame)
        kw = {k: v for k, v in config.items() if k not in ("score", "prediction", "model", "target")}
        kw.setdefault("threshold", None if kw.get("budget") is not None else 0.5)
        result = fairscan.audit(frame, target=target, score="__fairscan_score__", sensitive=names or None, **kw)
        log_result(result, run_id=run_id)
        metrics = result_metrics(result)
        uri = f"runs:/{run_id}/fairscan/audit.json" if run_id else ""
        artifacts = {"fairscan_audit": JsonEvaluationArtifact(uri=uri, content=result.to_dict())}
        return EvaluationResult(metrics=metrics, artifacts=artifacts, run_id=run_id)

    @staticmethod
    def _scores(model: Any, dataset: Any, frame: pd.DataFrame) -> np.ndarray:
        """The positive class's probability from the underlying model where it has one, else
        the model's prediction; without a model, the evaluation data's predictions column."""
        from fairscan.modeling import score

        if model is None:
            if dataset.predictions_data is None:
                raise FairscanError("give fairscan a model, or predictions='COLUMN' with the scores")
            return np.asarray(dataset.predictions_data, dtype=float)
        features = pd.DataFrame(dataset.features_data)
        raw = model.get_raw_model() if hasattr(model, "get_raw_model") else model
        if hasattr(raw, "predict_proba"):
            return score(raw, features)
        return np.asarray(model.predict(features), dtype=float).ravel()
