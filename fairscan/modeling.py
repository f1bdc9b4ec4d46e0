"""Reference targeting models, and safe loading of users' models.

Training: a scikit-learn Pipeline (one-hot categoricals, numeric features as they are;
HistGradientBoostingClassifier by default or LogisticRegression), wrapped in
``CalibratedClassifierCV`` (isotonic, 3 folds) so that scores are probabilities, fitted on a
seeded, stratified split. Sensitive attributes are kept *out* of the features by default
and kept *in* the scored hold-out so the audit can group by them.

Loading: ``.skops`` files go through skops' type checks; fairscan trusts the scikit-learn
types its own models use (``ALLOWED_TYPES``) and refuses any other type unless the caller
names it. Pickle/joblib files can run arbitrary code when loaded, so they are refused
unless the caller passes ``trust_pickle=True`` (``--trust-pickle``). ONNX needs the
optional ``onnx`` extra (onnxruntime).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from fairscan.datasets import ROW_ID
from fairscan.engines.datahash import frame_sha256
from fairscan.errors import FairscanError, plain, suggest

__all__ = [
    "ALLOWED_TYPES", "CARD_FILE", "CARD_MD", "MODEL_FILE", "PICKLE_SUFFIXES", "PRESETS",
    "REFERENCE_PREFIX", "ROW_ID", "SCORE", "SCORES_FILE", "OnnxModel", "TrainedModel",
    "cache_dir", "card_markdown", "load_card", "load_model", "model_features", "open_model",
    "reference_scores", "repo_models_dir", "resolve_model_path", "save_model", "score", "score_frame",
    "train_preset", "train_targeting", "with_features",
]

SCORE = "score"
MODEL_FILE = "model.skops"
CARD_FILE = "card.json"
CARD_MD = "card.md"
SCORES_FILE = "scores.parquet"
REFERENCE_PREFIX = "reference:"

#: scikit-learn types used by fairscan's own models beyond skops' default trusted set.
ALLOWED_TYPES: frozenset[str] = frozenset({
    "numpy.dtype",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
})
PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".sav")
PRESETS = ("bank", "adult", "coupon", "german")


@dataclass
class TrainedModel:
    """A fitted, calibrated model with what its card records and its scored hold-out rows."""

    estimator: Any
    name: str
    features: list[str]
    sensitive: list[str]
    target: str
    positive_label: object
    holdout: pd.DataFrame
    metrics: dict[str, float] = field(default_factory=dict)
    seed: int = 0
    test_size: float = 0.3
    model: str = "gbm"
    data_sha256: str = ""
    dropped: list[str] = field(default_factory=list)
    dataset: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def card(self) -> dict[str, Any]:
        """The model card (JSON-serialisable)."""
        from fairscan.version import __version__

        return {
            "name": self.name,
            "dataset": self.dataset,
            "target": self.target,
            "positive_label": _jsonable(self.positive_label),
            "model": {"gbm": "HistGradientBoostingClassifier", "logistic": "LogisticRegression"}[self.model]
            + " in a Pipeline, calibrated (CalibratedClassifierCV, isotonic, 3 folds)",
            "features": self.features,
            "sensitive": self.sensitive,
            "sensitive_are_features": bool(set(self.sensitive) & set(self.features)),
            "dropped": self.dropped,
            "metrics": {k: round(v, 6) for k, v in self.metrics.items()},
            "data_sha256": self.data_sha256,
            "split": {"method": "stratified train/test split", "test_size": self.test_size,
                      "n_train": int(self.extra.get("n_train", 0)), "n_test": len(self.holdout)},
            "seed": self.seed,
            "created": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
            "fairscan_version": __version__,
            "scores_file": SCORES_FILE,
            "notes": [
                "Sensitive attributes are not features of this model; they are kept in scores.parquet "
                "so that its decisions can be audited by them." if not set(self.sensitive) & set(self.features)
                else "Some sensitive attributes are features of this model.",
                "scores.parquet holds personal data (labels and sensitive attributes of held-out rows, "
                "identified only by row_id): keep it as protected as the training data.",
            ],
            "mitigation": self.extra.get("mitigation"),
        }


def _jsonable(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _pipeline(X: pd.DataFrame, model: str, seed: int) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [c for c in X.columns if pd.api.types.is_numeric_dtype(X[c]) and not pd.api.types.is_bool_dtype(X[c])]
    categorical = [c for c in X.columns if c not in numeric]
    # missing categories become their own level "missing"; rare levels (< 5 rows) are pooled
    cat = Pipeline([
        ("impute", SimpleImputer(strategy="constant", fill_value="missing")),
        ("onehot", OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=5, sparse_output=False)),
    ])
    if model == "gbm":
        pre = ColumnTransformer([("num", "passthrough", numeric), ("cat", cat, categorical)])
        est = HistGradientBoostingClassifier(random_state=seed, max_iter=200, learning_rate=0.1, early_stopping=True)
    elif model == "logistic":
        num = Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler())])
        pre = ColumnTransformer([("num", num, numeric), ("cat", cat, categorical)])
        est = LogisticRegression(max_iter=2000)
    else:
        raise FairscanError(f"unknown model '{model}': use gbm or logistic")
    return Pipeline([("features", pre), ("model", est)])


def train_targeting(
    data: pd.DataFrame,
    target: str,
    positive_label: object,
    *,
    features: Sequence[str] | None = None,
    drop: Sequence[str] = (),
    sensitive: Sequence[str] = (),
    model: Literal["gbm", "logistic"] = "gbm",
    seed: int = 0,
    test_size: float = 0.3,
    name: str = "model",
    dataset: str | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> TrainedModel:
    """Train a calibrated targeting model of ``target == positive_label``.

    ``positive_label=None`` recognises {0, 1}, {False, True} and {no, yes} labels.
    Features default to every column except the target, ``drop`` and ``sensitive``.
    Returns the model, its hold-out metrics (ROC AUC, accuracy at 0.5, Brier score) and the
    scored hold-out rows (row id, label, score, sensitive columns). ``progress(fraction,
    text)`` is told each step (split, fit, held-out scoring).
    """
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.metrics import accuracy_score, brier_score_loss, roc_auc_score

    from fairscan.datasets import holdout_split  # sklearn only when training

    cols = [str(c) for c in data.columns]
    for c in [target, *drop, *sensitive, *(features or [])]:
        if c not in cols:
            raise FairscanError(f"column '{c}' not found{suggest(c, cols)}")
    if features is None:
        features = [c for c in cols if c != target and c not in drop and c not in sensitive]
    features = list(features)
    if not features:
        raise FairscanError("no feature columns left to train on")
    if target in features:
        raise FairscanError(f"the target '{target}' cannot also be a feature")
    if positive_label is None or isinstance(positive_label, str):
        from fairscan.engines.memory import MemoryEngine
        from fairscan.validation import binary_positive

        positive_label = binary_positive(MemoryEngine(data), target, positive_label, "label", "--positive-label")
    if data[target].isna().any():
        raise FairscanError(f"label column '{target}' has {int(data[target].isna().sum())} missing values; "
                            "fill or remove those rows first")
    y = (data[target] == positive_label).to_numpy()
    if y.all() or not y.any():
        raise FairscanError(
            f"label '{target}' has no {'negative' if y.all() else 'positive'} rows for positive label "
            f"{plain(positive_label)}; check --positive-label"
        )
    note = progress or (lambda fraction, text: None)
    note(0.0, "splitting the rows (stratified, seeded)")
    train_idx, test_idx = holdout_split(y, test_size, seed)
    X = data[features]
    est = CalibratedClassifierCV(_pipeline(X, model, seed), method="isotonic", cv=3)
    note(0.05, f"fitting the {model} model on {len(train_idx):,} rows (3-fold isotonic calibration)")
    est.fit(X.iloc[train_idx], y[train_idx])
    note(0.9, f"scoring the {len(test_idx):,} held-out rows")
    score = est.predict_proba(X.iloc[test_idx])[:, 1]
    y_test = y[test_idx]
    metrics = {
        "roc_auc": float(roc_auc_score(y_test, score)),
        "accuracy": float(accuracy_score(y_test, score >= 0.5)),
        "brier": float(brier_score_loss(y_test, score)),
    }
    keep = list(dict.fromkeys([target, *sensitive]))
    holdout = data.iloc[test_idx][keep].reset_index(drop=True)
    holdout.insert(0, ROW_ID, test_idx)
    holdout[SCORE] = score
    note(1.0, f"trained: held-out ROC AUC {metrics['roc_auc']:.3f}")
    return TrainedModel(est, name, features, list(sensitive), target, positive_label, holdout, metrics,
                        seed, test_size, model, frame_sha256(data), list(drop), dataset,
                        {"n_train": len(train_idx)})


def train_preset(dataset: str, *, model: Literal["gbm", "logistic"] = "gbm", seed: int = 0,
                 progress: Callable[[float, str], None] | None = None) -> TrainedModel:
    """The reference model of a bundled dataset: its card's label, its sensitive columns kept
    out of the features, its ``drop_for_modeling`` columns dropped (bank: ``duration``)."""
    from fairscan import datasets

    if dataset not in PRESETS:
        raise FairscanError(f"no reference model for '{dataset}'{suggest(dataset, PRESETS)}; presets: "
                            f"{', '.join(PRESETS)}")
    card = datasets.card(dataset)
    return train_targeting(
        datasets.load(dataset), card["target"], card["positive_label"], drop=card["drop_for_modeling"],
        sensitive=card["sensitive"], model=model, seed=seed, name=dataset, dataset=dataset, progress=progress,
    )


def save_model(trained: TrainedModel, out_dir: str | os.PathLike) -> Path:
    """Write model.skops, card.json, card.md and scores.parquet to ``out_dir``."""
    import skops.io as sio

    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        sio.dump(trained.estimator, out / MODEL_FILE)
        card = trained.card()
        card["model_sha256"] = hashlib.sha256((out / MODEL_FILE).read_bytes()).hexdigest()
        (out / CARD_FILE).write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
        (out / CARD_MD).write_text(card_markdown(card), encoding="utf-8")
        trained.holdout.to_parquet(out / SCORES_FILE, index=False, compression="zstd")
    except OSError as e:
        raise FairscanError(f"cannot write the model to '{out}': {e.strerror}") from None
    return out


def card_markdown(card: dict[str, Any]) -> str:
    """A model card as Markdown, for people."""
    m = card["metrics"]
    lines = [
        f"# Model card: {card['name']}",
        "",
        f"- Predicts: `{card['target']}` = `{card['positive_label']}`" + (
            f" on the bundled `{card['dataset']}` dataset" if card.get("dataset") else ""),
        f"- Model: {card['model']}",
        f"- Hold-out ({card['split']['n_test']:,} rows, {card['split']['method']}, seed {card['seed']}): "
        f"ROC AUC {m['roc_auc']:.3f}, accuracy {m['accuracy']:.3f}, Brier score {m['brier']:.4f}",
        f"- Features ({len(card['features'])}): {', '.join(card['features'])}",
        f"- Sensitive attributes (not features): {', '.join(card['sensitive']) or 'none'}",
        f"- Dropped: {', '.join(card['dropped']) or 'none'}",
        f"- Training data sha256: `{card['data_sha256']}`",
        f"- Created {card['created']} by fairscan {card['fairscan_version']}",
    ]
    if card.get("mitigation"):
        lines.append(f"- Mitigation: {json.dumps(card['mitigation'])}")
    lines += ["", "## Notes", ""] + [f"- {n}" for n in card["notes"]]
    return "\n".join(lines) + "\n"


# -- loading -----------------------------------------------------------------------------
def repo_models_dir() -> Path:
    """``models/`` at the top of a source checkout (may not exist for an installed package)."""
    return Path(__file__).resolve().parents[1] / "models"


def cache_dir() -> Path:
    """Where an installed fairscan caches reference models it trained on first use."""
    base = os.environ.get("FAIRSCAN_CACHE") or os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "fairscan" / "models"


def resolve_model_path(spec: str | os.PathLike) -> Path:
    """A model path, or ``reference:NAME``: the checkout's ``models/NAME``, else the user
    cache, where the preset is trained once and saved."""
    text = str(spec)
    if not text.startswith(REFERENCE_PREFIX):
        return Path(text)
    name = text[len(REFERENCE_PREFIX):]
    if name not in PRESETS:
        raise FairscanError(f"no reference model '{name}'{suggest(name, PRESETS)}; presets: {', '.join(PRESETS)}")
    for base in (repo_models_dir(), cache_dir()):
        if (base / name / MODEL_FILE).exists():
            return base / name / MODEL_FILE
    save_model(train_preset(name), cache_dir() / name)
    return cache_dir() / name / MODEL_FILE


def reference_scores(name: str) -> tuple[dict[str, Any], pd.DataFrame]:
    """The card and held-out scored rows (``scores.parquet``) of a reference model."""
    path = resolve_model_path(REFERENCE_PREFIX + name)
    card = load_card(path)
    if card is None:
        raise FairscanError(f"reference model '{name}' has no card.json next to {path}; re-train it")
    return card, pd.read_parquet(path.with_name(SCORES_FILE))


def with_features(name: str, rows: pd.DataFrame, dataset: pd.DataFrame | None = None) -> pd.DataFrame:
    """Held-out rows of reference model ``name`` (``scores.parquet``, or columns derived from
    it) joined back to every column of the bundled dataset by ``row_id``, so the model can score
    them again; ``rows``' own columns win. ``dataset``: the loaded dataset, if at hand."""
    from fairscan import datasets

    full = dataset if dataset is not None else datasets.load(name)
    if ROW_ID not in rows.columns:
        raise FairscanError(f"rows of reference model '{name}' have no '{ROW_ID}' column to find their features by")
    out = full.iloc[rows[ROW_ID].to_numpy()].reset_index(drop=True)
    return out.assign(**{c: rows[c].to_numpy() for c in rows.columns})


