"""Source codenames and editor-facing designations, drawn with ``secrets``."""

from __future__ import annotations

import secrets
from functools import cache
from pathlib import Path

CODENAME_WORDS = 7
_WORDLISTS = Path(__file__).parent / "wordlists"
# Sizes, sources and licences: docs/wordlists.md. Each gives at least 90 bits in 7 words.
WORDLIST_SIZES = {"en": 7776, "es": 8192, "fr": 7775, "pt_BR": 7776}

# Designations only need to tell sources apart on an editor's screen; they are
# random, so they say nothing about the source or the order of arrival.
_ADJECTIVES = """
amber azure bold brisk calm candid civic clever coral crisp curious daring deft eager
earnest fair fleet frank gentle golden grand hardy honest humble jade keen kind lively loyal
lucid mellow merry mild modest nimble noble olive patient plucky polite proud quick quiet
rapid ready rosy rustic sage scarlet serene sharp silver sober solid spry steady stern stout
sunny swift tidy tranquil true upbeat valiant vivid warm wise witty zesty
""".split()
_NOUNS = """
albatross alpaca armadillo badger beaver bison capybara caracal condor coyote crane dolphin
egret falcon ferret finch gecko heron ibis iguana jaguar kestrel kingfisher koala lemur lynx
macaw manatee marmot mongoose ocelot otter owl panther parrot pelican puma quail quetzal
raccoon raven salamander seal sloth sparrow stork swallow tapir toucan turtle vicuna vulture
walrus weasel wombat wren yak zebra
""".split()


@cache
def wordlist(language: str = "en") -> tuple[str, ...]:
    """The codename words for ``language``, falling back to English (the EFF large list)."""
    language = language if language in WORDLIST_SIZES else "en"
    words = tuple((_WORDLISTS / f"{language}.txt").read_text(encoding="utf-8").split())
    if len(words) != WORDLIST_SIZES[language] or len(set(words)) != len(words):
        raise RuntimeError(f"the {language} codename wordlist is damaged")
    return words


def generate_codename(language: str = "en", words: int = CODENAME_WORDS) -> str:
    """A fresh codename: ``words`` words, each chosen uniformly with ``secrets``."""
    pool = wordlist(language)
    return " ".join(secrets.choice(pool) for _ in range(words))


def generate_designation() -> str:
    return f"{secrets.choice(_ADJECTIVES)} {secrets.choice(_NOUNS)}"
