"""Run notifications: the message's content, retries with backoff, and never an exception."""

import socket

import pytest

from pipeline.reporting import notify
from tests.conftest import Webhook

SUMMARY = {
    "run_id": "headstart-pipeline-20261130", "log": "/runs/logs/run.log", "report": "/runs/r/evaluate/report",
    "metrics": {"accuracy": 0.9125, "accuracy_ci95": [0.88, 0.94], "count": 240},
    "blessed": True, "blessing_reason": "accuracy 0.9125 >= 0.8; not worse than the champion",
    "champion": {"version": 3, "accuracy": 0.9, "same_model": False},
    "paired": {"count": 240, "difference": 0.0125, "lower": -0.004, "upper": 0.029, "confidence": 0.95,
               "challenger_only": 9, "champion_only": 6, "resamples": 2000},
    "pushed_uri": "/serving/headstart/4", "push_reason": "pushed version 4",
}


def message_text(**changes):
    return notify.run_message({**SUMMARY, **changes}, succeeded=True, error=None, source="gs://b/photos",
                              base="mobilenet")["text"]


def test_the_message_gives_blessing_comparison_verdict_report_and_version():
    text = message_text()
    assert text.startswith("*headstart run headstart-pipeline-20261130 succeeded*")
    assert "blessed: yes" in text and "challenger accuracy 0.9125 against champion version 3 0.9000" in text
    assert "paired test: no significant difference (difference +0.0125" in text
    assert "pushed: /serving/headstart/4" in text and "report: file:///runs/r/evaluate/report" in text
    assert "challenger better" in message_text(paired={**SUMMARY["paired"], "lower": 0.001})
    assert "champion: none serving" in message_text(champion=None, paired=None)
    not_pushed = message_text(blessed=False, pushed_uri=None, push_reason="not blessed: accuracy 0.5 < 0.8")
    assert "blessed: no" in not_pushed and "pushed: nothing (not blessed: accuracy 0.5 < 0.8)" in not_pushed


def test_a_failed_run_says_so_with_its_error():
    message = notify.run_message({"run_id": None, "log": "/l"}, succeeded=False, error="step ingest did not succeed",
                                 source="/data", base="mobilenet")
    assert "FAILED" in message["text"] and "error: step ingest did not succeed" in message["text"]
    assert message["blocks"][0]["text"]["text"] == message["text"]


def test_busy_answers_are_retried_with_doubling_waits_until_delivered():
    hook, waits = Webhook(failures=2), []
    try:
        assert notify.post(hook.url, {"text": "hi"}, first_delay_s=0.5, sleep=waits.append)
    finally:
        hook.close()
    assert hook.requests == 3 and hook.messages == [{"text": "hi"}] and waits == [0.5, 1.0]


def test_a_webhook_that_stays_down_costs_a_warning_never_an_exception(caplog):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    waits = []
    assert not notify.post(f"http://127.0.0.1:{closed_port}/x", {"text": "hi"}, attempts=3, sleep=waits.append)
    assert waits == [1.0, 2.0]
    assert "not delivered after 3 attempt(s)" in caplog.text


def test_a_refused_message_is_not_retried():
    # A 400 is the server's answer to this message, not a busy server: one request only.
    hook = Webhook(failures=5, failure_status=400)
    try:
        assert not notify.post(hook.url, {"text": "hi"}, sleep=lambda _: None)
    finally:
        hook.close()
    assert hook.requests == 1


@pytest.mark.parametrize("url", ["slack.com/hook", "ftp://host/x", "https://", ""])
def test_a_webhook_url_that_cannot_take_a_post_is_refused_by_name(url):
    with pytest.raises(ValueError, match="--notify must be an http:// or https:// webhook URL"):
        notify.check_webhook_url(url)


def test_a_malformed_webhook_url_costs_a_warning_and_never_shows_its_secret_path(caplog, capsys):
    from types import SimpleNamespace

    from pipeline.cli.commands import _notify

    url = "http://hooks.example:abc/services/T000/B000/SECRET"
    assert not notify.post(url, {"text": "hi"}, sleep=lambda _: None)
    assert "malformed URL (nonnumeric port: 'abc')" in caplog.text and "http://hooks.example:abc/..." in caplog.text
    # What the end of a successful run does with it: a warning, no exception, no path anywhere.
    _notify(SimpleNamespace(notify=url), SimpleNamespace(source="photos", base_model="mobilenet"), SUMMARY,
            succeeded=True, error=None)
    printed = capsys.readouterr()
    assert "was not delivered" in printed.err
    assert "SECRET" not in caplog.text + printed.out + printed.err


def test_redacted_keeps_the_scheme_and_host_only():
    assert notify.redacted("https://user:pw@hooks.slack.com/services/T/B/X?x=1") == "https://hooks.slack.com/..."
    assert notify.redacted("http://127.0.0.1:8080") == "http://127.0.0.1:8080"
