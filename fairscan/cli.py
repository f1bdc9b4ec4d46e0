"""The ``fairscan`` command. Presentation only: every decision and number comes from the library.

Exit codes: 0 the command ran, 2 a usage or input error (one line on stderr, no traceback),
1 an internal error (a bug: set FAIRSCAN_DEBUG=1 for the traceback).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from fairscan.engines import ENGINES
from fairscan.errors import FairscanError, plain, suggest
from fairscan.validation import parse_budget

__all__ = [
    "build_parser", "can_open_browser", "cmd_app", "cmd_audit", "cmd_compare", "cmd_counts", "cmd_counts_merge", "cmd_datasets", "cmd_demo",
    "cmd_discover", "cmd_explain", "cmd_mitigate", "cmd_proxies", "cmd_recs", "cmd_rerank", "cmd_review", "cmd_train",
    "cmd_train_recommender", "cmd_value", "main",
]

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors and exit code 2."""

    def error(self, message: str) -> NoReturn:
        raise FairscanError(f"{message} (see '{self.prog} --help')")


def _tiers(values: list[str] | None) -> dict[str, Any]:
    from fairscan.groups import parse_tier_specs

    return parse_tier_specs(values or [])


def _references(values: list[str] | None) -> dict[str, str]:
    out = {}
    for v in values or []:
        attr, eq, group = v.partition("=")
        if not eq or not attr:
            raise FairscanError(f"--reference {plain(v)}: write ATTRIBUTE=GROUP, e.g. --reference age='(24..59]'")
        out[attr] = group
    return out


def _write(text: str, out: str | None) -> None:
    if out:
        try:
            Path(out).write_text(text, encoding="utf-8")
        except OSError as e:
            raise FairscanError(f"cannot write '{out}': {e.strerror}") from None
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


def _audit_inputs(a: argparse.Namespace) -> tuple[Any, Any, list[str], dict[str, Any], dict[str, Any]]:
    """What audit and counts read from their options: (data, params, sensitive columns, the
    inferred-tier spec, the audit keywords); the data read into memory when a model or an
    inferred tier needs every column."""
    from fairscan.engines.choose import in_memory
    from fairscan.groups.purchasing import INFERRED, parse_infer_tier
    from fairscan.params import audit_params

    target, positive = _label_defaults(a)
    _require_decision(a)
    infer = parse_infer_tier(a.infer_tier)
    sensitive = list(a.sensitive or [])
    kw: dict[str, Any] = dict(
        target=target, prediction=a.prediction, score=a.score, threshold=a.threshold,
        budget=parse_budget(a.budget, "--budget"), tiers=_tiers(a.tiers), intersect=a.intersect,
        reference=_references(a.reference), weights=a.weights, favourable_decision=a.favourable_decision,
        min_group_size=a.min_group_size, suppress_below=a.suppress_below, n_boot=a.n_boot, seed=a.seed,
        positive_label=positive,
    )
    params = audit_params(sensitive=[*sensitive, *([INFERRED] if infer else [])], model=a.model,
                          trust=a.trust or (), trust_pickle=a.trust_pickle, dp_epsilon=getattr(a, "dp_epsilon", None),
                          engine=a.engine, spark_master=a.spark_master, **kw)
    # a model, or a proxy model of the tier, needs every column in memory; DuckDB streams files
    if infer or a.model is not None:
        needed = [*params.columns(), *infer.get("columns", [])]
        everything = a.model is not None or infer.get("kind") == "model"
        data: Any = in_memory(a.data, a.engine, "--model and --infer-tier",
                              columns=None if everything else [c for c in needed if c != INFERRED],
                              categorical=sensitive)
    else:
        data = a.data
    return data, params, sensitive, infer, kw


def cmd_audit(a: argparse.Namespace) -> int:
    from fairscan.audit import run_audit
    from fairscan.engines.counts import is_counts_file
    from fairscan.groups.purchasing import INFERRED, infer_tiers

    if is_counts_file(a.data):
        result = _audit_counts_file(a)
        _render_audit(result, a)
        _log_mlflow(a, result)
        return EXIT_OK
    data, params, sensitive, infer, kw = _audit_inputs(a)
    inferred = None
    if infer.get("kind") == "spend":
        data = data.assign(**{INFERRED: infer_tiers(data, infer)[0]})
    elif infer.get("kind") == "model":
        from fairscan.inferred import audit_inferred

        exclude = [c for c in params.columns() if c != INFERRED]
        tier_model = infer_tiers(data, infer, exclude=exclude, seed=a.seed)[1]
        keep = {*params.columns(), *infer["columns"], *tier_model.features}
        inferred = audit_inferred(data.drop(columns=[c for c in data.columns if c not in keep]),
                                  tier_model, sensitive=sensitive, **kw)
    if inferred is None:
        show = _progress(a)  # DuckDB reports each pass over large files
        result = run_audit(data, params, columns=params.columns(), categorical=sensitive,
                           memory_limit=a.memory_limit, threads=a.threads, progress=show)
        if show:
            show(1.0, "counted")
    else:
        result = inferred.hard
    if inferred is not None and a.format == "json":
        import json

        doc = result.to_dict()
        doc["inferred_tier"] = {k: v for k, v in inferred.to_dict().items() if k != "hard"}
        _write(json.dumps(doc, indent=2, allow_nan=False), a.out)
        _log_mlflow(a, result)
        return EXIT_OK
    _render_audit(result, a, inferred)
    _log_mlflow(a, result)
    return EXIT_OK


def _render_audit(result: Any, a: argparse.Namespace, inferred: Any = None) -> None:
    if a.format == "json":
        _write(result.to_json(), a.out)
    elif a.format == "md":
        _write(result.to_markdown(), a.out)
    elif a.format == "html":
        _write(result.to_html(), a.out)
    else:
        from fairscan.report.table import render_inferred, render_table

        text = render_table(result, width=None if a.out is None else 120)
        if inferred is not None:
            text += render_inferred(inferred)
        _write(text, a.out)


def _audit_counts_file(a: argparse.Namespace) -> Any:
    """``fairscan audit COUNTS_FILE``: the file's rule, label and groups; the audit's policy."""
    import fairscan

    for flag, v in (("--target", a.target), ("--prediction", a.prediction), ("--score", a.score),
                    ("--model", a.model), ("--weights", a.weights), ("--infer-tier", a.infer_tier)):
        if v is not None:
            raise FairscanError(f"{a.data} is a counts file: it holds its own decision rule, label and groups; "
                                f"leave out {flag} (--threshold or --budget cut from its histograms)")
    return fairscan.audit(a.data, sensitive=a.sensitive, tiers=_tiers(a.tiers), intersect=a.intersect,
                          reference=_references(a.reference) or None, min_group_size=a.min_group_size,
                          suppress_below=a.suppress_below, n_boot=a.n_boot, seed=a.seed, dp_epsilon=a.dp_epsilon,
                          threshold=a.threshold, budget=parse_budget(a.budget, "--budget"))


