"""docs/tutorial.md runs end to end: its python blocks, in order, in one namespace, against
tiny stand-in models saved where the tutorial expects the reference models."""

import os
import re
from pathlib import Path

from neurons_helpers import char_lm, word_classifier

TUTORIAL = Path(__file__).resolve().parents[1] / "docs" / "tutorial.md"


def blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", TUTORIAL.read_text(encoding="utf-8"), re.S)


def test_tutorial_runs_end_to_end(tmp_path, capsys):
    code = blocks()
    assert len(code) >= 5
    joined = "\n".join(code)
    for step in ("lstmlens.load", "lstmlens.trace", "lstmlens.explain", "find_units",
                 "write_report"):
        assert step in joined
    char_lm(tmp_path / "runs" / "textgen-code")
    word_classifier(tmp_path / "runs" / "sentiment")
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        namespace: dict = {}
        for i, block in enumerate(code):
            exec(compile(block, f"{TUTORIAL.name} block {i + 1}", "exec"), namespace)
    finally:
        os.chdir(old)
    out = capsys.readouterr().out
    assert "cell states: (1, " in out and "AUC" in out and "wrote report.html" in out
    for f in ("unit.png", "saturation.png", "report.html"):
        assert (tmp_path / f).stat().st_size > 1000
