"""Game names as matching keys, and how sure a name match across sources is.

Store titles differ in ways that do not make them different games: trademark signs, accents,
case, punctuation ("Counter-Strike" / "Counter Strike") and roman numerals ("Final Fantasy VII"
/ "Final Fantasy 7"). Words that do make a different game (a sequel number, "Remastered", a
subtitle) are kept, so "Hades" and "Hades II" never share a key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ml.directory.normalize import normalize_name

# Standalone numerals only; a lone "I" is left alone ("I Am Bread", "I Expect You to Die").
ROMAN = {
    "ii": "2", "iii": "3", "iv": "4", "v": "5", "vi": "6", "vii": "7", "viii": "8", "ix": "9",
    "x": "10", "xi": "11", "xii": "12", "xiii": "13", "xiv": "14", "xv": "15", "xvi": "16",
}  # fmt: skip
DEFAULT_MIN_CONFIDENCE = 0.75
# Marks stores add to titles; compatibility decomposition would turn "™" into the letters "TM".
_MARKS = str.maketrans("", "", "™®©℠")


def game_name_key(name: str | None) -> str:
    """ "The Witcher® 3: Wild Hunt" -> "witcher 3 wild hunt"; "FINAL FANTASY VII" -> "final fantasy 7"."""
    text = name.translate(_MARKS) if isinstance(name, str) else name
    return " ".join(ROMAN.get(word, word) for word in normalize_name(text).split())


def name_words(name: str | None) -> list[str]:
    return game_name_key(name).split()


def match_confidence(wanted: str, candidate: str, dist: float | None = None) -> float:
    """How sure we are that `candidate` names the game `wanted` (0..1).

    Equal keys are certain. Otherwise the search engine's trigram distance (OpenCritic's
    `dist`, 0 = identical, 1 = nothing in common) and the share of words both names have
    (Jaccard) are blended: either alone lets sequels and editions through."""
    a, b = game_name_key(wanted), game_name_key(candidate)
    if not a or not b:
        return 0.0
    if a == b:
        return 1.0
    words_a, words_b = set(a.split()), set(b.split())
    jaccard = len(words_a & words_b) / len(words_a | words_b)
    if dist is None or not isinstance(dist, int | float):
        trigram = jaccard
    else:
        trigram = min(1.0, max(0.0, 1.0 - float(dist)))
    # Never 1.0 without equal keys: a perfect score must mean "the same name".
    return round(min(0.99, 0.6 * trigram + 0.4 * jaccard), 3)


@dataclass(frozen=True)
class NameMatch:
    """The best search hit for a game. `matched` is False below the threshold: the hit is kept
    (name and confidence) so a near miss can be reviewed, but its id is not used."""

    candidate_id: int | None
    candidate_name: str | None
    confidence: float
    matched: bool

    @property
    def matched_id(self) -> int | None:
        return self.candidate_id if self.matched else None


def best_match(
    wanted: str, hits: Iterable[Mapping[str, Any]], min_confidence: float = DEFAULT_MIN_CONFIDENCE
) -> NameMatch:
    """The most likely hit of a name search (`[{id, name, dist}]`), or a no-match."""
    best: tuple[float, float, int] | None = None
    chosen: Mapping[str, Any] | None = None
    for index, hit in enumerate(hits):
        if not isinstance(hit, Mapping) or not isinstance(hit.get("name"), str):
            continue
        if not isinstance(hit.get("id"), int) or isinstance(hit.get("id"), bool):
            continue
        dist = hit.get("dist")
        confidence = match_confidence(wanted, hit["name"], dist)
        # Ties: the smaller search distance, then the search engine's own order.
        rank = (confidence, -(dist if isinstance(dist, int | float) else 1.0), -index)
        if best is None or rank > best:
            best, chosen = rank, hit
    if chosen is None:
        return NameMatch(None, None, 0.0, False)
    confidence = best[0]
    return NameMatch(chosen["id"], chosen["name"], confidence, confidence >= min_confidence)
