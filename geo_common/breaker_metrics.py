"""Circuit breakers in Prometheus form, for both services' ``/metrics``.

* ``geo_circuit_breaker_state{dependency}``: 0 closed, 1 half-open, 2 open;
* ``geo_circuit_breaker_rejected_total{dependency}``: calls fast-failed while open;
* ``geo_circuit_breaker_opened_total{dependency}``: times the breaker opened.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from geo_common.breaker import Breaker


def breaker_metrics(breakers: Iterable[Breaker]) -> Iterator[Metric]:
    """The three metric families of some breakers (one sample per breaker in each).

    Args:
        breakers: the breakers; their names become the ``dependency`` label.

    Yields:
        The state gauge, the rejection counter and the opening counter.
    """
    state = GaugeMetricFamily(
        "geo_circuit_breaker_state", "circuit breaker state: 0 closed, 1 half-open, 2 open", labels=["dependency"]
    )
    rejected = CounterMetricFamily(
        "geo_circuit_breaker_rejected",
        "calls refused without trying while the breaker was open",
        labels=["dependency"],
    )
    opened = CounterMetricFamily("geo_circuit_breaker_opened", "times the breaker opened", labels=["dependency"])
    for breaker in breakers:
        state.add_metric([breaker.name], float(breaker.state))
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
