"""The anchors `bench/serve_bench.py` measures our server against, in the same run.

* `flask_app()`: Flask under gunicorn with gevent workers, the stack of AWS's framework serving
  containers, scoring the same model with XGBoost's `inplace_predict` after the same feature
  encoder our server uses (so the comparison is the serving stack, not the parsing code).
* `noop`: a raw ASGI app that answers every request with a fixed body: the HTTP limit of
  uvicorn + httptools + uvloop on this machine.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def flask_app() -> Any:
    import numpy as np
    from flask import Flask, Response, request

    from pipeline_steps.common.model_io import load_model_dir
    from pipeline_steps.serve import payload
    from pipeline_steps.serve.features import FeatureEncoder

    model = load_model_dir(Path(os.environ["ANCHOR_MODEL_DIR"]))
    model.booster.set_param({"nthread": 1})
    encoder = FeatureEncoder(model.spec)
    app = Flask("anchor")

    @app.get("/ping")
    def ping() -> Response:
        return Response('{"status": "ok"}', mimetype="application/json")

    @app.post("/invocations")
    def invocations() -> Response:
        encoded = payload.decode(request.get_data(), request.content_type, encoder)
        probabilities = np.asarray(model.booster.inplace_predict(encoded.matrix, validate_features=False))
        body = "".join(f"{float(p)!r},{int(p >= 0.5)}\n" for p in probabilities)
        return Response(body, mimetype="text/csv")

    return app


async def noop(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body", False):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/csv")]})
    await send({"type": "http.response.body", "body": b"0.5,0\n"})
