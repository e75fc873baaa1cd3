"""A TFDS generator builder that writes a chosen number of TFRecord shards per split."""
from __future__ import annotations

import tensorflow_datasets as tfds


class ShardedBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Subclasses set `self._num_shards` (at least the number of reading processes) before
  calling this constructor."""

  _num_shards: int

  def download_and_prepare(self, **kwargs):
    """Writes the splits (once) in `self._num_shards` shards each."""
    kwargs.setdefault("download_config",
                      tfds.download.DownloadConfig(num_shards=self._num_shards))
    super().download_and_prepare(**kwargs)
