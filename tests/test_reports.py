"""Reports and the output contract: JSON Schema, Markdown, self-contained HTML, escaping."""

from __future__ import annotations

import json
import re

import jsonschema
import numpy as np
import pandas as pd
import pytest

import fairscan
from fairscan import schemas

HOSTILE = '<script>alert("x")</script>'


@pytest.fixture(scope="module")
def hostile_frame():
    """Group names and a column name that carry markup and spreadsheet formulas."""
    rng = np.random.default_rng(3)
    n = 600
    groups = rng.choice([HOSTILE, "=HYPERLINK(\"http://evil\")", "@SUM(A1)", "| pipe *bold* [x](y)", "ok"], n)
    groups[:4] = "tiny"  # a group below the suppression threshold
    return pd.DataFrame({"who <b>": groups, "y": rng.random(n) < 0.4, "p": rng.random(n) < 0.5})


@pytest.fixture(scope="module")
def results(bank, hostile_frame):
    return {
        "bank": fairscan.audit(bank, target="y", positive_label="yes", score="balance", budget=0.2,
                               sensitive=["marital"], tiers={"age": [24, 59]}, intersect=True, n_boot=100),
        "weighted": fairscan.audit(bank.assign(w=bank["day"] / 10), target="y", positive_label="yes",
                                   prediction="y", sensitive="job", weights="w", n_boot=100),
        "no_target": fairscan.audit(bank, score="balance", threshold=1000, sensitive="education", n_boot=100),
        "hostile": fairscan.audit(hostile_frame, target="y", prediction="p", sensitive="who <b>", n_boot=100),
    }


def test_every_output_validates_against_the_published_schema(results):
    schema = schemas.load("audit")
    jsonschema.Draft202012Validator.check_schema(schema)
    for name, r in results.items():
        doc = json.loads(r.to_json())
        jsonschema.validate(doc, schema), name
        assert doc["schema_version"] == "1.0"


def test_schema_rejects_a_broken_output(results):
    doc = json.loads(results["bank"].to_json())
    doc["findings"][0]["verdict"] = "maybe"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, schemas.load("audit"))


def test_markdown_has_verdicts_first_tables_charts_and_method(results):
    md = results["bank"].to_markdown()
    assert md.index("## Verdicts") < md.index("## marital") < md.index("## Method")
    assert "| divorced | 5,207 |" in md
    assert "Offered (selection rate)" in md and "four-fifths" in md
    assert results["bank"].meta["data_sha256"] in md and "schema 1.0" in md
    # every failing finding is listed
    assert md.count("**FAIL**") == results["bank"].verdict_counts()["fail"]


def test_html_is_self_contained_and_strict(results):
    page = results["bank"].to_html()
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert "<script" not in page.lower()
    # nothing is fetched: no external URL in src/href, no @import, no url()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "@import" not in page and "url(" not in page
    assert page.count("<svg") >= 2 and "four-fifths" in page


def test_hostile_names_are_escaped_everywhere(results):
    r = results["hostile"]
    page = r.to_html()
    assert HOSTILE not in page and "who <b>" not in page
    assert "&lt;script&gt;" in page and "who &lt;b&gt;" in page
    assert "<script" not in page.lower()
    md = r.to_markdown()
    assert "<script>" not in md and "&lt;script&gt;" in md and "```" not in md
    # formulas neutralised in table cells, markdown syntax inert
    assert "| '=HYPERLINK" in md and "| '@SUM" in md
    assert "\\| pipe \\*bold\\* \\[x\\](y)" in md
    # the table renderer does not interpret markup either
    from fairscan.report.table import render_table

    assert HOSTILE in render_table(r)


def test_suppressed_groups_show_as_fewer_than_k(results):
    r = results["hostile"]
    g = r.groups.set_index("group")
    assert bool(g.loc["tiny", "suppressed"]) and pd.isna(g.loc["tiny", "count"])
    assert pd.isna(g.loc["tiny", "selection_rate"])
    assert "fewer than 10" in r.to_markdown() and "fewer than 10" in r.to_html()
    d = r.disparities[r.disparities["group"] == "tiny"]
    assert d[["difference", "ratio", "p_value"]].isna().all().all()
    f = r.findings[r.findings["group"] == "tiny"]
    assert (f["verdict"] == "insufficient").all()


