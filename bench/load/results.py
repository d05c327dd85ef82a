# SPDX-License-Identifier: Apache-2.0
"""The results file of the bench/load scripts, for the report each prints at the end.

lib.sh's result and fail_row write it: one key=value line each (a row that failed has the
value n/a and a KEY.why line saying why). Imported by the scripts' report (lib.sh: report).
"""


def read(path):
    """Every key=value line of the file, as a dict of strings (a later line wins)."""
    r = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("=")
            r[k] = v
    return r


def number(r, key):
    """The value of key as a float; None when it is missing or not a number (n/a)."""
    try:
        return float(r[key])
    except (KeyError, ValueError):
        return None
