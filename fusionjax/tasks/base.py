"""The task contract: everything the generic trainer (fusionjax.train) calls.

A task owns its data and its network (built by name from `config.model`, see
fusionjax.models) and gives the trainer pure functions of (params, batch) and host-side
iterators and reports. The trainer reads no other setting of a task: a task checks its own
settings in `validate`, before any data is prepared or anything compiles.

Shapes: a Batch is a dict of arrays with a leading example axis B; on the device it is a
global jax.Array sharded over the mesh's `data` axis. Padding examples (to fill the last
evaluation batch) have weight 0.
"""
from __future__ import annotations

import abc
from collections.abc import Callable, Iterator
from typing import Any

import jax

from fusionjax import models, products

Batch = dict[str, Any]          # name -> (B, ...) array
Params = Any                    # a pytree of arrays
Metrics = dict[str, jax.Array]  # name -> scalar
PredictFn = Callable[..., Any]  # host function: (B, ...) numpy inputs -> numpy output(s)
Prediction = Any                # what predict_heldout returns, for evaluate/write_products


class Task(abc.ABC):
  """Base of every task. Subclasses are constructed as `Task(config, workdir)` after
  `validate(config, mode)`; the constructor prepares the data (once, on process 0)."""

  # Settings ---------------------------------------------------------------------------------

  @classmethod
  def validate(cls, config, mode: str) -> None:
    """Raises ValueError (or FileNotFoundError) naming the field and value of any setting
    this task cannot use in `mode` ('train', 'eval' or 'predict'); called before anything
    is prepared or compiled. The default checks that the model name is known."""
    models.model_class(config.model.name)

  @classmethod
  def adaptation_config(cls, config):
    """--mode=adapt: the config of the run that fine-tunes this task's model on the user's
    own data, config.predict.input, without truth (self-supervised: its training examples
    are made from that input alone), and then predicts it. The model settings stay those of
    `config`, so that the trained parameters carry over. NotImplementedError (the default)
    for a task without an adapt mode."""
    raise NotImplementedError(f"--mode=adapt: task {config.task!r} has no adapt mode; "
                              "use --mode=predict")

  # Pure functions (jitted by the trainer) ----------------------------------------------------

  @abc.abstractmethod
  def init_params(self, rng: jax.Array) -> Params:
    """The network's initial parameters (float32)."""

  @abc.abstractmethod
  def loss_fn(self, params: Params, batch: Batch) -> tuple[jax.Array, Metrics]:
    """(scalar loss, metrics to log) of a training batch."""

  def loss_and_gradient(self, params: Params,
                        batch: Batch) -> tuple[tuple[jax.Array, Metrics], Params]:
    """((loss, metrics), d loss / d params); by default the autodiff of `loss_fn` (a task may
    compute it in chunks to bound memory)."""
    return jax.value_and_grad(self.loss_fn, has_aux=True)(params, batch)

  @abc.abstractmethod
  def eval_fn(self, params: Params, batch: Batch) -> Metrics:
    """Sums over the batch's examples, weighted by batch['weight'], of per-example validation
    metrics, and 'weight' (their total): the trainer logs sum / weight as 'val_<name>'."""

  @abc.abstractmethod
  def apply(self, params: Params, *inputs: jax.Array) -> Any:
    """The network at inference on (B, ...) inputs (what `predict_heldout` and
    `predict_input` feed through their PredictFn)."""

  # Data ---------------------------------------------------------------------------------------

  @abc.abstractmethod
  def train_batches(self, *, start_step: int, global_batch_size: int) -> Iterator[Batch]:
    """This process's slices of the global training batches of steps start_step + 1, ...
    (a function of the step: a resumed run sees the batches an uninterrupted run would)."""

  @abc.abstractmethod
  def eval_batches(self, *, global_batch_size: int) -> Iterator[Batch]:
    """This process's slices of the validation split in global batches, with 'weight' (the
    split watched during training; never the test split)."""

  def skipped_records(self) -> dict[str, int]:
    """Unreadable records left out, per split (empty when none can be)."""
    return {}

  # Inference and reports ----------------------------------------------------------------------

  # The training step of the checkpoint whose parameters predict: set by the trainer (or
  # whoever restores the parameters) before `predict_input` and `write_products`; None where
  # unknown. Products record it through `provenance`.
  checkpoint_step: int | None = None

  def provenance(self, *inputs: str) -> products.Provenance:
    """The provenance products made from `inputs` (files, folders or scene names) record in
    their metadata: config.name, config.model.name and `checkpoint_step`."""
    return products.Provenance(experiment=self.config.get("name", ""),
                               model=self.config.model.name,
                               checkpoint_step=self.checkpoint_step, inputs=inputs)

  def inference_params(self, params: Params, *, restore: Callable[[str], Params]) -> Params:
    """The parameters `apply` runs with in evaluation and prediction: by default the trained
    ones. `restore(workdir)` gives the parameters of another run's latest checkpoint (e.g.
    for an ensemble)."""
    del restore
    return params

  def heldout_splits(self) -> tuple[str, ...]:
    """The held-out parts of the data this task predicts and evaluates, in order:
    'validation' (watched during training, used to select models and settings) and, where
    the data has one, 'test' (reported once, at the end)."""
    return ("validation", "test")

  @abc.abstractmethod
  def predict_heldout(self, predict: PredictFn, batch_size: int, split: str) -> Prediction:
    """The model's prediction of the held-out `split` (one of `heldout_splits`; computed
    once for `evaluate` and `write_products`); `batch_size` is a multiple of the device
    count."""

  @abc.abstractmethod
  def evaluate(self, prediction: Prediction, split: str) -> dict:
    """The report of `split` written to eval.json under its name: the figures of the model
    under the key 'model' (with 'model_name') and of each baseline under its own name."""

  @abc.abstractmethod
  def write_products(self, prediction: Prediction, split: str, out_dir: str) -> list[str]:
    """Writes the products of the held-out `split`'s prediction into out_dir, each recording
    `provenance` in its metadata; returns their paths."""

  def predict_sources(self) -> list[str]:
    """--mode=predict with config.predict.input: the user's inputs it holds, each predicted
    on its own by `predict_input` (e.g. the files of a folder); by default the input
    itself. Raises (ValueError, FileNotFoundError) only when there is nothing to predict."""
    return [self.config.predict.input]

  @abc.abstractmethod
  def predict_input(self, predict: PredictFn, batch_size: int, source: str) -> dict:
    """Processes one of `predict_sources` and writes its products to config.predict.output,
    each recording `provenance` (of its input) in its metadata. Returns {'outputs': [the
    paths written], ...} with any details worth reporting (predict_report.json lists them).
    An input that cannot be processed (unreadable, wrong shape, a missing companion file)
    raises ValueError or OSError naming the file and the reason: the batch
    (fusionjax.predict_batch) lists it as skipped and goes on to the next."""

  def predict_arrays(self, predict: PredictFn, batch_size: int, *args, **inputs) -> Any:
    """fusionjax.load(workdir).predict(...): the model applied to the user's NumPy arrays,
    tiled as `predict_input` tiles files; each task documents its inputs and result.
    NotImplementedError (the default) for a task without one."""
    raise NotImplementedError(f"task {self.config.task!r} has no array prediction; use "
                              "predict_files (--mode=predict)")
