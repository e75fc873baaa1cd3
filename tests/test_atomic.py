"""Atomic writes: the old file or the complete new one, with the usual permissions."""
import os
import stat

import pytest

from fusionjax import atomic


def test_written_file_has_the_mode_of_a_plain_open_and_a_failed_write_leaves_the_old(tmp_path):
  path = tmp_path / "eval.json"
  with atomic.atomic_path(str(path)) as temporary:
    with open(temporary, "w") as stream:
      stream.write("complete")
  umask = os.umask(0)
  os.umask(umask)
  assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
  with pytest.raises(RuntimeError):
    with atomic.atomic_path(str(path)) as temporary:
      with open(temporary, "w") as stream:
        stream.write("half")
      raise RuntimeError("interrupted")
  assert path.read_text() == "complete"
  assert [p.name for p in tmp_path.iterdir()] == ["eval.json"]
