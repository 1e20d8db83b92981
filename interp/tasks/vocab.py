"""The fixed word list shared by every task, and the word <-> id mapping.

The order of `VOCAB` *is* the token-id assignment of the task tokenizer and of every zoo model trained
on tasks: append new words at the end only, never reorder or delete, or shipped models break
(`tests/interp/test_zoo.py` checks each shipped tokenizer against this list).
"""

from __future__ import annotations

from interp.errors import InterpError, closest

SPECIALS: tuple[str, ...] = ("<pad>", "<unk>", "<bos>", "<eos>")
PUNCTUATION: tuple[str, ...] = (",", ".", "?")

# ioi
NAMES: tuple[str, ...] = (
    "Mary", "John", "Alice", "Bob", "Tom", "Anna", "James", "Emma", "Sarah", "David",
    "Laura", "Peter", "Kate", "Paul", "Lucy", "Mark", "Jane", "Adam", "Rose", "Sam",
    "Helen", "Jack", "Grace", "Ben", "Clara", "Dan", "Eva", "Luke", "Nina", "Oscar",
    "Ruth", "Tim", "Vera", "Hugo", "Iris", "Leo", "Mia", "Noah", "Zoe", "Ian",
)  # fmt: skip
PLACES: tuple[str, ...] = (
    "store", "garden", "school", "park", "market", "station", "office", "river", "beach", "library",
)  # fmt: skip
OBJECTS: tuple[str, ...] = (
    "drink", "ring", "book", "letter", "gift", "ball", "key", "flower", "coin", "basket",
)  # fmt: skip
IOI_VERBS: tuple[str, ...] = ("gave", "handed", "sent", "showed", "passed", "threw")
IOI_WORDS: tuple[str, ...] = (
    "When", "While", "After", "At", "and", "went", "were", "arrived", "talked", "to", "the", "at",
    "a", "then",
)  # fmt: skip

# greater_than
CENTURIES: tuple[int, ...] = (15, 16, 17)
GT_NOUNS: tuple[str, ...] = ("war", "siege", "reign", "journey", "voyage", "drought", "famine", "truce")
GT_WORDS: tuple[str, ...] = ("The", "lasted", "from", "year")
TWO_DIGITS: tuple[str, ...] = tuple(f"{i:02d}" for i in range(100))
YEARS: tuple[str, ...] = tuple(f"{c}{y:02d}" for c in CENTURIES for y in range(1, 99))

# hierarchical_equality
SYMBOLS: tuple[str, ...] = (
    "red", "blue", "green", "yellow", "black", "white", "purple", "orange", "pink", "brown",
)  # fmt: skip
BOOLEANS: tuple[str, ...] = ("true", "false")

# facts
SURNAMES: tuple[str, ...] = (
    "Smith", "Jones", "Brown", "Miller", "Davis", "Wilson", "Moore", "Taylor", "Clark", "Lewis",
    "Walker", "Hall", "Young", "King", "Wright", "Scott", "Green", "Baker", "Adams", "Nelson",
)  # fmt: skip
CITIES: tuple[str, ...] = (
    "Paris", "London", "Rome", "Berlin", "Madrid", "Tokyo", "Cairo", "Lima", "Oslo", "Delhi",
    "Sydney", "Toronto",
)  # fmt: skip
SPORTS: tuple[str, ...] = ("tennis", "golf", "chess", "soccer", "hockey", "rugby", "cricket", "boxing")
INSTRUMENTS: tuple[str, ...] = ("piano", "violin", "guitar", "drums", "flute", "cello", "trumpet", "harp")
FACT_WORDS: tuple[str, ...] = (
    "was", "born", "in", "city", "of", "is", "known", "for", "sport", "musician", "who", "plays",
)  # fmt: skip

# induction: any content word may be copied
ANIMALS: tuple[str, ...] = (
    "cat", "dog", "horse", "cow", "sheep", "goat", "lion", "tiger", "bear", "wolf",
    "fox", "mouse", "bird", "fish", "frog", "snake", "duck", "owl", "deer", "rabbit",
)  # fmt: skip
INDUCTION_POOL: tuple[str, ...] = (
    NAMES + PLACES + OBJECTS + SYMBOLS + CITIES + SPORTS + INSTRUMENTS + ANIMALS + SURNAMES
)


def _dedupe(words: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(words))


VOCAB: tuple[str, ...] = _dedupe(
    SPECIALS + PUNCTUATION + NAMES + PLACES + OBJECTS + IOI_VERBS + IOI_WORDS + GT_WORDS + GT_NOUNS
    + TWO_DIGITS + YEARS + SYMBOLS + BOOLEANS + SURNAMES + CITIES + SPORTS + INSTRUMENTS + FACT_WORDS
    + ANIMALS
)  # fmt: skip
TOKEN_ID: dict[str, int] = {word: i for i, word in enumerate(VOCAB)}
PAD_ID, UNK_ID, BOS_ID, EOS_ID = (TOKEN_ID[s] for s in SPECIALS)


def token_id(word: str) -> int:
    """The id of one vocabulary word.

    Example:
        >>> token_id("<bos>")
        2
    """
    try:
        return TOKEN_ID[word]
    except KeyError:
        hint = ", ".join(closest(word, VOCAB)) or "none"
        raise InterpError(f"{word!r} is not in the task vocabulary (closest: {hint})") from None


def encode_words(words: list[str]) -> list[int]:
    """`<bos>` followed by the ids of `words` (what the tokenizer gives for `" ".join(words)`)."""
    return [BOS_ID] + [token_id(w) for w in words]
