"""End-to-end tests of ``lstmlens serve`` in real headless Chromium.

The real application runs under uvicorn on 127.0.0.1 (one server per tiny random-weight
model directory); Chromium, driven by playwright, opens every view, types, clicks and reads
what is rendered, and the figures shown are checked against the :class:`Explorer` (or the
model) directly. A screenshot of every view goes to ``$LSTMLENS_SCREENSHOTS`` (default
``build/screenshots/``). Without Chromium the tests are skipped, except under CI (``$CI``
set), where a missing browser is a failure: ``.ci/run`` installs Debian's ``chromium``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from neurons_helpers import TEXTS
from test_automata import exact_lstm
from test_explain_models import _forecaster, _translator, _windows

import lstmlens
from lstmlens.datasets.formal import tomita_dfa
from lstmlens.explorer import Explorer
from lstmlens.models import ClassifierConfig, LSTMClassifier
from lstmlens.models.seq2seq import TokenizerPair
from lstmlens.rules import PhraseRules
from lstmlens.tokenizers import Tokenizer
from lstmlens.weights import SERIES

CHROMIUM = (os.environ.get("LSTMLENS_CHROMIUM") or shutil.which("chromium")
            or "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = Path(os.environ.get("LSTMLENS_SCREENSHOTS")
             or Path(__file__).resolve().parents[1] / "build" / "screenshots")
# Vocabulary entries that are markup: the page must show them as text, never run them.
XSS = ["<script>alert(1)</script>", '<img src=x onerror="window.__xss=1">']
SENTENCE = "a good film , great acting"
WAIT = 30_000  # ms: the machine running the tests may be busy


# -- browser and servers -------------------------------------------------------------------

def _browser_missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    if not Path(CHROMIUM).is_file():
        return (f"chromium is not installed at {CHROMIUM} (apt-get install chromium, or set "
                "LSTMLENS_CHROMIUM)")
    return None


@pytest.fixture(scope="module")
def browser():
    why = _browser_missing()
    if why is not None:
        if os.environ.get("CI"):
            pytest.fail(f"{why}; CI must run the browser tests", pytrace=False)
        pytest.skip(why)
    from playwright.sync_api import sync_playwright
    pw = sync_playwright().start()
    b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield b
    b.close()
    pw.stop()


class _Server:
    """The app of one explorer, served by uvicorn from a thread on a free loopback port."""

    def __init__(self, explorer: Explorer) -> None:
        import uvicorn

        from lstmlens.server import create_app
        self.explorer = explorer
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
        self.server = uvicorn.Server(uvicorn.Config(create_app(explorer), log_level="warning",
                                                    lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]},
                                       daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def _classifier_dir(root: Path) -> tuple[Path, Tokenizer]:
    """A 2-layer word classifier whose vocabulary holds markup tokens, with phrase rules
    and an evaluation computed by lstmlens itself."""
    doc = Tokenizer("word").fit(TEXTS).to_json()
    doc["vocab"] = doc["vocab"] + XSS
    tok = Tokenizer.from_json(doc)
    torch.manual_seed(0)
    model = LSTMClassifier(ClassifierConfig(num_classes=2, vocab_size=len(tok), embedding_dim=6,
                                            hidden_sizes=[8, 6]))
    with torch.no_grad():  # larger weights: some gates saturate, as in a trained model
        for p in model.lstms.parameters():
            p.mul_(5.0)
    path = lstmlens.save(model, root / "clf", tokenizer=tok, metrics={"test": {"accuracy": 0.5}},
                         meta={"task": "tiny", "classes": ["negative", "positive"]})
    model = lstmlens.load(path)
    # loose thresholds: a random-weight model passes no realistic ones
    rules = PhraseRules(min_support=1, threshold=0.0, min_precision=0.0).fit(model, TEXTS)
    (path / "rules.json").write_text(rules.to_json(), encoding="utf-8")
    lstmlens.evaluate(model, TEXTS, n=len(TEXTS), checks=("faithfulness",),
                      resamples=50).save(path)
    return path, tok


def _formal_dir(root: Path) -> Path:
    """An LSTM that runs Tomita grammar 3 exactly, saved as a formal-language model."""
    model = exact_lstm(tomita_dfa(3))
    meta = dict(model.meta, task="formal/tomita", grammar=3, classes=["reject", "accept"],
                data={"per_length": 4, "test_per_length": 4, "seed": 0})
    return lstmlens.save(model, root / "formal", tokenizer=model.tokenizer, meta=meta)


@pytest.fixture(scope="module")
def sites(tmp_path_factory, browser):
    root = tmp_path_factory.mktemp("browser")
    clf, tok = _classifier_dir(root)
    fc = _forecaster()
    mt = _translator()
    pair = TokenizerPair(mt.tokenizer["source"], mt.tokenizer["target"])
    xss_ids = [tok.id(XSS[0]), tok.id("good"), tok.id(XSS[1])]
    explorers = {
        "clf": Explorer(clf, corpus=TEXTS + [xss_ids]),
        "formal": Explorer(_formal_dir(root)),
        "fc": Explorer(lstmlens.save(fc, root / "fc", meta={}),
                       corpus=[w.numpy() for w in _windows(fc, B=3)]),
        "mt": Explorer(lstmlens.save(mt, root / "mt", tokenizer=pair, meta={}),
                       corpus=["the king saw the woman", "a man went home"]),
    }
    servers: dict[str, _Server] = {}
    try:
        for name, ex in explorers.items():
            servers[name] = _Server(ex)
        yield servers
    finally:
        for s in servers.values():
            s.close()


class _Tab:
    """A fresh page on one server that records console errors, page errors and dialogs."""

    def __init__(self, browser, server: _Server) -> None:
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.page.set_default_timeout(WAIT)
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.page.on("dialog", self._dialog)
        self.page.goto(server.url)
        self.page.wait_for_selector("body[data-ready='1']", state="attached")

    def _console(self, msg) -> None:
        if msg.type == "error":
            self.errors.append(f"{msg.text} [{(msg.location or {}).get('url', '')}]")

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def view(self, name: str) -> None:
        self.page.click(f"#tabs button[data-view='{name}']")
        assert self.page.is_visible(f"#view-{name}")

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    def check_clean(self, refused: tuple[str, ...] = ()) -> None:
        """No script error, no dialog, no console error but 400s from the ``refused`` API
        paths (the browser logs every 4xx response as an error)."""
        errors = [e for e in self.errors if not (
            "status of 400" in e and any(f"/api/{p}" in e for p in refused))]
        assert errors == [] and self.dialogs == []
        assert self.page.evaluate("window.__xss") is None


@pytest.fixture
def tab(browser, sites):
    """``tab(name)``: a fresh page on the server of model ``name``, closed after the test."""
    made: list[_Tab] = []

    def open_(name: str) -> _Tab:
        made.append(_Tab(browser, sites[name]))
        return made[-1]

    yield open_
    for t in made:
        t.context.close()


def _rgb(page, selector: str, i: int) -> tuple[int, ...]:
    css = page.locator(selector).nth(i).evaluate("e => getComputedStyle(e).backgroundColor")
    return tuple(int(v) for v in re.findall(r"\d+", css)[:3])


def _visible_tabs(page) -> list[str]:
    """The views whose tab the page shows, in order."""
    return [b.get_attribute("data-view") for b in page.locator("#tabs button").all()
            if b.is_visible()]


def _painted(page, canvas: str) -> int:
    """How many pixels of a canvas are not blank (transparent or white)."""
    return page.evaluate(f"""() => {{
        const c = document.querySelector("{canvas}");
        const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4)
            if (d[i + 3] > 0 && !(d[i] === 255 && d[i + 1] === 255 && d[i + 2] === 255)) n++;
        return n;
    }}""")


# -- sentence view -------------------------------------------------------------------------

def test_sentence_view_prediction_colours_and_gates(tab, sites):
    t = tab("clf")
    page, ex = t.page, sites["clf"].explorer
    assert "clf — classifier, tiny" in page.inner_text("#model-card")
    visible = _visible_tabs(page)
    assert visible == ["sentence", "states", "neurons", "rules", "evaluation"]
    page.click("#explain-btn")  # nothing typed, nothing picked: the server's message
    page.wait_for_selector("#error:not([hidden])")
    assert page.inner_text("#error") == "the input is empty; type a sentence"
    page.fill("#sentence-input", SENTENCE)
    with page.expect_response("**/api/explain") as resp:
        page.click("#explain-btn")
    res = resp.value.json()
    page.wait_for_selector(".method-row")
    # the prediction, against the model's own forward pass
    tok = ex.model.tokenizer
    with torch.no_grad(), ex.lock:  # the lock the server's model calls hold
        p = torch.softmax(ex.model(torch.tensor([tok.encode(SENTENCE)]))[0], -1)
    k = int(p.argmax())
    assert page.inner_text(".pred-label") == ["negative", "positive"][k]
    assert f"(p = {float(p[k]):.3f})" in page.inner_text("#prediction")
    # one row per method; coloured tokens, or 'not applicable' for a refused method
    tokens = tok.split(SENTENCE)
    rows = page.locator(".method-row")
    assert rows.count() == len(ex.methods())
    refused = []
    for i in range(rows.count()):
        row = rows.nth(i)
        name = row.get_attribute("data-method")
        m = res["methods"][name]
        if "error" in m:
            assert row.locator(".na").inner_text() == "not applicable: " + m["error"]
            assert row.locator(".tok").count() == 0
            refused.append(name)
            continue
        assert row.locator(".tok").all_inner_texts() == tokens, name
        sel = f".method-row[data-method='{name}'] .tok"
        scores = np.asarray(m["scores"])
        vmax = max(np.abs(scores).max(), 1e-12)
        for j, s in enumerate(scores):
            # red: towards the explained class, blue: against it; white: nothing
            w = int(np.floor(255 * (1 - abs(s) / vmax) + 0.5))
            assert _rgb(page, sel, j) == ((255, w, w) if s >= 0 else (w, w, 255)), (name, j)
        top = int(np.abs(scores).argmax())
        assert _rgb(page, sel, top) in ((255, 0, 0), (0, 0, 255)), name
        ink = page.locator(sel).nth(top).evaluate("e => getComputedStyle(e).color")
        assert ink == "rgb(255, 255, 255)", name  # readable on the darkest colour
    assert refused == ["attention"]  # this model has no attention layer
    # a click on a token: its gate values in every layer
    page.locator(".method-row[data-method='lrp'] .tok").nth(2).click()
    page.wait_for_selector("#gate-table tr[data-key]")
    assert page.inner_text("#gate-title") == f"gates at step 2: “{tokens[2]}”"
    keys = page.locator("#gate-table tr[data-key]").evaluate_all(
        "rs => rs.map(r => r.dataset.key)")
    layers = ["lstms.0.layers.0.forward", "lstms.1.layers.0.forward"]
    assert sorted(keys) == sorted(f"{a}.{s}" for a in layers for s in SERIES)
    widths = page.locator("#gate-table canvas").evaluate_all("cs => cs.map(c => c.width)")
    assert widths == [6 * (8 if k.startswith("lstms.0") else 6) for k in keys]
    g = ex.gates(SENTENCE, 2)["values"][keys[0]]  # (units,)
    assert page.locator("#gate-table tr[data-key] td").nth(1).inner_text() == \
        f"{np.mean(g):.3f}"
    assert page.locator("#attributions .tok.sel").count() == rows.count() - len(refused)
    assert not page.is_visible("#error")
    t.shot("sentence")
    t.check_clean(refused=("explain",))


def test_markup_tokens_are_shown_as_text(tab, sites):
    t = tab("clf")
    page = t.page
    seq = len(TEXTS)  # the corpus sequence of markup tokens
    option = page.locator(f"#sentence-sequence option[value='{seq}']")
    assert option.inner_text() == f"#{seq}: " + " ".join([XSS[0], "good", XSS[1]])[:70]
    page.select_option("#sentence-sequence", str(seq))
    page.click("#explain-btn")
    page.wait_for_selector(".method-row .tok")
    row = page.locator(".method-row[data-method='lrp']")
    assert row.locator(".tok").all_inner_texts() == [XSS[0], "good", XSS[1]]
    assert XSS[0] in page.inner_text("#attributions")  # visible, literally
    row.locator(".tok").first.click()
    page.wait_for_selector("#gate-table tr[data-key]")
    assert page.inner_text("#gate-title") == f"gates at step 0: “{XSS[0]}”"
    # nothing was parsed as markup: no element came from a token, no script ran
    assert page.locator("img").count() == 1  # the automaton's, in index.html
    assert page.locator("script").count() == 1  # app.js
    assert page.locator("[onerror], #sentence-sequence option *").count() == 0
    t.view("states")
    page.select_option("#states-sequence", str(seq))
    page.click("#states-btn")
    page.wait_for_selector("#states-tokens .tok")
    assert page.locator("#states-tokens .tok").all_inner_texts() == [XSS[0], "good", XSS[1]]
    assert page.locator("img").count() == 1 and page.locator("[onerror]").count() == 0
    t.view("sentence")
    t.shot("sentence-markup")
    t.check_clean()


# -- states --------------------------------------------------------------------------------

def test_states_heatmap_and_pattern_search(tab, sites):
    t = tab("clf")
    page, ex = t.page, sites["clf"].explorer
    t.view("states")
    page.fill("#states-input", SENTENCE)
    page.click("#states-btn")
    page.wait_for_selector("#states-tokens .tok")
    tokens = ex.model.tokenizer.split(SENTENCE)
    assert page.locator("#states-tokens .tok").all_inner_texts() == tokens
    heat = page.locator("#states-heatmap")
    top = "lstms.1.layers.0.forward"
    assert heat.get_attribute("data-key") == f"{top}.cell"
    assert (heat.get_attribute("data-steps"), heat.get_attribute("data-units")) == \
        (str(len(tokens)), "6")
    assert _painted(page, "#states-heatmap") > 0
    page.select_option("#states-layer", "lstms.0.layers.0.forward")
    page.select_option("#states-series", "forget_gate")
    assert heat.get_attribute("data-key") == "lstms.0.layers.0.forward.forget_gate"
    assert heat.get_attribute("data-units") == "8"
    box = heat.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.99, box["y"] + 2)
    v = ex.gates(SENTENCE)["values"]["lstms.0.layers.0.forward.forget_gate"]
    assert page.inner_text("#states-hover") == (
        f"lstms.0.layers.0.forward.forget_gate unit 0, step {len(tokens) - 1} "
        f"(“{tokens[-1]}”): {_js_number(v[-1][0])}")
    page.select_option("#states-layer", top)
    # a span by clicks: the start, then shift-click the last token of the span
    page.locator("#states-tokens .tok").nth(1).click()
    page.locator("#states-tokens .tok").nth(2).click(modifiers=["Shift"])
    assert (page.input_value("#match-start"), page.input_value("#match-end")) == ("1", "3")
    assert page.locator("#states-tokens .tok.sel").all_inner_texts() == tokens[1:3]
    page.fill("#match-threshold", "0.5")
    want = ex.match(SENTENCE, f"{top}.cell", 1, 3, 0.5, top=30)
    assert want["units"] and want["matches"]  # the search finds something to show
    page.click("#match-btn")
    page.wait_for_selector("#matches li")
    n = len(want["units"])
    assert page.inner_text("#match-summary").startswith(
        f"{n} unit{'s' * (n > 1)} on over “{' '.join(tokens[1:3])}”: "
        f"[{', '.join(map(str, want['units']))}]")
    shown = page.locator("#matches li").all_inner_texts()
    assert len(shown) == len(want["matches"])
    for li, m in zip(shown, want["matches"], strict=True):
        assert li == " ".join([f"#{m['sequence']}", f"{m['start']}:{m['end']}", *m["before"],
                               *m["tokens"], *m["after"]])
    assert any(m["before"] or m["after"] for m in want["matches"])  # matches in context
    assert page.locator("#matches .hit").first.inner_text() == \
        " ".join(want["matches"][0]["tokens"])
    t.shot("states")
    t.check_clean()


def _js_number(x: float) -> str:
    """A float as JavaScript's ``String(x)`` writes it (for the values of these tests)."""
    s = repr(float(x))
    return s[:-2] if s.endswith(".0") else s


