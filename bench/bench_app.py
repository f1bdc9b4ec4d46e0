"""Speed of the dashboard: a cold start in a real browser, and a slider move on 1M rows.

Prints the figures. Not a test: run `python bench/bench_app.py [--rows 1000000] [--moves 30]
[--skip-browser]`.

1. **Cold start** (target < 3 s to the rendered overview): the server is started on a free
   localhost port; the clock runs from the start of the process until Debian's chromium
   (headless, Playwright, never a downloaded browser) shows the bank overview fully rendered
   (title, charts, no "Running" status). Three servers in the same run: the floor (a
   Streamlit app that only writes the title: Streamlit's own start and its JavaScript
   in this browser), `streamlit run app.py`, and `fairscan app` (the same, started from
   fairscan's command line). Also printed: the time until the server answers its health check, and a
   warm load (a new session, caches filled).
2. **First visit of a page on a running server** (target: the Recommendations page within
   1.5x of the Threshold & budget page): from a click in the sidebar of the rendered
   overview to the page's last change, a fresh server per trial.
3. **Slider move on 1M scored rows** (target < 200 ms server-side): seeded synthetic rows
   (score, label, age, balance, job). (a) `ThresholdExplorer` build once, then the query a
   move triggers (`at_budget`, `at_threshold`, and the chart's `curve`); (b) the whole page
   rerun after a move, measured with Streamlit's AppTest on the explorer page with the 1M rows
   placed in the session as an upload (script, query, tables and charts; no browser).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from fairscan.dashboard import CONFIG, MAIN

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def synthetic(n: int, seed: int = 0) -> pd.DataFrame:
    """n scored customers: age, balance, job, a score and a label that depends on it."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 95, n)
    balance = np.round(rng.lognormal(6.5, 1.4, n) - 300)
    job = rng.choice(["admin.", "blue-collar", "management", "retired", "services", "student", "technician"], n)
    logit = -2.2 + 0.015 * (age - 40) + 0.0002 * balance + (job == "student") * 0.8 + rng.normal(0, 1, n)
    score = 1 / (1 + np.exp(-logit))
    y = rng.random(n) < score
    return pd.DataFrame({"age": age, "balance": balance, "job": job, "score": np.round(score, 5),
                         "y": np.where(y, "yes", "no")})


def ms(seconds: float) -> str:
    return f"{1000 * seconds:,.1f} ms"


def bench_queries(df: pd.DataFrame, moves: int) -> None:
    from fairscan.explore import ThresholdExplorer

    tiers = {"age": [24, 59], "balance": 4}
    t = time.perf_counter()
    ex = ThresholdExplorer(df, score="score", target="y", positive_label="yes", sensitive=["job"], tiers=tiers)
    print(f"ThresholdExplorer build, {len(df):,} rows: {ms(time.perf_counter() - t)} "
          f"({len(ex.thresholds):,} edges, {'exact' if ex.exact else 'quantile'})")
    rng = np.random.default_rng(1)
    for name, call in (
        ("at_budget (one move)", lambda: ex.at_budget(float(rng.uniform(0.01, 0.99)))),
        ("at_threshold (one move)", lambda: ex.at_threshold(float(rng.choice(ex.thresholds)))),
        ("curve, one attribute, 250 points", lambda: ex.curve("balance", max_points=250)),
    ):
        times = []
        for _ in range(moves):
            t = time.perf_counter()
            call()
            times.append(time.perf_counter() - t)
        print(f"  {name}: median {ms(statistics.median(times))}, max {ms(max(times))}")


def bench_rerun(df: pd.DataFrame, moves: int) -> None:
    from streamlit.testing.v1 import AppTest
    from test_app import goto

    at = AppTest.from_file(str(MAIN), default_timeout=300)
    upload_id = "upload:scored:bench-1m"
    at.session_state["uploads"] = {upload_id: {"df": df, "name": f"synthetic {len(df):,} rows", "kind": "scored"}}
    at.session_state["setup"] = {
        "source": "upload", "dataset": None, "upload_id": upload_id, "target": "y", "positive_label": "yes",
        "decision": "budget", "score": "score", "budget": 0.2, "threshold": None, "prediction": None,
        "sensitive": ["job"], "tiers": {"age": [24, 59], "balance": 4}}
    t = time.perf_counter()
    goto(at, "explorer", timeout=300)
    assert not at.exception, [e.value for e in at.exception]
    print(f"explorer page, first run (builds the histograms): {ms(time.perf_counter() - t)}")
    times = []
    for i in range(moves):
        value = 5 + (i * 37) % 90
        t = time.perf_counter()
        at.slider(key="ex_budget").set_value(value).run()
        times.append(time.perf_counter() - t)
        assert not at.exception, [e.value for e in at.exception]
    scripts = [MAIN, MAIN.with_name("views") / "explorer.py"]  # what AppTest compiles on a rerun
    compile_times = []
    for _ in range(5):
        t = time.perf_counter()
        for path in scripts:
            compile(path.read_text(), str(path), "exec")
        compile_times.append(time.perf_counter() - t)
    c = statistics.median(compile_times)
    med = statistics.median(times)
    print(f"  page rerun after a slider move (AppTest, script + query + tables + charts): "
          f"median {ms(med)}, max {ms(max(times))}")
    print(f"  of which AppTest recompiles the entry and page scripts on every run ({ms(c)}; the server caches the bytecode): "
          f"server-side rerun about {ms(med - c)}  (target < 200 ms)")


