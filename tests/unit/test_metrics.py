"""/metrics: the Prometheus text the app exposes, and the counters the adapters move."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from callconsent import metrics, names
from tests.support.stasis_fakes import Harness

CID = "1764000000.77"


def sample(text: str, name: str, labels: str = "") -> float:
    """The value of one sample line of the exposition (0 when absent)."""
    m = re.search(rf"^{re.escape(name + labels)} (\S+)$", text, re.MULTILINE)
    return float(m.group(1)) if m else 0.0


def test_counter_with_labels_renders_one_escaped_line_per_label_set() -> None:
    c = metrics.Counter("t_calls_total", "Calls.", ("status", "reason"))
    c.inc(status="given", reason="digit")
    c.inc(status="given", reason="digit")
    c.inc(status="refused", reason='a"b\\c\nd')
    text = "\n".join(c.header() + c.lines())
    assert "# TYPE t_calls_total counter" in text
    assert 't_calls_total{status="given",reason="digit"} 2' in text
    assert 't_calls_total{status="refused",reason="a\\"b\\\\c\\nd"} 1' in text


def test_counter_refuses_to_go_down_and_wrong_labels() -> None:
    c = metrics.Counter("t_x_total", "X.", ("status",))
    with pytest.raises(ValueError, match="only goes up"):
        c.inc(-1, status="given")
    with pytest.raises(ValueError, match="takes labels"):
        c.inc(reason="digit")


def test_counter_without_labels_is_shown_as_zero_before_anything_happens() -> None:
    c = metrics.Counter("t_reconnects_total", "R.")
    assert c.lines() == ["t_reconnects_total 0"]


def test_histogram_buckets_are_cumulative_with_sum_count_and_inf() -> None:
    h = metrics.Histogram("t_latency_seconds", "L.", (0.1, 0.5, 1.0))
    for value in (0.05, 0.1, 0.3, 2.0):
        h.observe(value)
    lines = h.lines()
    assert lines == [
        't_latency_seconds_bucket{le="0.1"} 2',
        't_latency_seconds_bucket{le="0.5"} 3',
        't_latency_seconds_bucket{le="1"} 3',
        't_latency_seconds_bucket{le="+Inf"} 4',
        "t_latency_seconds_sum 2.45",
        "t_latency_seconds_count 4",
    ]


def test_registry_refuses_a_metric_name_twice() -> None:
    registry = metrics.Registry()
    registry.add(metrics.Gauge("t_g", "G."))
    with pytest.raises(ValueError, match="twice"):
        registry.add(metrics.Gauge("t_g", "G."))


def test_exposition_names_every_metric_the_operator_needs() -> None:
    text = metrics.render()
    for name, kind in [
        ("callconsent_calls_total", "counter"),
        ("callconsent_recordings_started_total", "counter"),
        ("callconsent_recordings_stopped_total", "counter"),
        ("callconsent_recordings_failed_total", "counter"),
        ("callconsent_ari_reconnects_total", "counter"),
        ("callconsent_ami_reconnects_total", "counter"),
        ("callconsent_event_loop_lag_seconds", "gauge"),
        ("callconsent_notice_start_seconds", "histogram"),
        ("callconsent_config_reloads_total", "counter"),
    ]:
        assert f"# TYPE {name} {kind}" in text, name
    assert text.endswith("\n")


async def test_a_documentation_call_counts_its_outcome_its_recording_and_the_notice_start(
    tmp_path: Path,
) -> None:
    before = metrics.render()
    h = Harness(tmp_path)
    await h.start(CID, "docs")
    await h.play_through(CID)  # the notice; documentation then starts in the hook
    after = metrics.render()
    assert h.ari.result(CID)[names.VAR_STATUS] == "not_required"
    outcome = '{status="not_required",reason="no_consent_needed"}'
    assert sample(after, "callconsent_calls_total", outcome) == (
        sample(before, "callconsent_calls_total", outcome) + 1
    )
    assert sample(after, "callconsent_recordings_started_total") == (
        sample(before, "callconsent_recordings_started_total") + 1
    )
    assert sample(after, "callconsent_notice_start_seconds_count") == (
        sample(before, "callconsent_notice_start_seconds_count") + 1
    )


async def test_a_refusing_call_counts_its_outcome_and_starts_no_recording(tmp_path: Path) -> None:
    before = metrics.render()
    h = Harness(tmp_path)
    await h.answer_question(CID, "2")
    after = metrics.render()
    refused = '{status="refused",reason="digit"}'
    assert sample(after, "callconsent_calls_total", refused) == (
        sample(before, "callconsent_calls_total", refused) + 1
    )
    assert sample(after, "callconsent_recordings_started_total") == sample(
        before, "callconsent_recordings_started_total"
    )


async def test_a_training_only_call_is_not_counted_as_started_until_the_agent_consents(
    tmp_path: Path,
) -> None:
    before = metrics.RECORDINGS_STARTED.value()
    h = Harness(tmp_path)
    await h.answer_question(CID, "1")  # support: training waits for the agent (R15)
    assert h.ari.result(CID)[names.VAR_RECORD_AT] == "bridge"
    assert metrics.RECORDINGS_STARTED.value() == before
