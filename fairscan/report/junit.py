"""JUnit XML of a review, for CI systems: one test case per finding and per regression.

fail -> <failure>; insufficient -> <skipped> (or <failure> when the policy makes
insufficient evidence fail); pass -> a passing case. Text is escaped by ElementTree.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

__all__ = ["render_junit"]


def render_junit(result: Any, name: str, regressions: list[dict[str, Any]] | None = None,
                 insufficient_fails: bool = False, value_findings: list[dict[str, Any]] | None = None,
                 findings: list[dict[str, Any]] | None = None) -> str:
    """``value_findings``: the judged findings of the review's value audit, as more cases;
    ``findings``: the cases instead of ``result.findings`` (a value review's judged ones)."""
    findings = (result.findings.to_dict("records") if findings is None else list(findings)) + [
        {**f, "attribute": f"value.{f['attribute']}"} for f in value_findings or []]
    regressions = regressions or []
    n_fail = sum(f["verdict"] == "fail" for f in findings) + len(regressions)
    n_ins = sum(f["verdict"] == "insufficient" for f in findings)
    suite = ET.Element("testsuite", name=f"fairscan review {name}", tests=str(len(findings) + len(regressions)),
                       failures=str(n_fail + (n_ins if insufficient_fails else 0)),
                       skipped=str(0 if insufficient_fails else n_ins), timestamp=result.meta["created"])
    props = ET.SubElement(suite, "properties")
    for k in ("data_sha256", "fairscan_version", "n_rows"):
        ET.SubElement(props, "property", name=k, value=str(result.meta[k]))
    for f in findings:
        case = ET.SubElement(suite, "testcase", classname=f"fairscan.{name}.{f['attribute']}",
                             name=f"{f['metric']} [{f['group']}]")
        if f["verdict"] == "fail" or (f["verdict"] == "insufficient" and insufficient_fails):
            ET.SubElement(case, "failure", message=f["verdict"], type=f["verdict"]).text = f["message"]
        elif f["verdict"] == "insufficient":
            ET.SubElement(case, "skipped", message=f["message"])
    for r in regressions:
        case = ET.SubElement(suite, "testcase", classname=f"fairscan.{name}.regression",
                             name=f"{r['metric']} [{r['attribute']} = {r['group']}]")
        ET.SubElement(case, "failure", message="regression", type="regression").text = r["message"]
    ET.indent(suite)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"
