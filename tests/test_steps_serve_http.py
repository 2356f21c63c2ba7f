"""The serving container's contract, end to end: a real server process on a real port.

A small XGBoost model is trained here on rows built from the spec's columns; every prediction
the server returns must equal the booster's own prediction on `model_matrix` of the same rows.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import socket
import threading
import time

import pytest
from serve_helpers import (
    SPEC,
    SPEC_PATH,
    THRESHOLD,
    ServerProcess,
    expected,
    get,
    make_records,
    post_json,
    request,
    to_csv,
)

from pipeline_steps.serve import payload


@pytest.fixture(scope="module")
def server(model_dir):
    proc = ServerProcess(model_dir, DECISION_THRESHOLD=str(THRESHOLD), SERVE_WORKERS="3")
    proc.wait_ready()
    yield proc
    code, out = proc.stop()
    assert code == 0, out


def assert_predictions(body: bytes, want: list[float]) -> None:
    """ONNX Runtime serves; its probabilities match XGBoost's within 1e-6 (checked at start)."""
    got = json.loads(body)["predictions"]
    assert [p["probability"] for p in got] == pytest.approx(want, abs=1e-6)
    assert [p["label"] for p in got] == [1 if p >= THRESHOLD else 0 for p in want]


# ---- happy paths -----------------------------------------------------------------------------
def test_ping_is_fast(server):
    start = time.perf_counter()
    status, headers, body = get(server.url + "/ping")
    assert status == 200 and time.perf_counter() - start < 2


def test_json_instances_match_the_booster(server, booster):
    records = make_records(200, seed=7)
    status, headers, body = post_json(server.url, {"instances": records})
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert_predictions(body, expected(records, booster))


def test_json_single_record_and_plain_list(server, booster):
    records = make_records(3, seed=8)
    status, _, body = post_json(server.url, records[0])
    assert status == 200
    assert_predictions(body, expected(records[:1], booster))
    status, _, body = post_json(server.url, records)
    assert status == 200
    assert_predictions(body, expected(records, booster))


def test_json_numbers_as_text_and_missing_columns(server, booster):
    record = {
        "industry": "retail",
        "monthly_revenue": "12000.5",
        "owner_credit_score": 700,
        "has_prior_loan": "yes",
    }
    want = expected([{**record, "monthly_revenue": 12000.5, "has_prior_loan": True}], booster)
    status, _, body = post_json(server.url, record)
    assert status == 200
    assert_predictions(body, want)


def test_csv_with_header_in_any_order(server, booster):
    records = make_records(50, seed=9)
    columns = list(reversed(payload.serving_columns(SPEC)))
    data = to_csv(records, columns, header=True)
    status, _, body = request(server.url + "/invocations", data, {"Content-Type": "text/csv"})
    assert status == 200, body
    assert_predictions(body, expected(records, booster))


def test_csv_without_header_in_spec_order_answers_csv(server, booster):
    records = make_records(50, seed=10)
    data = to_csv(records, payload.csv_columns(SPEC), header=False)
    status, headers, body = request(
        server.url + "/invocations", data, {"Content-Type": "text/csv; charset=utf-8", "Accept": "text/csv"}
    )
    assert status == 200 and headers["Content-Type"] == "text/csv"
    lines = list(csv.reader(io.StringIO(body.decode())))
    want = expected(records, booster)
    assert [float(line[0]) for line in lines] == pytest.approx(want, abs=1e-6)
    assert [int(line[1]) for line in lines] == [1 if p >= THRESHOLD else 0 for p in want]
    assert {len(line) for line in lines} == {4}  # probability, label, model version, inference id
    assert len({line[3] for line in lines}) == 1


def test_execution_parameters(server):
    status, _, body = get(server.url + "/execution-parameters")
    assert status == 200
    want = {"MaxConcurrentTransforms": 3, "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": 6}
    assert json.loads(body) == want


