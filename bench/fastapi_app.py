"""The FastAPI app of the ``fastapi-json-c10-m1`` workload (its own module: only the servers of
that workload import FastAPI). ``GET /json`` -> ``{"message": "Hello, world!"}``; ``GET /``
answers too (the harness's readiness probe)."""
from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

app = FastAPI()


@app.get("/json")
async def json_hello() -> dict:
    return {"message": "Hello, world!"}


@app.get("/")
async def hello() -> PlainTextResponse:
    return PlainTextResponse("Hello, world!")
