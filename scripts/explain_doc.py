"""Write docs/explain.md (``make docs``): every method on one real test-split input of each
model kind (sentiment, next character, a translation token, a forecast step, speech frames)
and of a user's module opened with ``lstmlens.wrap``: Python and CLI calls, top tokens and
each ``delta``. Models come from runs/ (a missing one is trained quickly under runs/explain/,
and the page says so). Every number is measured by this script, which prints its time.
"""

from __future__ import annotations

import datetime as dt
import inspect
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

import lstmlens
from lstmlens.attribution import Attribution
from lstmlens.errors import ModelError
from lstmlens.interactions import phrase_hierarchy
from lstmlens.methods import method_names
from lstmlens.modeldir import is_model_dir
from lstmlens.tasks import train_task

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "explain.md"
# samples of the two sampling methods: per token, and per (step, feature) for feature inputs
SAMPLES, FEATURE_SAMPLES = 200, 25
Row = tuple[str, "Attribution | None", str, float]  # method, result, why skipped, seconds


def reference(name: str, task: str, **options: Any) -> tuple[Any, Path, str]:
    """The model in runs/NAME, or a quick one trained under runs/explain/NAME."""
    run = ROOT / "runs" / name
    if is_model_dir(run):
        return lstmlens.load(run), run, f"`runs/{name}`"
    quick = ROOT / "runs" / "explain" / name
    if not is_model_dir(quick):
        train_task(task, quick, quick=True, progress=False, **options)
    return (lstmlens.load(quick), quick,
            f"`runs/explain/{name}` (a quick stand-in: `runs/{name}` is missing)")


def run_methods(model: Any, inputs: Any, features: bool = False, **kw: Any) -> list[Row]:
    """Every registered method on ``inputs``; a method that refuses the model is kept with
    its one-line reason."""
    rows = []
    for name in method_names():
        opts = dict(kw)
        if name in ("shapley_sampling", "kernel_shap"):
            opts["samples"] = FEATURE_SAMPLES if features else SAMPLES
        t = time.perf_counter()
        try:
            a = lstmlens.explain(model, inputs, name, **opts)
        except ModelError as e:
            rows.append((name, None, str(e), 0.0))
            continue
        rows.append((name, a, "", time.perf_counter() - t))
    return rows


def delta_text(a: Attribution) -> str:
    return "—" if a.delta is None else f"{float(a.delta[0]):.1e}"


def cli_block(model_dir: Path, inputs: str, method: str, *extra: str) -> list[str]:
    """The CLI call as a user types it and what it prints (run in a subprocess)."""
    args = ["explain", str(model_dir.relative_to(ROOT)), inputs, "--method", method, *extra]
    env = {**os.environ, "COLUMNS": "100", "OMP_NUM_THREADS": "1", "NO_COLOR": "1"}
    r = subprocess.run([sys.executable, "-m", "lstmlens.cli", *args], capture_output=True,
                       text=True, env=env, cwd=ROOT, check=False)
    shown = "lstmlens " + shlex.join(args)
    if r.returncode != 0:
        raise RuntimeError(f"{shown} failed: {r.stderr.strip()}")
    return ["```console", f"$ {shown}", r.stdout.rstrip(), "```", ""]


def per_step_only(a: Attribution) -> bool:
    """True where a method gives one score per step, spread evenly over the features."""
    s = a.scores[0]  # (T, F)
    return bool(torch.allclose(s, s[:, :1].expand_as(s)))


def refused(rows: list[Row]) -> list[str]:
    return [f"- `{n}` refuses: {why}" for n, a, why, _ in rows if a is None]


def timing(rows: list[Row]) -> str:
    done = [(n, s) for n, a, _, s in rows if a is not None]
    slow = max(done, key=lambda r: r[1])
    return (f"All {len(done)} methods took {sum(s for _, s in done):.1f} s together at one "
            f"thread (slowest: `{slow[0]}`, {slow[1]:.1f} s).")


