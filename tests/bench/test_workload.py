"""bench/workload.py: the same seed gives the same bytes, every record passes our lexicons and
handlers, and the mix and popularity are what issue 8 describes."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from bench._jetstream_events import iter_events
from bench import workload
from bench.workload import MIXES, cached_workload, generate, write_jsonl
from engine import syntax
from engine.decode import decode_jetstream
from engine.records import DEFAULT_REGISTRY

KIND_OF = {"social.coves.feed.vote": "vote", "social.coves.community.comment": "comment",
           "social.coves.community.subscription": "subscription"}


def test_the_same_seed_gives_the_same_bytes_and_another_seed_does_not() -> None:
    first = list(generate(3000, seed=7))
    assert first == list(generate(3000, seed=7))
    assert first != list(generate(3000, seed=8))


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.zst"])
def test_written_files_read_back_event_for_event(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"events{suffix}"
    frames = list(generate(500, seed=3))
    assert write_jsonl(path, iter(frames)) == 500
    assert list(iter_events(path)) == frames


@pytest.mark.parametrize("mix", sorted(MIXES))
def test_every_event_is_well_formed_and_passes_the_lexicons_and_handlers(mix: str) -> None:
    for number, frame in enumerate(generate(5000, seed=11, mix=mix), start=1):
        event = decode_jetstream(frame, cursor=number)  # raises RejectedEvent if malformed
        assert syntax.is_did(event.did) and syntax.is_tid(event.rev)
        assert DEFAULT_REGISTRY.handle(event), frame  # lexicon check + handler, rows produced


def test_the_forum_mix_has_the_shares_issue_8_names() -> None:
    assert all(math.isclose(sum(share for _, share in shares), 1.0) for shares in MIXES.values())
    kinds: Counter[str] = Counter()
    for frame in generate(20_000, seed=5):
        commit = orjson.loads(frame)["commit"]
        if commit["operation"] != "create":
            kinds["update or delete"] += 1
        elif commit["collection"] == "social.coves.community.post":
            kinds["post"] += 1
        else:
            kinds[KIND_OF.get(commit["collection"], "other")] += 1
    share = {kind: count / 20_000 for kind, count in kinds.items()}
    assert share["vote"] == pytest.approx(0.60, abs=0.02)
    assert share["comment"] == pytest.approx(0.20, abs=0.02)
    assert share["post"] == pytest.approx(0.08, abs=0.015)
    assert share["subscription"] == pytest.approx(0.08, abs=0.015)
    assert 0.02 < share["update or delete"] + share["other"] < 0.06


def test_popularity_is_skewed_towards_a_few_communities() -> None:
    posts: Counter[str] = Counter()
    for frame in generate(20_000, seed=5):
        event = orjson.loads(frame)
        if event["commit"]["collection"] == "social.coves.community.post":
            posts[event["did"]] += 1
    ranked = [count for _, count in posts.most_common()]
    assert ranked[0] > 5 * ranked[len(ranked) // 2]  # Zipf: the top one dwarfs the median
    assert sum(ranked[:20]) > 0.5 * sum(ranked)  # the top 10 % of 200 get most posts


def test_a_shorter_stream_is_the_head_of_a_longer_one() -> None:
    longer = list(generate(3000, seed=4))
    for events in (1, 150, 220, 2999):  # within the profiles, the first posts, the mix
        assert list(generate(events, seed=4)) == longer[:events]


def test_a_kept_workload_serves_any_shorter_head_and_a_longer_one_replaces_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[int] = []
    real = workload.generate

    def counting(events: int, **kwargs: object) -> Iterator[bytes]:
        made.append(events)
        return real(events, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(workload, "generate", counting)
    first = cached_workload(tmp_path, 800, mix="coves", seed=6)
    assert (first.events, made) == (800, [800])
    assert list(iter_events(first.path)) == list(real(800, seed=6))

    head = cached_workload(tmp_path, 300, mix="coves", seed=6)
    assert (head.path, head.events, made) == (first.path, 300, [800])  # no new generation
    assert list(iter_events(head.path, head.events)) == list(real(300, seed=6))

    other = cached_workload(tmp_path, 300, mix="core", seed=6)  # another stream: its own file
    longer = cached_workload(tmp_path, 1200, mix="coves", seed=6)
    assert made == [800, 300, 1200]
    assert list(iter_events(longer.path)) == list(real(1200, seed=6))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([longer.path.name, other.path.name])


def test_kept_workloads_of_other_code_and_cut_short_writes_are_removed(tmp_path: Path) -> None:
    stale = tmp_path / "coves-seed6-000000000000-5000.jsonl.zst"  # another fingerprint
    cut_short = tmp_path / ".partial-123-coves-seed6-000000000000-5000.jsonl.zst"
    stale.write_bytes(b"")
    cut_short.write_bytes(b"")
    kept = cached_workload(tmp_path, 100, mix="coves", seed=6)
    assert [p.name for p in tmp_path.iterdir()] == [kept.path.name]
    assert list(iter_events(kept.path)) == list(generate(100, seed=6))