def cmd_counts(a: argparse.Namespace) -> int:
    from fairscan.audit import counts_of
    from fairscan.groups.purchasing import INFERRED, infer_tiers

    if a.out is None:
        raise FairscanError("name the counts file to write: --out FILE.parquet")
    data, params, sensitive, infer, _ = _audit_inputs(a)
    if infer:
        exclude = [c for c in params.columns() if c != INFERRED]
        data = data.assign(**{INFERRED: infer_tiers(data, infer, exclude=exclude, seed=a.seed)[0]})
    if a.paired_score and a.paired_prediction:
        raise FairscanError("give one of --paired-score and --paired-prediction")
    c = counts_of(data, params, protect=a.protect, epsilon=a.epsilon, histograms=_histograms(a.histograms),
                  paired=a.paired_score or a.paired_prediction, subgroups=a.subgroups,
                  columns=params.columns(), categorical=sensitive, memory_limit=a.memory_limit, threads=a.threads)
    path = c.write(a.out)
    withheld = sum(int((w > 0).sum()) for w in c.withheld)
    print(f"fairscan: wrote {path}: {c.n_rows:,} rows as {sum(len(st.codes) for st in c.stats):,} groups' cells "
          f"({withheld} withheld: {c.protection['kind']})", file=sys.stderr)
    return EXIT_OK


def _histograms(text: str | None) -> int | list[float] | None:
    """--histograms: a number of bins, or the edges (comma-separated)."""
    if text is None:
        return None
    try:
        if "," in text:
            return [float(x) for x in text.split(",") if x.strip()]
        return int(text)
    except ValueError:
        raise FairscanError(f"--histograms takes a number of bins (100) or edges (0.1,0.2,0.5), got '{text}'") from None


def cmd_counts_merge(a: argparse.Namespace) -> int:
    from fairscan.engines.counts import Counts

    parts = [Counts.read(f) for f in a.files]
    merged = Counts.merge(parts, names=a.files, suppress_below=None if a.protect == "none" else a.suppress_below)
    path = merged.write(a.out)
    print(f"fairscan: wrote {path}: {len(parts)} files, {merged.n_rows:,} rows ({merged.protection['kind']})",
          file=sys.stderr)
    return EXIT_OK


def cmd_datasets(a: argparse.Namespace) -> int:
    from fairscan import datasets
    from fairscan.report.table import render_card, render_dataset_list

    if a.action == "list":
        _write(render_dataset_list([datasets.card(n) for n in datasets.list_datasets()]), None)
    else:
        if not a.name:
            raise FairscanError("name a dataset: fairscan datasets show NAME")
        _write(render_card(datasets.card(a.name)), None)
    return EXIT_OK


def cmd_train(a: argparse.Namespace) -> int:
    from fairscan import modeling
    from fairscan.io import dataset_spec, read_table

    if a.dataset:
        if a.data:
            raise FairscanError("give DATA or --dataset NAME, not both")
        trained = modeling.train_preset(a.dataset, model=a.model, seed=a.seed, progress=_progress(a))
        name = a.dataset
    else:
        if not a.data or not a.target:
            raise FairscanError("give DATA and --target COL, or a preset with --dataset NAME")
        data = read_table(a.data)
        spec = dataset_spec(a.data)
        name = Path(a.data).stem if spec is None else spec[0]
        trained = modeling.train_targeting(
            data, a.target, a.positive_label, features=a.features, drop=a.drop or (), sensitive=a.sensitive or (),
            model=a.model, seed=a.seed, test_size=a.test_size, name=name, progress=_progress(a),
        )
    out = modeling.save_model(trained, a.out or Path("models") / name)
    m = trained.metrics
    _write(f"trained {name}: {trained.card()['model']}\n"
           f"hold-out ({len(trained.holdout):,} rows): ROC AUC {m['roc_auc']:.3f}, accuracy {m['accuracy']:.3f}, "
           f"Brier {m['brier']:.4f}\nfeatures ({len(trained.features)}): {', '.join(trained.features)}\n"
           f"sensitive, not features: {', '.join(trained.sensitive) or 'none'}\n"
           f"wrote {out}/{modeling.MODEL_FILE}, {modeling.CARD_FILE}, {modeling.CARD_MD}, {modeling.SCORES_FILE}", None)
    return EXIT_OK


def cmd_proxies(a: argparse.Namespace) -> int:
    import json

    from fairscan.groups.proxies import detect_proxies
    from fairscan.io import read_table

    data = read_table(a.data, columns=None if not a.features else [a.sensitive, *a.features])
    report = detect_proxies(data, a.sensitive, a.features, threshold=a.threshold, seed=a.seed)
    if a.format == "json":
        _write(json.dumps(report.to_dict(), indent=2), a.out)
    else:
        from fairscan.report.table import render_proxies

        _write(render_proxies(report), a.out)
    return EXIT_OK


def cmd_mitigate(a: argparse.Namespace) -> int:
    from fairscan import datasets
    from fairscan.io import dataset_spec, read_table
    from fairscan.mitigation import compare, save_mitigated
    from fairscan.report import mitigation as rep

    if a.value is not None or a.method == "value-repair":
        return _value_repair(a)
    if a.target is None:
        raise FairscanError("give --target COL to mitigate a targeting model, or --value COL --favourable "
                            "higher|lower --method value-repair to repair an offer's value")
    data = read_table(a.data)
    drop: list[str] = []
    name = None
    spec = dataset_spec(a.data)
    if spec is not None:
        name = spec[0]
        drop = datasets.card(name).get("drop_for_modeling", [])
    model = a.model or (f"reference:{a.dataset}" if a.dataset else None)
    result = compare(
        data, a.target, a.sensitive or [], _tiers(a.tiers), positive_label=a.positive_label, model=model,
        methods=a.method, constraint=a.constraint, budget=parse_budget(a.budget, "--budget"), seed=a.seed,
        dataset=a.dataset or name, drop=drop, sweep=not a.no_sweep, progress=_progress(a),
    )
    render = {"json": lambda r: r.to_json(), "md": rep.render_mitigation_markdown,
              "html": rep.render_mitigation_html, "table": rep.render_mitigation_table}[a.format]
    _write(render(result), a.out)
    if a.save_model:
        out = save_mitigated(result, None if a.method == "all" else a.method, a.save_model)
        print(f"saved the mitigated model to {out}", file=sys.stderr)
    return EXIT_OK


def _value_repair(a: argparse.Namespace) -> int:
    """``fairscan mitigate --value COL --method value-repair``: the value's repair, swept or at
    --amount; --save-values writes the repaired values (the only per-row output)."""
    from fairscan.io import read_table
    from fairscan.mitigation.value_repair import repair_values
    from fairscan.value import check_favourable

    if a.value is None or a.method != "value-repair":
        raise FairscanError("a value repair needs both --value COL and --method value-repair")
    check_favourable(a.favourable)
    if a.save_model:
        raise FairscanError("--save-model saves a mitigated model; a value repair saves values: use --save-values "
                            "FILE")
    data = read_table(a.data)
    if a.key is not None and a.key not in data.columns:
        raise FairscanError(f"key column '{a.key}' (--key) not found{suggest(a.key, [str(c) for c in data.columns])}")
    result = repair_values(data, value=a.value, favourable=a.favourable, sensitive=a.sensitive, tiers=_tiers(a.tiers),
                           infer_tier=a.infer_tier, within=a.within, weights=a.weights, amount=a.amount,
                           keep_total=a.keep_total, tolerance=a.tolerance, seed=a.seed, progress=_progress(a),
                           cluster=a.cluster)
    if a.format in ("md", "html"):
        raise FairscanError(f"--format {a.format}: a value repair reports as table or json")
    _write(result.to_json() if a.format == "json" else result.to_text(), a.out)
    if a.save_values:
        out = result.save_values(a.save_values, a.amount, data[a.key] if a.key else None)
        print(f"saved the repaired values to {out}", file=sys.stderr)
    return EXIT_OK


