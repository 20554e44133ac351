"""The Lambda handlers of `template.yaml`, loaded from their function folders as Lambda loads them."""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

Handler = Callable[[dict[str, Any], Any], Any]

_loaded: dict[tuple[Path, str], Handler] = {}
_lock = threading.Lock()


def load_handler(code_uri: Path, handler: str, function: str) -> Handler:
    """`handler` (`module.attribute`, as in the template) from the folder `code_uri`; loaded once.

    Each function folder has its own `app.py`, so the module is loaded under the function's
    logical id rather than imported by its (shared) name.
    """
    module_name, attribute = handler.rsplit(".", 1)
    source = code_uri / f"{module_name.replace('.', '/')}.py"
    key = (source, attribute)
    with _lock:
        if key not in _loaded:
            spec = importlib.util.spec_from_file_location(f"callvault_fn_{function}", source)
            if spec is None or spec.loader is None:
                raise FileNotFoundError(f"{function}: no handler module at {source}")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            _loaded[key] = getattr(module, attribute)
        return _loaded[key]
