"""What a finished tuning study (fusionjax.tune) leaves in its folder, each file atomic:

  trials.csv           one row per trial: state, the validation metric, steps, wall time, the
                       settings tried;
  study.json           the study's storage, metric and direction, counts, the best trial (its
                       settings, validation value, workdir and the command that reproduces
                       it) and its test figures (computed once);
  best_overrides.json  the best settings, for python -m fusionjax.main --config_overrides=;
  history.png, intermediate_values.png, importances.png, slice.png
                       Optuna's plots (optuna.visualization.matplotlib).
"""
from __future__ import annotations

import csv
import datetime
import json
import os
import warnings

import optuna
from absl import logging

from fusionjax import atomic, config_overrides, products
# After fusionjax.products, which selects matplotlib's non-interactive backend.
import optuna.visualization.matplotlib as plots  # noqa: E402  pylint: disable=g-bad-import-order

STATES = optuna.trial.TrialState


def read_json(path: str) -> dict | None:
  """The JSON object in `path`, or None where there is no such file."""
  if not os.path.exists(path):
    return None
  with open(path) as source:
    return json.load(source)


def trial_rows(study: optuna.Study) -> list[dict]:
  """One dict per trial: 'trial', 'state', 'value', 'steps', 'wall_s', 'resumes' (the trial
  whose run it continues), then each parameter."""
  names = sorted({name for trial in study.trials for name in trial.params})
  rows = []
  for trial in study.trials:
    with warnings.catch_warnings():
      warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
      history = optuna.storages.RetryHeartbeatStaleTrialCallback.retry_history(trial)
    rows.append({
        "trial": trial.number, "state": trial.state.name,
        "value": trial.value if trial.value is not None else (
            trial.intermediate_values[max(trial.intermediate_values)]
            if trial.intermediate_values else None),
        "steps": trial.user_attrs.get("steps"),
        "wall_s": round(trial.duration.total_seconds(), 1) if trial.duration else None,
        "resumes": history[0] if history else None,
        **{name: trial.params.get(name) for name in names}})
  return rows


def write_trials_csv(path: str, rows: list[dict]) -> None:
  with atomic.atomic_path(path) as temporary:
    with open(temporary, "w", newline="") as sink:
      writer = csv.DictWriter(sink, fieldnames=list(rows[0]))
      writer.writeheader()
      writer.writerows(rows)


def _save_plot(plot, study: optuna.Study, path: str, value_label: str) -> str | None:
  """Saves Optuna's matplotlib `plot` of `study` as a PNG, its value axis labelled
  `value_label`; None (logged) where the study cannot be plotted yet (e.g. importances need
  two completed trials)."""
  try:
    axes = plot(study)
  except (ValueError, RuntimeError) as error:
    logging.info("No %s: %s", os.path.basename(path), error)
    return None
  panels = list(axes.flat) if hasattr(axes, "flat") else [axes]
  figure = panels[0].figure
  figure.set_size_inches(max(7.0, 3.6 * len(panels) + 1.5), 4.5)
  if plot is not plots.plot_param_importances:
    panels[0].set_ylabel(value_label)
  colour_bars = [a for a in figure.axes if a not in panels]
  if colour_bars:   # Optuna draws its trial-number colour bar over the last panel
    figure.subplots_adjust(right=0.88, wspace=0.3)
    colour_bars[0].set_position([0.91, 0.15, 0.012, 0.7])
  products.save_figure(figure, path)
  return path


def write_study(study: optuna.Study, study_dir: str, *, metric: str, command: str,
                storage: str, test: dict | None) -> list[str]:
  """Writes the study's table, summary, best settings and plots into `study_dir`; returns the
  paths written. `command` runs the experiment (the best settings are appended to it)."""
  rows = trial_rows(study)
  written = [os.path.join(study_dir, "trials.csv")]
  write_trials_csv(written[0], rows)
  counts = {state.name.lower(): sum(t.state == state for t in study.trials)
            for state in (STATES.COMPLETE, STATES.PRUNED, STATES.FAIL, STATES.RUNNING)}
  summary = {"study": study.study_name, "storage": _without_password(storage),
             "metric": metric, "direction": study.direction.name.lower(), "trials": counts,
             "written": datetime.datetime.now(datetime.timezone.utc).isoformat(
                 timespec="seconds")}
  if counts["complete"]:
    best = study.best_trial
    overrides_path = os.path.join(study_dir, "best_overrides.json")
    config_overrides.write(overrides_path, best.params)
    summary["best"] = {
        "trial": best.number, "value": best.value, "params": best.params,
        "workdir": best.user_attrs.get("workdir"), "overrides": overrides_path,
        "command": f"{command} --config_overrides={overrides_path} --workdir=<folder>",
        "command_flags": f"{command} {config_overrides.command_line(best.params)} "
                         "--workdir=<folder>"}
    summary["test"] = test
    written.append(overrides_path)
  written.append(os.path.join(study_dir, "study.json"))
  products.write_json(written[-1], summary)
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    for name, plot in (("history", plots.plot_optimization_history),
                       ("intermediate_values", plots.plot_intermediate_values),
                       ("importances", plots.plot_param_importances),
                       ("slice", plots.plot_slice)):
      path = _save_plot(plot, study, os.path.join(study_dir, f"{name}.png"),
                        f"{metric} (validation)")
      written += [path] if path else []
  _print_table(rows, metric)
  return written


def _print_table(rows: list[dict], metric: str) -> None:
  """The trials as a table on stdout."""
  columns = list(rows[0])
  header = {column: metric if column == "value" else column for column in columns}
  cells = [[_cell(row[c]) for c in columns] for row in rows]
  widths = [max(len(header[c]), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
  print("  ".join(header[c].rjust(w) for c, w in zip(columns, widths)))
  for row in cells:
    print("  ".join(cell.rjust(w) for cell, w in zip(row, widths)), flush=True)


def _cell(value) -> str:
  if value is None:
    return "-"
  return f"{value:.4g}" if isinstance(value, float) else str(value)


def _without_password(url: str) -> str:
  """A storage URL with its password (if any) masked."""
  scheme, separator, rest = url.partition("://")
  if "@" in rest and ":" in rest.split("@", 1)[0]:
    user = rest.split("@", 1)[0].split(":", 1)[0]
    rest = f"{user}:***@{rest.split('@', 1)[1]}"
  return scheme + separator + rest