def cmd_review(a: argparse.Namespace) -> int:
    import json

    from fairscan import review
    from fairscan.review.history import History

    if a.action == "init":
        if not a.dataset:
            raise FairscanError("fairscan review init needs --dataset NAME")
        from fairscan.review.config import starter

        sys.stdout.write(starter(a.dataset))
        return EXIT_OK
    if a.action == "run":
        if not a.config:
            raise FairscanError("fairscan review run needs the review file: fairscan review run review.yaml")
        o = review.run_review(a.config, a.history)
        counts = o.verdict_counts()  # the judged findings that set the status
        print(f"review '{o.name}': {o.status.upper()} — {counts['fail']} fail, {counts['insufficient']} "
              f"insufficient, {counts['pass']} pass; {len(o.regressions)} regression(s)")
        failed = o.result.failed
        for f in failed.head(10).itertuples():
            print(f"  FAIL {f.message}")
        if len(failed) > 10:
            print(f"  ... and {len(failed) - 10} more failures (see the reports)")
        for r in o.regressions:
            print(f"  REGRESSION {r['message']}")
        print(f"history record {o.record['seq']} sha256 {o.record['hash']}; reports: "
              + ", ".join(str(p) for p in o.reports))
        _log_mlflow(a, o)
        return o.exit_code
    path = a.history or review.DEFAULT_HISTORY
    if a.action == "verify":
        if not Path(path).exists():
            raise FairscanError(f"history '{path}' not found")
        hist = History(path)
        if a.keep_days is not None:
            n = hist.prune(a.keep_days)
            print(f"pruned {n} record(s) older than {a.keep_days} days")
        ok, msg = hist.verify()
        print(("OK: " if ok else "TAMPERED: ") + msg, file=sys.stdout if ok else sys.stderr)
        return EXIT_OK if ok else EXIT_INTERNAL
    if not a.config:
        raise FairscanError("fairscan review history needs the review NAME")
    if not Path(path).exists():
        raise FairscanError(f"history '{path}' not found")
    table = review.history_table(path, a.config)
    if a.format == "json":
        sys.stdout.write(json.dumps(table, indent=2) + "\n")
    elif a.format in ("md", "html"):
        from fairscan.report.history import render_history_html, render_history_markdown

        _write((render_history_html if a.format == "html" else render_history_markdown)(table), a.out)
    else:
        from fairscan.report.table import render_history

        _write(render_history(table), None)
    return EXIT_OK


def cmd_value(a: argparse.Namespace) -> int:
    """``fairscan value``: the offer's value (price, discount, limit) by group."""
    from fairscan.value import audit_value, check_favourable

    check_favourable(a.favourable)  # before reading anything
    result = audit_value(
        a.data, value=a.value, favourable=a.favourable, sensitive=a.sensitive, tiers=_tiers(a.tiers),
        infer_tier=a.infer_tier, intersect=a.intersect, within=a.within, offered=a.offered,
        reference=_references(a.reference), weights=a.weights, tolerance=a.tolerance,
        min_group_size=a.min_group_size, suppress_below=a.suppress_below, n_boot=a.n_boot, seed=a.seed,
        progress=_progress(a), cluster=a.cluster, engine=a.engine, spark_master=a.spark_master,
        memory_limit=a.memory_limit, threads=a.threads)
    render = {"json": result.to_json, "md": result.to_markdown, "html": result.to_html}.get(a.format, result.to_text)
    _write(render(), a.out)
    _log_mlflow(a, result)
    return EXIT_OK


def cmd_recs(a: argparse.Namespace) -> int:
    from fairscan.recs import audit_recs

    result = audit_recs(
        a.recs, a.users, a.items, user_group=a.user_group, item_group=a.item_group, k=a.k, truth=a.truth,
        interactions=a.interactions, user_col=a.user_col, item_col=a.item_col, rank_col=a.rank_col,
        reference=a.reference, n_boot=a.n_boot, seed=a.seed, min_group_size=a.min_group_size,
        suppress_below=a.suppress_below, progress=_progress(a),
    )
    if a.format == "json":
        _write(result.to_json(), a.out)
    elif a.format == "html":
        _write(result.to_html(), a.out)
    else:  # md, and the terminal table (Markdown tables read well in a terminal)
        _write(result.to_markdown(), a.out)
    _log_mlflow(a, result)
    return EXIT_OK


def cmd_train_recommender(a: argparse.Namespace) -> int:
    from fairscan import recommenders
    from fairscan.io import read_table

    if a.dataset:
        trained = recommenders.train_preset_recommender(a.dataset, k=a.k, seed=a.seed, model=a.model)
        name = a.dataset
    else:
        if not (a.data and a.user and a.item):
            raise FairscanError("give DATA --user COL --item COL, or a preset with --dataset NAME")
        trained = recommenders.train_recommender(read_table(a.data), user=a.user, item=a.item, weight=a.weight,
                                                 time=a.time, k=a.k or 20, model=a.model, seed=a.seed)
        name = Path(a.data).stem
    out = recommenders.save_recommender(trained, a.out or Path("models") / f"{name}-recs")
    m, b = trained.metrics, trained.baseline_metrics
    n_users = int(trained.recommendations["user"].nunique())
    n_cold = int(trained.card.get("cold_start_users", 0))
    _write(f"trained {name}: {a.model}; held-out: "
           + ", ".join(f"{k} {v:.4f}" for k, v in m.items() if isinstance(v, float))
           + "\npopularity baseline: " + ", ".join(f"{k} {v:.4f}" for k, v in b.items() if isinstance(v, float))
           + f"\nlists for {n_users:,} users: {n_users - n_cold:,} from the model, {n_cold:,} with no training "
             "history (cold start) got the popularity list"
           + f"\nwrote {out}", None)
    return EXIT_OK


def cmd_rerank(a: argparse.Namespace) -> int:
    from fairscan.io import read_table
    from fairscan.mitigation.rerank import rerank

    recs = read_table(a.recs)
    new = rerank(recs, read_table(a.users) if a.users else None, read_table(a.items), user_group=a.user_group,
                 item_group=a.item_group, method=a.method, strength=a.strength, k=a.k,
                 history=read_table(a.history) if a.history else None,
                 protected_item_group=a.protected_item_group)
    out = Path(a.out)
    try:
        new.to_parquet(out, index=False) if out.suffix.lower() in (".parquet", ".pq") else new.to_csv(out, index=False)
    except OSError as e:
        raise FairscanError(f"cannot write '{out}': {e.strerror}") from None
    print(f"re-ranked {new['user'].nunique():,} users' lists to top {a.k} ({a.method}, strength {a.strength:g}): {out}",
          file=sys.stderr)
    return EXIT_OK


