"""Codename wordlists and generation."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from app.codenames import CODENAME_WORDS, WORDLIST_SIZES, generate_codename, wordlist


@pytest.mark.parametrize("language", sorted(WORDLIST_SIZES))
def test_each_list_is_clean_and_gives_at_least_90_bits(language: str) -> None:
    words = wordlist(language)
    assert len(words) == len(set(words)) == WORDLIST_SIZES[language]
    assert all(w.isascii() and w == w.lower() and w.strip() == w and " " not in w for w in words)
    assert CODENAME_WORDS * math.log2(len(words)) >= 90


@pytest.mark.parametrize("language", sorted(WORDLIST_SIZES))
def test_codenames_use_the_language_list(language: str) -> None:
    codename = generate_codename(language)
    parts = codename.split(" ")
    assert len(parts) == CODENAME_WORDS
    assert set(parts) <= set(wordlist(language))


def test_unknown_language_falls_back_to_english() -> None:
    assert set(generate_codename("ar").split()) <= set(wordlist("en"))


def test_draws_are_spread_over_the_list() -> None:
    # 7,000 words drawn from 7,776: a broken generator (same word, or only
    # the start of the list) would fail these loose bounds.
    draws = Counter(w for _ in range(1000) for w in generate_codename("en").split())
    positions = [wordlist("en").index(w) for w in draws]
    assert len(draws) > 3000
    assert min(positions) < 200
    assert max(positions) > 7500
