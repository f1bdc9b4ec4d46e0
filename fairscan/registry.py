"""Models from an MLflow registry or run, fetched without running any of their code.

A registry URI (``models:/NAME/VERSION``, ``models:/NAME@ALIAS``, ``models:/NAME/latest``,
``runs:/RUN_ID/PATH``) is resolved with MLflow's client, and the model's folder is
*downloaded* (``mlflow.artifacts.download_artifacts``), never loaded by MLflow: its
``MLmodel`` is read with a safe YAML loader and fairscan picks the file to load itself.

- The sklearn flavour saved as **skops** and the **ONNX** flavour are accepted; the skops
  file then goes through fairscan's own allow-list (``fairscan.modeling.load_model``): the
  ``skops_trusted_types`` that the ``MLmodel`` lists are ignored, since a crafted model could
  trust whatever it likes there.
- Pickle and cloudpickle flavours, and ``python_function`` models that bring their own code,
  run that code when loaded: refused unless the caller gives the same explicit consent as for
  pickle files (``trust_pickle``, ``--trust-pickle``).
- Every path the ``MLmodel`` names must stay inside the model's folder.

The tracking (and registry) server is MLflow's: ``MLFLOW_TRACKING_URI`` (the CLI's
``--tracking-uri`` sets it), e.g. ``sqlite:///mlflow.db``. MLflow is imported only here and
only when a registry URI is used: the base install does not need it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fairscan.errors import FairscanError, plain, suggest

__all__ = ["PREFIXES", "RegistryModel", "fetch", "is_registry_uri", "parse_uri", "require_mlflow"]

PREFIXES = ("models:/", "runs:/")
_EXPORT = ("export it as skops: mlflow.sklearn.log_model(model, name=..., serialization_format='skops'), or "
           "as ONNX")


def is_registry_uri(spec: object) -> bool:
    """Whether ``spec`` names a model in an MLflow registry or run."""
    return isinstance(spec, str) and spec.startswith(PREFIXES)


def require_mlflow() -> Any:
    """The ``mlflow`` module, or a one-line error that says how to install it."""
    try:
        import mlflow
    except ImportError:
        raise FairscanError("MLflow models and runs need the mlflow package: pip install 'fairscan[mlflow]'") from None
    return mlflow


@dataclass
class RegistryModel:
    """A model fetched from a registry: what to load and where it came from."""

    uri: str
    folder: Path
    flavor: str  # "skops", "onnx", "sklearn-pickle" or "pyfunc"
    file: Path | None
    name: str | None = None
    version: str | None = None
    alias: str | None = None
    run_id: str | None = None
    sha256: str = ""
    mlmodel: dict[str, Any] = field(default_factory=dict)

    def provenance(self) -> dict[str, Any]:
        """What an analysis records in its ``model`` object."""
        return {"uri": self.uri, "registered_name": self.name, "version": self.version, "alias": self.alias,
                "run_id": self.run_id, "flavor": self.flavor, "sha256": self.sha256}


def parse_uri(uri: str) -> dict[str, str | None]:
    """The parts of a registry URI: ``kind`` (models/runs), ``name``, ``version``, ``alias``,
    ``run_id``, ``path``; a one-line error that shows the accepted forms otherwise."""
    forms = "models:/NAME/VERSION, models:/NAME@ALIAS, models:/NAME/latest or runs:/RUN_ID/PATH"
    if uri.startswith("models:/"):
        rest = uri[len("models:/"):].strip("/")
        m = re.fullmatch(r"([^/@]+)@([^/@]+)", rest)
        if m:
            return {"kind": "models", "name": m[1], "version": None, "alias": m[2], "run_id": None, "path": None}
        m = re.fullmatch(r"([^/@]+)/([^/@]+)", rest)
        if m and (m[2].isdigit() or m[2] == "latest"):
            return {"kind": "models", "name": m[1], "version": m[2], "alias": None, "run_id": None, "path": None}
    elif uri.startswith("runs:/"):
        m = re.fullmatch(r"([^/]+)/(.+)", uri[len("runs:/"):].strip("/"))
        if m:
            return {"kind": "runs", "name": None, "version": None, "alias": None, "run_id": m[1], "path": m[2]}
    raise FairscanError(f"model URI {plain(uri)} is not one fairscan reads: use {forms}")


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return text[0][:200] if text else type(e).__name__


def fetch(uri: str, *, trust_pickle: bool = False, dst: str | os.PathLike | None = None) -> RegistryModel:
    """Resolve ``uri``, download the model's folder (to ``dst``, or a temporary folder removed
    with the result) and check its ``MLmodel``: the flavour to load and its file, inside the
    folder. Refuses what would run the model's own code unless ``trust_pickle``."""
    parts = parse_uri(uri)
    mlflow = require_mlflow()
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    name, version, alias, run_id = parts["name"], parts["version"], parts["alias"], parts["run_id"]
    try:
        if parts["kind"] == "models":
            try:
                registered = client.get_registered_model(name)
            except MlflowException:
                known = [m.name for m in client.search_registered_models(max_results=1000)]
                raise FairscanError(f"no registered model '{name}' at {mlflow.get_tracking_uri()}"
                                    f"{suggest(name, known)}") from None
            if alias:
                try:
                    mv = client.get_model_version_by_alias(name, alias)
                except MlflowException:
                    aliases = sorted(getattr(registered, "aliases", None) or {})
                    raise FairscanError(f"model '{name}' has no alias '{alias}'{suggest(alias, aliases)}"
                                        + (f"; its aliases: {', '.join(aliases)}" if aliases else "")) from None
            elif version == "latest":
                versions = client.search_model_versions(f"name='{name}'")
                if not versions:
                    raise FairscanError(f"model '{name}' has no version yet")
                mv = max(versions, key=lambda v: int(v.version))
            else:
                try:
                    mv = client.get_model_version(name, version)
                except MlflowException:
                    have = sorted(int(v.version) for v in client.search_model_versions(f"name='{name}'"))
                    raise FairscanError(f"model '{name}' has no version {version}; its versions: "
                                        f"{', '.join(map(str, have)) or 'none'}") from None
            version, run_id = str(mv.version), mv.run_id
            source = f"models:/{name}/{version}"
        else:
            source = uri
    except FairscanError:
        raise
    except MlflowException as e:
        raise FairscanError(f"MLflow could not fetch {plain(uri)} ({_first_line(e)})") from None
    import shutil

    tmp = None
    if dst is None:
        tmp = dst = tempfile.mkdtemp(prefix="fairscan-model-")
    try:
        with _no_progress_bar():  # fairscan shows its own progress
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=str(dst)))
    except (MlflowException, OSError) as e:
        if tmp is not None:  # a failed download leaves nothing behind
            shutil.rmtree(tmp, ignore_errors=True)
        reason = e.strerror if isinstance(e, OSError) and e.strerror else _first_line(e)
        raise FairscanError(f"MLflow could not fetch {plain(uri)} ({reason})") from None
    try:
        model = _inspect(uri, local, trust_pickle)
    except FairscanError:
        if tmp is not None:  # a refused model leaves nothing behind
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    model.name, model.version, model.alias, model.run_id = name, version, alias, run_id or model.run_id
    if tmp is not None:  # removed with the result
        weakref.finalize(model, shutil.rmtree, tmp, True)
    return model


