"""python -m bench [topic ...] — run the benchmarks (all of them by default).

Each topic is a module bench/<topic>.py with a main() that measures its
baseline in the same run and prints ratios; none of them asserts on time.
"""
import importlib
import pkgutil
import sys

import bench


def topics():
    return sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if not m.name.startswith("_"))


def main(argv):
    wanted = argv or topics()
    unknown = [t for t in wanted if t not in topics()]
    if unknown:
        sys.exit("unknown benchmark(s) %s; available: %s" % (", ".join(unknown), ", ".join(topics())))
    status = 0
    for topic in wanted:
        print("== bench %s ==" % topic, flush=True)
        status = importlib.import_module("bench." + topic).main() or status
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
