"""The exit codes of every novalet command, and the error each one means.

    0  done
    1  the operation failed (not found, refused, conflict, a service that
       started and stopped with an error, anything unexpected)
    2  usage error: the command line, a config file or an option value is
       wrong, or the configuration cannot work; nothing was attempted
    3  a service is unreachable: the database or the message broker (or the
       conductor behind it did not answer); try again when it is back

``novalet-status upgrade check`` keeps oslo.upgradecheck's meaning for its
results, which deployment tools already branch on: 0 every check succeeded,
1 a warning, 2 a failure. Its bad command line is 2 as well, and 3 still
means the database could not be reached (nothing was checked).
"""

from __future__ import annotations

from oslo_config import cfg

from novalet import exception

OK = 0
FAILED = 1
USAGE = 2
UNREACHABLE = 3

#: Errors that mean a service is out of reach rather than the request bad.
UNREACHABLE_ERRORS: tuple[type[BaseException], ...] = (
    exception.DatabaseUnavailable, exception.RPCUnavailable)

#: Errors that mean what was typed or configured is wrong.
USAGE_ERRORS: tuple[type[BaseException], ...] = (
    cfg.Error, exception.ConfigurationError)

#: The ``--help`` text of the commands that follow the table above.
HELP = ("Exit codes: 0 done; 1 the operation failed (not found, refused, "
        "unexpected error); 2 usage error (command line, config file or "
        "option value); 3 a service is unreachable (database or message "
        "broker).")

#: The ``--help`` text of ``novalet-status``.
STATUS_HELP = ("Exit codes (oslo.upgradecheck's, for 'upgrade check'): 0 "
               "every check succeeded; 1 a warning; 2 a failure, or a bad "
               "command line; 3 the database is unreachable (nothing was "
               "checked).")


def for_error(error: BaseException) -> int:
    """The exit code a command ends with after ``error``."""
    if isinstance(error, UNREACHABLE_ERRORS):
        return UNREACHABLE
    if isinstance(error, USAGE_ERRORS):
        return USAGE
    return FAILED


__all__ = ["FAILED", "HELP", "OK", "STATUS_HELP", "UNREACHABLE", "USAGE",
           "UNREACHABLE_ERRORS", "USAGE_ERRORS", "for_error"]
