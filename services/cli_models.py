"""`financelake models ...`: train models on the lake and look at the model registry.

`train` reads gold.features at its current snapshot, validates each model walk-forward, exports
it to ONNX, checks ONNX Runtime against scikit-learn and registers every model once all passed
(`financelake.models.workflow`); it prints each model's metrics beside the naive baselines, what
they show, and the version registered. `list` shows the registered versions. Tables go to
stdout, progress and errors to stderr.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from financelake.models.registry import ModelMetadata, open_registry
from financelake.services.ingestion.records import Interval
from financelake.services.settings import Settings

if TYPE_CHECKING:
    from financelake.models.workflow import RegisteredModel

models_app = typer.Typer(
    help="Train models on gold.features and list the model registry.", no_args_is_help=True
)
out = Console()
err = Console(stderr=True)

# The metric `models list` shows for each label.
_HEADLINE = {"next_return_direction": "roc_auc", "next_return": "mae", "anomaly": "flagged_rate"}


@models_app.command("train")
def train_command(
    ctx: typer.Context,
    symbols: Annotated[
        list[str] | None,
        typer.Option("--symbols", "-s", help="Train on these symbols only (repeatable)."),
    ] = None,
    interval: Annotated[Interval, typer.Option(help="Bar width to train on.")] = Interval.M1,
    names: Annotated[
        list[str] | None,
        typer.Option(
            "--name",
            help="Train only this model (repeatable): direction-logistic, direction-gbm, "
            "return-ridge or anomaly. Default: all.",
        ),
    ] = None,
    folds: Annotated[
        int | None,
        typer.Option(min=2, help="Walk-forward folds. Default: models.validation_folds."),
    ] = None,
) -> None:
    """Validate walk-forward, export to ONNX, check ONNX Runtime, register new versions."""
    # Imported here: scikit-learn, skl2onnx and ONNX Runtime take seconds to import and no
    # other command needs them.
    from financelake.models.errors import NotEnoughData, OnnxMismatch, RegistryConflict
    from financelake.models.workflow import (
        TrainingRequest,
        run_steps,
        train_and_register,
        training_config,
    )
    from financelake.stream.lake.catalog import open_catalog

    settings: Settings = ctx.obj
    config = training_config(settings, folds)
    try:
        request = TrainingRequest(
            interval=interval.value,
            symbols=tuple(symbols or ()),
            names=tuple(names or ()),
            config=config,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--name") from exc

    registry = open_registry(settings)
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )
    try:
        with progress:
            task = progress.add_task("reading gold.features", total=run_steps(request))

            def advance(message: str) -> None:
                progress.update(task, advance=1, description=message)

            results = train_and_register(open_catalog(settings), registry, request, advance)
    except (NotEnoughData, OnnxMismatch) as exc:
        err.print(f"Nothing registered: {exc.message}", style="red", markup=False)
        raise typer.Exit(1) from exc
    except RegistryConflict as exc:
        err.print(exc.message, style="red", markup=False)
        raise typer.Exit(1) from exc
    for result in results:
        _print_result(result)
    references = ", ".join(result.metadata.reference for result in results)
    err.print(f"Registered {references} in {registry.location}", markup=False, highlight=False)


@models_app.command("list")
def list_command(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Option(help="Only versions of this model.")] = None,
) -> None:
    """Registered model versions, newest first."""
    registry = open_registry(ctx.obj)
    versions = [m for m in registry.list_models() if name is None or m.name == name]
    if not versions:
        err.print(f"No model registered in {registry.location}", markup=False, highlight=False)
        return
    out.print(_versions_table(versions))


def _print_result(result: RegisteredModel) -> None:
    """One model: what it is, its walk-forward metrics beside the baselines, the verdict."""
    meta = result.metadata
    validation = result.model.validation
    out.print(
        f"\n[bold]{meta.reference}[/bold] {meta.estimator}: {meta.label} of {meta.interval} "
        f"bars, {meta.train_rows:,} rows, {validation.folds} walk-forward folds",
        highlight=False,
    )
    baselines = list(dict.fromkeys(key.split(".", 1)[0] for key in validation.baseline_metrics))
    table = Table()
    table.add_column("metric")
    for column in ("model", *baselines):
        table.add_column(column, justify="right")
    for metric, value in validation.metrics.items():
        if metric.endswith("_se"):
            continue
        spread = validation.metrics.get(f"{metric}_se")
        cell = f"{value:.4g}" if spread is None else f"{value:.4g} ± {spread:.2g}"
        others = (validation.baseline_metrics.get(f"{b}.{metric}") for b in baselines)
        table.add_row(metric, cell, *("—" if v is None else f"{v:.4g}" for v in others))
    out.print(table)
    out.print(validation.verdict, markup=False, highlight=False)


def _versions_table(versions: list[ModelMetadata]) -> Table:
    table = Table(title="Registered models")
    for column in ("model", "created", "interval", "rows", "bars from", "bars to", "metric"):
        table.add_column(column)
    table.add_column("skill")
    for m in versions:
        metric = _HEADLINE.get(m.label, "")
        value = m.metrics.get(metric)
        table.add_row(
            m.reference,
            f"{m.created_time:%Y-%m-%d %H:%M}",
            m.interval,
            f"{m.train_rows:,}",
            f"{m.train_start_time:%Y-%m-%d %H:%M}",
            f"{m.train_end_time:%Y-%m-%d %H:%M}",
            "—" if value is None else f"{metric} {value:.4g}",
            "—" if m.skill is None else ("yes" if m.skill else "no"),
        )
    return table
