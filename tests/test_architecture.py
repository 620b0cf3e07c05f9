"""The tree is the architecture: packages that depend one way, no import cycles (lazy imports
included), small modules and functions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
MAX_READING_FUNCTION_LINES = 40  # reading/ is where most future work happens: keep it readable
# Inside reading/'s functions a number is either one of these or a named parameter
# (reading/parameters.py). images.py decodes files (channel counts, byte sizes): of its
# functions only to_grayscale is a stage.
PLAIN_NUMBERS = {0, 1, 2, 0.5, 255}

# The packages (and top-level modules) of digitlab, lowest first: each may import only those on
# earlier lines, never a later one nor another on its own line. `digitlab` itself (the public
# API) and `__main__` sit above them all; anyone may read `digitlab.__version__`.
LAYERS = [
    ("errors",),
    ("files",),
    ("processes",),  # child processes that stop with their parent; the --jobs cap
    ("devices",),
    ("data",),
    ("models",),
    ("checkpoints",),  # the checkpoint format and its integrity checks
    ("reading",),  # an image → the 28×28 views a model sees; numbers split into digits
    ("predicting",),  # the model wrapper: Predictor, its backends, the readings it returns
    ("writing",),  # synthetic handwriting, normalised by reading's pipeline
    ("batch",),  # classify's files, workers, streams and outputs
    ("training",),
    ("reports",),
    ("export", "service", "studies"),
    ("cli",),
    ("__main__",),
]


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted((SRC / "digitlab").rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Every digitlab module `name` imports, at the top or inside a function."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name in known)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                if f"{base}.{alias.name}" in known:
                    out.add(f"{base}.{alias.name}")
                elif base in known:
                    out.add(base)
    out.discard(name)
    return out


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def layer_of(module: str) -> int:
    """The index in LAYERS of the package `module` belongs to (the root is above them all)."""
    parts = module.split(".")
    if len(parts) == 1:
        return len(LAYERS)
    for index, names in enumerate(LAYERS):
        if parts[1] in names:
            return index
    raise AssertionError(f"{module} belongs to no layer: add its package to LAYERS")


def package_of(module: str) -> str:
    return module.split(".")[1] if "." in module else module


def test_layers_name_every_package():
    for name in modules():
        layer_of(name)


def test_packages_depend_one_way():
    known = modules()
    upward = []
    for name, path in known.items():
        for target in imports_of(name, path, known):
            if target == "digitlab" and name != "digitlab":
                continue  # `from digitlab import __version__` (checked below: nothing else)
            same_package = package_of(target) == package_of(name)
            if not same_package and layer_of(target) >= layer_of(name):
                upward.append(f"{name} imports {target}")
    assert not upward, "imports against the layers (tests/test_architecture.py LAYERS):\n" + "\n".join(upward)


def test_only_the_version_is_read_from_the_root():
    for name, path in modules().items():
        if name == "digitlab":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "digitlab" and not node.level:
                taken = {a.name for a in node.names} - {"__version__"}
                known = all(f"digitlab.{n}" in modules() for n in taken)
                assert known, f"{name} imports {taken} from digitlab"


def test_no_import_cycles():
    known = modules()
    graph = {name: imports_of(name, path, known) for name, path in known.items()}
    # A module importing its own package's __init__ is how Python always starts a package.
    for name in graph:
        graph[name] = {m for m in graph[name] if not name.startswith(m + ".")}
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize("name", sorted(modules()))
def test_modules_and_functions_are_small(name):
    path = modules()[name]
    lines = path.read_text().splitlines()
    assert len(lines) <= MAX_MODULE_LINES, f"{path} has {len(lines)} lines"
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1  # type: ignore[operator]
            assert length <= MAX_FUNCTION_LINES, f"{path}:{node.lineno} {node.name}() has {length} lines"


def reading_functions() -> list[tuple[Path, ast.FunctionDef | ast.AsyncFunctionDef]]:
    found = []
    for path in sorted((SRC / "digitlab" / "reading").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found.append((path, node))
    return found


def test_reading_functions_are_short():
    long = [f"{path.name}:{node.lineno} {node.name}() has {node.end_lineno - node.lineno + 1} lines"
            for path, node in reading_functions()
            if node.end_lineno - node.lineno + 1 > MAX_READING_FUNCTION_LINES]  # type: ignore[operator]
    assert not long, "\n".join(long)


def test_reading_stages_name_their_numbers():
    inline = []
    for path, node in reading_functions():
        if path.name == "images.py" and node.name != "to_grayscale":
            continue
        for value in ast.walk(node):
            if (isinstance(value, ast.Constant) and type(value.value) in (int, float)
                    and value.value not in PLAIN_NUMBERS):
                inline.append(f"{path.relative_to(SRC)}:{value.lineno} {value.value!r}")
    assert not inline, "name these in reading/parameters.py:\n" + "\n".join(inline)