def load_card(model_path: str | os.PathLike) -> dict[str, Any] | None:
    """The card.json next to a model file, if there is one."""
    p = Path(model_path).with_name(CARD_FILE)
    if not p.exists():
        return None
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        raise FairscanError(f"model card '{p}' is not valid JSON; remove or repair it") from None


def load_model(path: str | os.PathLike, *, trust: Sequence[str] = (), trust_pickle: bool = False) -> Any:
    """Load a model file safely.

    ``.skops``: refused if it holds a type that is neither trusted by skops, nor in
    ``ALLOWED_TYPES``, nor named in ``trust``. ``.onnx``: via onnxruntime. Pickle/joblib:
    only with ``trust_pickle=True`` — unpickling runs whatever code the file contains.
    """
    p = resolve_model_path(path)
    if not p.exists():
        raise FairscanError(f"model file '{p}' not found")
    suffix = p.suffix.lower()
    if suffix == ".skops":
        import skops.io as sio

        try:
            found = sio.get_untrusted_types(file=p)
        except Exception as e:  # a corrupt or foreign file: skops raises various errors
            raise FairscanError(f"model file '{p}' is not a readable skops file ({type(e).__name__})") from None
        refused = sorted(set(found) - ALLOWED_TYPES - set(trust))
        if refused:
            raise FairscanError(
                f"model file '{p}' contains types fairscan does not trust: {', '.join(refused)}; "
                "if you trust this file's author, name them with --trust TYPE"
            )
        try:
            return sio.load(p, trusted=list(found))
        except Exception as e:
            raise FairscanError(f"model file '{p}' could not be loaded ({type(e).__name__}: {e})") from None
    if suffix == ".onnx":
        return OnnxModel(p)
    if suffix in PICKLE_SUFFIXES:
        if not trust_pickle:
            raise FairscanError(
                f"model file '{p}' is a pickle: loading it runs any code it contains, so fairscan refuses "
                "it by default; re-save the model with skops, or pass --trust-pickle if you trust its author"
            )
        import joblib

        try:
            return joblib.load(p)
        except Exception as e:
            raise FairscanError(f"model file '{p}' could not be unpickled ({type(e).__name__}: {e})") from None
    raise FairscanError(f"model file '{p}': unsupported type '{suffix or '(none)'}'; use .skops, .onnx or a pickle")


