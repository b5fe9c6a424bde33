"""`python -m swiftall.cli.torchrun [torchrun options] -m swiftall.cli.main <command> ...`: torch's launcher, whose
failure report (which rank, exit code, signal) is printed as it is, without the launcher's own Python traceback."""
from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import main as torchrun

    try:
        torchrun(argv)
    except ChildFailedError as exc:
        print(exc.format_msg(), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
