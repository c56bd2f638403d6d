"""One training run: gold.features at one snapshot in, checked model versions registered.

Every model is trained, exported and checked against ONNX Runtime before any is registered,
so a run that fails (too few rows, an ONNX mismatch) registers nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchTableError

from financelake.models.dataset import anomaly_dataset, direction_dataset, read_features
from financelake.models.errors import NotEnoughData
from financelake.models.export import (
    INPUT_NAME,
    OUTPUTS,
    OnnxCheck,
    check_onnx,
    library_versions,
    to_onnx,
)
from financelake.models.registry import ModelCard, ModelMetadata, ModelRegistry
from financelake.models.training import (
    MODELS,
    ModelSpec,
    Progress,
    Task,
    TrainedModel,
    TrainingConfig,
    model_spec,
    no_progress,
    train_anomaly,
    train_supervised,
)
from financelake.services.settings import Settings
from financelake.stream.lake.tables import FEATURES

__all__ = [
    "RegisteredModel",
    "TrainingRequest",
    "model_card",
    "run_steps",
    "train_and_register",
    "training_config",
]


@dataclass(frozen=True)
class TrainingRequest:
    """What to train, on which rows."""

    interval: str = "1m"
    symbols: tuple[str, ...] = ()
    """Empty: every symbol of the interval."""
    names: tuple[str, ...] = ()
    """Models to train (`training.MODELS` names); empty: all of them."""
    config: TrainingConfig = field(default_factory=TrainingConfig)

    def __post_init__(self) -> None:
        for name in self.names:
            model_spec(name)  # refuses an unknown name now, not after reading the lake

    @property
    def specs(self) -> tuple[ModelSpec, ...]:
        """The models asked for, in the order asked."""
        return tuple(model_spec(name) for name in self.names) if self.names else MODELS


@dataclass(frozen=True, eq=False)
class RegisteredModel:
    """A model of the run and the version it was registered as."""

    model: TrainedModel
    metadata: ModelMetadata


def training_config(settings: Settings, folds: int | None = None) -> TrainingConfig:
    """The training configuration the settings give (`folds` overrides theirs); the anomaly
    model's window and threshold are the stream's alert rules', so it scores what they do."""
    return TrainingConfig(
        folds=folds or settings.models.validation_folds,
        min_rows=settings.models.min_training_rows,
        anomaly_window=settings.stream.alert_window,
        anomaly_z_threshold=settings.stream.alert_z_threshold,
    )


def run_steps(request: TrainingRequest) -> int:
    """How many times `train_and_register` calls its progress callback."""
    # Per model: each fold, the final fit, the ONNX check and the registration; plus the read.
    return 1 + len(request.specs) * (request.config.folds + 3)


def train_and_register(
    catalog: Catalog,
    registry: ModelRegistry,
    request: TrainingRequest,
    progress: Progress | None = None,
) -> list[RegisteredModel]:
    """Read gold.features, train and validate every requested model, export each to ONNX,
    check it with ONNX Runtime, then register them all."""
    report = progress or no_progress
    specs = request.specs
    try:
        source = read_features(catalog, request.interval, request.symbols)
    except NoSuchTableError as exc:
        raise NotEnoughData(
            f"{FEATURES.identifier} does not exist yet: start the stream (`financelake up`) "
            "and let it compute features"
        ) from exc
    report(f"read {source.rows.num_rows:,} {request.interval} bars of {FEATURES.identifier}")

    # Each dataset is built once, when the first model that needs it asks.
    direction = cache(lambda: direction_dataset(source))
    anomaly = cache(lambda: anomaly_dataset(source, request.config.anomaly_window))
    checked: list[tuple[TrainedModel, bytes, OnnxCheck]] = []
    for spec in specs:
        if spec.task is Task.ANOMALY:
            model = train_anomaly(spec, anomaly(), request.config, report)
        else:
            model = train_supervised(spec, direction(), request.config, report)
        onnx = to_onnx(model)
        check = check_onnx(model, onnx)
        report(f"{spec.name}: ONNX Runtime matches scikit-learn on {check.rows:,} rows")
        checked.append((model, onnx, check))

    registered: list[RegisteredModel] = []
    for model, onnx, check in checked:
        metadata = registry.register(model_card(model, check), onnx)
        report(f"registered {metadata.reference}")
        registered.append(RegisteredModel(model, metadata))
    return registered


def model_card(model: TrainedModel, check: OnnxCheck) -> ModelCard:
    """The registry card of a trained, checked model."""
    start, end = model.window
    return ModelCard(
        name=model.spec.name,
        label=model.spec.task.value,
        interval=model.interval,
        estimator=model.spec.estimator,
        feature_names=model.feature_names,
        input_name=INPUT_NAME,
        output_names=OUTPUTS[model.spec.task],
        train_start_time=start,
        train_end_time=end,
        train_snapshot_id=model.snapshot_id,
        train_rows=model.train_rows,
        symbols=model.symbols,
        metrics=model.validation.metrics,
        baseline_metrics=model.validation.baseline_metrics,
        skill=model.validation.skill,
        verdict=model.validation.verdict,
        validation_folds=model.validation.folds,
        validation_rows=model.validation.rows,
        onnx_max_abs_diff=check.max_abs_diff,
        params=model.params,
        library_versions=library_versions(),
    )
