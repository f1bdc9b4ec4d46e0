"""Metrics: pure functions of counts, never of rows. :mod:`~fairscan.metrics.classification`
(each metric a pair of cell sets over TN/FP/FN/TP), :mod:`~fairscan.metrics.stats`
(intervals, bootstrap, tests), :mod:`~fairscan.metrics.ranking` (recommendation metrics) and
:mod:`~fairscan.metrics.tables` (the audit's tables from the sufficient statistics)."""