@contextlib.contextmanager
def _no_progress_bar() -> Iterator[None]:
    """MLflow's download bar off for one download, the caller's setting restored after."""
    key = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    before = os.environ.get(key)
    os.environ[key] = "false"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = before


def _inside(folder: Path, rel: object, uri: str) -> Path:
    """``folder / rel``, refused unless it stays inside ``folder``."""
    if not isinstance(rel, str) or not rel:
        raise FairscanError(f"model {plain(uri)}: its MLmodel names no model file; re-log the model")
    target = (folder / rel).resolve()
    if not target.is_relative_to(folder.resolve()):
        raise FairscanError(f"model {plain(uri)}: its MLmodel points outside the model's folder ({plain(rel)}); "
                            "fairscan refuses it")
    return target


def _inspect(uri: str, folder: Path, trust_pickle: bool) -> RegistryModel:
    """Read ``MLmodel`` safely and choose what to load."""
    import yaml

    spec_file = folder / "MLmodel"
    if not spec_file.is_file():
        raise FairscanError(f"model {plain(uri)} has no MLmodel file: it is not an MLflow model")
    try:
        spec = yaml.safe_load(spec_file.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError):
        raise FairscanError(f"model {plain(uri)}: its MLmodel is not valid YAML") from None
    flavors = spec.get("flavors") if isinstance(spec, dict) else None
    if not isinstance(flavors, dict) or not flavors:
        raise FairscanError(f"model {plain(uri)}: its MLmodel lists no flavour")
    for conf in flavors.values():  # every path the MLmodel names stays inside the folder
        for key in ("pickled_model", "data", "model_path", "code", "python_model"):
            value = conf.get(key) if isinstance(conf, dict) else None
            if isinstance(value, str) and value:
                _inside(folder, value, uri)
    run_id = spec.get("run_id")
    sk, onnx = flavors.get("sklearn"), flavors.get("onnx")
    if isinstance(sk, dict) and sk.get("serialization_format") == "skops":
        file = _inside(folder, sk.get("pickled_model"), uri)
        return RegistryModel(uri, folder, "skops", file, run_id=run_id, sha256=_sha256(file), mlmodel=spec)
    if isinstance(onnx, dict):
        file = _inside(folder, onnx.get("data"), uri)
        return RegistryModel(uri, folder, "onnx", file, run_id=run_id, sha256=_sha256(file), mlmodel=spec)
    if isinstance(sk, dict):
        kind, flavor = f"a {sk.get('serialization_format') or 'pickle'}d scikit-learn model", "sklearn-pickle"
        file = _inside(folder, sk.get("pickled_model"), uri)
    elif "python_function" in flavors:
        kind, flavor, file = "a python_function model that brings its own code", "pyfunc", None
    else:
        raise FairscanError(f"model {plain(uri)}: fairscan reads the sklearn (skops) and onnx flavours, not "
                            f"{', '.join(sorted(flavors))}; {_EXPORT}")
    if not trust_pickle:
        raise FairscanError(f"model {plain(uri)} is {kind}: loading it runs any code it contains, so fairscan "
                            f"refuses it by default; {_EXPORT}, or pass --trust-pickle if you trust its author")
    digest = _sha256(file) if file is not None else _sha256(spec_file)
    return RegistryModel(uri, folder, flavor, file, run_id=run_id, sha256=digest, mlmodel=spec)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
