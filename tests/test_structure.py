"""The package's shape: imported as `facetrend`, and render formats what the analysis computed."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from .conftest import REPO

COMPUTING = ("facetrend.train", "facetrend.collect", "facetrend.faces", "facetrend.decode", "facetrend.analyse",
             "facetrend.rank", "facetrend.match", "facetrend.describe", "torch", "cv2", "sklearn", "scipy")


def _modules_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/")
    return set(done.stdout.split())


def test_the_installed_package_is_facetrend_not_generator():
    done = subprocess.run([sys.executable, "-c", "import facetrend, importlib.util; "
                           "print(importlib.util.find_spec('generator'))"],
                          capture_output=True, text=True, check=True, cwd="/")
    assert done.stdout.strip() == "None"  # no top-level `generator` to collide with the index's distribution
    for path in sorted((REPO / "generator").glob("*.py")) + sorted((REPO / "tests").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                assert not any(n == "generator" or n.startswith("generator.") for n in names), path


def test_render_imports_nothing_that_computes():
    loaded = _modules_after("import facetrend.render")
    assert not loaded & set(COMPUTING)


def test_templates_are_found_as_package_resources():
    loaded = _modules_after("import facetrend.render as r; assert (r.TEMPLATES / 'report.html').is_file()")
    assert "facetrend.templates" in loaded


def test_templates_do_no_arithmetic_on_results():
    """Numbers reach the templates computed; a template formats them (the `percent` filter) and chooses words."""
    for path in sorted(Path(REPO / "templates").rglob("*.html")):
        text = path.read_text(encoding="utf-8")
        for token in ("* 100", " / ", "| min", "| max", "| sum", "selectattr("):
            for tag in _tags(text):
                assert token not in tag, f"{path.name}: {tag!r}"


def _tags(text: str) -> list[str]:
    out, i = [], 0
    while (start := text.find("{", i)) >= 0:
        if text[start + 1:start + 2] in "{%":
            end = text.find("}", start + 2)
            out.append(text[start:end + 1])
            i = end + 1
        else:
            i = start + 1
    return out