# -- neurons -------------------------------------------------------------------------------

def test_neurons_saturation_ranking_and_contexts(tab, sites):
    t = tab("clf")
    page, ex = t.page, sites["clf"].explorer
    t.view("neurons")
    page.wait_for_selector(".saturation-plot circle")
    assert page.locator(".saturation-plot").count() == 2  # one plot per layer
    assert page.locator(".saturation-plot circle").count() == 3 * (8 + 6)  # i, f, o gates
    # each dot where the saturation of its unit puts it (x: left, y: right; 220 px a side)
    for plot, layer in zip(page.locator(".saturation-plot").all(),
                           ["lstms.0.layers.0.forward", "lstms.1.layers.0.forward"], strict=True):
        dots = plot.locator("circle").evaluate_all(
            "cs => cs.map(c => [c.textContent, +c.getAttribute('cx'), +c.getAttribute('cy')])")
        want = []
        for gate in ("input_gate", "forget_gate", "output_gate"):
            sat = ex.saturation()["gates"][f"{layer}.{gate}"]
            want += [[f"{gate} unit {u}: left {_js_number(a)}, right {_js_number(b)}",
                      20 + 220 * a, 5 + 220 - 220 * b]
                     for u, (a, b) in enumerate(zip(sat["left"], sat["right"], strict=True))]
        assert sorted(d[0] for d in dots) == sorted(w[0] for w in want)
        assert np.allclose(sorted(d[1:] for d in dots), sorted(w[1:] for w in want))
    assert any(x > 20 for _, x, _ in dots)  # some units do saturate
    page.select_option("#feature", "position")
    page.click("#units-btn")
    page.wait_for_selector(".unit-row")
    want = ex.units("position", 15)["units"]
    rows = page.locator(".unit-row")
    assert rows.count() == len(want)
    for i in (0, len(want) - 1):
        cells = rows.nth(i).locator("td").all_inner_texts()
        assert cells == [str(i + 1), want[i]["unit"], f"{want[i]['score']:.3f}",
                         "+" if want[i]["sign"] > 0 else "−"]
    rows.first.click()
    page.wait_for_selector("#contexts li")
    ctx = ex.contexts(want[0]["key"], want[0]["index"], 10)["contexts"]
    assert page.inner_text("#contexts-title") == \
        f"Top-activating contexts of {want[0]['key']}[{want[0]['index']}]"
    items = page.locator("#contexts li")
    assert items.count() == len(ctx) == 10
    for i in (0, 9):
        assert items.nth(i).locator(".hit").inner_text().strip() == \
            ctx[i]["tokens"][ctx[i]["at"]]
        assert items.nth(i).inner_text().endswith(f"({ctx[i]['value']:.3f})")
    t.shot("neurons")
    t.check_clean()


