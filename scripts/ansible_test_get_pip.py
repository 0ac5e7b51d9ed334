# Copyright (c) onmetal.faas contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Offline replacement for the get-pip.py script that ansible-test downloads when it builds its venvs.

ansible-test fetches get-pip.py from a host these machines cannot reach; it documents that the script
may be saved to ~/.ansible/test/cache/get_pip_<version>.py instead, and scripts/lib.sh puts this file
there. It installs pip from the interpreter's own ensurepip wheel, then the requested pip version (and
any other requirement ansible-test passes) from the package index.
"""

from __future__ import annotations

import subprocess
import sys

IGNORED = ("--no-setuptools", "--no-wheel")


def main() -> None:
    requirements = [arg for arg in sys.argv[1:] if arg not in IGNORED]
    subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"])
    if requirements:
        subprocess.check_call([sys.executable, "-m", "pip", "install", "--disable-pip-version-check"] + requirements)


if __name__ == "__main__":
    main()
