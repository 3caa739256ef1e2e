"""Screening supplier names against sanctions and watch lists: pure functions.

A list can hold a million entries and a tenant ten thousand suppliers, so pairs are
never all compared. Names are normalised (transliterated to ASCII, case-folded,
company-form suffixes and punctuation dropped), each token is reduced to a
consonant *skeleton* (``mueller`` and ``muller`` -> ``mlr``, ``mohammed`` and
``muhammad`` -> ``mhmd``), and an inverted index maps skeletons to list names. A
supplier name is compared only with the names sharing one of its rarest skeletons
(the rarest, and the next while the candidates stay few; skeletons held by more
than ``MAX_POSTING`` names are too common to block on unless nothing else is),
and a pair is scored with rapidfuzz's token-sort ratio (word order does not
matter) plus a small bonus when the countries agree, or a malus when both sides
name countries and none agree.

A reviewer's "not the same" judgement for a (supplier, list, entry) is passed in
as ``suppressed`` and that pair is never returned again.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache

from anyascii import anyascii
from rapidfuzz import fuzz, process

COMPANY_SUFFIXES: frozenset[str] = frozenset(
    """
    ab ag aps as asa bhd bv co company corp corporation cv gmbh gmbhco inc incorporated
    jsc kft kg kk lda limited llc llp lp ltd ltda mbh nv oao ojsc ooo oy oyj pao pjsc plc
    pt pte pty sa sab sae sag sarl sas sasu sl spa sp spzoo sro srl zao ead eood ohg
    """.split()
)
"""Legal-form words that say nothing about who a company is (after dots are dropped:
``S.A.`` is ``sa``, ``Co.`` is ``co``)."""

STOP_WORDS: frozenset[str] = frozenset({"the", "and", "of", "und", "et", "de"})

BLOCK_KEYS = 2
"""Most skeletons of a supplier name used to find candidates: the rarest always, the
next ones while the candidates stay within ``CANDIDATE_BUDGET`` (so a misspelt rare
word is still caught through another rare one)."""
CANDIDATE_BUDGET = 200
MAX_POSTING = 20_000
"""A skeleton held by more list names than this is too common to block on alone."""
COUNTRY_BONUS = 0.05
COUNTRY_MALUS = 0.10
MIN_SCORE = 0.75
"""Matches below this are not reported at all; the tenant's threshold decides which
reported matches make a supplier critical."""

CJK_LEGAL_FORMS: tuple[str, ...] = (
    "股份有限公司",
    "有限责任公司",
    "有限公司",
    "株式会社",
    "合同会社",
    "公司",
    "集团",
)
"""Chinese and Japanese legal forms, dropped before transliteration."""

_CJK = re.compile(r"([\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af])")
_DOTS = re.compile(r"(?<=\w)\.(?=\w|\s|$)")
_NON_WORD = re.compile(r"[^a-z0-9]+")
_VOWELS = str.maketrans("", "", "aeiouy")


def normalise(name: str) -> str:
    """A name as compared: ASCII, case-folded, no punctuation, no legal-form suffixes.

    ``"ООО «Ромашка»"`` -> ``"romashka"``; ``"Acme Trading Co., Ltd."`` ->
    ``"acme trading"``. A name made only of suffixes keeps them (never empty).
    """
    text = name
    if not text.isascii():
        for form in CJK_LEGAL_FORMS:
            text = text.replace(form, " ")
        # one token per CJK character (a syllable), as Latin-script lists romanise them
        text = anyascii(_CJK.sub(r" \1 ", text))
    text = text.casefold().replace("&", " and ")
    text = _DOTS.sub("", text)
    tokens = _NON_WORD.sub(" ", text).split()
    kept = [t for t in tokens if t not in COMPANY_SUFFIXES and t not in STOP_WORDS]
    return " ".join(kept or tokens)


@cache
def skeleton(token: str) -> str:
    """First letter, then the consonants with repeats collapsed: a blocking key
    that survives vowel spellings and doubled letters of transliterations.
    Cached: a list's vocabulary is far smaller than its token count."""
    if len(token) <= 2 or token.isdigit():
        return token
    rest = token[1:].translate(_VOWELS)
    out = [token[0]]
    for ch in rest:
        if ch != out[-1]:
            out.append(ch)
    return "".join(out)


@cache
def token_keys(token: str) -> tuple[str, str]:
    """A token's blocking keys: itself, and its skeleton (``~`` first)."""
    return (token, "~" + skeleton(token))


def block_keys(normalised: str) -> set[str]:
    """A name's blocking keys: each token, and each token's skeleton."""
    keys: set[str] = set()
    for token in normalised.split():
        keys.update(token_keys(token))
    return keys


@dataclass(frozen=True)
class ListEntry:
    """One entry of a screening list."""

    list_name: str
    entry_id: str
    name: str
    aliases: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()


@dataclass(frozen=True)
class Supplier:
    supplier_id: str
    legal_name: str
    aliases: tuple[str, ...] = ()
    country: str | None = None


@dataclass(frozen=True)
class Match:
    """A supplier that may be a list entry: which names matched, and how well (0-1)."""

    supplier_id: str
    supplier_name: str
    list_name: str
    entry_id: str
    entry_name: str
    matched_name: str
    """The supplier's name (legal name or alias) that matched."""
    score: float
    country_agrees: bool | None
    """True or False when both sides name countries; None when either does not."""


