# Coverage-guided fuzzing of purepcap with atheris (libFuzzer for Python):
#
#   python fuzz/fuzz.py TARGET [libFuzzer options] [CORPUS_DIR ...]
#
# TARGET is one of containers, headers, records, records_direct, filter, partitions,
# filtered_read (see targets.py). purepcap is imported inside
# atheris.instrument_imports() so that libFuzzer sees its branches.
# Any exception a target raises is a finding; libFuzzer writes the input to crash-*.
from __future__ import annotations

import os
import sys

try:
    import atheris
except ImportError:
    sys.exit("the fuzz harness needs atheris: pip install 'purepcap[fuzz]'")

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

with atheris.instrument_imports(include=["purepcap"]):
    import purepcap  # noqa: F401
    import purepcap._open  # noqa: F401
    import purepcap._sources  # noqa: F401
    import purepcap.format  # noqa: F401
    try:  # the decoders and the filter compiler, when present
        import purepcap._appfields  # noqa: F401
        import purepcap._records  # noqa: F401
        import purepcap.filter  # noqa: F401
        import purepcap.headers  # noqa: F401
    except ImportError:
        pass

import targets  # noqa: E402


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in targets.TARGETS:
        sys.exit(f"usage: python fuzz/fuzz.py {{{','.join(targets.TARGETS)}}} [libFuzzer options] [CORPUS_DIR ...]")
    target = targets.TARGETS[sys.argv.pop(1)]
    atheris.Setup(sys.argv, target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
