"""Atomic file writes (a reader sees the old file or the complete new one, never a part) and
an exclusive lock between processes."""
from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile


@contextlib.contextmanager
def atomic_path(path: str):
  """Yields a temporary path beside `path`; on success it is renamed onto `path`.

  On an exception the temporary file is removed and `path` is left as it was.
  """
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  suffix = os.path.splitext(path)[1]
  handle, temporary = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=directory)
  os.close(handle)
  try:
    yield temporary
    # mkstemp makes the file private (0600); give it the mode a plain open() would.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temporary, 0o666 & ~umask)
    os.replace(temporary, path)
  except BaseException:
    if os.path.exists(temporary):
      os.remove(temporary)
    raise


@contextlib.contextmanager
def exclusive(lock_path: str):
  """Holds an exclusive lock on the file `lock_path` (created if needed) while the block
  runs: other processes of this host (or of a file system with POSIX locks) entering the
  same block wait."""
  os.makedirs(os.path.dirname(os.path.abspath(lock_path)), exist_ok=True)
  with open(lock_path, "a") as handle:
    fcntl.flock(handle, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(handle, fcntl.LOCK_UN)
