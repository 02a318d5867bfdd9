import json
import re
import shutil

import pytest
from neurons_helpers import TEXTS, char_lm, code_pieces, word_classifier
from typer.testing import CliRunner

from lstmlens.cli import app
from lstmlens.methods import method_names
from lstmlens.report import build_report, json_html, write_report


def no_external_resources(page: str) -> None:
    assert not re.search(r"""(src|href)\s*=\s*['"]?\s*(https?:)?//""", page, re.I)
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", page, re.I)
    assert "<script" not in page.lower() and "<link" not in page.lower()
    assert "<iframe" not in page.lower()


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory):
    path = word_classifier(tmp_path_factory.mktemp("m") / "clf", hidden=6)
    (path / "rules.json").write_text(json.dumps(
        {"rules": [{"phrase": "<b>dull</b>", "class": "negative", "precision": 0.9}]}))
    (path / "evaluation.json").write_text(json.dumps({"methods": {"cd": {"aopc": 0.12}}}))
    return path


def test_classifier_report_is_self_contained_and_escaped(classifier_dir, tmp_path):
    out = write_report(classifier_dir, tmp_path / "r.html", corpus=TEXTS,
                       example="<script>alert(1)</script> is not a film")
    page = out.read_text()
    no_external_resources(page)
    assert "&lt;" in page and "alert" in page  # the example's text is shown, escaped
    assert page.count("data:image/png;base64,") >= 4  # saturation, units, trajectories, horizon
    for name in method_names():  # every method: explained, or said why not
        assert f"<b>{name}</b>" in page
    assert "not applicable" in page or all(f"<b>{n}</b>:" not in page for n in method_names())
    for section in ("Model", "Example explanations", "Gate saturation",
                    "Top interpretable units", "State trajectories", "Memory horizon",
                    "Rules", "Evaluation"):
        assert f"<h2>{section}</h2>" in page
    assert "&lt;b&gt;dull&lt;/b&gt;" in page and "0.12" in page


def test_language_model_report_without_rules(tmp_path):
    model_dir = char_lm(tmp_path / "lm")
    page = build_report(model_dir, corpus=code_pieces(8, 150))
    no_external_resources(page)
    assert "<h2>Rules</h2>" not in page and "<h2>Evaluation</h2>" not in page
    assert "inside_string" in page and "not applicable" in page  # attention: the LM has none
    # the next character is explained by the exact methods, not declared not applicable
    assert "<b>cd</b>: not applicable" not in page and "<b>lrp</b>: not applicable" not in page
    assert page.count("class='method'") >= 8


def test_report_cli(classifier_dir, tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(TEXTS))
    shutil.copytree(classifier_dir, tmp_path / "m")
    res = CliRunner().invoke(app, ["report", str(tmp_path / "m"), "--out",
                                   str(tmp_path / "o.html"), "--corpus", str(corpus)])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "o.html").exists() and "wrote" in res.output
    res = CliRunner().invoke(app, ["report", str(tmp_path / "nothing")])
    assert res.exit_code == 1 and "error" in res.output and "Traceback" not in res.output


def test_json_html_escapes():
    page = json_html({"<k>": ["<v>", 1.23456789], "rows": [{"a": "<x>"}, {"b": 2}]})
    assert "<k>" not in page and "&lt;k&gt;" in page and "1.235" in page
    assert "<th>a</th><th>b</th>" in page