def can_open_browser() -> bool:
    """Whether a graphical browser can be opened here: macOS and Windows, or a Linux/BSD desktop
    session (DISPLAY or WAYLAND_DISPLAY). A server, container, CI runner or SSH session has none."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _port_free(address: str, port: int) -> bool:
    """Whether ``port`` can be served on ``address`` (a one-line error if the address is not this
    machine's)."""
    import errno
    import socket

    try:
        with socket.create_server((address, port)):
            return True
    except OSError as e:
        # a name that does not resolve (negative errno: getaddrinfo's), or an address that is not
        # this machine's (EADDRNOTAVAIL); anything else means the port is taken
        if isinstance(e, socket.gaierror) or (e.errno or 0) < 0 or e.errno == errno.EADDRNOTAVAIL:
            raise FairscanError(f"--address {plain(address)} is not a name or address of this machine: use "
                                "localhost, 0.0.0.0 (every interface) or one of its addresses") from None
        return False


def _when_ready(health: str, *actions: Callable[[], object], timeout: float = 60.0) -> None:
    """Run ``actions`` on a thread once the server's health endpoint answers."""
    import threading
    import time
    import urllib.request

    def wait_then_act() -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(health, timeout=2):
                    break
            except OSError:
                time.sleep(0.05)
        else:
            return
        for act in actions:
            act()

    threading.Thread(target=wait_then_act, name="fairscan-when-ready", daemon=True).start()


def _import_dashboard() -> None:
    """Import the dashboard's modules (pandas, the analyses, the pages' state) while the browser
    loads Streamlit's JavaScript, so that the first page does not wait for them."""
    import importlib

    importlib.import_module("fairscan.dashboard.state")
    importlib.import_module("fairscan.dashboard.widgets")


def cmd_app(a: argparse.Namespace) -> int:
    from streamlit.web import cli as streamlit_cli

    from fairscan.dashboard import MAIN

    if not 0 < a.port < 65536:
        raise FairscanError(f"--port {a.port}: choose a port between 1 and 65535 (default 8501)")
    bind = a.address or "localhost"
    if not _port_free(bind, a.port):
        raise FairscanError(f"port {a.port} on {bind} is in use (another dashboard?): stop it, or choose another "
                            f"port with --port {a.port + 1}")
    shown = "localhost" if bind in ("localhost", "127.0.0.1", "::1", "0.0.0.0", "::") else bind
    url = f"http://{shown}:{a.port}"
    browser = not (a.headless or a.no_browser) and can_open_browser()
    why = "" if browser else (" (open it in a browser)" if a.headless or a.no_browser else
                              " (no display here to open a browser on: open the URL in a browser)")
    print(f"fairscan dashboard: {url}{why}; Ctrl+C stops it", file=sys.stderr)
    if bind not in ("localhost", "127.0.0.1", "::1"):
        print(f"fairscan: warning: --address {bind} serves the dashboard beyond this machine; the data it shows is "
              "personal: serve it only on a network you trust", file=sys.stderr)
    import webbrowser

    health = f"http://{'127.0.0.1' if shown == 'localhost' else shown}:{a.port}/_stcore/health"
    _when_ready(health, *([lambda: webbrowser.open(url)] if browser else []), _import_dashboard)
    # `streamlit run` in this process. Always headless and without Streamlit's first-run e-mail prompt: the
    # prompt reads standard input, so with it closed (cron, CI, a service) the server would never start.
    # The rest of the settings come from the dashboard's own .streamlit/config.toml (a script-level config,
    # whatever folder this runs from, over the user's global Streamlit config).
    sys.argv = ["streamlit", "run", str(MAIN), "--server.port", str(a.port), "--server.address", bind,
                "--server.headless", "true", "--server.showEmailPrompt", "false",
                "--browser.gatherUsageStats", "false", "--browser.serverAddress", shown]
    try:
        streamlit_cli.main(prog_name="streamlit")
    except SystemExit as e:
        return int(e.code or 0)
    return EXIT_OK


def cmd_demo(a: argparse.Namespace) -> int:
    from fairscan.demo import run_demo

    _write(run_demo(budget=a.budget, seed=a.seed), None)
    return EXIT_OK


def _trust_options(p: argparse.ArgumentParser) -> None:
    """What a user consents to when a model file is loaded."""
    p.add_argument("--trust", action="append", metavar="TYPE",
                   help="accept this type in a .skops model file (repeatable; only for files you trust)")
    p.add_argument("--trust-pickle", action="store_true",
                   help="allow loading a pickle/joblib model (or an MLflow pickle / python_function model): it "
                        "can run any code; only for models you trust")
    _tracking_option(p)


def _tracking_option(p: argparse.ArgumentParser) -> None:
    """Where MLflow models and runs live (once per parser)."""
    if "--tracking-uri" not in p._option_string_actions:
        p.add_argument("--tracking-uri", metavar="URI",
                       help="MLflow tracking and registry server for models:/ and runs:/ URIs and --mlflow, e.g. "
                            "sqlite:///mlflow.db (default: $MLFLOW_TRACKING_URI)")


def _mlflow_options(p: argparse.ArgumentParser) -> None:
    """Log the result to MLflow as a run."""
    p.add_argument("--mlflow", action="store_true",
                   help="log the result to MLflow: a metric per group number, the JSON and HTML reports, the verdict")
    p.add_argument("--mlflow-experiment", metavar="NAME", help="the experiment of the new run (default fairscan)")
    p.add_argument("--mlflow-run-id", metavar="ID", help="log into this existing run instead of a new one")
    _tracking_option(p)


def _log_mlflow(a: argparse.Namespace, result: Any) -> None:
    """With --mlflow (or --mlflow-experiment / --mlflow-run-id): log ``result``, say where."""
    if not (getattr(a, "mlflow", False) or getattr(a, "mlflow_run_id", None) or getattr(a, "mlflow_experiment", None)):
        return
    from fairscan.integrations.mlflow import log_result

    run_id = log_result(result, run_id=a.mlflow_run_id, experiment=a.mlflow_experiment)
    import mlflow

    print(f"fairscan: logged to MLflow run {run_id} at {mlflow.get_tracking_uri()}", file=sys.stderr)


def _rule_options(p: argparse.ArgumentParser) -> None:
    """The decision rule on a score: a threshold or a budget, and which decision is favourable."""
    p.add_argument("--threshold", type=float, help="offer when score >= T")
    p.add_argument("--budget", help="offer to the top K rows by score, or the top fraction (0.1)")
    p.add_argument("--favourable-decision", type=int, choices=(0, 1), default=1,
                   help="which decision is favourable: 1 = offer (default), 0 for risk scores")


def _output_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=("table", "json", "md", "html"), default="table",
                   help="table (terminal), json (the documented schema), md or html (reports)")
    p.add_argument("--out", metavar="FILE", help="write the output to FILE instead of stdout")
    _quiet_option(p)


def _quiet_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quiet", action="store_true", help="no progress bar on stderr (it only shows in a terminal)")


#: what a command's DATA may be (one text for every command that reads rows)
DATA_HELP = ("CSV or Parquet file, or dataset:NAME for a bundled dataset (dataset:NAME:holdout: the rows its "
             "reference model never saw in training)")


