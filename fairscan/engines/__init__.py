"""Engines: where the rows are counted. One small interface (:mod:`fairscan.engines.base`)
and three implementations — in memory (:mod:`~fairscan.engines.memory`: pandas, polars,
Arrow), DuckDB (:mod:`~fairscan.engines.duckdb`: files larger than memory) and Spark
(:mod:`~fairscan.engines.spark`: clusters) — each reducing the rows to the same small
sufficient statistics. DuckDB and Spark share their logic in :mod:`~fairscan.engines.sql`
(:class:`~fairscan.engines.sql.SqlEngine`), and all three the rules and error texts of
:mod:`~fairscan.engines.base`. Importing this package imports no engine: DuckDB and Spark
load only when used."""
