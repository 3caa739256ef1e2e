"""Screening at scale: 10,000 suppliers against a 1,000,000-entry list (the issue's
budget: under a minute on the development machine).

Generates a deterministic list of company and person names (random syllable
words, common trade words, legal-form suffixes, some with aliases and countries,
some in Cyrillic) and 10,000 suppliers, 1% of which are planted variants of list
entries (suffix changed, words swapped, transliterated, one letter changed).
Times the index build and the screening separately (generation is not timed: the
lake holds the list in a real run) and checks how many planted variants were found.

    .venv/bin/python bench/supplier_screening.py [--entries 1000000] [--suppliers 10000]
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from suppliers.screening import ListEntry, ScreeningIndex, Supplier, screen_suppliers  # noqa: E402

# Real lists' vocabularies are large; a few dozen syllables in 2-4 combinations give
# ~10^6 distinct words, so blocking sees realistic token frequencies.
SYLLABLES = (
    "ka ro mi sa to na be li do ve gra zen tor mar pol kin dal fer hu os lin tek ar "
    "bru cha dim eg fal gor hal ix jun kol lum mek nor ost pra quin rus sel tam ul "
    "vor wen xa yur zol bel cor dun est fin gul har ion jas kre lor mun nik ode"
).split()
TRADE = "trading global industrial holdings logistics metals energy foods systems group".split()
SUFFIXES = ["Ltd", "LLC", "GmbH", "OOO", "S.A.", "AG", "Co.", "Inc.", "Corp", "Limited", ""]
COUNTRIES = "RU CN DE US GB AE IR KP SY VE TR IN BR FR IT".split()
CYR = str.maketrans("abdefgiklmnoprstuvz", "абдефгиклмнопрстувз")


def word(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))).capitalize()


def entry_name(rng: random.Random) -> str:
    words = [word(rng) for _ in range(rng.randint(1, 2))]
    if rng.random() < 0.6:
        words.append(rng.choice(TRADE).capitalize())
    return " ".join([*words, rng.choice(SUFFIXES)]).strip()


def variant(rng: random.Random, name: str) -> str:
    words = name.split()
    kind = rng.randrange(4)
    if kind == 0 and words[-1] in SUFFIXES:
        words[-1] = rng.choice(SUFFIXES)
    elif kind == 1:
        rng.shuffle(words)
    elif kind == 2:
        return name.lower().translate(CYR)
    else:
        w = rng.randrange(len(words))
        if len(words[w]) > 5:
            i = rng.randrange(1, len(words[w]) - 1)
            words[w] = words[w][:i] + rng.choice("aeiou") + words[w][i + 1 :]
    return " ".join(words)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--suppliers", type=int, default=10_000)
    args = parser.parse_args()
    rng = random.Random(7)

    started = time.perf_counter()
    entries = [
        ListEntry(
            "bench_list",
            f"e{i}",
            entry_name(rng),
            tuple(entry_name(rng) for _ in range(rng.random() < 0.3)),
            tuple(rng.sample(COUNTRIES, rng.randint(0, 2))),
        )
        for i in range(args.entries)
    ]
    planted = {}
    suppliers = []
    for s in range(args.suppliers):
        if s % 100 == 0:
            target = entries[rng.randrange(len(entries))]
            planted[f"s{s}"] = target.entry_id
            name = variant(rng, target.name)
            country = target.countries[0] if target.countries else None
        else:
            name, country = entry_name(rng), rng.choice(COUNTRIES)
        suppliers.append(Supplier(f"s{s}", name, (), country))
    generated = time.perf_counter() - started

    started = time.perf_counter()
    index = ScreeningIndex(entries)
    indexed = time.perf_counter() - started
    started = time.perf_counter()
    matches = screen_suppliers(index, suppliers)
    screened = time.perf_counter() - started

    best = {}
    for m in matches:
        if m.supplier_id not in best or m.score > best[m.supplier_id].score:
            best[m.supplier_id] = m
    found = sum(
        1
        for s, e in planted.items()
        if any(m.supplier_id == s and m.entry_id == e and m.score >= 0.88 for m in matches)
    )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"entries {len(entries):,} ({len(index.names):,} names), suppliers {len(suppliers):,}")
    print(f"generate (not timed)  {generated:6.1f} s")
    print(f"index                 {indexed:6.1f} s  ({len(index.postings):,} blocking keys)")
    print(f"screen                {screened:6.1f} s  ({len(matches):,} matches >= 0.75)")
    print(f"index + screen        {indexed + screened:6.1f} s")
    print(f"planted variants found at >= 0.88: {found}/{len(planted)}")
    print(f"peak RSS {peak_mb:,.0f} MB")


if __name__ == "__main__":
    main()