def test_ping_does_not_wait_for_predictions(server):
    records = make_records(3000, seed=11)
    body = json.dumps({"instances": records}).encode()
    done = []

    def invoke():
        for _ in range(4):
            done.append(request(server.url + "/invocations", body, {"Content-Type": "application/json"})[0])

    threads = [threading.Thread(target=invoke) for _ in range(4)]
    for t in threads:
        t.start()
    slowest = 0.0
    while any(t.is_alive() for t in threads):
        start = time.perf_counter()
        assert get(server.url + "/ping", timeout=5)[0] == 200
        slowest = max(slowest, time.perf_counter() - start)
        time.sleep(0.01)
    for t in threads:
        t.join()
    assert done == [200] * 16
    assert slowest < 1.0, f"/ping took {slowest:.3f}s while predictions ran"


# ---- errors ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "body, content_type, status, words",
    [
        (b'{"instances": [', "application/json", 400, ["not valid JSON"]),
        (b'{"instances": {"industry": "retail"}}', "application/json", 400, ["'instances' must be a list"]),
        (b"[1, 2]", "application/json", 400, ["record 0", "expected an object"]),
        (b'{"industry": "retail", "colour": "red"}', "application/json", 400, ["unknown column 'colour'"]),
        (b'{"request_to_revenue": 0.5}', "application/json", 400, ["'request_to_revenue' is derived"]),
        (b'{"tenure_months": "ten"}', "application/json", 400, ["'tenure_months'", "integer", "'ten'"]),
        (b'{"tenure_months": 12.5}', "application/json", 400, ["'tenure_months'", "integer"]),
        (b'{"monthly_revenue": true}', "application/json", 400, ["'monthly_revenue'", "number"]),
        (b'{"has_prior_loan": "maybe"}', "application/json", 400, ["'has_prior_loan'", "boolean"]),
        (b'{"industry": ["retail"]}', "application/json", 400, ["'industry'", "category"]),
        (b"{}", "application/json", 400, ["no columns"]),
        (b"[]", "application/json", 400, ["no records"]),
        (b"industry,colour\nretail,red\n", "text/csv", 400, ["unknown columns ['colour']"]),
        (b"1,2,3\n", "text/csv", 400, ["CSV line 1", "expected 17"]),
        (b"tenure_months\nabc\n", "text/csv", 400, ["record 0", "'tenure_months'"]),
        (b"\xff\xfe", "application/json", 400, ["UTF-8"]),
        (b"a=1", "application/x-www-form-urlencoded", 415, ["unsupported Content-Type", "text/csv"]),
        (b"{}", None, 415, ["unsupported Content-Type"]),
        # the input policy: what preprocessing would quarantine is refused by name, never scored
        (
            b'{"monthly_revenue": 1e999}',
            "application/json",
            400,
            ["'monthly_revenue'", "not a finite number"],
        ),
        (b'{"monthly_revenue": NaN}', "application/json", 400, ["'monthly_revenue'", "not a finite number"]),
        (b"monthly_revenue\nNaN\n", "text/csv", 400, ["'monthly_revenue'", "not a finite number"]),
        (b'{"region": "castle"}', "application/json", 400, ["'region'", "'castle'", "categories"]),
        (b'{"owner_credit_score": 900}', "application/json", 400, ["'owner_credit_score'", "300..850"]),
        (b'{"tenure_months": 1}\n[2]\n', "application/jsonlines", 400, ["JSON Lines line 2"]),
        (b"[" * 5000 + b"]" * 5000, "application/json", 400, ["not valid JSON", "depth"]),
    ],
)
def test_bad_requests_name_the_problem(server, body, content_type, status, words):
    headers = {"Content-Type": content_type} if content_type else {}
    got, headers_out, out = request(server.url + "/invocations", body, headers)
    assert got == status, out
    assert headers_out["Content-Type"] == "application/json"
    message = json.loads(out)["error"]
    for word in words:
        assert word in message
    assert "Traceback" not in out.decode()


def test_unacceptable_accept(server):
    status, _, out = post_json(server.url, {"industry": "retail"}, accept="application/xml")
    assert status == 406 and "Accept" in json.loads(out)["error"]


def test_payload_too_large(server):
    body = b'{"instances": [' + b'{"industry": "retail"},' * 300_000 + b'{"industry": "retail"}]}'
    assert len(body) > 6 * 1024 * 1024
    status, _, out = request(server.url + "/invocations", body, {"Content-Type": "application/json"})
    assert status == 413 and "6 MB" in json.loads(out)["error"]
    assert get(server.url + "/ping")[0] == 200  # the server is fine afterwards


