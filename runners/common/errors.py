"""The errors a runner ends with, each one line on stderr and its own exit code
(``runners.common.cli.main_guard``): what the user can fix, and jobs that failed."""


class UsageError(Exception):
    """Bad input the user can fix (argument, data, output folder); its message is one line."""


class JobsFailed(Exception):
    """Some jobs of a launcher failed (their logs are named above); the message is one line."""