class ScreeningIndex:
    """The names of one tenant's lists, indexed by skeleton; built once per run."""

    def __init__(self, entries: Iterable[ListEntry]) -> None:
        self.entries: list[ListEntry] = []
        self.names: list[str] = []
        self.sorted_names: list[str] = []
        """Each name's tokens sorted: token-sort ratio is then a plain ratio."""
        self.owner: list[int] = []
        postings: defaultdict[str, list[int]] = defaultdict(list)
        for entry in entries:
            e = len(self.entries)
            self.entries.append(entry)
            seen: set[str] = set()
            for raw in (entry.name, *entry.aliases):
                norm = normalise(raw)
                if not norm or norm in seen:
                    continue
                seen.add(norm)
                n = len(self.names)
                self.names.append(norm)
                self.sorted_names.append(sorted_tokens(norm))
                self.owner.append(e)
                for token in norm.split():
                    for key in token_keys(token):
                        postings[key].append(n)
        self.postings: dict[str, list[int]] = dict(postings)
        self._posting_names: dict[str, list[str]] = {}

    def posting_names(self, key: str) -> list[str]:
        """A key's names (token-sorted), built on first use and kept: suppliers share
        keys, and rapidfuzz scores a ready list in its C loop."""
        names = self._posting_names.get(key)
        if names is None:
            sorted_names = self.sorted_names
            names = self._posting_names[key] = [sorted_names[n] for n in self.postings[key]]
        return names

    def __len__(self) -> int:
        return len(self.entries)

    def blocking_keys(self, normalised: str) -> list[str]:
        """The keys whose postings hold a name's candidates (see :meth:`candidates`)."""
        postings = self.postings
        per_token = [token_keys(t) for t in normalised.split()]
        keys = sorted(
            {k for pair in per_token for k in pair if k in postings},
            key=lambda k: (len(postings[k]), k),
        )
        if not keys:
            return []
        if len(postings[keys[0]]) > CANDIDATE_BUDGET and any(
            own[0] not in postings and own[1] not in postings for own in per_token
        ):
            # No rare key, and a word of the name is in no list name even by its
            # skeleton: its own word has no counterpart, so the common words alone
            # (trading, global) cannot make a match worth comparing thousands for.
            return []
        usable = [k for k in keys if len(postings[k]) <= MAX_POSTING] or keys[:1]
        chosen: list[str] = []
        size = 0
        for key in usable[:BLOCK_KEYS]:
            if chosen and size + len(self.postings[key]) > CANDIDATE_BUDGET:
                break
            chosen.append(key)
            size += len(self.postings[key])
        return chosen

    def candidates(self, normalised: str) -> set[int]:
        """Indexes of list names sharing one of the name's rarest keys: an exact token
        is always at least as rare as its skeleton, so a name is found through its own
        words first, and through a skeleton (another spelling) when that stays cheap
        or when the word itself is in no list name."""
        found: set[int] = set()
        for key in self.blocking_keys(normalised):
            found.update(self.postings[key])
        return found


def country_agreement(supplier: str | None, entry: Sequence[str]) -> bool | None:
    if not supplier or not entry:
        return None
    return supplier.upper() in {c.upper() for c in entry}


def sorted_tokens(normalised: str) -> str:
    return " ".join(sorted(normalised.split()))


def name_score(a: str, b: str) -> float:
    """0-1 similarity of two normalised names, blind to word order."""
    return fuzz.token_sort_ratio(a, b) / 100.0


def screen_supplier(
    index: ScreeningIndex,
    supplier: Supplier,
    *,
    suppressed: frozenset[tuple[str, str, str]] = frozenset(),
    min_score: float = MIN_SCORE,
) -> list[Match]:
    """The entries a supplier may be, best first: one match per entry (its best name
    pair), none that a reviewer ruled out, none below ``min_score``."""
    best: dict[int, Match] = {}
    for raw in dict.fromkeys((supplier.legal_name, *supplier.aliases)):
        norm = normalise(raw)
        if not norm:
            continue
        query = sorted_tokens(norm)
        # Scored in rapidfuzz's C loop, key by key (a name in two postings is scored
        # twice; the best pair per entry is kept): names within reach of the floor
        # (a country bonus can lift a name by COUNTRY_BONUS), then adjusted one by one.
        scored = [
            (raw_score, index.postings[key][position])
            for key in index.blocking_keys(norm)
            for _, raw_score, position in process.extract(
                query,
                index.posting_names(key),
                scorer=fuzz.ratio,
                score_cutoff=(min_score - COUNTRY_BONUS) * 100,
                limit=None,
            )
        ]
        for raw_score, n in scored:
            e = index.owner[n]
            entry = index.entries[e]
            if (supplier.supplier_id, entry.list_name, entry.entry_id) in suppressed:
                continue
            agrees = country_agreement(supplier.country, entry.countries)
            score = raw_score / 100.0
            if agrees is True:
                score = min(1.0, score + COUNTRY_BONUS)
            elif agrees is False:
                score = max(0.0, score - COUNTRY_MALUS)
            score = round(score, 4)
            if score < min_score:
                continue
            held = best.get(e)
            if held is None or score > held.score:
                best[e] = Match(
                    supplier_id=supplier.supplier_id,
                    supplier_name=supplier.legal_name,
                    list_name=entry.list_name,
                    entry_id=entry.entry_id,
                    entry_name=entry.name,
                    matched_name=raw,
                    score=score,
                    country_agrees=agrees,
                )
    return sorted(best.values(), key=lambda m: (-m.score, m.list_name, m.entry_id))


def screen_suppliers(
    index: ScreeningIndex,
    suppliers: Iterable[Supplier],
    *,
    suppressed: frozenset[tuple[str, str, str]] = frozenset(),
    min_score: float = MIN_SCORE,
) -> list[Match]:
    """Every supplier's matches (see :func:`screen_supplier`)."""
    out: list[Match] = []
    for supplier in suppliers:
        out.extend(screen_supplier(index, supplier, suppressed=suppressed, min_score=min_score))
    return out
