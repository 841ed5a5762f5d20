"""The exporter's pure parts: bucket bounds, sums, label values, the series budget, the
--listen syntax, the bearer check."""

from __future__ import annotations

import pytest

from ecc.exporter.api import authorized
from ecc.exporter.config import HistogramSpec
from ecc.exporter.metrics import SeriesBudget, _estimated_sum, bucket_bounds, label_value
from ecc.exporter.server import parse_listen


def hist(kind: str, slots: int, base: int = 0, step: int = 1) -> HistogramSpec:
    return HistogramSpec("h", "", "m", (), kind, base, step, slots, "slots", None, 1, 1)


def test_log2_bounds_are_the_printed_upper_ends() -> None:
    # slot 0: 0..1, slot 1: 2..3, slot 2: 4..7; the last slot (clamped values) is +Inf only
    assert bucket_bounds(hist("log2_hist", 5)) == [1.0, 3.0, 7.0, 15.0]


def test_linear_bounds() -> None:
    # slot i counts base + i*step .. base + (i+1)*step - 1
    assert bucket_bounds(hist("linear_hist", 4, base=10, step=5)) == [14.0, 19.0, 24.0]


def test_estimated_sum_takes_slot_middles_and_the_last_slots_lower_end() -> None:
    spec = hist("log2_hist", 4)
    # slot 0 (0..1) -> 0.5, slot 2 (4..7) -> 5.5, slot 3 is the last: its lower end, 8
    assert _estimated_sum(spec, [2, 0, 1, 3]) == 2 * 0.5 + 5.5 + 3 * 8
    assert _estimated_sum(hist("linear_hist", 3, base=100, step=10), [1, 1, 1]) == (
        104.5 + 114.5 + 120)


@pytest.mark.parametrize(("value", "text"), [
    ("bash", "bash"), (42, "42"), (-1, "-1"), (True, "true"), (1.5, "1.5"),
    ([1, 2], "[1,2]"), ({"a": "b"}, '{"a":"b"}'),
])
def test_label_values(value: object, text: str) -> None:
    assert label_value(value) == text


def test_series_budget() -> None:
    budget = SeriesBudget(2)
    assert [budget.take(), budget.take(), budget.take()] == [True, True, False]
    assert budget.left() == 0
    budget.give_back(1)
    assert budget.left() == 1 and budget.take()


@pytest.mark.parametrize(("text", "parsed"), [
    ("127.0.0.1:8526", ("127.0.0.1", 8526)), ("[::1]:0", ("::1", 0)),
    ("0.0.0.0:9", ("0.0.0.0", 9)),
])
def test_listen(text: str, parsed: tuple[str, int]) -> None:
    assert parse_listen(text) == parsed


@pytest.mark.parametrize(("text", "error"), [
    ("8526", "'8526' is not HOST:PORT (for example 127.0.0.1:8526)"),
    (":8526", "':8526' is not HOST:PORT (for example 127.0.0.1:8526)"),
    ("localhost:http", "'localhost:http': the port must be a number from 0 to 65535"),
    ("localhost:70000", "'localhost:70000': the port must be a number from 0 to 65535"),
])
def test_bad_listen(text: str, error: str) -> None:
    with pytest.raises(ValueError) as exc:
        parse_listen(text)
    assert str(exc.value) == error


def test_bearer() -> None:
    assert authorized("Bearer abc", "abc")
    assert authorized("bearer abc", "abc")
    assert not authorized("Bearer abd", "abc")
    assert not authorized("Basic abc", "abc")
    assert not authorized(None, "abc")
    assert not authorized("", "abc")