def rendered(page, timeout_ms: int = 60_000, full: bool = True) -> None:
    """The overview is on screen: title, verdict cards, a drawn chart and the group table,
    and the script has finished (no "Running" status widget). ``full=False``: the title only."""
    page.get_by_role("heading", name="Overview", exact=True).wait_for(timeout=timeout_ms)
    if not full:
        return
    page.wait_for_function(
        """() => document.querySelector('[data-testid="stVegaLiteChart"] canvas, [data-testid="stVegaLiteChart"] svg')
                 && document.querySelector('[data-testid="stDataFrame"]')
                 && document.querySelectorAll('[data-testid="stMetric"]').length >= 3
                 && !document.querySelector('[data-testid="stStatusWidget"]')
                 && !document.querySelector('[data-testid="stSkeleton"]')""", timeout=timeout_ms, polling=50)


FLOOR_APP = 'import streamlit as st\n\nst.title("Overview")\n'


def bench_browser(trials: int) -> None:
    """Cold start (process start to the overview rendered) for three servers, in the same run:
    the floor (a Streamlit app that only writes the title), ``streamlit run app.py`` and
    ``fairscan app`` (the same app, from fairscan's command line)."""
    import tempfile

    from test_browser import CHROMIUM, CHROMIUM_ARGS, free_port, start_server, stop_server

    if not Path(CHROMIUM).exists():
        print(f"browser benchmark skipped: no chromium at {CHROMIUM}")
        return
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("browser benchmark skipped: pip install playwright")
        return
    floor_dir = Path(tempfile.mkdtemp(prefix="fairscan-floor-"))
    (floor_dir / ".streamlit").mkdir()
    (floor_dir / ".streamlit" / "config.toml").write_text(CONFIG.read_text())
    (floor_dir / "floor.py").write_text(FLOOR_APP)
    fairscan_exe = Path(sys.executable).with_name("fairscan")

    def servers(port: int) -> dict[str, tuple[list[str], Path]]:
        st_flags = ["--server.port", str(port), "--server.headless", "true", "--server.address", "127.0.0.1"]
        return {"floor: a title-only Streamlit app": ([sys.executable, "-m", "streamlit", "run", "floor.py",
                                                       *st_flags], floor_dir),
                "streamlit run app.py": ([sys.executable, "-m", "streamlit", "run", "app.py", *st_flags], ROOT),
                "fairscan app": ([str(fairscan_exe), "app", "--no-browser", "--port", str(port), "--address",
                                  "127.0.0.1"], Path(tempfile.mkdtemp(prefix="fairscan-cwd-")))}

    results: dict[str, dict[str, list[float]]] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        for _ in range(trials):
            for name in servers(0):
                port = free_port()
                cmd, cwd = servers(port)[name]
                t0 = time.perf_counter()
                proc = start_server(port, cmd=cmd, cwd=cwd)
                t_health = time.perf_counter() - t0
                try:
                    page = browser.new_page(viewport={"width": 1400, "height": 1000})
                    page.goto(f"http://127.0.0.1:{port}/")
                    full = not name.startswith("floor")
                    rendered(page, full=full)
                    t_cold = time.perf_counter() - t0
                    page2 = browser.new_page(viewport={"width": 1400, "height": 1000})
                    t = time.perf_counter()
                    page2.goto(f"http://127.0.0.1:{port}/")
                    rendered(page2, full=full)
                    t_warm = time.perf_counter() - t
                    page.close()
                    page2.close()
                finally:
                    stop_server(proc)
                r = results.setdefault(name, {"health": [], "cold": [], "warm": []})
                r["health"].append(t_health)
                r["cold"].append(t_cold)
                r["warm"].append(t_warm)
        browser.close()
    floor = statistics.median(results["floor: a title-only Streamlit app"]["cold"])
    print(f"cold start in chromium, median of {trials} (server start -> page rendered; target < 3 s):")
    for name, r in results.items():
        cold = statistics.median(r["cold"])
        extra = "" if name.startswith("floor") else f"; {cold - floor:+.2f} s over the floor"
        print(f"  {name}: health check {statistics.median(r['health']):.2f} s, rendered {cold:.2f} s "
              f"(min {min(r['cold']):.2f}){extra}; warm load (new session) {statistics.median(r['warm']):.2f} s")


