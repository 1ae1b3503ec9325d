"""Circuit breakers in Prometheus form, for both services' ``/metrics``.

* ``geo_circuit_breaker_state{dependency, state}``: a state set, one sample per state
  (``closed``, ``half_open``, ``open``), 1 for the breaker's current state and 0 for the others;
* ``geo_circuit_breaker_rejected_total{dependency}``: calls fast-failed while open;
* ``geo_circuit_breaker_opened_total{dependency}``: times the breaker opened.

The state set is a gauge with a ``state`` label, the form the Prometheus text format gives a
state set, rather than prometheus_client's ``StateSetMetricFamily``, whose state label is named
after the metric (``geo_circuit_breaker_state{geo_circuit_breaker_state="open"}``). A number per
state (0, 1, 2) would invite averaging and ``max`` over states that have no order; with one
series per state, ``geo_circuit_breaker_state{state="open"} == 1`` selects the open breakers and
``sum_over_time`` counts how long each was open.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from geo_common.breaker import Breaker, State

#: The ``state`` label of each state, in the order the samples are written.
STATE_LABELS = {State.CLOSED: "closed", State.HALF_OPEN: "half_open", State.OPEN: "open"}


def breaker_metrics(breakers: Iterable[Breaker]) -> Iterator[Metric]:
    """The three metric families of some breakers.

    Args:
        breakers: the breakers; their names become the ``dependency`` label.

    Yields:
        The state set (one sample per breaker and state), the rejection counter and the
        opening counter (one sample per breaker each).
    """
    state = GaugeMetricFamily(
        "geo_circuit_breaker_state",
        "circuit breaker state: 1 for the state the breaker is in, 0 for the others",
        labels=["dependency", "state"],
    )
    rejected = CounterMetricFamily(
        "geo_circuit_breaker_rejected",
        "calls refused without trying while the breaker was open",
        labels=["dependency"],
    )
    opened = CounterMetricFamily("geo_circuit_breaker_opened", "times the breaker opened", labels=["dependency"])
    for breaker in breakers:
        current = breaker.state
        for value, label in STATE_LABELS.items():
            state.add_metric([breaker.name, label], 1.0 if value is current else 0.0)
        rejected.add_metric([breaker.name], float(breaker.rejected))
        opened.add_metric([breaker.name], float(breaker.opened))
    yield from (state, rejected, opened)


class BreakerCollector(Collector):
    """Reads the breakers at scrape time.

    Args:
        breakers: returns the breakers to export (called at each scrape, so breakers made
            after registration are included).
    """

    def __init__(self, breakers: Callable[[], Iterable[Breaker]]) -> None:
        self._breakers = breakers

    def collect(self) -> Iterator[Metric]:
        yield from breaker_metrics(self._breakers())