def token_table(rows: list[Row], toks: list[str]) -> list[str]:
    """One row of per-token scores per method, then its delta."""
    lines = ["| method | " + " | ".join(f"`{t}`" for t in toks) + " | delta |",
             "|---|" + "---|" * len(toks) + "---|"]
    for name, a, _, _ in rows:
        if a is not None:
            s = a.token_scores()[0].tolist()
            lines.append(f"| {name} | " + " | ".join(f"{v:+.3f}" for v in s)
                         + f" | {delta_text(a)} |")
    return lines


def top_table(rows: list[Row], label, k: int = 3, head: str = "top tokens",
              extra=None, by_size: bool = False) -> list[str]:
    """Per method: the ``k`` best-scoring positions (``label(t, score)``; the largest
    |score| if ``by_size``), an ``extra`` column (name, function of the result), delta."""
    cols = ["method", head] + ([extra[0]] if extra else []) + ["delta"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for name, a, _, _ in rows:
        if a is None:
            continue
        s = a.token_scores()[0, :int(a.lengths[0])]
        top = torch.argsort(s.abs() if by_size else s, descending=True)[:k].tolist()
        cells = [name, ", ".join(label(t, float(s[t])) for t in top)]
        if extra:
            cells.append(extra[1](a))
        lines.append("| " + " | ".join(cells + [delta_text(a)]) + " |")
    return lines


# ----------------------------------------------------------------------------- sections


def sentiment_section() -> tuple[list[str], str]:
    from lstmlens.tasks.sentiment import load_text_splits
    model, run, name = reference("sentiment", "sentiment")
    splits = load_text_splits(None, seed=int(model.meta.get("seed", 0)))
    tok = model.tokenizer
    for text, label in zip(splits.test.texts, splits.test.labels, strict=True):  # first fit
        ids = tok.encode(text)
        if 8 <= len(ids) <= 14 and tok.unk_id not in ids and tok.id(",") in ids:
            if int(lstmlens.explain(model, text, "saliency").target[0]) == int(label):
                break
    sentence = text
    rows = run_methods(model, sentence)
    first = next(a for _, a, _, _ in rows if a is not None)
    toks, k = first.tokens[0], int(first.target[0])
    acc = model.metrics.get("test", {}).get("accuracy", float("nan"))
    lines = [
        "## Sentiment classifier",
        "",
        f"Model {name}: word embeddings → bidirectional LSTM → attention pooling → linear, "
        f"test accuracy {acc:.1%}. Sentence: the first sentence of the test split with 8–14 "
        "tokens, all in the vocabulary, and a comma (two clauses for the phrase level) that "
        "the model classifies correctly:",
        "",
        f"> {sentence}",
        "",
        f"Predicted **{first.label(k)}** (p = {float(first.prediction[0, k]):.3f}). Scores "
        "are for the predicted class; positive = evidence for it.",
        "",
        "```python",
        "model = lstmlens.load(\"runs/sentiment\")",
        f"att = lstmlens.explain(model, {sentence!r}, method=\"cd\")",
        "att.scores, att.delta  # [1, T], [1]",
        "```",
        "",
        *cli_block(run, sentence, "cd"),
        *token_table(rows, toks),
        "",
        *refused(rows),
        "",
        timing(rows),
        "",
    ]
    lines += phrases(model, sentence, toks, k) + hierarchy(model, sentence)
    return lines, sentence


def phrases(model: Any, sentence: str, toks: list[str], k: int) -> list[str]:
    """``decompose`` on the clauses of the sentence (split at commas) and on the whole."""
    bounds = [-1, *[i for i, t in enumerate(toks) if t == ","], len(toks)]
    spans = [(a + 1, b - 1) for a, b in zip(bounds[:-1], bounds[1:], strict=True)
             if b - a > 1]
    spans += [(0, len(toks) - 1)] if (0, len(toks) - 1) not in spans else []
    d = lstmlens.decompose(model, torch.tensor(model.tokenizer.encode(sentence)), spans)
    rel, irr = d.relevant[:, k] - d.relevant[:, 1 - k], d.irrelevant[:, k] - d.irrelevant[:, 1 - k]
    return ["Phrase level: `lstmlens.decompose(model, ids, spans)` splits the logits into the "
            "part due to each inclusive `(start, end)` span (`relevant`) and the rest; here "
            f"for the clauses and the whole sentence (logit of class {k} minus the other):", "",
            "| span | words | relevant | irrelevant |", "|---|---|---|---|",
            *[f"| ({a}, {b}) | {' '.join(toks[a:b + 1])} | {float(r):+.3f} | {float(i):+.3f} |"
              for (a, b), r, i in zip(spans, rel, irr, strict=True)],
            "", f"relevant + irrelevant = logits − bias to {d.delta:.1e} (its `delta`).", ""]


def path_jumps(model: Any, prefix: str, k: int, n: int = 4096) -> tuple[float, float]:
    """Logit k along the straight path from the zero embedding to the prefix's embedding, at
    n + 1 points: its largest change between neighbours, and its whole change f(x) − f(0)."""
    from lstmlens.explaining import prepare
    parts, x, L, _ = prepare(model, prefix)
    with torch.no_grad():
        e = parts.embed(x)  # (1, T, E)
        alpha = torch.linspace(0, 1, n + 1)
        f = torch.cat([parts.logits_from_embedded(a[:, None, None] * e, L.expand(len(a)))[:, k]
                       for a in alpha.split(512)])  # (n + 1,)
    return float(f.diff().abs().max()), float(f[-1] - f[0])


def ig_note(model: Any, prefix: str, rows: list[Row]) -> list[str]:
    """Why integrated gradients misses completeness on this model, measured, if it does."""
    a = next(a for n, a, _, _ in rows if n == "integrated_gradients")
    if a is None or a.delta is None or float(a.delta[0]) < 0.1:
        return []
    jump, total = path_jumps(model, prefix, int(a.target[0]))
    steps = a.params.get("steps_used", [a.params.get("steps")])[0]
    segments = (a.params.get("segments") or [None])[0]
    spent = (f"{steps} gradient evaluations over {segments} adaptively bisected segments"
             if segments else f"{steps} Gauss–Legendre points")
    return [f"Integrated gradients misses completeness by {float(a.delta[0]):.1e} here even "
            f"with {spent} (its default budget): along the straight path from the zero "
            f"embedding, the target logit jumps by up to {jump:.2f} between neighbouring "
            f"points 1/4096 of the path apart, while the whole path changes it by "
            f"{total:+.2f}. The integrand is too steep for the quadrature, so on this model "
            "its scores are not to be trusted — which is what its `delta` says.", ""]


def hierarchy(model: Any, sentence: str) -> list[str]:
    """The sentence's hierarchical phrase interactions, merge by merge."""
    h = phrase_hierarchy(model, sentence)
    flips = h.flips()
    said = (", ".join(f"*{h.phrase(m.left)}* + *{h.phrase(m.right)}*" for m in flips)
            if flips else "none here")
    return ["Hierarchical phrase interactions: `lstmlens.interactions.phrase_hierarchy(model, "
            "sentence)` starts from the words and, level by level, joins the two adjacent "
            "phrases whose CD interaction (the joined phrase's score minus its parts' scores; "
            f"scores are {h.score_kind}s for **{h.target_name}**) is largest in size, until "
            "the sentence is one phrase:", "", "```text", h.to_text(), "```", "",
            f"Merges that flip (the joined phrase argues against its parts together): {said}. "
            f"CD conservation over every span scored: {h.delta:.1e}.", ""]


def language_model_section() -> list[str]:
    from lstmlens.datasets.corpora import load_kjv
    model, run, name = reference("textgen-kjv", "textgen", corpus="kjv")
    line = load_kjv().test.splitlines()[0]
    # cut two letters before the end of the first word of ≥ 5 letters past character 40
    pos, cut = 0, None
    for w in line.split(" "):
        if pos >= 40 and len(w.strip(",.;:?!")) >= 5:
            cut = pos + len(w.strip(",.;:?!")) - 2
            break
        pos += len(w) + 1
    prefix = line[:cut] if cut else line[:60]
    truth = line[len(prefix)]
    rows = run_methods(model, prefix)
    first = next(a for _, a, _, _ in rows if a is not None)
    k = int(first.target[0])

    def at(t: int, v: float) -> str:  # the character in its word, bracketed
        lo = prefix.rfind(" ", 0, t) + 1
        hi = prefix.find(" ", t)
        hi = len(prefix) if hi < 0 else hi
        word = prefix[lo:t] + "[" + prefix[t] + "]" + prefix[t + 1:hi]
        return f"`{word}` {v:+.2f}"

    bpc = model.metrics.get("test", {}).get("bits_per_char", float("nan"))
    return [
        "## Character language model: the next character",
        "",
        f"Model {name}: a character LSTM on the King James Bible, test {bpc:.2f} bits/char. "
        "The target is the next character after the prefix (default: the predicted one; "
        "`target=\"e\"` names another). The prefix is the first line of the test split, cut "
        "two letters before the end of a long word:",
        "",
        f"> {prefix}",
        "",
        f"Predicted next character {first.label(k)!r} (p = {float(first.prediction[0, k]):.3f}"
        f"; the text goes on with {truth!r}). Each method's three highest-scoring characters, "
        "bracketed in their word:",
        "",
        "```python",
        "lm = lstmlens.load(\"runs/textgen-kjv\")",
        f"att = lstmlens.explain(lm, {prefix!r}, method=\"lrp\")",
        "```",
        "",
        *cli_block(run, prefix, "lrp"),
        *top_table(rows, at, head="top characters"),
        "",
        *ig_note(model, prefix, rows),
        *refused(rows),
        "",
        timing(rows),
        "",
    ]


def translation_section() -> list[str]:
    from lstmlens.datasets.translation import load_translation
    model, run, name = reference("translation", "translation")
    test = load_translation(seed=int(model.meta.get("seed", 0))).test
    for i, src in enumerate(test.source):
        ref = test.target[i]
        if 8 <= len(src.split()) <= 14:
            a = lstmlens.explain(model, src, "occlusion")
            outs = a.params["output_tokens"]
            # the first output word of ≥ 4 letters (a content word) that the reference has
            words = set(ref.lower().replace(",", " ").replace(".", " ").split())
            k = next((i for i, t in enumerate(outs) if len(t) >= 4 and t in words
                      and t.replace("-", "").isalpha()), None)
            if k is not None:
                break
    rows = run_methods(model, src, target=k)
    first = next(a for _, a, _, _ in rows if a is not None)
    toks = first.tokens[0]
    bleu = model.metrics.get("test", {}).get("greedy", {}).get("bleu", float("nan"))
    return [
        "## Translation model: one output token over the source words",
        "",
        f"Model {name}: English → French encoder–decoder with attention on Bible verses, "
        f"test BLEU {bleu:.1f} (greedy). Scores are over the source words; the target is an "
        "output position of the model's own greedy translation (or of `translation=`, "
        "teacher-forced). Source: the first test-split verse of 8–14 words whose translation "
        "has a word of ≥ 4 letters that the reference translation has too (the explained "
        "token):",
        "",
        f"> {src}",
        "",
        f"Reference: *{ref}* The model's translation: *{first.params['translation']}* "
        f"Explained: output token {k}, **{first.params['output_token']}** "
        f"(p = {float(first.prediction[0, int(first.target[0])]):.3f}).",
        "",
        "```python",
        "mt = lstmlens.load(\"runs/translation\")",
        f"att = lstmlens.explain(mt, {src!r}, method=\"integrated_gradients\", target={k})",
        "att.params[\"output_token\"], att.params[\"translation\"]",
        "```",
        "",
        *cli_block(run, src, "integrated_gradients", "--target", str(k)),
        *token_table(rows, toks),
        "",
        "CD, LRP and the cell decompositions follow one chain of LSTMs into a linear head; "
        "the output token also passes through the decoder and its attention, so they refuse "
        "the model and say why:",
        "",
        *refused(rows),
        "",
        timing(rows),
        "",
    ]


def forecaster_section() -> list[str]:
    from lstmlens.cli import _forecast_window
    model, run, name = reference("timeseries-co2", "timeseries", series="co2")
    x, L = _forecast_window(model, "test:0")  # (1, W, F)
    step = 0
    rows = run_methods(model, x, features=True, lengths=L, target=step)
    first = next(a for _, a, _, _ in rows if a is not None)
    T, F = first.scores.shape[1:]
    feats = ["value", "sin(phase)", "cos(phase)"][:F]
    last = float(x[0, -1, 0])
    forecast = float(first.prediction[0, step])
    unit = model.meta.get("unit", "series units")
    mae = model.metrics.get("test", {}).get("mae", float("nan"))

    def lag(t: int, v: float) -> str:
        return f"t−{T - t} {v:+.3f}"

    def by_feature(a: Attribution) -> str:
        if per_step_only(a):
            return "one score per step"
        s = a.scores[0].sum(0)  # (F,)
        return ", ".join(f"{f} {float(v):+.3f}" for f, v in zip(feats, s, strict=True))

    def total(a: Attribution) -> str:
        return f"{float(a.scores[0].sum()):+.3f}"

    return [
        "## Forecaster: one output step, scores [T, F] in the series' units",
        "",
        f"Model {name}: weekly Mauna Loa CO₂, a {T}-week window → the next "
        f"{model.config.horizon} weeks, test MAE {mae:.2f} {unit}. Each step's inputs are "
        f"the value and the sin/cos of the seasonal phase ({F} features), so scores are "
        f"`[1, {T}, {F}]`. The window is the first test origin (`test:0`); the target is "
        f"output step {step} (t+{step + 1}; `target=51` would explain a year ahead). "
        f"Scores explain the forecast's change from the window's last value, in {unit}: "
        f"the last value is {last:.2f}, the forecast {forecast:.2f}, the change "
        f"**{forecast - last:+.3f}**. Integrated gradients' Σ scores is f(window) − f(flat "
        "window at the last value), the change less the flat window's own forecast change; "
        "word-level CD scores each step alone, so they need not add up to the change.",
        "",
        "```python",
        "fc = lstmlens.load(\"runs/timeseries-co2\")",
        "att = lstmlens.explain(fc, window, method=\"cd\", target=0)  # window [1, T, F]",
        "att.scores.shape  # [1, T, F]",
        "```",
        "",
        *cli_block(run, "test:0", "cd"),
        "Per method: the three steps with the largest |score| (summed over features; t−1 "
        "is the last observed week), the scores summed over time per feature (the cell "
        "decompositions give one score per step, spread evenly over its features), Σ "
        "scores:",
        "",
        *top_table(rows, lag, head="top steps", by_size=True,
                   extra=("per feature", lambda a: f"{by_feature(a)}; Σ {total(a)}")),
        "",
        *refused(rows),
        "",
        timing(rows) + f" The sampling methods use {FEATURE_SAMPLES} samples here: they "
        "perturb each (step, feature) on its own.",
        "",
    ]


def speech_section() -> list[str]:
    from lstmlens.cli import _read_input
    model, run, name = reference("speech", "speech")
    (x, L), label = _read_input(model, "test:0")
    rows = run_methods(model, x, features=True, lengths=L)
    first = next(a for _, a, _, _ in rows if a is not None)
    T, F = first.scores.shape[1:]
    k = int(first.target[0])
    names = model.meta.get("feature_names") or [str(f) for f in range(F)]
    acc = model.metrics.get("test", {}).get("accuracy", float("nan"))

    def frame(t: int, v: float) -> str:
        return f"frame {t} {v:+.2f}"

    def best_features(a: Attribution) -> str:
        if per_step_only(a):
            return "one score per frame"
        s = a.scores[0].sum(0)  # (F,)
        top = torch.argsort(s, descending=True)[:3].tolist()
        return ", ".join(f"{names[f]} {float(s[f]):+.2f}" for f in top)

    return [
        "## Speech classifier: frames × features [T, F]",
        "",
        f"Model {name}: Japanese Vowels (9 speakers, 12 LPC cepstra per frame), stacked "
        f"LSTMs → last state → linear, test accuracy {acc:.1%}. Input: the first test "
        f"utterance (`test:0`, {T} frames, true speaker **{model.meta['classes'][label]}**); "
        f"predicted **{first.label(k)}** (p = {float(first.prediction[0, k]):.3f}). Scores "
        f"are `[1, {T}, {F}]`, one per frame and coefficient.",
        "",
        "```python",
        "sp = lstmlens.load(\"runs/speech\")",
        "att = lstmlens.explain(sp, frames, method=\"lrp\")  # frames [1, T, 12]",
        "att.scores.shape  # [1, T, 12]",
        "```",
        "",
        *cli_block(run, "test:0", "lrp"),
        "Per method: the three frames with the highest score (summed over coefficients) and "
        "the three coefficients with the highest score (summed over frames):",
        "",
        *top_table(rows, frame, head="top frames",
                   extra=("top coefficients", best_features)),
        "",
        *refused(rows),
        "",
        timing(rows),
        "",
    ]


class UserNet(nn.Module):
    """A user's own classifier, written without lstmlens: fc(lstm(emb(ids))[0][:, -1])."""

    def __init__(self, vocab: int, classes: int) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, 32)
        self.lstm = nn.LSTM(32, 32, batch_first=True)
        self.fc = nn.Linear(32, classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.fc(self.lstm(self.emb(ids))[0][:, -1])  # (B, C)


def train_user_net(texts: list[str], labels: list[int], tok: Any, epochs: int = 4) -> UserNet:
    """A plain training loop, as a user would write it: batches of equal length, so that
    ``[:, -1]`` is each sentence's last word."""
    torch.manual_seed(0)
    net = UserNet(len(tok), 2)
    opt = torch.optim.Adam(net.parameters(), lr=5e-3)
    by_len: dict[int, list[tuple[list[int], int]]] = {}
    for t, y in zip(texts, labels, strict=True):
        ids = tok.encode(t, max_length=40, truncate=True)
        by_len.setdefault(len(ids), []).append((ids, int(y)))
    batches = [group[i:i + 32] for group in by_len.values() for i in range(0, len(group), 32)]
    g = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        for j in torch.randperm(len(batches), generator=g).tolist():
            ids = torch.tensor([b[0] for b in batches[j]])
            y = torch.tensor([b[1] for b in batches[j]])
            loss = nn.functional.cross_entropy(net(ids), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval()


def wrapped_section(shown: str) -> list[str]:
    from lstmlens.tasks.sentiment import load_text_splits
    from lstmlens.textdata import fit_tokenizer
    splits = load_text_splits(None, seed=0)
    tok = fit_tokenizer(splits.train.texts, max_vocab=8000, min_count=2)
    t0 = time.perf_counter()
    net = train_user_net(splits.train.texts, list(splits.train.labels), tok)
    seconds = time.perf_counter() - t0
    with torch.no_grad():
        correct = sum(int(net(torch.tensor([tok.encode(t, max_length=40, truncate=True)]))
                          .argmax()) == int(y)
                      for t, y in zip(splits.test.texts, splits.test.labels, strict=True))
    acc = correct / len(splits.test.texts)
    known = [t for t in [shown, *splits.test.texts]
             if 8 <= len(tok.encode(t)) <= 14 and tok.unk_id not in tok.encode(t)]
    sentence = known[0]  # the sentiment section's sentence when the vocabulary has it
    ids = torch.tensor(tok.encode(sentence))
    parts = lstmlens.wrap(net, embedding="emb", lstm="lstm", head="fc")
    rows = run_methods(parts, ids)
    first = next(a for _, a, _, _ in rows if a is not None)
    k = int(first.target[0])
    with torch.no_grad():
        own = torch.softmax(net(ids[None]), -1)[0]
    same = float((own - first.prediction[0]).abs().max())
    return [
        "## A user's own module: `lstmlens.wrap`",
        "",
        "Any `embedding → LSTM → linear` module can be explained without rewriting it: "
        "`wrap` names its parts. This one is written and trained by this script with a "
        "plain PyTorch loop (no lstmlens), on the same sentiment training split "
        f"({seconds:.0f} s at one thread; test accuracy {acc:.1%}):",
        "",
        "```python",
        inspect.getsource(UserNet).rstrip(),  # the very code that ran
        "",
        "parts = lstmlens.wrap(net, embedding=\"emb\", lstm=\"lstm\", head=\"fc\")",
        "att = lstmlens.explain(parts, ids, method=\"cd\")  # ids [T] or [B, T]",
        "```",
        "",
        f"Sentence: *{sentence}* "
        + ("(as above)" if sentence == shown else "(the first test sentence of 8–14 tokens "
           "this vocabulary knows)") + f" — predicted **{splits.classes[k]}**, "
        f"p = {float(first.prediction[0, k]):.3f}; the wrapped parts "
        f"reproduce the module's own probabilities to {same:.1e}. A wrapped module has no "
        "model directory, so it is explained from Python only (the CLI reads model "
        "directories).",
        "",
        *token_table(rows, tok.tokens(ids.tolist())),
        "",
        *refused(rows),
        "",
        timing(rows),
        "",
    ]


def main() -> None:
    torch.set_num_threads(1)
    start = time.perf_counter()
    sections, sentence = sentiment_section()
    print(f"sentiment: {time.perf_counter() - start:.1f} s", flush=True)
    for name, fn in (("language model", language_model_section),
                     ("translation", translation_section), ("forecaster", forecaster_section),
                     ("speech", speech_section), ("wrap", lambda: wrapped_section(sentence))):
        t = time.perf_counter()
        sections += fn()
        print(f"{name}: {time.perf_counter() - t:.1f} s", flush=True)
    total = time.perf_counter() - start
    lines = [
        "# Explanations on real inputs",
        "",
        f"Written by `make docs` (`scripts/explain_doc.py`) on {dt.date.today().isoformat()} "
        f"in {total / 60:.1f} minutes at one thread; every number below is measured by that "
        "script. Each section runs every registered method "
        f"({', '.join(f'`{n}`' for n in method_names())}) on one real input from a test "
        "split: `lstmlens.explain(model, inputs, method=NAME, target=...)` in Python, "
        "`lstmlens explain MODEL_DIR INPUT --method NAME [--target K] [--json | --html FILE]` "
        "(or `--all`) on the command line. In a terminal the CLI colours each token by its "
        "score (red for, blue against); the `top:` line under it names the strongest. "
        "`--all` puts every method side by side, `--json` prints the scores, `--html FILE` "
        "writes a page (tokens escaped). Equations: ../shared/REFERENCES.md §3.",
        "",
        "`delta` is how far each method misses its own conservation law: CD, relevant + "
        "irrelevant = logit − bias; integrated gradients, Σ scores vs f(x) − f(baseline) "
        "(it grows where the path from the baseline is steeper than 4,096 adaptive points "
        "can follow); Shapley sampling, the same law, which each sampled order meets; the "
        "cell decompositions, Σ scores vs the head's W_k h_T; LRP with its default "
        "`bias_factor=0` leaks the bias terms by design (with `bias_factor=1` it conserves). "
        "`—`: the method has no such law.",
        "",
        *sections,
    ]
    OUT.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    print(f"wrote {OUT} in {total:.1f} s")


if __name__ == "__main__":
    sys.exit(main())