#: how long the page must stay unchanged to count as finished (the render time excludes it)
SETTLE_MS = 1500


def settled_at(page, heading: str, ready: str, timeout_ms: int = 120_000) -> float:
    """Wait for the page's title and its last kind of element, no "Running" status and no
    placeholder skeleton, and no change for SETTLE_MS; return when it last changed (page
    clock, ms). Charts and tables draw lazily, so "last change" is the honest end."""
    page.get_by_role("heading", name=heading, exact=True).first.wait_for(timeout=timeout_ms)
    page.wait_for_selector(ready, timeout=timeout_ms)
    return page.evaluate_handle(
        """(settle) => new Promise(done => {
            let n = -1, since = Date.now();
            const tick = () => {
                const busy = document.querySelector('[data-testid="stStatusWidget"]')
                    || document.querySelector('[data-testid="stSkeleton"]');
                const m = document.querySelectorAll('[data-testid]').length;
                if (busy || m !== n) { n = m; since = Date.now(); }
                if (!busy && Date.now() - since > settle) { done(since); return; }
                setTimeout(tick, 50);
            };
            tick();
        })""", SETTLE_MS).json_value()


def bench_pages(trials: int, idle: float = 8.0) -> None:
    """First visit of the Recommendations page on a running server against the Threshold &
    budget page's first visit, same server: each from a click in the sidebar of a rendered
    overview to the page's last change. A fresh server for every visit (its caches empty), the
    page clicked right after the overview has rendered (the worst case: the server's warm-up
    of the Recommendations page has not finished) and after ``idle`` seconds on it."""
    import tempfile

    from test_browser import CHROMIUM, CHROMIUM_ARGS, PAGES, free_port, start_server, stop_server

    if not Path(CHROMIUM).exists():
        print(f"page benchmark skipped: no chromium at {CHROMIUM}")
        return
    from playwright.sync_api import sync_playwright

    links = {"explorer": "Threshold & budget", "recommendations": "Recommendations"}
    ready = {path: sel for path, _, sel in PAGES}
    titles = {path: title for path, title, _ in PAGES}
    fairscan_exe = Path(sys.executable).with_name("fairscan")
    times: dict[tuple[str, float], list[float]] = {(p, w): [] for p in links for w in (0.0, idle)}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        for wait, path in [(w, p) for _ in range(trials) for w in (0.0, idle) for p in links]:
            port = free_port()
            proc = start_server(port, cmd=[str(fairscan_exe), "app", "--no-browser", "--port", str(port),
                                           "--address", "127.0.0.1"], cwd=Path(tempfile.mkdtemp(prefix="fairscan-cwd-")))
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(f"http://127.0.0.1:{port}/")
                rendered(page)
                page.wait_for_timeout(wait * 1000)
                t0 = page.evaluate("() => Date.now()")
                page.get_by_role("link", name=links[path]).first.click()
                times[path, wait].append((settled_at(page, titles[path], ready[path]) - t0) / 1000)
                page.close()
            finally:
                stop_server(proc)
        browser.close()
    for wait in (0.0, idle):
        exp, rec = (statistics.median(times[k, wait]) for k in ("explorer", "recommendations"))
        when = "right after the overview" if not wait else f"after {wait:g} s on the overview"
        print(f"first visits {when}, median of {trials} (click -> last change on the page): "
              f"Threshold & budget {exp:.2f} s, Recommendations {rec:.2f} s = {rec / exp:.2f}x (target <= 1.5x)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--moves", type=int, default=30)
    ap.add_argument("--skip-browser", action="store_true")
    ap.add_argument("--trials", type=int, default=3, help="cold starts per server (default 3)")
    ap.add_argument("--pages-only", action="store_true", help="only the first visits of two pages")
    a = ap.parse_args()
    if a.pages_only:
        bench_pages(a.trials)
        return
    if not a.skip_browser:
        bench_browser(a.trials)
        bench_pages(a.trials)
    t = time.perf_counter()
    df = synthetic(a.rows)
    print(f"\nsynthetic data, {a.rows:,} rows: {time.perf_counter() - t:.2f} s")
    bench_queries(df, a.moves)
    bench_rerun(df, min(a.moves, 20))


if __name__ == "__main__":
    main()
