"""``create_app``: the FastAPI application of ``lstmlens serve``.

A JSON API (described by its OpenAPI schema at ``/openapi.json``) over an :class:`Explorer`,
and the static front end (``lstmlens/web``) that uses only that API. Bad input gets a 4xx
with a message: 400 for what lstmlens refuses (``{"detail": "..."}``), 413 for a body over
the limit, 422 for JSON that does not fit the schema. Nothing a client sends is used as a
file path: the only files read are the model directory's and the packaged front end.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from .errors import LstmlensError
from .explorer import Explorer
from .explorer_json import json_safe

WEB = Path(__file__).resolve().parent / "web"
METHOD = Annotated[str, Field(max_length=64)]
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


class Item(BaseModel):
    """One input: typed ``text``, or a corpus ``sequence`` by index."""

    model_config = ConfigDict(extra="forbid")
    text: Annotated[str | None, Field(max_length=20000)] = None
    sequence: Annotated[int | None, Field(ge=0, le=10**9)] = None


class ExplainRequest(Item):
    methods: Annotated[list[METHOD] | None, Field(max_length=32)] = None
    target: Annotated[int, Field(ge=-10**9, le=10**9)] | Annotated[str, Field(max_length=200)
                                                                   ] | None = None


class GatesRequest(Item):
    step: Annotated[int | None, Field(ge=0, le=10**6)] = None


class MatchRequest(Item):
    key: Annotated[str | None, Field(max_length=200)] = None
    start: Annotated[int, Field(ge=0, le=10**6)] = 0
    end: Annotated[int, Field(ge=1, le=10**6)] = 1
    threshold: Annotated[float, Field(ge=-1.0, le=1.0)] = 0.3
    units: Annotated[list[Annotated[int, Field(ge=0, le=10**6)]] | None,
                     Field(max_length=4096)] = None
    min_overlap: Annotated[int | None, Field(ge=1, le=4096)] = None
    top: Annotated[int, Field(ge=1, le=1000)] = 20
    context: Annotated[int, Field(ge=0, le=50)] = 5


class TranslateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: Annotated[str, Field(max_length=20000)]


class BodyLimit:
    """ASGI middleware: refuse a request body over ``max_bytes`` with 413 (whether or not
    it says its length), before any of it reaches the application."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or
                                     int(declared) > self.max_bytes):
            return await _too_large(send, self.max_bytes)
        seen = 0

        async def counted() -> Any:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge
            return msg

        try:
            await self.app(scope, counted, send)
        except _TooLarge:
            await _too_large(send, self.max_bytes)


class _TooLarge(Exception):
    pass


async def _too_large(send: Any, limit: int) -> None:
    body = (b'{"detail":"the request body is over the limit of %d bytes"}' % limit)
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def create_app(explorer: Explorer) -> FastAPI:
    """The web application over ``explorer`` (see the module docstring)."""
    from . import __version__
    ex = explorer
    app = FastAPI(title="lstmlens explorer", version=__version__,
                  description="States, explanations, neurons and rules of one LSTM model.")

    @app.exception_handler(LstmlensError)
    async def _refused(request: Request, exc: LstmlensError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own answer echoes the input, and fails (500) on what it cannot encode
        return JSONResponse({"detail": json_safe(jsonable_encoder(exc.errors()))},
                            status_code=422)

    @app.middleware("http")
    async def _headers(request: Request, call_next: Any) -> Any:
        resp = await call_next(request)
        resp.headers["Content-Security-Policy"] = CSP
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "no-referrer"
        return resp

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(WEB / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=WEB), name="static")

    @app.get("/api/model", summary="The model card and what the explorer can show")
    def model() -> dict[str, Any]:
        return ex.info()

    @app.get("/api/corpus", summary="A page of the corpus")
    def corpus(offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
               limit: Annotated[int, Query(ge=1, le=500)] = 50) -> dict[str, Any]:
        return ex.corpus_page(offset, limit)

    @app.post("/api/explain", summary="Prediction and each method's scores for one input")
    def explain(req: ExplainRequest) -> dict[str, Any]:
        return ex.explain(ex.resolve(req.text, req.sequence), req.methods, req.target)

    @app.post("/api/gates", summary="Every gate and state of every layer for one input")
    def gates(req: GatesRequest) -> dict[str, Any]:
        return ex.gates(ex.resolve(req.text, req.sequence), req.step)

    @app.post("/api/match", summary="Hypothesis matching: where the selected units fire")
    def match(req: MatchRequest) -> dict[str, Any]:
        item = ex.resolve(req.text, req.sequence)
        if req.units is None and req.end <= req.start:
            raise LstmlensError(f"the span {req.start}:{req.end} is empty or reversed; give "
                                "start < end")
        return ex.match(item, req.key, req.start, req.end, req.threshold, req.units,
                        req.top, req.context, req.min_overlap)

    @app.get("/api/neurons/saturation", summary="Per gate and unit: time spent saturated")
    def saturation() -> dict[str, Any]:
        return ex.saturation()

    @app.get("/api/neurons/units", summary="Units ranked for a per-token feature")
    def units(feature: Annotated[str, Query(max_length=64)],
              k: Annotated[int, Query(ge=1, le=500)] = 20) -> dict[str, Any]:
        return ex.units(feature, k)

    @app.get("/api/neurons/contexts", summary="A unit's top-activating contexts")
    def contexts(unit: Annotated[int, Query(ge=0, le=10**6)],
                 key: Annotated[str | None, Query(max_length=200)] = None,
                 k: Annotated[int, Query(ge=1, le=500)] = 10,
                 window: Annotated[int, Query(ge=0, le=50)] = 5) -> dict[str, Any]:
        return ex.contexts(key, unit, k, window)

    @app.get("/api/rules", summary="Phrase rules with support and precision")
    def rules(top: Annotated[int, Query(ge=1, le=1000)] = 50) -> dict[str, Any]:
        return ex.rules(top)

    @app.get("/api/automaton", summary="An automaton extracted from the network, drawn")
    def automaton(method: Annotated[str, Query(pattern="^(quantize|lstar)$")] = "quantize"
                  ) -> dict[str, Any]:
        return ex.automaton(method)

    @app.get("/api/evaluation", summary="The faithfulness table and curves, when computed")
    def evaluation() -> dict[str, Any]:
        return ex.evaluation()

    @app.post("/api/translate", summary="Translation with its attention alignment")
    def translate(req: TranslateRequest) -> dict[str, Any]:
        return ex.translate(req.text)

    @app.get("/api/forecast", summary="A forecast with attributions over time")
    def forecast(sequence: Annotated[int, Query(ge=0, le=10**9)] = 0,
                 method: Annotated[str, Query(max_length=64)] = "integrated_gradients",
                 step: Annotated[int, Query(ge=0, le=10**4)] = 0) -> dict[str, Any]:
        return ex.forecast(sequence, method, step)

    app.add_middleware(BodyLimit, max_bytes=ex.limits.max_body)
    return app
