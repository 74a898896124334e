"""The load client's summary: failures split by kind, and the longest gap between two answers."""

from __future__ import annotations

from bench.load import Load, Request


def summary_of(requests):
    load = Load("http://127.0.0.1:9/")
    load.requests.extend(requests)
    return load.summary()


def test_failures_are_split_into_maintenance_pages_connection_errors_and_others():
    s = summary_of([Request(0.0, 0.1, 200), Request(0.5, 0.1, 503, maintenance=True), Request(1.0, 0.1, None,
                    error="ConnectionRefusedError"), Request(1.5, 0.1, 500), Request(2.0, 0.1, 200)])
    assert (s.made, s.failed, s.maintenance, s.connection_errors, s.other) == (5, 3, 1, 1, 1)
    assert round(s.longest_gap, 2) == 2.0  # from the answer at 0.1 s to the one at 2.1 s


def test_failures_at_the_end_count_in_the_longest_gap():
    s = summary_of([Request(0.0, 0.1, 200), Request(1.0, 0.1, None), Request(3.0, 0.5, None)])
    assert round(s.longest_gap, 2) == 3.4


def test_a_load_on_a_closed_port_records_connection_errors_and_stops():
    load = Load("http://127.0.0.1:9/", interval=0.01, limit=5).start()
    load.wait_for(5, timeout=10)
    s = load.stop()
    assert s.made == 5 and s.connection_errors == 5
