"""extract.textcache: a function of one text, remembered while it is short, least recently used out first."""

from __future__ import annotations

from govreports.extract import textcache


def test_hits_are_remembered_long_texts_are_not_and_a_full_cache_drops_the_oldest(monkeypatch) -> None:
    monkeypatch.setattr(textcache, "MAX_CACHED_LEN", 8)
    calls: list[str] = []

    @textcache.text_cache(maxsize=3)
    def upper(text: str) -> str:
        calls.append(text)
        return text.upper()

    assert [upper("a"), upper("b"), upper("a")] == ["A", "B", "A"]
    assert calls == ["a", "b"]  # the second "a" was a hit
    long = "x" * 9
    assert upper(long) == long.upper() and upper(long) == long.upper()
    assert calls == ["a", "b", long, long]  # too long to keep: computed each time
    upper("c")  # the third entry: full
    upper("d")  # no room: "b", the least recently used, goes
    calls.clear()
    assert [upper("d"), upper("a"), upper("c"), upper("b")] == ["D", "A", "C", "B"]
    assert calls == ["b"]
