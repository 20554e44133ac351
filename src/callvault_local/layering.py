"""The house seen from its imports: every import arrow points down a declared order of floors,
and no modules import each other round a cycle.

Reads (with `ast`, never importing them) the modules of the layer (`layers/callvault/callvault`),
the handlers (`functions/*/app.py`) and the local tooling (`src/callvault_local`), and every
import in them: module level and inside functions alike (a function-level import is an arrow
all the same, only a later one), except under `if TYPE_CHECKING:` (never run). An arrow to a
module on a higher floor points up; arrows within a floor are allowed as long as they form no
cycle. `importlib.import_module` of a name made at run time (the vendor registry's adapters)
is not an arrow this reads.

`python -m callvault_local.layering [ROOT]` prints the floors' breaches and exits 1 when there
is one; `tests/unit/test_layering.py` holds the repository to none.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Where modules live (relative to the repository) and the package name their path starts at.
SOURCES = (("layers/callvault", "callvault"), (".", "functions"), ("src", "callvault_local"))


@dataclass(frozen=True)
class Floor:
    name: str
    modules: tuple[str, ...]  # module names, or fnmatch patterns of them
    reason: str  # why these modules stand on this floor, in a line


# Bottom first. A module imports only from its own floor and the floors below it.
FLOORS = (
    # The layer (what a deployed function runs).
    Floor(
        "vocabulary",
        (
            "callvault",
            "callvault.errors",
            "callvault.models",
            "callvault.config",
            "callvault.jsonbody",
            "callvault.observability",
            "callvault.http",
            "callvault.auth",
            "callvault.vendors",
        ),
        "types, settings, strict JSON, logging, HTTP shapes, signatures and the vendor registry (names only): no I/O",
    ),
    Floor(
        "clients",
        ("callvault.aws", "callvault.archive", "callvault.secrets", "callvault.download", "callvault.vendor_api"),
        "one outside service each (boto3 clients, the S3 archive, Secrets Manager, safe HTTPS fetches, a vendor's API)",
    ),
    Floor(
        "store",
        ("callvault.store", "callvault.store.*", "callvault.changes"),
        "the table's items (keys, writes, reads) and the stream's view of them; knows no vendor's payloads",
    ),
    Floor(
        "vendors",
        ("callvault.vendors.*",),
        "each vendor's payloads and API mapped to the normalized session; stores nothing",
    ),
    Floor("recordings", ("callvault.recordings",), "copies a session's recording: a vendor's link or audio in a body"),
    Floor("ingest", ("callvault.ingest",), "the write pipeline: verify, parse, archive, store (audio in a body: recordings)"),
    Floor(
        "read and pull",
        ("callvault.sessions", "callvault.reconcile"),
        "read back what ingest wrote (parsing archived bodies as it did); pull what it missed through it",
    ),
    Floor(
        "consumers",
        ("callvault.analytics", "callvault.outbound", "callvault.notify"),
        "what follows a stored change: the analytics dataset, events out, their webhooks",
    ),
    Floor(
        "whole-session operations",
        ("callvault.erasure", "callvault.api"),
        "erasure reaches every copy (items, bodies, the dataset); the read/erase API wraps sessions",
    ),
    Floor("handlers", ("functions.*",), "each function's entry point: thin, over the layer"),
    # The local tooling (never deployed): above all of the layer.
    Floor(
        "local descriptions",
        (
            "callvault_local",
            "callvault_local.template",
            "callvault_local.apigw",
            "callvault_local.iam",
            "callvault_local.progress",
            "callvault_local.offline",
            "callvault_local.sample_audio",
            "callvault_local.moto_patches",
            "callvault_local.samples",
            "callvault_local.copier_log",
            "callvault_local.event_schemas",
            "callvault_local.layering",
        ),
        "read the template, the samples or the source, or shape a value: no local stack",
    ),
    Floor(
        "local stack",
        ("callvault_local.stack", "callvault_local.moto_cloudformation", "callvault_local.console"),
        "the local stack's names, its resources in moto, and where a command finds it",
    ),
    Floor(
        "functions run as deployed",
        (
            "callvault_local.deployed",
            "callvault_local.functions",
            "callvault_local.bus",
            "callvault_local.queues",
            "callvault_local.streams",
        ),
        "loading the template's handlers and running them as AWS does (environment, IAM, bus, streams)",
    ),
    Floor(
        "local services and commands",
        (
            "callvault_local.openapi",
            "callvault_local.ui",
            "callvault_local.ui.*",
            "callvault_local.fake_vendor_apis",
            "callvault_local.sample_events",
            "callvault_local.forget",
            "callvault_local.reconcile",
            "callvault_local.replay",
            "callvault_local.sql",
            "callvault_local.stored",
        ),
        "what `make dev` serves beside the API, and each command's work",
    ),
    Floor("local server", ("callvault_local.dev",), "`make dev`: the API, moto, the browser and the queues together"),
    Floor("entry points", ("callvault_local.cli", "callvault_local.soak"), "the `callvault` command and the soak run"),
)


@dataclass(frozen=True, order=True)
class Arrow:
    source: str
    target: str
    path: str
    line: int
    in_function: bool

    def __str__(self) -> str:
        where = " (in a function)" if self.in_function else ""
        return f"{self.source} -> {self.target}  {self.path}:{self.line}{where}"


@dataclass(frozen=True)
class Report:
    modules: dict[str, str]  # module -> its path, relative to the root
    arrows: list[Arrow]
    unplaced: list[str]  # modules on no floor
    upward: list[Arrow]
    cycles: list[list[str]]  # each strongly connected group of modules, sorted
    floors: Sequence[Floor] = FLOORS

    @property
    def clean(self) -> bool:
        return not (self.unplaced or self.upward or self.cycles)

    def lines(self) -> list[str]:
        out = [f"{len(self.modules)} modules, {len(self.arrows)} import arrows between them"]
        out += [f"on no floor: {module}" for module in self.unplaced]
        out.append(f"upward arrows: {len(self.upward)}")
        out += [
            f"  {arrow} [{floor_of(arrow.source, self.floors)} -> {floor_of(arrow.target, self.floors)}]" for arrow in self.upward
        ]
        out.append(f"cycles: {len(self.cycles)}")
        for cycle in self.cycles:
            inside = set(cycle)
            out.append("  " + " <-> ".join(cycle))
            out += [f"    {arrow}" for arrow in self.arrows if arrow.source in inside and arrow.target in inside]
        return out


def floor_index(module: str, floors: Sequence[Floor] = FLOORS) -> int | None:
    """The floor `module` stands on (0 the lowest), or None when no floor names it."""
    for index, floor in enumerate(floors):
        if any(module == pattern or fnmatchcase(module, pattern) for pattern in floor.modules):
            return index
    return None


def floor_of(module: str, floors: Sequence[Floor] = FLOORS) -> str:
    index = floor_index(module, floors)
    return "no floor" if index is None else floors[index].name


def find_modules(root: Path, sources: Sequence[tuple[str, str]] = SOURCES) -> dict[str, Path]:
    """Each module under the sources, by its dotted name (a package by its own name)."""
    modules: dict[str, Path] = {}
    for folder, package in sources:
        base = root / folder
        for path in sorted((base / package).rglob("*.py")):
            parts = path.relative_to(base).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, in_function: bool = False) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement that can run, and whether it is inside a function."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, in_function
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                yield from _imports(ast.Module(body=[child], type_ignores=[]), in_function)
        else:
            inner = in_function or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            yield from _imports(node, inner)


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool, known: set[str]) -> Iterator[str]:
    """The known modules an import statement imports from (the one it names, or a submodule it names)."""

    def deepest(name: str) -> str | None:
        parts = name.split(".")
        for end in range(len(parts), 0, -1):
            if ".".join(parts[:end]) in known:
                return ".".join(parts[:end])
        return None

    if isinstance(node, ast.Import):
        for alias in node.names:
            found = deepest(alias.name)
            if found:
                yield found
        return
    if node.level:
        package = module.split(".") if is_package else module.split(".")[:-1]
        base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    for alias in node.names:
        found = deepest(f"{base}.{alias.name}") or deepest(base)
        if found:
            yield found


def read_arrows(root: Path, modules: dict[str, Path]) -> list[Arrow]:
    known = set(modules)
    arrows: set[Arrow] = set()
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node, in_function in _imports(tree):
            for target in _targets(node, module, path.name == "__init__.py", known):
                if target != module:
                    arrows.add(Arrow(module, target, str(path.relative_to(root)), node.lineno, in_function))
    return sorted(arrows)


def cycles_of(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))
    return sorted(groups)


def check(root: Path = ROOT, floors: Sequence[Floor] = FLOORS, sources: Sequence[tuple[str, str]] = SOURCES) -> Report:
    paths = find_modules(root, sources)
    arrows = read_arrows(root, paths)
    placed = {module: floor_index(module, floors) for module in paths}
    upward = [
        arrow
        for arrow in arrows
        if (source := placed[arrow.source]) is not None and (target := placed[arrow.target]) is not None and target > source
    ]
    edges: dict[str, set[str]] = {module: set() for module in paths}
    for arrow in arrows:
        edges[arrow.source].add(arrow.target)
    return Report(
        modules={module: str(path.relative_to(root)) for module, path in paths.items()},
        arrows=arrows,
        unplaced=sorted(module for module, floor in placed.items() if floor is None),
        upward=upward,
        cycles=cycles_of(edges),
        floors=floors,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    report = check(Path(args[0]) if args else ROOT)
    print("\n".join(report.lines()))
    return 0 if report.clean else 1


if __name__ == "__main__":
    sys.exit(main())
