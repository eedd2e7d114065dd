"""How a relative path written in a config resolves, said the same way in the docs and in every error about one.

The rule: a relative path in a config (a dataset root, an annotation file, a model directory, a cache or output
folder, a checkpoint, a competition file) resolves against the current working directory of the process, not
against the folder of the config file; the repository's configs rely on it (run from the repository root).
Errors about such a path (missing, not a folder, escaping its root) end with :func:`path_note`, which shows the
absolute path that was tried.
"""

from __future__ import annotations

import os

_RULE = "relative paths in a config resolve against the current directory{cwd}, not the config file's folder"
RELATIVE_PATH_RULE = _RULE.format(cwd="")


def path_note(path: str | os.PathLike[str]) -> str:
    """What to append to an error about config path ``path``: ``""`` when it is absolute, else
    ``" (tried /abs/path: relative paths in a config resolve against the current directory /cwd, not the config
    file's folder)"``."""
    if os.path.isabs(path):
        return ""
    return f" (tried {os.path.abspath(path)}: {_RULE.format(cwd=' ' + os.getcwd())})"
