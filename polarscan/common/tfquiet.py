"""Import TensorFlow without the C++ start-up lines it writes straight to file descriptor 2.

TensorFlow ≥ 2.16 prints "All log messages before absl::InitializeLog() …" and CUDA probing lines
from C++ before any logging setting applies (``TF_CPP_MIN_LOG_LEVEL`` does not reach them). For a
cron job's log and a first-time user they are noise, so commands that need TensorFlow import it
here with fd 2 pointed at /dev/null. With ``-vv`` (``POLARSCAN_TF_VERBOSE=1``) nothing is hidden.
Import errors are unaffected: they are Python exceptions, raised after fd 2 is restored.
"""

from __future__ import annotations

import contextlib
import os
import sys


def import_tensorflow_quietly() -> None:
    """Import TensorFlow once, silencing its C++ start-up chatter (no-op on other backends)."""
    if "tensorflow" in sys.modules or os.environ.get("POLARSCAN_TF_VERBOSE") == "1":
        return
    if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        # an ImportError is reported by the caller's own import, with fd 2 restored
        with contextlib.suppress(ImportError):
            import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
