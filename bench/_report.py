"""The suite's report: a bench/RESULTS.md section (machine, date, commit, command, figures,
ratios, targets) and PNG plots (matplotlib) of throughput, lag percentiles per rate, lag and RSS
over time, and API latency per offered rate."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, Final

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402 - after choosing the backend

from .api_load import MIX, ApiLoad  # noqa: E402
from .ingest import SETTINGS, Run, table  # noqa: E402
from .lag import GIVE_UP_LAG_S, LagRun, OverloadRun  # noqa: E402

__all__ = ["BEGIN", "END", "Target", "Suite", "cpu_per_100k", "overload_text", "plots", "render",
           "replace_section"]

MS: Final = 1000.0
# RESULTS.md keeps one suite run between these markers; the text around them is written by hand.
BEGIN: Final = "<!-- suite run: written by `python -m bench` -->"
END: Final = "<!-- end of suite run -->"


@dataclasses.dataclass
class Target:
    mix: str
    name: str
    wanted: str
    measured: str
    met: bool | None  # None: not measured
    why: str = ""


@dataclasses.dataclass
class Suite:
    """Everything one suite run measured."""

    header: dict[str, str]
    events: int
    throughput: dict[str, dict[str, Run]]  # mix → runs
    lag: dict[str, list[LagRun]]  # mix → runs by rate
    overload: dict[str, OverloadRun]
    api: ApiLoad | None
    transport_default: str
    notes: list[str] = dataclasses.field(default_factory=list)

    def highest_bounded(self, mix: str) -> float | None:
        rates = [run.rate for run in self.lag.get(mix, []) if run.bounded]
        return max(rates) if rates else None


def _ms(seconds: float) -> str:
    return "–" if seconds is None or math.isnan(seconds) else f"{seconds * MS:,.0f}"


def cpu_per_100k(run: LagRun) -> str:
    """The run's CPU seconds per 100k committed events: "engine / Postgres / emulator"."""
    per = 100_000 / max(run.committed, 1)
    return (f"{run.result['cpu_s'] * per:.2f} / {run.postgres_s * per:.2f} / "
            f"{run.emulator_s * per:.2f}")


def lag_table(runs: list[LagRun]) -> list[str]:
    lines = ["| offered ev/s | events offered | committed | achieved ev/s | lag p50 / p95 / p99 / max (ms) "
             "| bounded | CPU s/100k: engine / Postgres / emulator | engine peak RSS (MiB) |",
             "|---:|---:|---:|---:|---|---|---|---:|"]
    stopped = f" (stopped: lag > {GIVE_UP_LAG_S:g} s)"
    for run in runs:
        r = run.result
        lines.append(
            f"| {run.rate:,.0f} | {run.offered:,} | {run.committed:,} | {run.achieved:,.0f} | "
            f"{_ms(r['p50'])} / {_ms(r['p95'])} / {_ms(r['p99'])} / {_ms(r['max'])} | "
            f"{'yes' if run.bounded else 'no' + (stopped if r['gave_up'] else '')} | "
            f"{cpu_per_100k(run)} | {r['peak_rss_mib']:.0f} |")
    return lines