def test_routes_and_methods(server):
    status, _, out = get(server.url + "/nope")
    assert status == 404 and "/nope" in json.loads(out)["error"]
    status, headers, out = get(server.url + "/invocations")
    assert status == 405 and headers["Allow"] == "POST, OPTIONS"  # OPTIONS is answered too
    status, _, out = request(server.url + "/ping", b"", method="POST")
    assert status == 405


def test_missing_content_length(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\r\n")
        reply = b""
        while chunk := sock.recv(65536):  # the 411 closes the connection
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 411") and b"Content-Length" in reply


def test_malformed_request_line_is_a_400_that_closes(server):
    # The HTTP parser (httptools) answers a request it cannot parse with a plain-text 400 and
    # closes the connection: nothing after it on that connection could be trusted.
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /ping HTTP/9.9\r\n\r\nGET /ping HTTP/1.1\r\n\r\n")
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 400") and b"connection: close" in reply.lower()
    assert reply.count(b"HTTP/1.1") == 1


def test_keep_alive_connection_serves_several_requests(server, booster):
    import http.client

    records = make_records(5, seed=12)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    for _ in range(3):
        conn.request("POST", "/invocations", json.dumps(records), {"Content-Type": "application/json"})
        resp = conn.getresponse()
        assert resp.status == 200
        assert_predictions(resp.read(), expected(records, booster))
    conn.close()


# ---- start-up and shutdown (the SIGTERM tests run in the background lane: tests/lane/) ------
def test_bad_model_dir_fails_at_start_with_a_message(tmp_path):
    (tmp_path / "feature_spec.yaml").write_text(SPEC_PATH.read_text())
    proc = ServerProcess(tmp_path)
    _, out = proc.wait(timeout=60)
    # exit 2: input the step cannot use (the step contract), with the reason
    assert proc.proc.returncode == 2 and "cannot serve" in out and "xgboost-model.json" in out


def test_model_and_spec_that_disagree_fail_at_start(tmp_path, model_dir):
    shutil.copy(model_dir / "xgboost-model.json", tmp_path)
    shutil.copy(model_dir / "model_meta.json", tmp_path)
    spec_text = SPEC_PATH.read_text().replace(
        "  - {name: has_prior_loan, type: boolean}\n",
        "  - {name: has_prior_loan, type: boolean}\n  - {name: years_at_address, type: integer}\n",
    )
    (tmp_path / "feature_spec.yaml").write_text(spec_text)
    proc = ServerProcess(tmp_path)
    _, out = proc.wait(timeout=60)
    assert proc.proc.returncode == 2 and "cannot serve" in out and "model_features" in out


def test_invalid_threshold_is_named(model_dir):
    proc = ServerProcess(model_dir, DECISION_THRESHOLD="high")
    _, out = proc.wait(timeout=60)
    assert proc.proc.returncode == 2 and "DECISION_THRESHOLD='high'" in out


def test_serves_a_model_archive_at_the_models_own_threshold(tmp_path, model_dir, booster):
    import tarfile

    # Without DECISION_THRESHOLD the server takes the threshold training chose on validation.
    meta = json.loads((model_dir / "model_meta.json").read_text())
    meta["decision_threshold"] = {"value": 0.35, "method": "max F1 on validation"}
    (tmp_path / "model_meta.json").write_text(json.dumps(meta))
    with tarfile.open(tmp_path / "model.tar.gz", "w:gz") as archive:
        for name in ("xgboost-model.json", "feature_spec.yaml"):
            archive.add(model_dir / name, arcname=name)
        archive.add(tmp_path / "model_meta.json", arcname="model_meta.json")
    (tmp_path / "model_meta.json").unlink()
    proc = ServerProcess(tmp_path)
    try:
        proc.wait_ready()
        records = make_records(40, seed=14)
        status, _, body = post_json(proc.url, records)
        assert status == 200
        got = json.loads(body)["predictions"]
        assert [p["probability"] for p in got] == pytest.approx(expected(records, booster), abs=1e-6)
        probabilities = expected(records, booster)
        assert any(0.35 <= p < 0.5 for p in probabilities)  # rows where 0.35 and 0.5 disagree
        assert [p["label"] for p in got] == [1 if p >= 0.35 else 0 for p in probabilities]
    finally:
        assert proc.stop()[0] == 0
