"""What the MLflow registry adds to an audit: the same audit with the model read from a
local registry (``models:/bank@champion``) and from the checkout (``reference:bank``).

Not a test: run it by hand on an idle machine::

    python bench/bench_mlflow.py [--repeats 5]

It makes a fresh SQLite tracking server in a temporary folder, registers the reference bank
model there in skops format (alias ``champion``), then runs, alternating, as whole processes::

    fairscan audit dataset:bank:holdout --model models:/bank@champion --budget 0.2 --tiers age=24,59 --format json
    fairscan audit dataset:bank:holdout --model reference:bank       --budget 0.2 --tiers age=24,59 --format json

and prints each median wall time and their difference: importing MLflow, resolving the alias,
downloading the model's folder and checking its MLmodel. Both outputs' groups must be equal.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    import mlflow
    import skops.io as sio

    from fairscan import modeling

    folder = Path(tempfile.mkdtemp(prefix="fairscan-bench-mlflow-"))
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    os.chdir(folder)
    os.environ["MLFLOW_TRACKING_URI"] = uri
    mlflow.set_tracking_uri(uri)
    model = modeling.load_model(modeling.resolve_model_path("reference:bank"))
    with mlflow.start_run():
        mlflow.sklearn.log_model(model, name="model", serialization_format="skops", registered_model_name="bank",
                                 skops_trusted_types=sorted(set(sio.get_untrusted_types(data=sio.dumps(model)))))
    mlflow.MlflowClient().set_registered_model_alias("bank", "champion", "1")
    exe = str(Path(sys.executable).with_name("fairscan"))
    base = ["audit", "dataset:bank:holdout", "--budget", "0.2", "--tiers", "age=24,59", "--format", "json",
            "--quiet"]
    times: dict[str, list[float]] = {"registry": [], "reference": []}
    outputs = {}
    for _ in range(a.repeats):
        for name, spec in (("registry", "models:/bank@champion"), ("reference", "reference:bank")):
            t = time.perf_counter()
            out = subprocess.run([exe, *base, "--model", spec], check=True, capture_output=True, text=True).stdout
            times[name].append(time.perf_counter() - t)
            outputs[name] = json.loads(out)["groups"]
    reg, ref = statistics.median(times["registry"]), statistics.median(times["reference"])
    print(f"audit with models:/bank@champion (local SQLite registry): median {reg:.2f} s "
          f"({', '.join(f'{x:.2f}' for x in times['registry'])})")
    print(f"audit with reference:bank (checkout): median {ref:.2f} s "
          f"({', '.join(f'{x:.2f}' for x in times['reference'])})")
    print(f"the registry adds {reg - ref:.2f} s ({reg / ref:.2f}x); same groups: "
          f"{outputs['registry'] == outputs['reference']}")


if __name__ == "__main__":
    main()
