"""mkdocs hook: a `\\|` inside a code span of a table row reads `|`, as on GitHub.

GitHub needs the backslash to keep a pipe inside code from splitting the table's cells;
Python-Markdown already keeps code spans whole and would print the backslash.
"""

import re

CODE = re.compile(r"(`+)(.+?)\1")


def on_page_markdown(markdown, **kwargs):
    lines = []
    for line in markdown.split("\n"):
        if line.lstrip().startswith("|") and "\\|" in line:
            line = CODE.sub(lambda m: m[1] + m[2].replace("\\|", "|") + m[1], line)
        lines.append(line)
    return "\n".join(lines)
