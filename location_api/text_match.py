"""The text query of a search (``q``): how its words match a business's name and categories.

Both sides are cut into words the same way (:func:`words`): letters and digits, accents
dropped (``Café`` is ``cafe``), case folded (``STRASSE`` is ``strasse``). A business matches
when every word of the query matches one of its words:

* **exactly, or as the start of it** (``bak`` finds ``bakery``: what a user is still typing);
* **with a typo**, for a query word of 4 characters or more: one edit (a letter added,
  dropped, changed, or two neighbours swapped) for 4 to 7 characters, two for 8 or more,
  against the whole word or its start of the same length (``resturant`` finds
  ``restaurant``, ``cafw`` finds ``cafe``). Shorter query words take no typo: ``bar``
  would otherwise find ``car``, ``bay`` and ``bag``.

A word matched exactly or as a prefix scores 2, one matched with a typo 1; a business's
relevance is the sum over the query's words (``sort=relevance``: the highest first, then
the nearest). Pure code: the in-memory and the ``sql`` strategies call the same functions,
so their answers are identical.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable

#: Longest ``q``, characters, and most words in it.
MAX_QUERY_CHARS = 100
MAX_QUERY_WORDS = 8
#: The shortest query word that may carry a typo, and the shortest that may carry two.
ONE_TYPO_FROM = 4
TWO_TYPOS_FROM = 8

_WORD = re.compile(r"[^\W_]+")


def words(text: str) -> tuple[str, ...]:
    """The words of a text: runs of letters and digits, accents dropped, case folded."""
    if text.isascii():  # most names: nothing to decompose
        return tuple(_WORD.findall(text.lower()))
    plain = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return tuple(_WORD.findall(plain.casefold()))


def typos_allowed(word: str) -> int:
    """How many edits a query word may be away from a business's word."""
    return 2 if len(word) >= TWO_TYPOS_FROM else 1 if len(word) >= ONE_TYPO_FROM else 0


def edits_within(a: str, b: str, most: int) -> bool:
    """Whether ``a`` becomes ``b`` in at most ``most`` edits (insert, delete, substitute, or
    swap two neighbours: the optimal string alignment distance)."""
    if abs(len(a) - len(b)) > most:
        return False
    if most == 0:
        return a == b
    before: list[int] | None = None
    row = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            best = min(row[j] + 1, current[j - 1] + 1, row[j - 1] + cost)
            if before is not None and i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                best = min(best, before[j - 2] + 1)
            current[j] = best
        if min(current) > most:
            return False
        before, row = row, current
    return row[len(b)] <= most


@functools.lru_cache(maxsize=1 << 16)
def word_score(query_word: str, word: str) -> int:
    """2: ``word`` is ``query_word`` or starts with it; 1: within the typos allowed, whole or
    its start; 0: no match. Remembered for the last 65,536 pairs: popular queries meet the
    same names' words again and again."""
    if word.startswith(query_word):
        return 2
    most = typos_allowed(query_word)
    if most == 0:
        return 0
    # Each letter of one word that the other lacks takes an edit of its own: most words are
    # refused by that count alone, before the table of edits.
    letters = set(query_word)
    if len(letters - set(word)) > most:
        return 0
    start = word[: len(query_word)]
    if edits_within(query_word, word, most) or (
        len(word) > len(query_word) and len(letters - set(start)) <= most and edits_within(query_word, start, most)
    ):
        return 1
    return 0


class TextQuery:
    """A parsed ``q``: its words, and what each business word scored, remembered for the
    length of one search (a name's words recur across a city: ``Saint``, ``Bakery``).

    Args:
        query_words: the query's words (:func:`words` of ``q``), at least one.
    """

    def __init__(self, query_words: tuple[str, ...]) -> None:
        self.words = query_words
        self._seen: dict[str, tuple[int, ...]] = {}

    def score(self, texts: Iterable[str]) -> int:
        """The relevance of a business whose name and categories are ``texts``: the sum of each
        query word's best score, or 0 when any query word matches none of its words."""
        best = [0] * len(self.words)
        seen = self._seen
        for text in texts:
            for word in words(text):
                scores = seen.get(word)
                if scores is None:
                    scores = seen[word] = tuple(word_score(q, word) for q in self.words)
                for i, s in enumerate(scores):
                    if s > best[i]:
                        best[i] = s
        return 0 if 0 in best else sum(best)
