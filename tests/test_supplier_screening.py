"""The screening matcher: name variants match, unrelated names do not, and a
reviewer's "not the same" suppresses the pair (pure functions, no pipeline)."""

from __future__ import annotations

import pytest

from suppliers.screening import (
    ListEntry,
    ScreeningIndex,
    Supplier,
    normalise,
    screen_supplier,
)

ENTRIES = [
    ListEntry("ofac_sdn", "ofac-1", "Romashka LLC", ("Romashka Trading House",), ("RU",)),
    ListEntry("ofac_sdn", "ofac-2", "Acme Trading Limited", (), ("CN",)),
    ListEntry("eu_fsf", "eu-1", "Müller Maschinenbau GmbH", (), ("DE",)),
    ListEntry("eu_fsf", "eu-2", "Mohammed Al-Rashid Trading Co.", (), ("AE",)),
    ListEntry(
        "eu_fsf", "eu-3", "Shenzhen Hongda Electronics Co., Ltd.", ("深圳宏达电子",), ("CN",)
    ),
    ListEntry("un", "un-1", "Global Petroleum Services S.A.", (), ("PA",)),
    # many unrelated entries sharing common words, so blocking must pick rare tokens
    *(ListEntry("noise", f"n-{i}", f"Trading Company Number {i}", (), ("GB",)) for i in range(300)),
]


@pytest.fixture(scope="module")
def index() -> ScreeningIndex:
    return ScreeningIndex(ENTRIES)


@pytest.mark.parametrize(
    ("name", "country", "entry_id"),
    [
        ("ООО «Ромашка»", "RU", "ofac-1"),  # Cyrillic, legal form ООО, quotes
        ("Romashka Trading House", None, "ofac-1"),  # an alias of the entry
        ("ACME TRADING CO., LTD.", "CN", "ofac-2"),  # suffixes and case
        ("Trading Acme Limited", "CN", "ofac-2"),  # word order
        ("Mueller Maschinenbau AG", "DE", "eu-1"),  # umlaut spelled out, other form
        ("Muhammad Al Rashid Trading LLC", None, "eu-2"),  # transliteration variant
        ("深圳宏达电子有限公司", "CN", "eu-3"),  # Chinese script, via the alias
        ("Global Petroleum Services SA", "PA", "un-1"),  # S.A. vs SA
    ],
)
def test_name_variants_match(index: ScreeningIndex, name: str, country: str | None, entry_id: str):
    matches = screen_supplier(index, Supplier("s1", name, (), country))
    assert matches, f"{name!r} matched nothing"
    assert matches[0].entry_id == entry_id
    assert matches[0].score >= 0.85


@pytest.mark.parametrize(
    "name",
    ["Blue Ocean Foods S.A.", "Acme Robotics Inc", "Romanov Dairy Farms", "Northwind Traders"],
)
def test_unrelated_names_do_not_match(index: ScreeningIndex, name: str):
    assert [m for m in screen_supplier(index, Supplier("s2", name)) if m.score >= 0.85] == []


def test_an_alias_of_the_supplier_is_screened_too(index: ScreeningIndex):
    supplier = Supplier("s3", "Harbour Components Ltd", ("Acme Trading",), "CN")
    (match,) = screen_supplier(index, supplier)
    assert (match.entry_id, match.matched_name) == ("ofac-2", "Acme Trading")


def test_a_country_disagreement_lowers_the_score(index: ScreeningIndex):
    same = screen_supplier(index, Supplier("s4", "Acme Trading Ltd", (), "CN"))[0]
    other = screen_supplier(index, Supplier("s4", "Acme Trading Ltd", (), "US"))[0]
    assert (same.country_agrees, other.country_agrees) == (True, False)
    assert other.score < same.score


def test_not_the_same_suppresses_only_that_pair(index: ScreeningIndex):
    supplier = Supplier("s5", "Acme Trading Ltd", (), "CN")
    assert screen_supplier(index, supplier)[0].entry_id == "ofac-2"
    ruled_out = frozenset({("s5", "ofac_sdn", "ofac-2")})
    assert screen_supplier(index, supplier, suppressed=ruled_out) == []
    # another supplier with the same name is still raised
    other = Supplier("s6", "Acme Trading Ltd", (), "CN")
    assert screen_supplier(index, other, suppressed=ruled_out)[0].entry_id == "ofac-2"


def test_blocking_compares_only_names_sharing_a_rare_token(index: ScreeningIndex):
    # "trading" is in 300+ names; "acme" in one: only that one is a candidate
    assert len(index.candidates(normalise("Acme Trading"))) <= 2


def test_normalise_drops_suffixes_but_never_empties_a_name():
    assert normalise("Acme Trading Co., Ltd.") == "acme trading"
    assert normalise("S.A.") == "sa"
    assert normalise("Ромашка ООО") == "romashka"


def test_a_word_no_list_name_has_is_not_compared_through_common_words(index: ScreeningIndex):
    # "trading" is in 300+ names, "qwzx" in none (not even by its skeleton): the
    # supplier's own word has no counterpart, so no list name is compared at all
    assert index.candidates(normalise("Qwzx Trading")) == set()
    # while a misspelt word that keeps its skeleton is still found
    assert screen_supplier(index, Supplier("s7", "Acmee Tradding Ltd", (), "CN"))[0].entry_id == (
        "ofac-2"
    )
