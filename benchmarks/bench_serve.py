"""Load on the web explorer (issue goal: p95 ≤ 200 ms for one sentence and all methods).

Starts the real server (``lstmlens serve`` in a subprocess: uvicorn on 127.0.0.1, a free
port) on the sentiment model (``runs/sentiment`` when it exists, else a random-weight model of
its shape: vocabulary 20k, embedding 128, hidden 64, bidirectional, attention pooling, two
classes) and POSTs ``/api/explain`` with varied sentences of 8–25 words, for all methods and
for the exact ones (cd, lrp): one client sending its requests one after another, then 16
concurrent clients for 30 s. The baseline, measured in the same run and interleaved with the
one-client requests (sentence by sentence), is the in-process cost of ``lstmlens.explain``
for the same sentences and methods with the server's options, one method after another,
without HTTP: the ratio is what HTTP adds and what the server's threads (a request's methods
side by side) save. Every phase stops at its time limit or its request cap.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import torch

from lstmlens.errors import ModelError
from lstmlens.explaining import explain
from lstmlens.explorer import INTERACTIVE
from lstmlens.methods import method_names
from lstmlens.modeldir import load, save
from lstmlens.models import ClassifierConfig, LSTMClassifier
from lstmlens.tokenizers import Tokenizer

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = 16
EXACT = ["cd", "lrp"]
CAP = 5000  # requests per phase, whatever the time limit
GRACE = 10.0  # seconds a request in flight at the end of a 16-client phase may still take
MIN_PAIRED = 3  # sentences the one-client phase runs at least
ALL_LABEL, EXACT_LABEL = "all methods", "exact (cd, lrp)"
GOAL_MS = 200.0

SUBJECTS = ["the film", "this movie", "the director's latest", "her performance", "the script",
            "the second half", "the cast", "the soundtrack", "the ending", "his debut",
            "the whole thing", "the story", "every scene", "the dialogue", "the lead actor"]
VERBS = ["is", "feels", "turns out to be", "never becomes", "remains", "tries hard to be",
         "seems", "is never less than", "ends up", "is often"]
ADJECTIVES = ["gripping", "dull", "funny", "overlong", "charming", "predictable", "moving",
              "clumsy", "beautifully shot", "forgettable", "smart", "tedious", "tender",
              "lazy", "surprising", "heavy-handed", "warm", "confused", "sharp", "bland"]
LINKS = ["and", "but", "although", "while", "because", "yet"]
TAILS = ["from start to finish", "despite a strong cast", "for most of its running time",
         "in the best possible way", "though the ending drags", "even on a second viewing",
         "and you will not forget it soon", "for reasons nobody explains",
         "in a way few films manage", "which is a shame"]


def sentences(n: int, seed: int = 0) -> list[str]:
    """``n`` varied review-like sentences of 8–25 words (seeded)."""
    rnd = random.Random(seed)
    out: list[str] = []
    while len(out) < n:
        parts = [rnd.choice(SUBJECTS), rnd.choice(VERBS), rnd.choice(ADJECTIVES)]
        for _ in range(rnd.randint(0, 2)):
            parts += [rnd.choice(LINKS), rnd.choice(SUBJECTS), rnd.choice(VERBS),
                      rnd.choice(ADJECTIVES)]
        if rnd.random() < 0.6:
            parts.append(rnd.choice(TAILS))
        s = " ".join(parts)
        if 8 <= len(s.split()) <= 25:
            out.append(s)
    return out


def _model_dir(scratch: Path, texts: list[str]) -> tuple[Path, str]:
    ref = ROOT / "runs" / "sentiment"
    if (ref / "model.safetensors").exists():
        return ref, "runs/sentiment (make train-all)"
    torch.manual_seed(0)
    filler = [f"w{i}" for i in range(20000)]  # a 20k vocabulary, as the real one could be
    tok = Tokenizer("word", max_vocab=20000).fit(texts + [" ".join(filler)])
    model = LSTMClassifier(ClassifierConfig(num_classes=2, vocab_size=len(tok),
                                            embedding_dim=128, hidden_sizes=[64],
                                            bidirectional=True, pooling="attention"))
    out = save(model, scratch / "sentiment-shape", tokenizer=tok.to_json(),
               meta={"task": "bench", "classes": ["negative", "positive"]})
    return out, "random weights of the sentiment model's shape"


@dataclass
class Paired:
    """One client, interleaved with the in-process baseline: for each sentence in turn,
    ``lstmlens.explain`` here, then the same request to the server (idle meanwhile), so
    machine noise hits both alike."""

    local: list[float] = field(default_factory=list)  # s per sentence, every method in turn
    http: list[float] = field(default_factory=list)  # s per request
    per_method: dict[str, list[float]] = field(default_factory=dict)
    ig_steps: list[int] = field(default_factory=list)
    failures: int = 0

    def ratio(self) -> float:
        """HTTP and server time ÷ in-process time, over the sentences both answered."""
        return sum(self.http) / sum(self.local)


def _paired(url: str, model: torch.nn.Module, texts: list[str], methods: list[str] | None,
            seconds: float) -> Paired:
    """:class:`Paired` for ``seconds`` (at least ``MIN_PAIRED`` sentences). ``methods``
    None: all of them, with the server's options (``explorer.INTERACTIVE``); methods that
    cannot explain the model are left out here (the server answers them with an error)."""
    out = Paired()
    names = list(methods or method_names())
    body_extra = {} if methods is None else {"methods": methods}
    for m in list(names):
        try:
            explain(model, "a warm up", m, **INTERACTIVE.get(m, {}))
            out.per_method[m] = []
        except ModelError:
            names.remove(m)
    end = time.perf_counter() + seconds
    with httpx.Client(timeout=300) as http:
        for i in range(CAP):
            if time.perf_counter() > end and i >= MIN_PAIRED:
                break
            s = texts[i % len(texts)]
            total = 0.0
            for m in names:
                t = time.perf_counter()
                att = explain(model, s, m, **INTERACTIVE.get(m, {}))
                dt = time.perf_counter() - t
                if m == "integrated_gradients":
                    out.ig_steps += att.params.get("steps_used") or [att.params["steps"]]
                out.per_method[m].append(dt)
                total += dt
            t = time.perf_counter()
            r = http.post(url + "/api/explain", json={"text": s, **body_extra})
            if r.status_code != 200:
                out.failures += 1
                continue
            out.http.append(time.perf_counter() - t)
            out.local.append(total)
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``lstmlens serve`` in a subprocess, on loopback; stopped on exit."""

    def __init__(self, model_dir: Path, corpus: Path, log: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self._stderr = log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lstmlens.cli", "serve", str(model_dir), "--corpus",
             str(corpus), "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=self._stderr)

    def __enter__(self) -> Server:
        end = time.monotonic() + 120
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/api/model", timeout=5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.__exit__()
        raise RuntimeError("the server did not answer within 120 s")

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._stderr.close()


@dataclass
class Phase:
    """What one load phase saw: answered latencies (s), given-up waits (s), failures."""

    latencies: list[float] = field(default_factory=list)
    censored: list[float] = field(default_factory=list)
    failures: int = 0
    sent: int = 0
    elapsed: float = 0.0

    def pct(self, q: float) -> str:
        """The ``q``-th percentile in ms (nearest rank), "≥ x" where it falls among the
        requests given up."""
        values = sorted([(v, False) for v in self.latencies] +
                        [(v, True) for v in self.censored])
        if not values:
            return "–"
        v, cut = values[max(0, math.ceil(q / 100 * len(values)) - 1)]
        return f"{'≥ ' if cut else ''}{v * 1000:.0f}"

    def ms(self, q: float) -> float:
        return float(self.pct(q).lstrip("≥ ").replace("–", "nan"))

    def row(self, name: str, clients: str) -> str:
        rate = len(self.latencies) / self.elapsed if self.elapsed else float("nan")
        return (f"| {name} | {clients} | {len(self.latencies)} | {len(self.censored)} | "
                f"{self.failures} | {rate:.2f} | {self.pct(50)} | {self.pct(95)} | "
                f"{self.pct(99)} |")


async def _load(url: str, texts: list[str], methods: list[str] | None, clients: int,
                seconds: float, grace: float = GRACE) -> Phase:
    """``clients`` clients, each sending its next request when the last is answered, until
    ``seconds`` have passed or ``CAP`` requests were sent. Requests still in flight then get
    ``grace`` seconds more; after that they are given up, and their latency counts as at
    least the time they had waited (so queued requests are not silently dropped)."""
    phase = Phase()
    body_extra = {} if methods is None else {"methods": methods}
    start = time.perf_counter()
    end = start + seconds

    async def client(k: int, http: httpx.AsyncClient) -> None:
        i = k * 7
        while time.perf_counter() < end and phase.sent < CAP:
            phase.sent += 1
            body = {"text": texts[i % len(texts)], **body_extra}
            i += 1
            t = time.perf_counter()
            try:
                r = await asyncio.wait_for(http.post(url + "/api/explain", json=body),
                                           timeout=max(0.01, end + grace - t))
                ok = r.status_code == 200 and "methods" in r.json()
            except (TimeoutError, httpx.TimeoutException):
                phase.censored.append(time.perf_counter() - t)
                return
            except httpx.HTTPError:
                ok = False
            if ok:
                phase.latencies.append(time.perf_counter() - t)
            else:
                phase.failures += 1

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=600, limits=limits) as http:
        await asyncio.gather(*(client(k, http) for k in range(clients)))
    phase.elapsed = time.perf_counter() - start
    return phase