def open_model(spec: Any, *, trust: Sequence[str] = (),
               trust_pickle: bool = False) -> tuple[Any, dict[str, Any] | None, dict[str, Any]]:
    """(the model, its card or None, what an analysis records about it in its ``model``
    object) for a model file, ``reference:NAME``, an MLflow registry URI (``models:/NAME@ALIAS``,
    ``models:/NAME/VERSION``, ``models:/NAME/latest``, ``runs:/RUN_ID/PATH``;
    :mod:`fairscan.registry`) or a fitted object. Files and registry models load safely:
    skops through fairscan's allow-list (plus ``trust``), pickles and models that bring their
    own code only with ``trust_pickle``."""
    from fairscan import registry

    if registry.is_registry_uri(spec):
        fetched = registry.fetch(spec, trust_pickle=trust_pickle)
        if fetched.flavor in ("skops", "onnx"):
            model = load_model(fetched.file, trust=trust)  # fairscan's allow-list, not the MLmodel's
        else:  # consent given: MLflow's own loaders, which unpickle
            mlflow = registry.require_mlflow()
            try:
                if fetched.flavor == "sklearn-pickle":
                    import mlflow.sklearn

                    model = mlflow.sklearn.load_model(str(fetched.folder))
                else:
                    import mlflow.pyfunc

                    model = mlflow.pyfunc.load_model(str(fetched.folder))
                    model._fairscan_source = fetched  # its artifacts stay on disk while it is used
            except Exception as e:
                raise FairscanError(f"model {plain(spec)} could not be loaded by MLflow {mlflow.__version__} "
                                    f"({type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''})") from None
        return model, None, {"path": spec, **fetched.provenance(), "type": type(model).__name__,
                             "name": fetched.name}
    if isinstance(spec, str | os.PathLike):
        path = resolve_model_path(spec)
        card = load_card(path)
        model = load_model(path, trust=trust, trust_pickle=trust_pickle)
        return model, card, {"path": str(spec), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                             "type": type(model).__name__, "name": card.get("name") if card else None}
    return spec, None, {"type": type(spec).__name__}