# -- rules and automata --------------------------------------------------------------------

def test_rules_table(tab, sites):
    t = tab("clf")
    page, ex = t.page, sites["clf"].explorer
    t.view("rules")
    page.wait_for_selector(".rule-row")
    doc = json.loads((ex.model_dir / "rules.json").read_text())
    rows = page.locator(".rule-row")
    assert rows.count() == min(40, len(doc["rules"]))
    for i in (0, rows.count() - 1):
        r = doc["rules"][i]
        assert rows.nth(i).locator("td").all_inner_texts() == [
            str(i + 1), " … ".join(r["pattern"]), r["class_name"], str(r["support"]),
            f"{r['precision']:.3f}"]
    assert "(rules.json); default class negative" in page.inner_text("#rules-summary")
    assert not page.is_visible("#automaton-box")
    t.shot("rules")
    t.check_clean()


def test_automaton_drawn_and_no_evaluation(tab, sites):
    t = tab("formal")
    page, ex = t.page, sites["formal"].explorer
    t.view("rules")
    page.wait_for_function(
        "() => document.getElementById('automaton').complete && "
        "document.getElementById('automaton').naturalWidth > 0")
    want = ex.automaton()
    assert page.inner_text("#automaton-summary") == want["summary"]
    assert want["n_states"] == 5  # Tomita 3's minimal DFA (with its sink state)
    svg = page.get_attribute("#automaton", "src")
    assert svg.startswith("data:image/svg+xml;base64,")
    # phrase rules read words: this character model is refused with a message instead
    assert "phrase rules need a classifier of words" in page.inner_text("#rules-summary")
    assert page.locator(".rule-row").count() == 0
    t.shot("automaton")
    t.view("evaluation")
    page.wait_for_function(
        "() => document.getElementById('evaluation-summary').textContent !== ''")
    assert page.inner_text("#evaluation-summary").startswith(
        "no evaluation has been computed for this model")
    assert page.locator("#evaluation-table tr").count() == 0
    t.shot("evaluation-none")
    t.check_clean(refused=("rules", "evaluation"))


