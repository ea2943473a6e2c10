"""What the index stores and what a query asks for, as space-separated tokens.

Chinese has no spaces and a word is one to four characters, so a CJK run is indexed as all
its character n-grams of two to four characters (each length in order) and its single
characters: 芯 matches a unigram, 芯片, 地平线 and 强化学习 one token each, and a longer
word is the phrase of its consecutive 4-grams. Unlike a dictionary segmenter (jieba) this
never misses a word it does not know (new model and company names are most of the news),
and unlike a trigram index it finds two-character words. Latin, digits and other scripts are words; a
compound (GPT-5, o5-mini, FP4) is indexed as its parts in order, and a compound in a query is
the phrase of its parts, so GPT-5 finds "GPT-5" and "GPT 5" but not "GPT-4 5".

Every token is made of word characters only: the store's tokenizers (SQLite FTS5 unicode61,
PostgreSQL's ``simple`` parser) split on nothing inside one, and user text can never be
query syntax, because a query is rebuilt from these tokens and nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from bot.search.fold import fold

# Han (with extensions and compatibility forms), kana and hangul: scripts without spaces.
CJK_CLASS = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af\U00020000-\U0003134f"
_CJK_RUN = re.compile(f"([{CJK_CLASS}]+)")
_WORD_RUN = re.compile(r"[^\W_]+")  # word characters (CJK included), split on the rest
# Chinese words up to this long are one token each (a longer one is a phrase of them): one
# token is one list to read, where a phrase must check positions in every candidate, which
# made three- and four-character words 2-3x slower to rank and count at 100k items
MAX_GRAM = 4
# a longer "word" is noise (a hash, a base64 blob) and PostgreSQL refuses lexemes > 2 KiB
MAX_TOKEN = 64
# English words ending in s that are not plurals (and that a crude singular would confuse)
NOT_PLURALS = frozenset({"news", "does", "this", "always", "perhaps", "series", "species"})
# folded term → its folded equivalents (see bot.search.aliases)
AliasLookup = Callable[[str], Sequence[str]]
# terms of one query (more are ignored: a query is a few words, not a paragraph)
MAX_TERMS = 8


def is_cjk(char: str) -> bool:
    return _CJK_RUN.match(char) is not None


def pieces(folded: str) -> Iterator[tuple[bool, str, bool]]:
    """(is CJK, text, starts a new word run) for each CJK run or word of folded text."""
    for run in _WORD_RUN.finditer(folded):
        first = True
        for part in _CJK_RUN.split(run.group()):
            if part:
                yield bool(_CJK_RUN.fullmatch(part)), part[:MAX_TOKEN], first
                first = False


def _ngrams(run: str, n: int) -> list[str]:
    return [run[i : i + n] for i in range(len(run) - n + 1)]


def _cjk_tokens(run: str) -> list[str]:
    """Each n-gram length in order (so a longer word is a phrase of consecutive 4-grams),
    then the single characters."""
    if len(run) == 1:
        return [run]
    tokens: list[str] = []
    for n in range(2, MAX_GRAM + 1):
        tokens.extend(_ngrams(run, n))
    return tokens + list(run)


def singular(word: str) -> str | None:
    """The singular of an English plural ("agents" → "agent", "companies" → "company"), or
    None. Crude on purpose: a wrong singular ("analysi") is a token nobody asks for."""
    if (
        len(word) <= 3
        or not word.isascii()
        or not word.isalpha()
        or word.endswith(("ss", "is"))
        or (word.endswith("us") and len(word) > 4)  # status, focus; but GPUs, TPUs
        or word in NOT_PLURALS
    ):
        return None
    if word.endswith("ies") and len(word) > 5:
        return word[:-3] + "y"
    return word[:-1] if word.endswith("s") else None


def index_tokens(text: str) -> str:
    """The tokens of ``text`` for the index, space-separated. English plurals also give
    their singular, after everything else so that phrases keep their adjacent tokens."""
    tokens: list[str] = []
    singulars: list[str] = []
    for cjk, part, _ in pieces(fold(text)):
        if cjk:
            tokens.extend(_cjk_tokens(part))
        else:
            tokens.append(part)
            one = singular(part)
            if one is not None:
                singulars.append(one)
    return " ".join(tokens + singulars)


@dataclass(frozen=True, slots=True)
class Atom:
    """Consecutive tokens that must appear in this order (one token for most words)."""

    tokens: tuple[str, ...]
    # what it looks like in folded text: the CJK string, or the word parts of a compound
    surface: tuple[str, ...]
    cjk: bool


# all atoms of an alternative must match; any alternative of a group (a term, its aliases)
Alternative = tuple[Atom, ...]
Group = tuple[Alternative, ...]


def term_atoms(term: str) -> Alternative:
    """The atoms of one folded query term (no whitespace in it)."""
    atoms: list[Atom] = []
    words: list[str] = []

    def flush() -> None:
        if len(words) == 1:  # a plain word: its singular finds both forms
            word = singular(words[0]) or words[0]
            atoms.append(Atom((word,), (word,), cjk=False))
        elif words:
            atoms.append(Atom(tuple(words), tuple(words), cjk=False))
        words.clear()

    for cjk, part, _ in pieces(term):
        if cjk:
            flush()
            tokens = (part,) if len(part) <= MAX_GRAM else tuple(_ngrams(part, MAX_GRAM))
            atoms.append(Atom(tokens, (part,), cjk=True))
        else:
            words.append(part)  # "gpt-5": the parts of a compound are one phrase
    flush()
    return tuple(atoms)


@dataclass(frozen=True, slots=True)
class ParsedQuery:
    """A user's query as the index sees it."""

    text: str  # what was searched for (cut to the maximum length, whitespace tidied)
    terms: tuple[str, ...]  # folded terms, deduplicated
    groups: tuple[Group, ...]  # one per term that has any word in it

    @property
    def atoms(self) -> list[Atom]:
        """Every atom of every alternative: what snippets highlight."""
        return [atom for group in self.groups for alt in group for atom in alt]


def parse_query(
    query: str, *, max_length: int = 64, aliases: AliasLookup | None = None
) -> ParsedQuery:
    """Parse user text: cut to ``max_length`` characters, fold, split on whitespace; each term
    with its aliases is one group. Quotes, ``*``, ``-``, ``OR``, ``NEAR``, ``%`` are text."""
    text = " ".join(query[:max_length].split())
    terms: list[str] = []
    for term in fold(text).split():
        if term not in terms:
            terms.append(term)
    groups: list[Group] = []
    for term in terms[:MAX_TERMS]:
        alternatives: list[Alternative] = []
        for variant in (term, *(aliases(term) if aliases else ())):
            atoms = term_atoms_phrase(variant)
            if atoms and atoms not in alternatives:
                alternatives.append(atoms)
        if alternatives:
            groups.append(tuple(alternatives))
    return ParsedQuery(text, tuple(terms[:MAX_TERMS]), tuple(groups))


def term_atoms_phrase(variant: str) -> Alternative:
    """Atoms of a term or of an alias; a several-word alias of plain words ("diffusion
    model", "open-source") is one phrase."""
    words = variant.split()
    if len(words) > 1 and not any(is_cjk(char) for char in variant):
        parts = tuple(part for _, part, _ in pieces(variant))
        return (Atom(parts, parts, cjk=False),) if parts else ()
    atoms: list[Atom] = []
    for word in words:
        atoms.extend(term_atoms(word))
    return tuple(atoms)