def run(quick: bool = False) -> tuple[str, str]:
    # seconds of (one client paired with the baseline, 16 clients): exact, then all methods
    exact_s, all_s = ((3, 5), (6, 6)) if quick else ((10, 30), (40, 30))
    texts = sentences(200)
    load_avg = os.getloadavg()[0]
    paired: dict[str, Paired] = {}
    loads: dict[str, Phase] = {}
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        model_dir, which = _model_dir(scratch, texts)
        corpus = scratch / "corpus.txt"
        corpus.write_text("\n".join(texts) + "\n", encoding="utf-8")
        model = load(model_dir)
        model.eval()
        with Server(model_dir, corpus, scratch / "server.log") as server:
            warm = [m for m in method_names() if m != "integrated_gradients"]
            asyncio.run(_load(server.url, texts, warm, 1, 0.1, grace=120))
            # The exact methods first: the all-methods load, last, may leave requests queued
            # that the server is still computing when the benchmark stops it.
            for label, methods, (one_s, many_s) in ((EXACT_LABEL, EXACT, exact_s),
                                                    (ALL_LABEL, None, all_s)):
                paired[label] = _paired(server.url, model, texts, methods, one_s)
                loads[label] = asyncio.run(_load(server.url, texts, methods, CLIENTS, many_s))
            t = time.perf_counter()
            alive = httpx.get(server.url + "/api/model", timeout=30).status_code == 200
            model_card_ms = (time.perf_counter() - t) * 1000
    rows = ["| requests | clients | answered | given up | failed | answered/s | p50 ms | "
            "p95 ms | p99 ms |", "|---|---|---|---|---|---|---|---|---|"]
    notes = []
    for label in (ALL_LABEL, EXACT_LABEL):
        p, many = paired[label], loads[label]
        local = Phase(latencies=p.local, elapsed=sum(p.local))
        one = Phase(latencies=p.http, elapsed=sum(p.http), failures=p.failures)
        rows.append(local.row(f"{label}: in-process `explain`, no HTTP (baseline)", "–"))
        rows.append(one.row(f"{label}: `POST /api/explain`", "1"))
        rows.append(many.row(f"{label}: `POST /api/explain`", str(CLIENTS)))
        notes.append(
            f"- {label}: one client, the same {len(p.http)} sentences interleaved with the "
            f"baseline: HTTP + server time ÷ in-process time = **{p.ratio():.2f}×**; "
            f"{CLIENTS} clients: p95 **{many.ms(95) / one.ms(95):.1f}×** the one-client p95, "
            f"throughput **{len(many.latencies) / many.elapsed / (len(p.http) / sum(p.http)):.1f}"
            f"×** one client's (requests wait for the model lock; the server explains "
            f"concurrent texts in batches).")
    one_all = Phase(latencies=paired[ALL_LABEL].http)
    many_all = loads[ALL_LABEL]
    met = {1: one_all.ms(95) <= GOAL_MS,
           CLIENTS: many_all.ms(95) <= GOAL_MS and not many_all.censored}
    verdict = (
        f"- Goal p95 ≤ {GOAL_MS:.0f} ms for one sentence and all methods: one client "
        f"{one_all.pct(95)} ms (**{'met' if met[1] else 'missed'}**); {CLIENTS} concurrent "
        f"clients {many_all.pct(95)} ms (**{'met' if met[CLIENTS] else 'missed'}**). After "
        f"the load the server {'still answered' if alive else 'did NOT answer'} "
        f"`GET /api/model` ({model_card_ms:.0f} ms).")
    per_method = paired[ALL_LABEL].per_method
    ig_steps = paired[ALL_LABEL].ig_steps
    total = sum(float(np.median(v)) for v in per_method.values())
    prof = ["| method | median ms per sentence | max ms | share of the summed medians |",
            "|---|---|---|---|"]
    for m, v in sorted(per_method.items(), key=lambda kv: -float(np.median(kv[1]))):
        prof.append(f"| {m} | {np.median(v) * 1000:.1f} | {max(v) * 1000:.0f} | "
                    f"{np.median(v) / total:.1%} |")
    if ig_steps:
        used = ", ".join(f"{k} steps: {ig_steps.count(k)}" for k in sorted(set(ig_steps)))
        prof.append(f"\nintegrated_gradients used {used} sentences (of {len(ig_steps)}).")
    skipped = sorted(set(method_names()) - set(per_method))
    head = (f"Model: {which}. Sentences of 8–25 words (200, varied, seeded); the server runs "
            f"as `lstmlens serve` does by default ({min(os.cpu_count() or 1, 4)} threads here: "
            "a request's methods side by side, one torch thread each); the baseline is "
            "`lstmlens.explain`, one method after another, at torch threads "
            f"{torch.get_num_threads()}; the clients run in the "
            f"benchmark's own process on the same machine; load average at the start "
            f"{load_avg:.1f}. One client (interleaved with the baseline) {exact_s[0]} s "
            f"exact / {all_s[0]} s all methods; {CLIENTS} clients {exact_s[1]} s / {all_s[1]}"
            f" s (each phase capped at {CAP} requests; requests in flight at the end get "
            f"{GRACE:.0f} s more, then count as given up).")
    body = "\n".join([
        head, "", *rows, "", *notes, verdict, "",
        "Where one all-methods request goes (in-process, per method, with the server's "
        f"options {INTERACTIVE} and defaults otherwise"
        + (f"; {', '.join(skipped)} cannot explain this model and are answered with an "
           "error entry" if skipped else "") + "):",
        "", *prof])
    return "web explorer under load (`lstmlens serve`, `POST /api/explain`)", body