# -- evaluation ----------------------------------------------------------------------------

def test_evaluation_table_and_curves(tab, sites):
    t = tab("clf")
    page, ex = t.page, sites["clf"].explorer
    t.view("evaluation")
    page.wait_for_selector("#evaluation-table tr td")
    doc = json.loads((ex.model_dir / "evaluation.json").read_text())
    methods = [m for m, v in doc["methods"].items() if "skipped" not in v]
    rows = page.locator("#evaluation-table tr")
    assert rows.count() == 1 + len(methods)
    head = rows.first.locator("th").all_inner_texts()
    assert head[0] == "method" and "deletion_auc (lower)" in head
    col = head.index("deletion_auc (lower)")
    for i, m in enumerate(methods):
        cells = rows.nth(i + 1).locator("td").all_inner_texts()
        f = doc["methods"][m]["deletion_auc"]
        assert cells[0] == m
        assert cells[col] == f"{f['value']:.3f} [{f['ci_low']:.3f}, {f['ci_high']:.3f}]"
    plots = page.locator("#evaluation-curves .curve-plot")
    assert plots.count() == 2  # deletion and insertion
    for k in range(2):
        assert plots.nth(k).locator("polyline").count() == len(doc["curves"])
        assert plots.nth(k).locator("text.legend").all_text_contents() == list(doc["curves"])
    t.shot("evaluation")
    t.check_clean()


