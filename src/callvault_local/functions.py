"""The Lambda handlers of `template.yaml`, loaded from their function folders as Lambda loads them."""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from callvault_local import deployed

Handler = Callable[[dict[str, Any], Any], Any]

_loaded: dict[tuple[Path, int], ModuleType] = {}
_lock = threading.Lock()


def load_module(code_uri: Path, handler: str, function: str, container: int = 0) -> ModuleType:
    """The module of `handler` (`module.attribute`, as in the template) from the folder `code_uri`;
    loaded once per `container` (a separate instance of the module's globals, as each Lambda
    container has its own).

    Each function folder has its own `app.py`, so the module is loaded under the function's
    logical id rather than imported by its (shared) name.
    """
    module_name = handler.rsplit(".", 1)[0]
    source = code_uri / f"{module_name.replace('.', '/')}.py"
    with _lock:
        if (source, container) not in _loaded:
            name = f"callvault_fn_{function}" + (f"_{container}" if container else "")
            spec = importlib.util.spec_from_file_location(name, source)
            if spec is None or spec.loader is None:
                raise FileNotFoundError(f"{function}: no handler module at {source}")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            _loaded[source, container] = module
        return _loaded[source, container]


def load_handler(code_uri: Path, handler: str, function: str, container: int = 0) -> Handler:
    """The handler callable the template names (in `container`'s instance of its module); run as
    deployed (the template's environment, its calls checked) once `deployed.activate()` was called."""
    handler_fn: Handler = getattr(load_module(code_uri, handler, function, container), handler.rsplit(".", 1)[1])
    return deployed.wrap(function, handler_fn) if deployed.active() and deployed.checks(function, code_uri) else handler_fn