class OnnxModel:
    """An ONNX classifier (e.g. from skl2onnx) scored with onnxruntime.

    Inputs are matched to DataFrame columns by name (one input per column), or, for a single
    tensor input, all feature columns in ``features`` order as float32.
    """

    def __init__(self, path: Path) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise FairscanError("ONNX models need onnxruntime: pip install 'fairscan[onnx]'") from None
        try:
            self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as e:
            raise FairscanError(f"model file '{path}' is not a valid ONNX model ({type(e).__name__})") from None
        self.inputs = self.session.get_inputs()
        self.feature_names_in_ = np.array([i.name for i in self.inputs]) if len(self.inputs) > 1 else None

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        if len(self.inputs) == 1:
            width = self.inputs[0].shape[-1] if self.inputs[0].shape else None
            if isinstance(width, int) and X.shape[1] != width:
                raise FairscanError(
                    f"this ONNX model takes one tensor of {width} features but the data has {X.shape[1]} columns; "
                    "put a card.json with \"features\": [...] (in order) next to the model file")
            feed = {self.inputs[0].name: X.to_numpy(dtype=np.float32)}
        else:
            feed = {}
            for i in self.inputs:
                col = X[i.name].to_numpy()
                kind = "float" if "float" in i.type else "int64" if "int64" in i.type else "str"
                col = col.astype(np.float32 if kind == "float" else np.int64 if kind == "int64" else str)
                feed[i.name] = col.reshape(-1, 1)
        outputs = self.session.run(None, feed)
        proba = outputs[-1]
        if isinstance(proba, list):  # skl2onnx's ZipMap: a list of {class: probability}
            keys = list(proba[0])
            return np.array([[row[k] for k in keys] for row in proba], dtype=float)
        return np.asarray(proba, dtype=float)


