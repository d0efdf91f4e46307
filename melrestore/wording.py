"""Words for what melrestore prints.  Light to import: the command line reads it at start-up."""


def plural(n: int, word: str, *, number: bool = True) -> str:
    """``word`` in the plural unless ``n`` is 1, after ``n`` (``1 file``, ``3 files``), or alone
    with ``number=False`` (``channels``)."""
    word = word if n == 1 else f"{word}s"
    return f"{n} {word}" if number else word
