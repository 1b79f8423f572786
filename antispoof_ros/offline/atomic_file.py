"""Write a file so that readers see the old content or the complete new one, never a part.

Models, dataset caches and checkpoints are read by other processes (the node, a resumed
training run); a crash or Ctrl-C in the middle of a write must not leave a truncated file.
"""

from __future__ import annotations

from collections.abc import Callable
import os
from pathlib import Path
import tempfile
from typing import BinaryIO


def write_atomically(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> Path:
    """Call ``write`` on a temporary file next to ``path``, then rename it into place.

    On any error the temporary file is removed and ``path`` is left untouched.
    """
    target = Path(path)
    if not target.parent.is_dir():
        raise FileNotFoundError(f'output directory {target.parent} does not exist')
    handle = tempfile.NamedTemporaryFile(
        dir=target.parent, prefix=f'.{target.name}.', suffix='.partial', delete=False)
    try:
        with handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(handle.name, 0o644)  # temporary files are created private (0600)
        os.replace(handle.name, target)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
    return target