def test_cli_writes_md_and_html(cli, tmp_path):
    for fmt in ("md", "html"):
        out = tmp_path / f"r.{fmt}"
        res = cli("audit", "dataset:german", "--score", "credit_amount", "--budget", "0.3",
                  "--tiers", "age_in_years=25,", "--format", fmt, "--out", str(out), "--n-boot", "50")
        assert res.code == 0, res.err
        text = out.read_text()
        name = "age\\_in\\_years" if fmt == "md" else "age_in_years"  # markdown escapes _
        assert name in text and "Verdicts" in text and "(25..]" in text.replace("\\", "")


def test_notebook_html_repr_escapes_and_shows_verdicts(results):
    page = results["hostile"]._repr_html_()
    assert "&lt;script&gt;" in page and "<script" not in page.lower()
    assert "fail" in page and "insufficient" in page


def test_custom_tolerances_change_verdicts(bank):
    loose = fairscan.audit(bank, target="y", positive_label="yes", prediction="y", sensitive="marital",
                           tolerances={"selection_rate": {"min_ratio": 0.3}}, n_boot=200)
    assert set(loose.findings["metric"]) == {"selection_rate"}
    assert (loose.findings["verdict"] == "pass").all()
    with pytest.raises(fairscan.FairscanError, match="unknown metric 'selection'"):
        fairscan.audit(bank, prediction="y", sensitive="marital", tolerances={"selection": {"min_ratio": 0.8}})


def test_hostile_names_in_recs_and_history_reports():
    """User and item group names carrying markup or formulas stay inert in the recommendation
    and review-history reports too (HTML escaped, Markdown escaped, formulas quoted)."""
    from fairscan.recs import audit_recs
    from fairscan.report.history import render_history_html, render_history_markdown

    rng = np.random.default_rng(0)
    n_users = 300
    users = pd.DataFrame({"user": range(n_users), "tier": rng.choice([HOSTILE, "=cmd|' /C calc'!A0", "ok"], n_users)})
    items = pd.DataFrame({"item": range(12), "kind": [HOSTILE if i % 2 else "@SUM(A1)" for i in range(12)]})
    recs = pd.DataFrame([(u, int(i), r + 1) for u in range(n_users) for r, i in enumerate(rng.choice(12, 3, False))],
                        columns=["user", "item", "rank"])
    res = audit_recs(recs, users, items, user_group="tier", item_group="kind", k=3, n_boot=50)
    page, md = res.to_html(), res.to_markdown()
    assert "<script" not in page.lower() and "&lt;script&gt;" in page
    assert "<script>" not in md and "&lt;script&gt;" in md and "'=cmd" in md and "'@SUM" in md
    table = {"name": HOSTILE, "runs": [{
        "seq": 1, "created": "2026-01-01T00:00:00+00:00", "hash": "a" * 64, "status": "fail",
        "verdict_counts": {"fail": 1, "pass": 0, "insufficient": 0}, "data_sha256": "b" * 64, "regressions": [],
        "disparities": [{"attribute": "who <b>", "metric": "selection_rate", "group": "=HYPERLINK(\"x\")",
                         "difference": -0.05}]}]}
    page, md = render_history_html(table), render_history_markdown(table)
    assert "<script" not in page.lower() and "who <b>" not in page and "&lt;script&gt;" in page
    assert "<script>" not in md and "| '=HYPERLINK" in md and "| -5.0 |" in md


def test_markdown_text_makes_no_autolinks():
    """GitHub Markdown turns bare URLs, www. names and e-mail addresses into links; names from
    the data must not (a phishing link in a report)."""
    from fairscan.report.common import md_text

    j = "\u2060"  # an invisible word joiner breaks the pattern; the text reads the same
    for raw, want in (("http://evil.example/x", f"http:{j}//evil.example/x"), ("www.evil.example", f"www{j}.evil.example"),
                      ("boss@corp.example", f"boss{j}@corp.example"), ("(24..59]", "(24..59\\]"), ("3.75", "3.75")):
        assert md_text(raw) == want


def test_method_section_shows_a_numeric_positive_label_plainly():
    """Labels 1/2 read from data are numpy integers: the method line says '= 2', not np.int64(2)."""
    rng = np.random.default_rng(4)
    df = pd.DataFrame({"g": rng.choice(["a", "b"], 300), "y": rng.integers(1, 3, 300), "p": rng.integers(0, 2, 300)})
    r = fairscan.audit(df, target="y", prediction="p", sensitive="g", positive_label="2", n_boot=0)
    assert "Label: y = 2." in r.to_markdown()
    assert "Label: y = 2." in r.to_html()
