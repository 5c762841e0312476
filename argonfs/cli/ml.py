"""runs: the MLflow runs that used a bundle (argonfs/ml/mlflow.py; needs argonfs[mlflow])."""

from __future__ import annotations

import click

from argonfs.cli.common import AppContext, echo_json, json_option, pass_app, table


@click.command("runs")
@click.argument("ref")
@click.option("--tracking-uri", envvar="MLFLOW_TRACKING_URI", metavar="URI", help="MLflow tracking server or store [env MLFLOW_TRACKING_URI].")
@click.option("--context", "contexts", multiple=True, default=["training"], show_default=True, help="Input contexts to look for (repeatable).")
@json_option
@pass_app
def runs(app: AppContext, ref: str, tracking_uri: str | None, contexts: tuple[str, ...], as_json: bool) -> None:
    """MLflow runs whose logged argonfs input is REF (a bundle id, or a label: its
    current bundle), newest first."""
    view = app.repo.resolve(ref)
    if view.bundle is None:
        raise click.ClickException(f"{ref!r} is a {view.kind}, which runs never record: give a bundle id or a label")
    try:
        from mlflow.tracking import MlflowClient

        from argonfs.ml.mlflow import runs_using
    except ImportError:
        raise click.ClickException("argonfs runs needs MLflow: pip install 'argonfs[mlflow]'") from None
    found = runs_using(view.bundle, contexts=contexts, client=MlflowClient(tracking_uri))
    rows = [
        {
            "run_id": r.info.run_id,
            "experiment_id": r.info.experiment_id,
            "name": r.info.run_name,
            "status": r.info.status,
            "start_time": r.info.start_time,
            "digest": r.data.tags.get("argonfs.digest"),
        }
        for r in found
    ]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo(f"no runs used bundle {view.bundle}")
        return
    table([[r["run_id"], r["experiment_id"], r["name"] or "", r["status"]] for r in rows], ["RUN", "EXPERIMENT", "NAME", "STATUS"])


def register(main: click.Group) -> None:
    main.add_command(runs)
