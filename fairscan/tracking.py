"""What every fairscan result can do with an experiment tracker: ``result.log_to_mlflow()``.

A mixin with no state of its own; the work is in :mod:`fairscan.integrations.mlflow`,
imported only when a result is logged (MLflow is an optional extra).
"""

from __future__ import annotations

__all__ = ["LogsToMlflow"]


class LogsToMlflow:
    """What every fairscan result can do with MLflow: ``result.log_to_mlflow()``."""

    def log_to_mlflow(self, run_id: str | None = None, experiment: str | None = None) -> str:
        """Log this result to MLflow — a metric per unsuppressed group number, the JSON and
        HTML reports, the verdict, data and model tags (:mod:`fairscan.integrations.mlflow`)
        — into ``run_id``, the active run, or a new run of ``experiment`` (default
        ``fairscan``); returns the run's id."""
        from fairscan.integrations.mlflow import log_result

        return log_result(self, run_id=run_id, experiment=experiment)