def model_features(model: Any, card: dict[str, Any] | None = None) -> list[str] | None:
    """The input columns a model needs: its ``feature_names_in_``, else its card's features."""
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        return [str(n) for n in names]
    if card:
        return list(card["features"])
    return None


def score(model: Any, data: pd.DataFrame, *, positive_label: object = None,
          card: dict[str, Any] | None = None) -> np.ndarray:
    """Scores of ``data`` by ``model``: the positive-class probability from ``predict_proba``,
    else ``decision_function``, else ``predict``. Missing feature columns: one error listing them."""
    feats = model_features(model, card)
    if feats is not None:
        missing = [c for c in feats if c not in data.columns]
        if missing:
            shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
            raise FairscanError(f"the data lacks {len(missing)} feature column(s) the model needs: {shown}")
        X = data[feats]
    else:
        X = data
    try:
        if hasattr(model, "predict_proba"):
            proba = np.asarray(model.predict_proba(X))
            classes = list(getattr(model, "classes_", range(proba.shape[1])))
            pos = positive_label if positive_label in classes else (True if True in classes else (
                1 if 1 in classes else classes[-1]))
            return proba[:, classes.index(pos)].astype(float)
        if hasattr(model, "decision_function"):
            return np.asarray(model.decision_function(X), dtype=float).ravel()
        if hasattr(model, "predict"):
            return np.asarray(model.predict(X), dtype=float).ravel()
    except FairscanError:
        raise
    except Exception as e:
        raise FairscanError(f"the model failed to score the data ({type(e).__name__}: {str(e)[:200]})") from None
    raise FairscanError(f"a {type(model).__name__} has no predict_proba, decision_function or predict")


