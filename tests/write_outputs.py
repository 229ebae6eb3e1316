"""Runs the commands of the outputs shown in README.md and docs/*.md and
writes what they print into the pages (see shown_outputs.py).

    python tests/write_outputs.py              # every output this machine can make
    python tests/write_outputs.py jobs-list    # only these
    python tests/write_outputs.py --check      # compare, write nothing

Needs the full MNIST in ../shared/data/mnist and the test SLURM cluster for
the outputs that show them (the others are made on the shipped sample).
"""

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import REPO
from shown_outputs import PAGES, Runs, all_outputs, difference, missing, shown, write


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="outputs to make (default: all)")
    parser.add_argument("--check", action="store_true", help="compare, write nothing")
    arguments = parser.parse_args()
    outputs = all_outputs()
    unknown = sorted(set(arguments.names) - set(outputs))
    if unknown:
        parser.error(
            f"no output named {', '.join(unknown)}; known: {', '.join(outputs)}"
        )
    names = arguments.names or list(outputs)
    fresh, status = {}, 0
    with tempfile.TemporaryDirectory(prefix="mnist-xp-outputs-") as root:
        runs = Runs(Path(root))
        for name in names:
            if lacking := missing(outputs[name].needs):
                print(f"{name}: not made, needs {' and '.join(lacking)}")
                continue
            fresh[name] = outputs[name].make(runs)
            print(f"{name}: made")
    for page in PAGES:
        if arguments.check:
            for name, text in shown(page).items():
                if name in fresh and (
                    found := difference(text, fresh[name], outputs[name].volatile)
                ):
                    print(f"{page.name}, {name}: {found}")
                    print(f"(python tests/write_outputs.py {name} writes it again)")
                    status = 1
                elif name in fresh:
                    print(f"{page.name}, {name}: agrees")
        elif written := write(page, fresh):
            print(f"{page.relative_to(REPO)}: wrote {', '.join(written)}")
    if arguments.check:
        print("some outputs differ" if status else "every output made agrees")
    return status


if __name__ == "__main__":
    sys.exit(main())
