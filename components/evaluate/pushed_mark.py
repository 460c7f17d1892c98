"""Where the report says which version was pushed, so that a copy made after the run can say it.

The report is evaluate's and is written before push runs; the version number is push's to choose
(the next free one). So the report says what push will do, and the runs page's copy, made once the
run is over (pipeline/reporting/runs_page.py), puts the outcome in its place. Light: no matplotlib here.
"""

import html

PUSHED_START, PUSHED_END = '<span class="pushed">', "</span>"


def pushed_mark(text: str) -> str:
    """The report's element holding `text`."""
    return f"{PUSHED_START}{html.escape(text)}{PUSHED_END}"


def with_pushed_version(page: str, text: str) -> str:
    """`page` with its pushed element's text replaced by `text`; unchanged if it has none."""
    start = page.find(PUSHED_START)
    end = page.find(PUSHED_END, start + len(PUSHED_START)) if start >= 0 else -1
    if end < 0:
        return page
    return page[:start] + pushed_mark(text) + page[end + len(PUSHED_END):]
