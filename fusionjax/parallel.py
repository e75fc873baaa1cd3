"""One device mesh over every device of every process; batch sharded on 'data'.

Parameters and optimizer state are replicated and the batch is split along its leading axis,
which is what `pmap` data parallelism does, written with `jax.jit` and shardings.
"""
from __future__ import annotations

import collections
import logging
from collections.abc import Iterator

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"


def initialize(coordinator_address: str = "", num_processes: int = 1,
               process_id: int = 0) -> None:
  """Starts multi-process JAX when several processes are asked for.

  With num_processes > 1 every process calls this with the same coordinator address
  (host:port of process 0) and its own process_id. On CPU, collectives go over gloo.
  """
  if num_processes <= 1:
    return
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(coordinator_address=coordinator_address,
                             num_processes=num_processes, process_id=process_id)
  logging.info("Process %d of %d, %d local and %d global devices.", jax.process_index(),
               jax.process_count(), jax.local_device_count(), jax.device_count())


def make_mesh() -> Mesh:
  """A 1-D mesh over all devices of all processes, axis 'data'."""
  return Mesh(np.asarray(jax.devices()), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec())


def batch_sharded(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def check_global_batch(global_batch_size: int, *, field: str = "train.batch_size") -> None:
  """Errors, naming `field`, if the global batch does not split evenly over the devices."""
  devices = jax.device_count()
  if global_batch_size % devices:
    raise ValueError(f"{field}={global_batch_size} is not divisible by the {devices} devices "
                     f"({jax.process_count()} process(es)); choose a multiple of {devices}")


def global_batch(local_batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
  """Assembles each process's slice of the batch into global arrays sharded on 'data'."""
  sharding = batch_sharded(mesh)
  return {key: jax.make_array_from_process_local_data(sharding, value)
          for key, value in local_batch.items()}


def prefetch_to_devices(local_batches: Iterator[dict[str, np.ndarray]], mesh: Mesh,
                        size: int = 2) -> Iterator[dict[str, jax.Array]]:
  """Global batches (see `global_batch`), `size` of them already on their way to the devices
  while the step before computes."""
  queue = collections.deque()
  for local in local_batches:
    queue.append(global_batch(local, mesh))
    if len(queue) > size:
      yield queue.popleft()
