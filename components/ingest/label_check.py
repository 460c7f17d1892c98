"""Which labels the label vocabulary can hold.

`labels.txt` keeps one label per line and a label's index is its line number, and readers skip
blank lines. A label with a line break in it (a folder named with one, a quoted CSV field) or
one made only of whitespace would make the class count and the indices disagree, so such a
label is refused and its images become rejects.
"""

import unicodedata


def label_problem(label: str) -> str | None:
    """Why `label` cannot name a class, or None when it can."""
    if not label.strip():
        return f"label {label!r} is blank: name the class folder (or the CSV label) with visible characters"
    # Control characters (Cc: \n, \r and the rest) and the line and paragraph separators, where
    # str.splitlines also breaks.
    breaking = sorted({char for char in label if unicodedata.category(char) in ("Cc", "Zl", "Zp")})
    if breaking:
        return (f"label {label!r} holds {', '.join(repr(char) for char in breaking)}: a label must be one line "
                "of printable text; rename the class folder (or the CSV label)")
    return None