def overload_text(o: OverloadRun) -> list[str]:
    r = o.lag.result
    rss = [value for _, value in r["rss"]]
    quarter = rss[len(rss) // 4] if rss else float("nan")
    lines = [f"Offered {o.rate:,.0f} ev/s (10 × the highest bounded rate) for {o.burst_s:g} s: "
             f"{o.lag.offered:,} events; the engine committed {o.lag.committed:,} in "
             f"{r['seconds']:.0f} s ({o.lag.achieved:,.0f} ev/s). Engine RSS: {quarter:.0f} MiB a "
             f"quarter into the run, peak {r['peak_rss_mib']:.0f} MiB (the backlog waits in the "
             f"emulator and the socket, not in the engine). Lag at the end: {_ms(r['max'])} ms. "
             f"CPU seconds per 100k events, engine / Postgres / emulator: {cpu_per_100k(o.lag)} "
             f"(the lag runs' are in the table above).", ""]
    if o.nothing_missing:
        lines.append("After the burst drained: every record of the offered events is in the "
                     "database (rows per table = distinct records offered), no rejects, and every "
                     "counter equals a recount (`coves reconcile`: no drift). **Nothing missing.**")
    else:
        lines.append(f"After the burst: missing {o.missing}, rejects {o.rejects}, counter drift "
                     f"{o.drift}, all committed: {o.lag.caught_up}. **Something is missing.**")
    return lines


SATURATION_LABELS: Final = {
    "hello": "hello-world (Hypercorn + Quart-Trio, one JSON route)",
    "feeds": "feed reads (getDiscover, getCommunity), logged out",
    "mix": "the interactive mix, logged out",
    "feeds_fresh": "feed reads, nothing shared (each request a statement)"}


def api_section(api: ApiLoad) -> list[str]:
    c = api.counts
    lines = [f"Dataset: {c['communities']:,} communities, {c['posts']:,} posts, "
             f"{c['comments']:,} comments, {c['votes']:,} votes, {c['subscriptions']:,} "
             f"subscriptions (bench/_dataset.py; counters computed set-wise, checked against the "
             f"engine's recounts on a sample: "
             f"{'all equal' if not api.sample_problems else api.sample_problems[:3]}).", "",
             f"**Interactive: {api.user_count} users**, each a "
             f"request from the mix then 0.5–2 s of thinking, {api.users.seconds:g} s: "
             f"{api.users.achieved:,.0f} req/s. Targets: p95 < 50 ms, p99 < 150 ms, 0 errors.", "",
             "| endpoint | share | requests | p50 (ms) | p95 (ms) | p99 (ms) | errors |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    shares = {name: share for share, name in MIX}
    for name in [n for _, n in MIX] + ["all"]:
        names = None if name == "all" else (name,)
        count = len(api.users.latencies(names))
        errors = api.users.errors if name == "all" else api.users.tally["errors"].get(name, 0)
        share = "100 %" if name == "all" else f"{shares[name] * 100:.0f} %"
        lines.append(f"| {name} | {share} | {count:,} | {api.users.p(50, names) * MS:.1f} | "
                     f"{api.users.p(95, names) * MS:.1f} | {api.users.p(99, names) * MS:.1f} | "
                     f"{errors} |")
    lines += ["", "**Saturation** (open loop, no think time, steps of rising rate ×1.5, then two "
              "bisecting steps): the highest rate answered with p95 < 100 ms, no errors and ≥ 95 % "
              "of the offered rate. Same load generator, same run. The load is logged-out "
              "readers, who share answers for ANONYMOUS_CACHE_TTL_S (1 s); the last row shares "
              "nothing (ANONYMOUS_CACHE_TTL_S=0: every request a statement, as a viewer's are).",
              "", "| load | saturation (req/s) | ratio to hello-world | server CPU ms/req | "
              "Postgres CPU ms/req |", "|---|---:|---:|---:|---:|"]
    hello = api.saturation_rate("hello")
    for name, label in SATURATION_LABELS.items():
        rate = api.saturation_rate(name)
        steps = [s for s in api.saturation[name] if s.ok] or api.saturation[name][:1]
        best = max(steps, key=lambda step: step.rate)
        server = best.server_s / max(best.answered, 1) * MS
        postgres = best.postgres_s / max(best.answered, 1) * MS
        lines.append(f"| {label} | {rate:,.0f} | {rate / hello if hello else float('nan'):.2f} | "
                     f"{server:.2f} | {'–' if math.isnan(postgres) else f'{postgres:.2f}'} |")
    if not api.profile:
        lines += ["", "(No profile of the API in this run: quick mode, or py-spy missing — `pip install -e '.[bench]'`.)"]
    else:
        lines += ["", "Where a feed request's time goes in the API process at saturation, "
                  "nothing shared (py-spy, inclusive share of samples):", "", "```"]
        lines += [f"{share * 100:5.1f} %  {name}" for share, name in api.profile]
        lines += ["```"]
    return lines


def _targets(targets: list[Target]) -> list[str]:
    lines = ["| mix | target | wanted | measured | met | why |", "|---|---|---|---|---|---|"]
    for t in targets:
        met = "–" if t.met is None else ("**yes**" if t.met else "no")
        lines.append(f"| {t.mix} | {t.name} | {t.wanted} | {t.measured} | {met} | {t.why} |")
    return lines


def render(suite: Suite, targets: list[Target], plot_names: list[str]) -> str:
    h = suite.header
    lines = [f"## Suite — {h['date']}, commit {h['commit']}", "",
             f"Machine: {h['machine']}. Command: `{h['command']}` ({h['duration']}). "
             f"Engine defaults: batches of at most {SETTINGS.batch_max_size} events, shipped after "
             f"{SETTINGS.batch_max_latency_s * 1000:g} ms if the writer is idle; Jetstream transport default: "
             f"`{suite.transport_default}`. Each throughput row is one run on the same "
             f"{suite.events:,}-event file, into a fresh database; CPU seconds are per 100k events "
             f"(this process = the engine, or the receiving client). The machine is shared: "
             f"compare ratios within one run, and CPU seconds rather than wall time.", ""]
    for mix, runs in suite.throughput.items():
        lines += [f"### Throughput, {mix} mix", "", table(runs), ""]
    for mix, lag_runs in suite.lag.items():
        bounded = suite.highest_bounded(mix)
        lines += [f"### Lag, {mix} mix", "", *lag_table(lag_runs), "",
                  f"Highest offered rate with bounded lag: "
                  f"**{'none' if bounded is None else f'{bounded:,.0f} ev/s'}**.", ""]
    for mix, overload in suite.overload.items():
        lines += [f"### Overload, {mix} mix", "", *overload_text(overload), ""]
    if suite.api is not None:
        lines += ["### API load", "", *api_section(suite.api), ""]
    lines += ["### Targets", "", *_targets(targets), ""]
    if suite.notes:
        lines += ["### Notes", "", *suite.notes, ""]
    lines += [f"![{name}](plots/{name})" for name in plot_names] + [""]
    return "\n".join(lines)


def replace_section(document: str, section: str) -> str:
    """`document` with the text between BEGIN and END replaced by `section` (appended, with the
    markers, when it has none)."""
    block = f"{BEGIN}\n{section.strip()}\n{END}"
    if BEGIN in document and END in document:
        head, _, rest = document.partition(BEGIN)
        return head + block + rest.partition(END)[2]
    return document.rstrip() + "\n\n" + block + "\n"


# ---- plots ----

def plots(suite: Suite, out: Path) -> list[str]:
    """Write the PNGs into `out`; return their file names."""
    out.mkdir(parents=True, exist_ok=True)
    names = [_throughput_plot(suite, out)]
    if any(suite.lag.values()):
        names += [_lag_percentiles_plot(suite, out), _lag_time_plot(suite, out)]
    if suite.overload:
        names.append(_rss_plot(suite, out))
    if suite.api is not None:
        names.append(_api_plot(suite.api, out))
    return names


def _save(figure: Any, out: Path, name: str) -> str:
    figure.tight_layout()
    figure.savefig(out / name, dpi=110)
    plt.close(figure)
    return name


def _throughput_plot(suite: Suite, out: Path) -> str:
    figure, axes = plt.subplots(1, len(suite.throughput), figsize=(6 * len(suite.throughput), 4.2),
                                squeeze=False)
    for ax, (mix, runs) in zip(axes[0], suite.throughput.items()):
        labels = [key.replace("socket:", "engine ").replace("ceiling:", "recv ") for key in runs]
        ax.barh(labels, [run.rate for run in runs.values()], color="#4878a8")
        ax.set_xscale("log")
        ax.set_xlabel("events/s (log)")
        ax.set_title(f"throughput, {mix} mix")
        for i, run in enumerate(runs.values()):
            ax.text(run.rate, i, f" {run.rate:,.0f}", va="center", fontsize=8)
    return _save(figure, out, "throughput.png")


def _lag_percentiles_plot(suite: Suite, out: Path) -> str:
    figure, ax = plt.subplots(figsize=(7, 4.2))
    for mix, runs in suite.lag.items():
        if not runs:
            continue
        rates = [run.rate for run in runs]
        for key, style in (("p50", ":"), ("p95", "--"), ("p99", "-")):
            ax.plot(rates, [run.result[key] * MS for run in runs], style, marker="o",
                    label=f"{mix} {key}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("offered events/s")
    ax.set_ylabel("commit lag (ms)")
    ax.axhline(1000, color="grey", linewidth=0.8)
    ax.legend(fontsize=8)
    ax.set_title("commit lag percentiles per offered rate")
    return _save(figure, out, "lag_percentiles.png")


def _lag_time_plot(suite: Suite, out: Path) -> str:
    mixes = [mix for mix, runs in suite.lag.items() if runs]
    figure, axes = plt.subplots(1, len(mixes), figsize=(6 * len(mixes), 4.2), squeeze=False)
    for ax, mix in zip(axes[0], mixes):
        for run in suite.lag[mix]:
            series = run.result["series"]
            ax.plot([s[0] for s in series], [s[3] * MS for s in series],
                    label=f"{run.rate:,.0f} ev/s")
        ax.set_yscale("log")
        ax.set_xlabel("seconds into the run")
        ax.set_ylabel("p99 commit lag per second (ms)")
        ax.set_title(f"lag over time, {mix} mix")
        ax.legend(fontsize=8)
    return _save(figure, out, "lag_over_time.png")


def _rss_plot(suite: Suite, out: Path) -> str:
    figure, ax = plt.subplots(figsize=(7, 4.2))
    for mix, overload in suite.overload.items():
        rss = overload.lag.result["rss"]
        ax.plot([t for t, _ in rss], [v for _, v in rss], label=f"{mix}: engine RSS")
    ax.set_xlabel("seconds into the overload run")
    ax.set_ylabel("MiB")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    ax.set_title("engine memory while offered 10 × its sustainable rate")
    return _save(figure, out, "overload_rss.png")


def _api_plot(api: ApiLoad, out: Path) -> str:
    figure, ax = plt.subplots(figsize=(7, 4.2))
    for name, steps in api.saturation.items():
        steps = sorted(steps, key=lambda step: step.rate)
        ax.plot([s.rate for s in steps], [s.p(95) * MS for s in steps], marker="o",
                label=f"{name} p95")
    ax.axhline(100, color="grey", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("offered requests/s")
    ax.set_ylabel("latency p95 (ms)")
    ax.legend(fontsize=8)
    ax.set_title("API latency per offered rate")
    return _save(figure, out, "api_saturation.png")
