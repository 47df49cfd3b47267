"""Doxygen's INPUT_FILTER for include/sky_async: the headers' plain comments as documentation.

The public headers document each declaration with ordinary ``//`` comments, so that they read
well in an editor. Doxygen reads only its own markers, so this filter rewrites, in what Doxygen
sees (the files are untouched): the comment that opens a header into the file's description, a
comment on lines of its own into ``///`` (it describes what follows), and a comment after code
(``int x;  // ...``, with the comment lines that continue it) into ``///<`` (it describes what
precedes). ``// namespace ...`` after a closing brace stays a plain comment, and a specialisation
of a template in ``std`` is left out.
"""

import re
import sys

OWN_LINE = re.compile(r"^(\s*)//(?![/!])\s?(.*)$")
AFTER_CODE = re.compile(r"^(.*\S)(\s+)//(?![/!<])\s?(.*)$")


def _text(comment: str) -> str:
    """*comment* with ``<`` before a letter escaped: ``/proc/<pid>/stat`` is no HTML tag."""
    return re.sub(r"<(?=[A-Za-z])", r"\\<", comment)


def convert(lines: list[str]) -> list[str]:
    out: list[str] = []
    in_header = True  # the comment lines before anything else: the file's description
    continuing = -1  # the column of the after-code comment that the next comment line may continue
    for line in lines:
        own = OWN_LINE.match(line)
        if in_header:
            if own and not line.startswith(" "):
                out.append(("/// @file\n" if not out else "") + f"/// {_text(own.group(2))}")
                continue
            in_header = False
        if own:
            if continuing >= 0 and len(own.group(1)) == continuing:
                out.append(f"{own.group(1)}///< {_text(own.group(2))}")
            else:
                continuing = -1
                out.append(f"{own.group(1)}/// {_text(own.group(2))}")
            continue
        if line.startswith("struct std::") and out and out[-1] == "template <>":
            # A specialisation in std (is_error_code_enum): not sky_async's interface, and
            # Doxygen 1.9 fails on it ("scope for class std::... not found").
            out[-1] = line = ""
        after = AFTER_CODE.match(line)
        if after and not after.group(1).lstrip().startswith("}") and '"' not in after.group(1):
            continuing = len(after.group(1)) + len(after.group(2))
            out.append(f"{after.group(1)}{after.group(2)}///< {_text(after.group(3))}")
            continue
        continuing = -1
        out.append(line)
    return out


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as source:
        sys.stdout.write("\n".join(convert(source.read().split("\n"))))
