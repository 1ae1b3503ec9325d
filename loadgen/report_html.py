"""report.html: one page that answers "did it hold?" before anything else.

From the top: a PASS or FAIL banner with every reason the run failed (:mod:`loadgen.outcome`),
a warning when the generator itself may have set the pace, what was run (targets, rate,
arrivals, duration, ramp, start time in UTC, version, host), offered against achieved rate,
each rule with what was measured, the latency figures of every metric, the errors by kind
with the first few answers of each, and the plots (:mod:`loadgen.plots`). Everything shown is
escaped; options reach the summary only through :func:`loadgen.redact.plain`, and the error
answers pass through it too.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from loadgen.catalog import Catalog, catalog_for
from loadgen.ledger import describe
from loadgen.outcome import checks, done, failed_reasons, shown
from loadgen.plots import PLOTS, gauge_label
from loadgen.stranger_figures import describe_strangers
from loadgen.thresholds import Verdict

#: Counters that show trouble without being failures of the catalog's: totals and the
#: friends scenario's drops and deliveries gone wrong.
TROUBLE = (
    "errors",
    "status_4xx",
    "status_5xx",
    "disconnects",
    "disconnected_at_end",
    "reconnects",
    "lost",
    "cut_off",
    "duplicates",
    "reordered",
)
_STATS = ("count", "min", "mean", "p50", "p90", "p95", "p99", "p99.9", "max")
_CAPTIONS = {
    "latency_over_time.png": "p50, p99 and max of each second; dashed lines: the latency rules",
    "throughput_over_time.png": "operations done and errors each second",
    "concurrency_over_time.png": "what the run held open, read once a second",
    "latency_distribution.png": "the latency at each percentile over the whole run",
}
_STYLE = """
body{font-family:system-ui,sans-serif;max-width:72rem;margin:auto;padding:1rem 1.5rem;color:#1b1f24;line-height:1.4}
h1{font-size:1.4rem;margin:.2rem 0 1rem}h2{font-size:1.15rem;margin:1.6rem 0 .5rem}
table{border-collapse:collapse;margin:.3rem 0}td,th{padding:.25rem .7rem;border-bottom:1px solid #d0d7de;vertical-align:top}
th{text-align:left;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
#run th{color:#57606a;font-weight:500;white-space:nowrap}
.banner{border-radius:6px;padding:.8rem 1.2rem;margin:0 0 1rem}.banner h2{margin:0;font-size:1.6rem}
.pass{background:#dafbe1;border:2px solid #1a7f37}.pass h2{color:#1a7f37}
.fail{background:#ffebe9;border:2px solid #cf222e}.fail h2{color:#cf222e}
.warn{background:#fff8c5;border:2px solid #9a6700}.warn h2{color:#7d4e00;font-size:1.15rem}
.banner ul{margin:.4rem 0 0;padding-left:1.3rem}
td.ok{color:#1a7f37;font-weight:600}td.bad{color:#cf222e;font-weight:700}
pre.sample{white-space:pre-wrap;word-break:break-all;background:#f6f8fa;border:1px solid #d0d7de;
border-radius:4px;padding:.3rem .5rem;margin:.2rem 0;font-size:.8rem;max-width:44rem}
figure{margin:1rem 0}img{max-width:100%;border:1px solid #d0d7de}figcaption{color:#57606a;font-size:.9rem}
"""


@dataclass(frozen=True, slots=True)
class ErrorKind:
    """One row of the error table: a counter, its count, its share of its part's operations
    (NaN when it has none) and the first few answers of its kind."""

    name: str
    count: int
    share: float
    samples: tuple[str, ...]


def catalog_of(summary: Mapping[str, Any]) -> Catalog | None:
    """The catalog of the run a summary describes (None for a scenario it does not know)."""
    options = summary.get("options", {})
    try:
        return catalog_for(
            summary["scenario"], search=options.get("search") is not None, friends=options.get("friends") is not None
        )
    except ValueError:
        return None


def error_kinds(summary: Mapping[str, Any]) -> list[ErrorKind]:
    """The counters that counted trouble, ``errors`` first, then by count, with their samples."""
    counters: Mapping[str, int] = summary.get("counters", {})
    samples: Mapping[str, list[str]] = summary.get("error_samples", {})
    catalog = catalog_of(summary)
    rows = []
    for name, count in counters.items():
        part = catalog.counter_part(name) if catalog is not None else None
        prefix = part.prefix if part is not None else ""
        bare = name[len(prefix) :]
        if not count or not (bare in TROUBLE or (part is not None and part.is_failure(bare))):
            continue
        operations = counters.get(prefix + "operations", 0)
        share = 100.0 * count / operations if operations else math.nan
        rows.append(ErrorKind(name, int(count), share, tuple(samples.get(name, ()))))
    return sorted(rows, key=lambda r: (not r.name.endswith("errors"), -r.count, r.name))


def _e(value: object) -> str:
    return html.escape(str(value))


def _ms(value: float) -> str:
    """Milliseconds as a table shows them: 3 significant figures below 100, whole above."""
    if math.isnan(value):
        return "–"
    if value < 10:
        return f"{value:.2f}"
    return f"{value:.1f}" if value < 100 else f"{value:,.0f}"


def _rows(pairs: Iterable[tuple[str, str]]) -> str:
    return "".join(f'<tr><th scope="row">{_e(k)}</th><td>{_e(v)}</td></tr>' for k, v in pairs)


def run_facts(summary: Mapping[str, Any]) -> list[tuple[str, str]]:
    """What was run, as (label, value) pairs: the options that say it, when the run has them."""
    options: Mapping[str, Any] = summary.get("options", {})
    parts = [("", options)] if summary["scenario"] != "mixed" else []
    parts += [(f"{k} ", options[k]) for k in ("search", "friends") if isinstance(options.get(k), Mapping)]
    run: Mapping[str, Any] = summary.get("run", {})
    facts = [("scenario", summary["scenario"])]
    for where, opts in parts:
        facts += [(f"{where}target ({k})", str(opts[k])) for k in ("url", "api", "ws") if k in opts]
    offered, achieved, unit = summary.get("offered_rate"), summary.get("achieved_rate"), summary.get("rate_unit", "")
    if isinstance(offered, int | float):
        facts.append(("offered rate", f"{offered:,.6g} {unit}"))
        if isinstance(achieved, int | float):
            facts.append(("achieved rate", f"{achieved:,.1f} {unit} ({achieved / offered:.1%} of offered)"))
    for where, opts in parts:
        if "arrivals" in opts:
            facts.append((f"{where}arrivals", str(opts["arrivals"])))
        if "users" in opts:
            share = float(opts.get("online_fraction", 1.0))
            facts.append(
                (
                    f"{where}users",
                    f"{opts['users']:,} ({share:.0%} online), an update every {opts.get('interval_s', '?')} s",
                )
            )
        if "ramp_s" in opts:
            facts.append((f"{where}ramp", f"{opts['ramp_s']:g} s"))
    if isinstance(options.get("duration_s"), int | float):
        facts.append(("duration", f"{options['duration_s']:g} s"))
    names = {"ramp_s": "ramp", "duration_s": "duration", "drain_s": "drain", "other_s": "start and close"}
    wall = summary.get("wall", {})
    phases = " + ".join(f"{names.get(k, k)} {v:.2f} s" for k, v in wall.items())
    facts.append(("wall time", f"{summary['wall_s']:.2f} s" + (f" = {phases}" if phases else "")))
    facts.append(("operations", done(summary, grouped=True)))
    for name, g in summary.get("gauges", {}).items():
        facts.append((gauge_label(name), f"peak {g['peak']:,}, mean {g['mean']:,.1f}"))
    facts += [
        ("started (UTC)", str(run.get("started_utc", "–"))),
        ("geo-nearby version", str(run.get("version", "–"))),
        ("host", str(run.get("host", "–"))),
    ]
    return facts


def _banner(summary: Mapping[str, Any], verdicts: list[Verdict]) -> str:
    reasons = failed_reasons(summary, verdicts)
    if reasons:
        items = "".join(f"<li>{_e(r)}</li>" for r in reasons)
        return f'<section id="verdict" class="banner fail"><h2>FAIL</h2><ul>{items}</ul></section>'
    held = "".join(
        f"<li>{_e(c.name)}{f' ({_e(c.actual)})' if c.actual else ''}</li>" for c in checks(summary, verdicts)
    )
    return f'<section id="verdict" class="banner pass"><h2>PASS</h2><ul>{held}</ul></section>'


def _warnings(summary: Mapping[str, Any]) -> str:
    warnings = summary.get("warnings", ())
    if not warnings:
        return ""
    items = "".join(f"<li>{_e(w)}</li>" for w in warnings)
    return (
        '<section id="warnings" class="banner warn"><h2>The generator may have been the bottleneck</h2>'
        f"<ul>{items}</ul><p>When it was, the figures hold the generator's delays as well as the server's: "
        "see &ldquo;Was the generator the bottleneck?&rdquo; in docs/loadgen.md.</p></section>"
    )


def _rules(verdicts: list[Verdict]) -> str:
    if not verdicts:
        return "<p>No rules.</p>"
    rows = "".join(
        f"<tr><td>{_e(v.threshold)}</td><td>{_e(v.threshold.origin)}</td>"
        f"<td class=n>{_e(shown(v))}</td><td class={'ok' if v.passed else 'bad'}>{'pass' if v.passed else 'FAIL'}</td></tr>"
        for v in verdicts
    )
    return f'<table id="rules"><tr><th>rule</th><th>from</th><th>measured</th><th>result</th></tr>{rows}</table>'


def _metrics(summary: Mapping[str, Any]) -> str:
    head = "".join(f"<th>{c}</th>" for c in _STATS)
    rows = "".join(
        f"<tr><th>{_e(name)}</th>"
        + "".join(
            f"<td class=n>{int(s['count']):,}</td>" if c == "count" else f"<td class=n>{_ms(s.get(c, math.nan))}</td>"
            for c in _STATS
        )
        + "</tr>"
        for name, s in summary["metrics"].items()
    )
    return f'<table id="metrics"><tr><th>metric (ms)</th>{head}</tr>{rows}</table>'


def _errors(summary: Mapping[str, Any]) -> str:
    kinds = error_kinds(summary)
    if not kinds:
        return '<p id="no-errors">No errors.</p>'
    rows = "".join(
        f"<tr><th>{_e(k.name)}</th><td class=n>{k.count:,}</td>"
        f"<td class=n>{'–' if math.isnan(k.share) else f'{k.share:.3g}%'}</td><td>"
        + "".join(f'<pre class="sample">{_e(s)}</pre>' for s in k.samples)
        + "</td></tr>"
        for k in kinds
    )
    return (
        '<table id="errors"><tr><th>kind</th><th>count</th><th>of operations</th>'
        f"<th>first answers (up to 3, cut at 300 bytes)</th></tr>{rows}</table>"
    )


def render(summary: Mapping[str, Any], verdicts: list[Verdict]) -> str:
    """The whole page, for ``report.html`` next to the plots of :data:`loadgen.plots.PLOTS`."""
    name = _e(summary["scenario"])
    extra = ""
    if "deliveries" in summary:
        extra += f"<p>{_e(describe(summary['deliveries']))}</p>"
    if "strangers" in summary:
        extra += f'<p id="strangers">{_e(describe_strangers(summary["strangers"]))}</p>'
    if "verification" in summary:
        v = summary["verification"]
        extra += (
            f"<p>Verified {v['answers']} answers against brute force: recall {v['recall']:.4%}, "
            f"{v['wrong_hits']} wrong hits, {v['order_errors']} out of order, {v['total_errors']} wrong totals, "
            f"{v['mismatches']} answers wrong.</p>"
        )
    counters = "".join(f"<tr><th>{_e(k)}</th><td class=n>{v:,}</td></tr>" for k, v in summary["counters"].items())
    figures = "".join(
        f'<figure><img src="{p}" alt="{p[:-4].replace("_", " ")}"><figcaption>{_e(_CAPTIONS[p])}</figcaption></figure>'
        for p in PLOTS
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>geo-loadgen {name}</title><style>{_STYLE}</style></head><body>
<h1>geo-loadgen {name}</h1>
{_banner(summary, verdicts)}
{_warnings(summary)}
<h2>Run</h2><table id="run">{_rows(run_facts(summary))}</table>{extra}
<h2>Rules</h2>{_rules(verdicts)}
<h2>Latency</h2>{_metrics(summary)}
<h2>Errors by kind</h2>{_errors(summary)}
<h2>Over time</h2>{figures}
<h2>Counters</h2><details><summary>all {len(summary["counters"])} counters</summary><table id="counters">{counters}</table></details>
</body></html>
"""