def score_frame(data: Any, model: Any, positive_label: object = None, *, trust: Sequence[str] = (),
                trust_pickle: bool = False) -> tuple[pd.DataFrame, str, dict[str, Any]]:
    """``data`` (a frame, or a path read whole) with a column of the model's scores: the frame,
    the column's name (``score``, or ``model_score`` if ``score`` exists) and what an
    analysis records about the model (path, sha256, type, card name, and a warning when
    these are the rows the model was trained on). ``model``: as :func:`open_model` takes it
    (a file, ``reference:NAME``, an MLflow registry URI or a fitted object)."""
    if isinstance(data, str | os.PathLike):  # scoring needs the feature columns in memory
        from fairscan.io import read_table

        data = read_table(data)
    if not isinstance(data, pd.DataFrame):
        data = data.to_pandas() if hasattr(data, "to_pandas") else pd.DataFrame(data)
    model, card, meta = open_model(model, trust=trust, trust_pickle=trust_pickle)
    if card and card.get("data_sha256") and card["data_sha256"] == frame_sha256(data):
        held_out = (f"dataset:{card['dataset']}:holdout" if card.get("dataset") else
                    f"the held-out rows in {SCORES_FILE} beside the model")
        meta["warning"] = ("these are the data the model was trained on, training rows included; for an honest "
                           f"picture use the rows it never saw: {held_out}")
    values = score(model, data, positive_label=positive_label, card=card)
    column = "score" if "score" not in data.columns else "model_score"
    return data.assign(**{column: values}), column, meta