# -- task views ----------------------------------------------------------------------------

def test_translation_alignment(tab, sites):
    t = tab("mt")
    page, ex = t.page, sites["mt"].explorer
    visible = _visible_tabs(page)
    assert visible[-1] == "translation" and "forecast" not in visible
    t.view("translation")
    text = "the king saw the woman"
    page.fill("#translation-input", text)
    page.click("#translate-btn")
    page.wait_for_selector("#alignment[data-rows]", state="attached")
    want = ex.translate(text)
    assert page.inner_text("#translation-output") == want["text"]
    c = page.locator("#alignment")
    assert (c.get_attribute("data-rows"), c.get_attribute("data-cols")) == \
        (str(len(want["tokens"])), str(len(want["source_tokens"])))
    assert want["source_tokens"][:5] == text.split()
    assert _painted(page, "#alignment") > 0
    t.shot("translation")
    t.check_clean()


def test_forecast_chart_and_feature_sentence(tab, sites):
    t = tab("fc")
    page, ex = t.page, sites["fc"].explorer
    visible = _visible_tabs(page)
    assert visible[-1] == "forecast" and "translation" not in visible
    t.view("forecast")
    page.select_option("#forecast-sequence", "1")
    page.click("#forecast-btn")
    page.wait_for_selector(".forecast-plot polyline")
    want = ex.forecast(1)
    lines = page.locator(".forecast-plot polyline")
    assert lines.count() == 2  # the window, then the forecast
    points = lines.evaluate_all("ls => ls.map(l => l.getAttribute('points').split(' ').length)")
    assert points == [len(want["window"]), len(want["forecast"]) + 1]
    assert page.inner_text("#forecast-summary").startswith(
        f"forecast {', '.join(_js_precision(v, 4) for v in want['forecast'])} — scores by "
        "integrated_gradients")
    assert _painted(page, "#forecast-heatmap") > 0
    t.shot("forecast")
    # a feature model in the sentence view: pick a sequence, no text box
    t.view("sentence")
    assert not page.is_visible("#sentence-input")
    page.select_option("#sentence-sequence", "2")
    page.click("#explain-btn")
    page.wait_for_selector(".method-row .tok")
    assert page.locator(".method-row[data-method='integrated_gradients'] .tok").count() == \
        len(want["window"])
    t.shot("sentence-forecaster")
    t.check_clean()


def _js_precision(x: float, p: int) -> str:
    """JavaScript's ``Number.prototype.toPrecision`` for ordinary magnitudes."""
    digits = p - 1 - int(np.floor(np.log10(abs(x)))) if x else p - 1
    return f"{x:.{max(0, digits)}f}"