def _data_options(p: argparse.ArgumentParser) -> None:
    """The data, label and decision-rule options that audit and discover share."""
    p.add_argument("data", help=DATA_HELP)
    p.add_argument("--target", help="outcome column (default for dataset:NAME: the card's label)")
    p.add_argument("--positive-label", metavar="VALUE", help="label value that counts as positive")
    p.add_argument("--prediction", help="binary decision column (1/yes/True = offer)")
    p.add_argument("--score", help="score column; decide with --threshold or --budget")
    p.add_argument("--model", metavar="PATH",
                   help="score DATA with a model: .skops, .onnx, reference:NAME, an MLflow models:/NAME@ALIAS, "
                        "models:/NAME/VERSION or runs:/RUN_ID/PATH, or a pickle with --trust-pickle")
    _trust_options(p)
    _rule_options(p)
    p.add_argument("--weights", metavar="COL", help="row weight column (>= 0)")
    p.add_argument("--infer-tier", metavar="SPEC",
                   help="audit inferred purchasing power: spend:CUSTOMER_COL,AMOUNT_COL[,N] (quantile tiers of "
                        "each customer's total) or model:TIER_COL[,PERSON_COL] (a proxy model of the tier, "
                        "trained where TIER_COL is known; PERSON_COL keeps one person's rows in one "
                        "cross-validation fold and out of the features)")
    p.add_argument("--suppress-below", type=int, default=10, metavar="K",
                   help="groups with fewer than K rows are suppressed (default 10)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    _engine_options(p)
    _output_options(p)


def _group_options(p: argparse.ArgumentParser) -> None:
    """The groups to audit: columns, tiers, their cross and the reference groups."""
    p.add_argument("--sensitive", action="append", metavar="COL", help="group column (repeatable)")
    p.add_argument("--tiers", action="append", metavar="COL=N|COL=c1,c2",
                   help="audit COL in N quantile tiers, or at cut points c1,c2,... (one cut point: "
                        "COL=c1, with a trailing comma); repeatable")
    p.add_argument("--intersect", action="store_true", help="also audit the cross of all attributes")
    p.add_argument("--reference", action="append", metavar="ATTR=GROUP",
                   help="reference group of an attribute (default: its largest group); a quantile tier "
                        "may be named by its short name, e.g. balance=Q4")


def _engine_options(p: argparse.ArgumentParser) -> None:
    """Which engine counts the rows, and the DuckDB and Spark settings."""
    p.add_argument("--engine", choices=ENGINES, default="auto",
                   help="auto (default): duckdb for files — Parquet/CSV files, globs and directories, "
                        "streamed, so larger than memory — and memory for dataset:NAME, --model and "
                        "--infer-tier; or memory, duckdb, spark")
    p.add_argument("--memory-limit", metavar="SIZE",
                   help="DuckDB engine: memory it may use before spilling to disk (default 1GB; e.g. 512MB)")
    p.add_argument("--threads", type=int, metavar="N", help="DuckDB engine: worker threads (default: all cores)")
    p.add_argument("--spark-master", metavar="URL", help="with --engine spark (default local[2])")


def _require_decision(a: argparse.Namespace) -> None:
    """Audit and discover need a decision: a prediction, a score or a model (named by flag)."""
    if a.prediction is None and a.score is None and a.model is None:
        raise FairscanError("give --prediction COL, --score COL or --model PATH (with --threshold T or --budget K)")


def _label_defaults(a: argparse.Namespace) -> tuple[str | None, object]:
    """The label and its positive value: as given, else a bundled dataset's from its card."""
    from fairscan import datasets
    from fairscan.io import dataset_spec

    target, positive = a.target, a.positive_label
    spec = dataset_spec(a.data)
    if spec is not None:
        card = datasets.card(spec[0])
        if target is None:
            target = card.get("target")
        if positive is None and target == card.get("target"):
            positive = card.get("positive_label")
    return target, positive


def cmd_discover(a: argparse.Namespace) -> int:
    from fairscan.discover import discover
    from fairscan.engines.counts import is_counts_file
    from fairscan.report.discover import (
        render_discover_html,
        render_discover_markdown,
        render_discover_table,
    )

    target, positive = _label_defaults(a)
    if is_counts_file(a.data):  # the file holds the rule and label
        target = positive = None
    else:
        _require_decision(a)
    result = discover(
        a.data, target=target, positive_label=positive, prediction=a.prediction, score=a.score,
        threshold=a.threshold, budget=parse_budget(a.budget, "--budget"), favourable_decision=a.favourable_decision,
        weights=a.weights, model=a.model, trust=a.trust or (), trust_pickle=a.trust_pickle,
        attributes=a.attributes, exclude=a.exclude, tiers=_tiers(a.tiers), n_tiers=a.n_tiers,
        infer_tier=a.infer_tier, metric=a.metric, max_depth=a.max_depth, min_size=a.min_size, alpha=a.alpha,
        top=a.top, reference=a.reference, direction=a.direction, suppress_below=a.suppress_below, seed=a.seed,
        engine=a.engine, spark_master=a.spark_master, memory_limit=a.memory_limit, threads=a.threads,
        progress=_progress(a),
    )
    render = {"json": lambda r: r.to_json(), "md": render_discover_markdown, "html": render_discover_html,
              "table": lambda r: render_discover_table(r, width=None if a.out is None else 120)}[a.format]
    _write(render(result), a.out)
    _log_mlflow(a, result)
    return EXIT_OK


def cmd_explain(a: argparse.Namespace) -> int:
    from fairscan.explain import explain
    from fairscan.report.explain import render_explain_html, render_explain_markdown

    result = explain(
        a.data, model=a.model, group=a.group, reference=a.reference, tiers=_tiers(a.tiers), threshold=a.threshold,
        budget=parse_budget(a.budget, "--budget"), favourable_decision=a.favourable_decision, features=a.features,
        n_permutations=a.n_permutations, n_boot=a.n_boot, proxies=not a.no_proxies, seed=a.seed,
        trust=a.trust or (), trust_pickle=a.trust_pickle, progress=_progress(a),
    )
    render = {"json": lambda r: r.to_json(), "md": render_explain_markdown, "html": render_explain_html,
              "table": render_explain_markdown}[a.format]
    _write(render(result), a.out)
    return EXIT_OK


def cmd_compare(a: argparse.Namespace) -> int:
    from fairscan.compare import compare

    target, positive = _label_defaults(a)
    result = compare(
        a.data, models=a.model, scores=a.score, predictions=a.prediction, threshold=a.threshold,
        budget=parse_budget(a.budget, "--budget"), target=target, positive_label=positive, sensitive=a.sensitive,
        tiers=_tiers(a.tiers), reference=_references(a.reference) or None, margin=a.margin, n_boot=a.n_boot,
        min_group_size=a.min_group_size, suppress_below=a.suppress_below, seed=a.seed, trust=a.trust or (),
        trust_pickle=a.trust_pickle, favourable_decision=a.favourable_decision,
        engine=a.engine, spark_master=a.spark_master,
        memory_limit=a.memory_limit, threads=a.threads,
    )
    from fairscan.report.compare import render_compare_html, render_compare_markdown
    from fairscan.report.table import render_comparison

    render = {"json": lambda r: r.to_json(), "md": render_compare_markdown, "html": render_compare_html,
              "table": lambda r: render_comparison(r, width=None if a.out is None else 120)}[a.format]
    _write(render(result), a.out)
    _log_mlflow(a, result)
    return EXIT_OK


def _progress(a: argparse.Namespace | None = None) -> Any:
    """A progress bar on stderr (rich) when it is a terminal; nothing in pipes, logs and CI,
    or with --quiet. The returned function takes (fraction, text); the bar ends at 1."""
    if (a is not None and getattr(a, "quiet", False)) or not sys.stderr.isatty():
        return None
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                   TimeElapsedColumn(), console=Console(stderr=True), transient=False)
    state: dict[str, Any] = {}

    def show(fraction: float, text: str) -> None:
        if "task" not in state and fraction >= 1:  # work too quick to have shown a bar
            return
        if "task" not in state:
            bar.start()
            state["task"] = bar.add_task(text, total=1.0)
        bar.update(state["task"], completed=min(1.0, max(0.0, float(fraction))), description=text)
        if fraction >= 1:
            bar.stop()

    return show


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="fairscan", description="Find and fix disparate exclusion in targeting models.")
    p.add_argument("--version", action="store_true", help="print the version and exit")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)

    au = sub.add_parser("audit", help="audit decisions for disparate exclusion across groups",
                        description="Audit who is offered (or refused) across customer groups.")
    _data_options(au)
    _group_options(au)
    au.add_argument("--min-group-size", type=int, default=30, metavar="N",
                    help="groups smaller than N get no pass/fail verdict (default 30)")
    au.add_argument("--n-boot", type=int, default=1000, metavar="B", help="bootstrap replicates (default 1000)")
    au.add_argument("--dp-epsilon", type=float, metavar="E",
                    help="also release the groups' counts with Laplace noise, E-differentially private")
    _mlflow_options(au)
    au.set_defaults(func=cmd_audit)

    co = sub.add_parser("counts", help="write an audit's counts (no rows) to hand over or add up; "
                                       "'counts merge' adds files",
                        description="Count DATA into a counts file: per attribute (and intersection), group, label "
                                    "and decision, the rows (and with weights the sums of weights and squared "
                                    "weights). No rows, ids or raw values: audit it with 'fairscan audit FILE'. "
                                    "'fairscan counts merge A B ... --out FILE' adds files counted alike.")
    _data_options(co)
    _group_options(co)
    co.add_argument("--protect", choices=("suppressed", "none"), default="suppressed",
                    help="suppressed (default): the groups an audit suppresses are listed without their cells; "
                         "none: every cell, exact (to merge shards; not to hand over)")
    co.add_argument("--epsilon", type=float, metavar="E",
                    help="release every cell E-differentially private instead (discrete Laplace noise on the "
                         "joint table of the attributes; one row per person); audits from the file widen their "
                         "intervals by the noise")
    co.add_argument("--paired-score", metavar="COL",
                    help="a second score column (the challenger), decided by the same rule and counted pair by pair "
                         "with the first: 'fairscan compare FILE' then compares the two")
    co.add_argument("--paired-prediction", metavar="COL",
                    help="a second 0/1 decision column, counted pair by pair with --prediction")
    co.add_argument("--subgroups", type=int, metavar="D",
                    help="count every combination of up to D of the attributes (the subgroups 'fairscan discover "
                         "FILE' searches) instead of the attributes alone")
    co.add_argument("--histograms", metavar="N|e1,e2,...",
                    help="also each group's score histogram per label: N quantile bins (edges rounded to 3 "
                         "significant digits) or the edges given (the same edges in every file you will merge), "
                         "so that other thresholds and budgets can be cut from the file")
    co.set_defaults(func=cmd_counts, min_group_size=30, n_boot=0)

    cm = sub.add_parser("counts-merge", help=argparse.SUPPRESS)
    cm.add_argument("files", nargs="+", metavar="FILE", help="counts files written with --protect none")
    cm.add_argument("--out", required=True, metavar="FILE", help="the merged counts file to write")
    cm.add_argument("--protect", choices=("suppressed", "none"), default="suppressed",
                    help="protect the merged file (default: suppressed) or keep every cell (none)")
    cm.add_argument("--suppress-below", type=int, default=10, metavar="K",
                    help="groups with fewer than K rows are withheld (default 10)")
    cm.set_defaults(func=cmd_counts_merge)

    dc = sub.add_parser("discover", help="find excluded subgroups nobody named (subgroup discovery)",
                        description="Search every combination of up to --max-depth conditions (attribute = group) "
                                    "for subgroups treated differently from everyone else, with false discovery "
                                    "control over every subgroup tested.")
    _data_options(dc)
    dc.add_argument("--attributes", nargs="+", metavar="COL",
                    help="columns to search (default: every column but the label, score, prediction, weights "
                         "and identifier-like ones; text with more than 50 values is skipped)")
    dc.add_argument("--exclude", nargs="+", metavar="COL", default=[], help="columns never to search")
    dc.add_argument("--tiers", action="append", metavar="COL=N|COL=c1,c2",
                    help="cut COL in N quantile tiers or at cut points (default: 4 quantile tiers for numbers)")
    dc.add_argument("--n-tiers", type=int, default=4, metavar="N", help="quantile tiers of a number (default 4)")
    dc.add_argument("--metric", default="selection_rate",
                    help="selection_rate (default), true_positive_rate, false_positive_rate, false_negative_rate, "
                         "true_negative_rate or precision (all but the first need --target)")
    dc.add_argument("--max-depth", type=int, default=3, metavar="D", help="conditions per subgroup (default 3)")
    dc.add_argument("--min-size", type=int, default=30, metavar="N",
                    help="test subgroups of at least N people (default 30)")
    dc.add_argument("--alpha", type=float, default=0.05,
                    help="false discovery rate of the fail verdicts (default 0.05)")
    dc.add_argument("--top", type=int, default=20, metavar="N", help="subgroups listed (default 20)")
    dc.add_argument("--reference", choices=("complement", "population"), default="complement",
                    help="compare each subgroup with everyone else (default) or with everyone")
    dc.add_argument("--direction", choices=("excluded", "favoured", "both"), default="excluded",
                    help="list subgroups worse off (default), better off, or both")
    _mlflow_options(dc)
    dc.set_defaults(func=cmd_discover)

    ex = sub.add_parser("explain", help="why a group is offered less: the gap attributed to the model's features",
                        description="Split the selection-rate gap between a group and its reference into one "
                                    "contribution per model feature (Shapley decomposition of giving the group the "
                                    "reference's features), with intervals, what-if rates and proxies.")
    ex.add_argument("data", help=DATA_HELP)
    ex.add_argument("--model", required=True, metavar="PATH",
                    help="the model: .skops, .onnx, reference:NAME, an MLflow models:/ or runs:/ URI, or a pickle "
                         "with --trust-pickle")
    _trust_options(ex)
    ex.add_argument("--group", required=True, metavar="ATTR=GROUP",
                    help="the group to explain, e.g. balance=Q1 or sex=Female (several: a=x,b=y)")
    ex.add_argument("--reference", metavar="ATTR=GROUP", help="the reference group (default: everyone else)")
    ex.add_argument("--tiers", action="append", metavar="COL=N|COL=c1,c2",
                    help="how a number is cut into groups (default: 4 quantile tiers)")
    _rule_options(ex)
    ex.add_argument("--features", nargs="+", metavar="COL", help="the features to attribute to (default: the model's)")
    ex.add_argument("--n-permutations", type=int, metavar="R",
                    help="passes (new donors, new permutations); default: as many as fit the scoring budget")
    ex.add_argument("--n-boot", type=int, default=500, metavar="B", help="bootstrap replicates (default 500)")
    ex.add_argument("--no-proxies", action="store_true", help="skip the proxy check of the top features")
    ex.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    _output_options(ex)
    ex.set_defaults(func=cmd_explain)

    cp = sub.add_parser("compare", help="is the challenger fairer than the champion? two models on the same rows",
                        description="Compare model A (champion) with model B (challenger) on the same customers: per "
                                    "group, each model's rates, the paired change with intervals, McNemar's test, "
                                    "who gains and who loses the offer, and a verdict against a margin.")
    cp.add_argument("data", help=DATA_HELP + "; or a counts file with two decisions (fairscan counts "
                                             "--paired-score)")
    cp.add_argument("--model", action="append", metavar="PATH",
                    help="a model (twice: A then B): a file, reference:NAME or an MLflow URI such as "
                         "models:/NAME@champion")
    cp.add_argument("--score", action="append", metavar="COL", help="a score column (twice: A then B)")
    cp.add_argument("--prediction", action="append", metavar="COL", help="a 0/1 decision column (twice: A then B)")
    _trust_options(cp)
    _rule_options(cp)
    cp.add_argument("--target", help="outcome column (default for dataset:NAME: the card's label)")
    cp.add_argument("--positive-label", metavar="VALUE", help="label value that counts as positive")
    cp.add_argument("--sensitive", action="append", metavar="COL", help="group column (repeatable)")
    cp.add_argument("--tiers", action="append", metavar="COL=N|COL=c1,c2", help="as for audit")
    cp.add_argument("--reference", action="append", metavar="ATTR=GROUP", help="as for audit")
    cp.add_argument("--margin", type=float, help="non-inferiority margin on a rate (default: a quarter of the "
                                                 "metric's tolerance width)")
    cp.add_argument("--n-boot", type=int, default=1000, metavar="B", help="paired bootstrap replicates (default 1000)")
    cp.add_argument("--min-group-size", type=int, default=30, metavar="N", help="as for audit")
    cp.add_argument("--suppress-below", type=int, default=10, metavar="K", help="as for audit")
    cp.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    _engine_options(cp)
    _output_options(cp)
    _mlflow_options(cp)
    cp.set_defaults(func=cmd_compare)

    ds = sub.add_parser("datasets", help="list or describe the bundled real datasets")
    ds.add_argument("action", choices=("list", "show"))
    ds.add_argument("name", nargs="?")
    ds.set_defaults(func=cmd_datasets)

    tr = sub.add_parser("train", help="train a reference model")
    trs = tr.add_subparsers(dest="kind", parser_class=_Parser, required=True)
    tt = trs.add_parser("targeting", help="train a calibrated targeting model and save it with its card",
                        description="Train a targeting model (who gets the offer) on a seeded, stratified split.")
    tt.add_argument("data", nargs="?", help="CSV or Parquet file, or dataset:NAME")
    tt.add_argument("--dataset", choices=("bank", "adult", "coupon", "german"),
                    help="a bundled preset: its label, its sensitive columns kept out, bank without duration")
    tt.add_argument("--target", help="label column")
    tt.add_argument("--positive-label", metavar="VALUE")
    tt.add_argument("--features", nargs="+", metavar="COL", help="feature columns (default: all others)")
    tt.add_argument("--drop", nargs="+", metavar="COL", help="columns not to use")
    tt.add_argument("--sensitive", nargs="+", metavar="COL",
                    help="sensitive columns: not features, kept in scores.parquet for the audit")
    tt.add_argument("--model", choices=("gbm", "logistic"), default="gbm")
    tt.add_argument("--test-size", type=float, default=0.3)
    tt.add_argument("--seed", type=int, default=0)
    tt.add_argument("--out", metavar="DIR", help="output folder (default models/NAME)")
    _quiet_option(tt)
    tt.set_defaults(func=cmd_train)
    trr = trs.add_parser("recommender", help="train a reference recommender on implicit feedback",
                         description="Temporal (or leave-last-out) split, popularity baseline and item-kNN; "
                                     "writes recommendations.parquet (user, item, rank, score, source) with a "
                                     "list for every user in the data (users with no training history get the "
                                     "popularity list, source = popularity), users.parquet (user, history), the "
                                     "held-out truth, the model and a card.")
    trr.add_argument("data", nargs="?", help="interactions: CSV or Parquet")
    trr.add_argument("--dataset", choices=("online-retail", "coupon"), help="a bundled preset")
    trr.add_argument("--user", metavar="COL")
    trr.add_argument("--item", metavar="COL")
    trr.add_argument("--weight", metavar="COL")
    trr.add_argument("--time", metavar="COL")
    trr.add_argument("--k", type=int, default=None, help="list length (default 20)")
    trr.add_argument("--model", choices=("itemknn", "popularity"), default="itemknn")
    trr.add_argument("--seed", type=int, default=0)
    trr.add_argument("--out", metavar="DIR", help="output folder (default models/NAME-recs)")
    trr.set_defaults(func=cmd_train_recommender)

    px = sub.add_parser("proxies", help="which features could let a model rebuild a sensitive attribute",
                        description="For each feature: how well it alone predicts the sensitive attribute "
                                    "(cross-validated ROC AUC with a DeLong interval); all features together; "
                                    "proxies flagged.")
    px.add_argument("data", help="CSV or Parquet file, or dataset:NAME")
    px.add_argument("--sensitive", required=True, metavar="COL")
    px.add_argument("--features", nargs="+", metavar="COL", help="features to check (default: all other columns)")
    px.add_argument("--threshold", type=float, default=0.7,
                    help="flag a feature when its interval's lower end exceeds this AUC (default 0.7)")
    px.add_argument("--seed", type=int, default=0)
    px.add_argument("--format", choices=("table", "json"), default="table")
    px.add_argument("--out", metavar="FILE")
    px.set_defaults(func=cmd_proxies)

    mi = sub.add_parser("mitigate", help="compare mitigations of disparate exclusion and their trade-offs",
                        description="Fit mitigations on a training split, compare them on the held-out split, "
                                    "sweep their strength, mark the Pareto front and recommend one.")
    mi.add_argument("data", help="CSV or Parquet file, or dataset:NAME")
    mi.add_argument("--target", help="outcome column (targeting models; not for --value)")
    mi.add_argument("--positive-label", metavar="VALUE")
    mi.add_argument("--sensitive", action="append", metavar="COL")
    mi.add_argument("--tiers", action="append", metavar="COL=N|COL=c1,c2")
    mi.add_argument("--model", metavar="PATH", help="base model: a file, reference:NAME or an MLflow models:/ or "
                                                     "runs:/ URI (default: a reference model trained on DATA)")
    _tracking_option(mi)
    mi.add_argument("--dataset", choices=("bank", "adult", "coupon", "german"),
                    help="use this bundled dataset's reference model as the base model")
    mi.add_argument("--method", default="all",
                    choices=("threshold", "budget", "expgrad", "gridsearch", "reweigh", "correlation", "all",
                             "value-repair"),
                    help="a targeting model's mitigation (default: all six), or value-repair with --value")
    mi.add_argument("--value", metavar="COL", help="value repair: the value column (price, discount, limit)")
    mi.add_argument("--favourable", choices=("higher", "lower"), help="value repair: which values are better")
    mi.add_argument("--within", action="append", metavar="COL", help="value repair: repair within each stratum")
    mi.add_argument("--infer-tier", metavar="SPEC", help="value repair: groups by inferred purchasing power")
    mi.add_argument("--weights", metavar="COL", help="value repair: row weights")
    mi.add_argument("--cluster", metavar="COL",
                    help="value repair: rows with the same COL belong together; each amount is judged with "
                         "cluster-robust intervals")
    mi.add_argument("--amount", type=float, metavar="L",
                    help="value repair: how far, 0 (none) to 1 (full); default: sweep 0, 0.25, 0.5, 0.75, 1")
    mi.add_argument("--keep-total", action="store_true", help="value repair: rescale to keep the total unchanged")
    mi.add_argument("--tolerance", type=float, default=0.05, metavar="R",
                    help="value repair: the gap accepted, relative to the reference mean (default 0.05)")
    mi.add_argument("--save-values", metavar="FILE",
                    help="value repair: write the repaired values (Parquet: row, value) at --amount or the "
                         "recommended amount")
    mi.add_argument("--key", metavar="COL", help="value repair: name the saved rows by this column instead of 'row'")
    mi.add_argument("--constraint", default="demographic_parity",
                    choices=("demographic_parity", "true_positive_rate_parity", "equalized_odds"))
    mi.add_argument("--budget", help="number (or fraction) of held-out customers offered")
    mi.add_argument("--no-sweep", action="store_true", help="only each method's default strength")
    mi.add_argument("--seed", type=int, default=0)
    mi.add_argument("--format", choices=("table", "json", "md", "html"), default="table")
    _quiet_option(mi)
    mi.add_argument("--out", metavar="FILE")
    mi.add_argument("--save-model", metavar="DIR", help="save the chosen (or recommended) mitigated model")
    mi.set_defaults(func=cmd_mitigate)

    rv = sub.add_parser("review", help="scheduled model reviews: run, history, verify, init",
                        description="run: audit as review.yaml says, apply its policy, write reports and history "
                                    "(exit 0 pass, 1 fail, 3 insufficient when the policy says so, 2 error). "
                                    "history NAME: the trend. verify: check the history's hash chain. "
                                    "init --dataset NAME: print a starter review.yaml.")
    rv.add_argument("action", choices=("run", "history", "verify", "init"))
    rv.add_argument("config", nargs="?", help="run: the review file; history: the review NAME")
    rv.add_argument("--history", metavar="PATH", help="SQLite history file")
    rv.add_argument("--format", choices=("table", "json", "md", "html"), default="table",
                    help="history: a terminal table, JSON, or a Markdown / HTML report")
    rv.add_argument("--out", metavar="FILE", help="history: write the report to FILE")
    rv.add_argument("--keep-days", type=int, metavar="N",
                    help="with verify: first delete records older than N days (the chain stays verifiable)")
    rv.add_argument("--dataset", choices=("bank", "adult", "coupon", "german"), help="with init")
    _mlflow_options(rv)
    rv.set_defaults(func=cmd_review)

    va = sub.add_parser("value", help="audit the offer's value (price, discount, limit) by group",
                        description="Audit the value of an offer by group: its distribution, the gaps to a "
                                    "reference group and, with --within, discrimination (the same stratum at "
                                    "another value) told apart from steering (another mix of strata).")
    va.add_argument("data", help=DATA_HELP)
    va.add_argument("--value", required=True, metavar="COL", help="the value column: price, discount, limit, ...")
    va.add_argument("--favourable", choices=("higher", "lower"),
                    help="which values are better for the customer: higher (a discount, a limit) or lower (a "
                         "price, a premium, a rate); required")
    _group_options(va)
    va.add_argument("--infer-tier", metavar="SPEC",
                    help="audit by inferred purchasing power: spend:CUSTOMER,AMOUNT[,N] or model:TIER[,PERSON]")
    va.add_argument("--within", action="append", metavar="COL",
                    help="stratum column (product, loan band, risk grade; repeatable): splits each gap into the "
                         "part within strata and the part from the strata mix")
    va.add_argument("--offered", metavar="COL", help="a 0/1 column: audit the value among the offered rows and "
                                                      "report each group's offered share")
    va.add_argument("--weights", metavar="COL", help="row weights (>= 0)")
    va.add_argument("--cluster", metavar="COL",
                    help="rows with the same COL are not independent (one customer's lines): every interval and "
                         "test is then cluster-robust")
    va.add_argument("--tolerance", type=float, default=0.05, metavar="R",
                    help="largest gap accepted, relative to the reference group's mean (default 0.05 = ±5%%)")
    va.add_argument("--min-group-size", type=int, default=30, metavar="N",
                    help="groups with fewer values get no pass/fail verdict (default 30)")
    va.add_argument("--suppress-below", type=int, default=10, metavar="K",
                    help="groups with fewer than K values are suppressed (default 10)")
    va.add_argument("--n-boot", type=int, default=1000, metavar="B", help="bootstrap replicates (default 1000)")
    va.add_argument("--seed", type=int, default=0)
    _engine_options(va)
    _output_options(va)
    _mlflow_options(va)
    va.set_defaults(func=cmd_value)

    rc = sub.add_parser("recs", help="audit recommendation lists: who is never shown what",
                        description="Exclusion, exposure, utility and calibration of top-k lists by user group x "
                                    "item group, from sparse (user, item, rank) logs.")
    rc.add_argument("recs", help="recommendations: CSV/Parquet with user, item, rank")
    rc.add_argument("--users", required=True, help="users table: user and the user-group column")
    rc.add_argument("--items", required=True, help="items table: item and the item-group column")
    rc.add_argument("--user-group", required=True, metavar="COL")
    rc.add_argument("--item-group", required=True, metavar="COL")
    rc.add_argument("--k", type=int, default=10)
    rc.add_argument("--truth", help="held-out relevant (user, item) pairs, for utility")
    rc.add_argument("--interactions", help="past (user, item) interactions, for calibration and bias disparity")
    rc.add_argument("--user-col", default="user")
    rc.add_argument("--item-col", default="item")
    rc.add_argument("--rank-col", default="rank")
    rc.add_argument("--reference", metavar="GROUP", help="reference user group (default: the largest)")
    rc.add_argument("--min-group-size", type=int, default=30, metavar="N")
    rc.add_argument("--suppress-below", type=int, default=10, metavar="K",
                    help="user groups with fewer than K users are suppressed (default 10)")
    rc.add_argument("--n-boot", type=int, default=1000)
    rc.add_argument("--seed", type=int, default=0)
    rc.add_argument("--format", choices=("table", "json", "md", "html"), default="table")
    _quiet_option(rc)
    rc.add_argument("--out", metavar="FILE")
    _mlflow_options(rc)
    rc.set_defaults(func=cmd_recs)

    rr = sub.add_parser("rerank", help="re-rank recommendation lists to reduce exclusion",
                        description="Re-rank each user's candidates (top N -> top K): calibrated (Steck) or an "
                                    "exposure floor (FA*IR) with a tunable strength.")
    rr.add_argument("recs", help="candidates: user, item, rank[, score]")
    rr.add_argument("--users", help="users table (user and the user-group column)")
    rr.add_argument("--items", required=True, help="items table (item and the item-group column)")
    rr.add_argument("--user-group", metavar="COL")
    rr.add_argument("--item-group", required=True, metavar="COL")
    rr.add_argument("--method", choices=("calibrated", "floor"), required=True)
    rr.add_argument("--strength", type=float, required=True,
                    help="calibrated: lambda in [0, 1]; floor: the minimum share p of the protected item group")
    rr.add_argument("--protected-item-group", metavar="GROUP", help="floor: the item group to guarantee")
    rr.add_argument("--history", help="calibrated: past (user, item) interactions as the target")
    rr.add_argument("--k", type=int, default=10)
    rr.add_argument("--out", required=True, metavar="NEW_RECS", help="CSV or Parquet file to write")
    rr.set_defaults(func=cmd_rerank)

    ap = sub.add_parser("app", help="serve the interactive dashboard and open it in a browser where one can be opened")
    ap.add_argument("--port", type=int, default=8501, help="port to serve on (default 8501)")
    _tracking_option(ap)
    ap.add_argument("--address", default="localhost",
                    help="address to serve on (default localhost: this machine only; 0.0.0.0 serves the network)")
    ap.add_argument("--no-browser", action="store_true",
                    help="do not open a browser (it never opens one where there is no display)")
    ap.add_argument("--headless", action="store_true", help="the same as --no-browser")
    ap.set_defaults(func=cmd_app)

    de = sub.add_parser("demo", help="train a model on the bank data and audit its offers")
    de.add_argument("--budget", type=float, default=0.2, help="share of customers called (default 0.2)")
    de.add_argument("--seed", type=int, default=0)
    de.set_defaults(func=cmd_demo)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fairscan`` console script."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["counts", "merge"]:  # 'fairscan counts merge A B ...': its own parser
        argv = ["counts-merge", *argv[2:]]
    try:
        args = parser.parse_args(argv)
        if args.version:
            from fairscan.version import __version__

            print(__version__)
            return EXIT_OK
        if not getattr(args, "func", None):
            parser.print_help()
            return EXIT_USAGE
        if getattr(args, "tracking_uri", None):  # MLflow reads it from the environment
            os.environ["MLFLOW_TRACKING_URI"] = args.tracking_uri
        return int(args.func(args))
    except FairscanError as e:
        print(f"fairscan: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as e:  # a bug, not a user mistake: short message, traceback on request
        if os.environ.get("FAIRSCAN_DEBUG"):
            raise
        print(f"fairscan: internal error: {type(e).__name__}: {e} (set FAIRSCAN_DEBUG=1 for details)",
              file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
