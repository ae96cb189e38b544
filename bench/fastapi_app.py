"""The FastAPI app of the ``fastapi-json-c10-m1`` workload (its own module: only the servers of
that workload import FastAPI). ``GET /json`` -> ``{"message": "Hello, world!"}``."""
from __future__ import annotations

from fastapi import FastAPI

app = FastAPI()


@app.get("/json")
async def json_hello() -> dict:
    return {"message": "Hello, world!"}
