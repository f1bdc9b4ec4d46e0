"""Engines: where the rows are counted. One small interface (:mod:`fairscan.engines.base`)
and three implementations — in memory (:mod:`~fairscan.engines.memory`: pandas, polars,
Arrow), DuckDB (:mod:`~fairscan.engines.duckdb`: files larger than memory) and Spark
(:mod:`~fairscan.engines.spark`: clusters) — each reducing the rows to the same small
sufficient statistics. DuckDB and Spark share their logic in :mod:`~fairscan.engines.sql`
(:class:`~fairscan.engines.sql.SqlEngine`), and all three the rules and error texts of
:mod:`~fairscan.engines.base`; :mod:`~fairscan.engines.choose` picks the engine for an input.
Importing this package imports no engine: DuckDB and Spark load only when used."""

__all__ = ["ENGINES"]

#: the engines a user can name (``--engine``, ``engine=``); fairscan.engines.choose picks one
ENGINES = ("auto", "memory", "duckdb", "spark")
