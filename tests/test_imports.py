"""The package's import graph: no circle, and data flows one way,

    config → data → model → objective → step → loop → evaluate → figures → report → compose,

read from the ASTs of vae_jax/ (imports inside functions included). A module may import
only from its own layer or an earlier one; evaluation, figures and reports never reach the
training loop, directly or through another module.
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1] / "vae_jax"

# The layers, earliest first. Every module of vae_jax/ must be named by exactly one prefix.
LAYERS = [
    # foundations: errors, files, progress, the component shape, swept hyper-parameters
    ("vae_jax.errors", "vae_jax.distributed", "vae_jax.files", "vae_jax.progress"),
    ("vae_jax.components", "vae_jax"),
    ("vae_jax.workdir", "vae_jax.cli"),
    ("vae_jax.hyper", "vae_jax.cpu_tuning", "vae_jax.platform", "vae_jax.mesh"),
    ("vae_jax.data",),
    ("vae_jax.distributions", "vae_jax.likelihoods", "vae_jax.nets", "vae_jax.priors"),
    ("vae_jax.model",),
    ("vae_jax.objectives",),
    # the base config is assembled from the components' own defaults, so it sits above them
    ("vae_jax.config_lib", "vae_jax.config_check"),
    ("vae_jax.state", "vae_jax.checkpoint", "vae_jax.batching", "vae_jax.apply"),
    ("vae_jax.step",),
    ("vae_jax.train", "vae_jax.resume"),
    ("vae_jax.evaluate",),
    ("vae_jax.figures",),
    ("vae_jax.report",),
    ("vae_jax.assess", "vae_jax.aggregate"),
    ("vae_jax.experiment", "vae_jax.sweep"),
    ("vae_jax.main", "vae_jax.evaluate.__main__", "vae_jax.sweep.__main__"),  # entry points
]
TRAINING = ("vae_jax.train", "vae_jax.experiment", "vae_jax.main")


def _modules() -> dict[str, pathlib.Path]:
    mods = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


def _graph() -> dict[str, set[str]]:
    """module -> the vae_jax modules it imports (a package's __init__ counts as it)."""
    mods = _modules()

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    edges = {}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                # `from pkg import mod` imports pkg.mod; `from mod import name`, mod itself
                targets |= {
                    f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names
                }
        resolved = {resolve(t) for t in targets if t.startswith("vae_jax")}
        edges[name] = {t for t in resolved if t and t != name}
    return edges


def _layer(module: str) -> int:
    matches = [
        (len(prefix), i)
        for i, layer in enumerate(LAYERS)
        for prefix in layer  # the package itself is matched exactly, never as a prefix
        if module == prefix or (prefix != "vae_jax" and module.startswith(prefix + "."))
    ]
    if not matches:
        raise AssertionError(f"{module} is in no layer of tests/test_imports.py")
    return max(matches)[1]  # the longest prefix decides (evaluate.__main__ vs evaluate)


GRAPH = _graph()


def test_every_module_has_a_layer():
    for module in GRAPH:
        _layer(module)


def test_no_import_circle():
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(module, path):
        state[module] = 1
        for target in GRAPH[module]:
            if state.get(target) == 1:
                cycle = path[path.index(target) :] + [target]
                raise AssertionError("import circle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_imports_only_from_its_layer_or_earlier(module):
    later = [t for t in GRAPH[module] if _layer(t) > _layer(module)]
    assert not later, f"{module} (layer {_layer(module)}) imports later layers: {later}"


def _reachable(module: str) -> set[str]:
    seen, todo = set(), [module]
    while todo:
        for target in GRAPH[todo.pop()]:
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


@pytest.mark.parametrize(
    "module",
    sorted(m for m in GRAPH if m.split(".")[1:2] in (["evaluate"], ["figures"], ["report"])),
)
def test_evaluation_never_reaches_the_training_loop(module):
    reached = _reachable(module) & set(TRAINING)
    assert not reached, f"{module} reaches {sorted(reached)}"
