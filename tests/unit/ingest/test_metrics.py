"""GET /metrics in-process (one process, fakeredis): the text parses, every answer of the
status route is counted under its reason, and the gauges and workers' counters read Redis."""

import pytest
from prometheus_client.parser import text_string_to_metric_families

from shared import worker_counters as wc
from tests.twilio_fixtures import callback_fields, new_sid, signed_post
from tests.unit.ingest.ingress_client import PUBLIC, STREAM, make_client


def scrape(client, **headers):
    resp = client.get("/metrics", headers=headers)
    assert resp.status_code == 200, resp.data
    assert resp.content_type.startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(resp.data.decode()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def received(samples, outcome):
    return samples[("statuspipe_callbacks_received_total", (("outcome", outcome),))]


@pytest.mark.parametrize(
    ("outcome", "send"),
    [
        ("not_form", lambda c: c.post("/twilio/status", data=b"x=1")),
        ("bad_method", lambda c: c.put("/twilio/status", data=b"x=1")),
        (
            "bad_signature",
            lambda c: c.post(
                "/twilio/status",
                data=b"MessageSid=x",
                content_type="application/x-www-form-urlencoded",
                headers={"X-Twilio-Signature": "bad"},
            ),
        ),
        (
            "missing_field",
            lambda c: c.post("/twilio/status", **_signed({"AccountSid": "AC1"})),
        ),
    ],
)
def test_each_answer_is_counted_under_its_reason(outcome, send):
    client, _ = make_client()
    before = scrape(client)
    others = {k: v for k, v in before.items() if k[0] == "statuspipe_callbacks_received_total"}
    send(client)
    after = scrape(client)
    assert received(after, outcome) == received(before, outcome) + 1
    # ... and nothing else moved.
    for key, value in others.items():
        if key[1] != (("outcome", outcome),):
            assert after[key] == value


def _signed(fields):
    body, headers = signed_post(PUBLIC + "/twilio/status", fields)
    return {"data": body, "headers": headers}


def test_every_outcome_series_exists_from_the_start():
    client, _ = make_client()
    samples = scrape(client)
    outcomes = {dict(k[1])["outcome"] for k in samples if k[0].endswith("received_total")}
    assert {"accepted", "bad_signature", "missing_field", "backlog_full"} <= outcomes


def test_stream_gauges_read_redis():
    client, redis = make_client()
    redis.xadd(STREAM, {"b": "x"}, id="1000-0")  # appended long ago, by its id
    redis.xadd(STREAM, {"b": "y"})
    samples = scrape(client)
    assert samples[("statuspipe_stream_backlog", ())] == 2
    assert samples[("statuspipe_lag_seconds", ())] > 60
    assert samples[("statuspipe_stream_pending", ())] == 0
    assert samples[("statuspipe_metrics_source_up", (("source", "redis"),))] == 1


def test_workers_counters_are_exported_from_redis():
    client, redis = make_client()
    wc.add(redis, STREAM, {wc.STORED.field(): 7, wc.ACTIONS.field("retry", "sent"): 2})
    wc.add(redis, STREAM, {wc.STORED.field(): 3, wc.DEAD_LETTERED.field(): 0})
    samples = scrape(client)
    assert samples[("statuspipe_callbacks_stored_total", ())] == 10
    assert samples[("statuspipe_dead_letters_total", ())] == 0
    labels = (("kind", "retry"), ("outcome", "sent"))
    assert samples[("statuspipe_actions_total", labels)] == 2


def test_a_database_that_does_not_answer_is_reported_not_fatal():
    client, _ = make_client()  # sqlite:// in memory: no tables
    samples = scrape(client)
    assert samples[("statuspipe_metrics_source_up", (("source", "postgresql"),))] == 0
    assert ("statuspipe_dead_letter_rows", ()) not in samples


def test_metrics_token_when_set():
    client, _ = make_client(METRICS_TOKEN="scrape-me")
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert scrape(client, Authorization="Bearer scrape-me")


def test_accepted_callbacks_are_counted_and_timed():
    client, _ = make_client(SIGNATURE_MODE="off")
    before = scrape(client)
    fields = callback_fields(new_sid(), "sent")
    body, _ = signed_post(PUBLIC + "/twilio/status", fields)
    resp = client.post(
        "/twilio/status", data=body, content_type="application/x-www-form-urlencoded"
    )
    after = scrape(client)
    count = ("statuspipe_enqueue_duration_seconds_count", ())
    if resp.status_code == 200:
        assert received(after, "accepted") == received(before, "accepted") + 1
    else:  # fakeredis may not run the enqueue script: then it is counted as such, and timed
        assert received(after, "redis_unavailable") == received(before, "redis_unavailable") + 1
    assert after[count] == before[count] + 1
