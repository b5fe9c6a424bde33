"""Children that a test interrupts with Ctrl-C start with SIGINT at its default action and unblocked: a process
inherits an ignored or blocked SIGINT across exec, and a library used earlier in the same pytest process may have
left one so (seen in a full `make test`: every Ctrl-C test then timed out), which a user's terminal never has."""
import signal


def sigint_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
