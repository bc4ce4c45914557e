"""The script ``wrap()`` runs: ``python -I -S launch.py OPTIONS -- PROGRAM ARGS...``.

Kept to a few lines because a script is compiled on every run while the modules it
imports are compiled once and cached; ``-I`` leaves this folder off ``sys.path``, so it is
added (last: the standard library keeps its names).
"""

import os
import sys

sys.path.append(os.path.dirname(os.path.abspath(__file__)))

import launcher

if sys.argv[1:2] == ["--probe"] and len(sys.argv) == 3:
    launcher.probe(sys.argv[2])
else:
    launcher.main(sys.argv[1:])
