# The package's layers, and a test that the imports keep to them: a module may import
# only modules of its own layer or of one below it, and the imports have no cycle.
# Every import counts, also those inside functions and under TYPE_CHECKING: a lazy
# import of a module downstream is still a dependency on it. README's "Design"
# section draws these layers; a new module goes into one of them here.
from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "purepcap"

# Bottom first. "purepcap" is the package's __init__ (the public names).
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("errors", "linktypes", "_protocols", "_schema", "_progress", "_compat", "_loops")),  # stdlib only
    ("sources", ("_sources",)),  # bytes in: paths, pipes, URLs, decompression
    ("containers", ("format", "_container")),  # pcap and pcapng: Packets in, files out
    ("headers", ("headers",)),  # link, IP and transport decoding
    ("application", ("_dns", "_http", "_tls", "_appfields", "_reassembly")),  # DNS, HTTP and TLS fields of a payload
    ("filter", ("filter", "filter._lexer", "filter._parser", "filter._codegen", "filter._optimize",
                "filter._bpf", "filter._match", "filter._linkgen",
                "filter._tunnel")),
    ("captures", ("_open", "live", "_live_linux", "_live_bsd")),  # files and interfaces, filtered
    ("records", ("_records", "_records_pypy")),
    ("flows", ("_community_id", "_flows")),  # conversations from packets
    ("frames", ("_batches", "_categories", "_columns", "dataframe", "_flowframe", "arrow")),
    ("api", ("purepcap",)),
    ("apps", ("intake_source", "_intake_reader", "intake", "cli", "_lines", "__main__")),
    ("tools", ("build", "strategies")),  # packet builders for tests: nothing in the library uses them
]


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_module(name: str) -> bool:
    rel = Path(*name.split("."))
    return (ROOT / rel).with_suffix(".py").is_file() or (ROOT / rel / "__init__.py").is_file()


def imports_of(path: Path) -> set[str]:
    """The purepcap modules ``path`` imports (full dotted names), anywhere in it."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "purepcap")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "purepcap":
                continue
            # `from . import x` names a submodule x, or a name defined by the package
            subs = [f"{target}.{a.name}" for a in node.names if _is_module(f"{target}.{a.name}")]
            found.update(subs)
            if len(subs) < len(node.names):
                found.add(target)
    found.discard(name)
    return found


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): imports_of(p) for p in sorted(PACKAGE.rglob("*.py"))}


def _layer_of() -> dict[str, int]:
    return {("purepcap." + m if m != "purepcap" else m): i
            for i, (_, mods) in enumerate(LAYERS) for m in mods}


def test_every_module_has_a_layer():
    layer = _layer_of()
    missing = sorted(set(_graph()) - set(layer))
    assert not missing, f"put these modules into a layer in tests/test_layers.py: {missing}"


def test_no_module_imports_one_downstream_of_it():
    layer = _layer_of()
    names = [n for n, _ in LAYERS]
    bad = [f"{m} ({names[layer[m]]}) imports {d} ({names[layer[d]]})"
           for m, deps in _graph().items() for d in sorted(deps)
           if m in layer and d in layer and layer[d] > layer[m]]
    assert not bad, "\n".join(bad)


def test_no_import_cycle():
    graph = _graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[list[str]] = []

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 1:
                cycles.append(path[path.index(d):] + [d])
            elif d not in state:
                visit(d, path + [d])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_checker_sees_every_kind_of_import(tmp_path):
    """Function-level, relative, `from . import module` and absolute imports all count."""
    mod = PACKAGE / "headers.py"
    assert "purepcap._protocols" in imports_of(mod) and "purepcap.linktypes" in imports_of(mod)
    deps = imports_of(PACKAGE / "dataframe.py")
    assert {"purepcap._columns", "purepcap._batches", "purepcap._records"} <= deps  # inside functions
    assert "purepcap" in imports_of(PACKAGE / "cli.py")  # from . import __version__: the package
    assert "purepcap.filter._bpf" in imports_of(PACKAGE / "filter" / "_codegen.py")
