"""The first process of the sandbox's PID namespace, and how the host learns how the program ended.

The kernel shields a PID namespace's init from every signal it has no handler for (RLIMIT_CPU's
SIGXCPU, abort()'s SIGABRT, a kill() of itself), so the program must not be that init: a small
init runs it as its child and reaps it. That init's exit code cannot tell "killed by signal 9" from
"exit(137)": both are 137. So the init writes the program's raw wait status to a pipe the host holds
(closed in the program), and the host trusts that record, not the exit code.

The init is Perl (perl-base is essential on Debian and present on every usual Linux), run from an
execute-only copy: a process that execs a file it cannot read is not dumpable, so the program,
though it runs as the same uid, cannot open the init's /proc/1/fd to read or forge the record.
Where Perl is missing, a shell init is used and a 128+N exit is only *reported* as signal N.
"""

from __future__ import annotations

import functools
import os
import shutil
from pathlib import Path

from .jobdirs import make_owned_dir, remove_at_exit

# argv after the interpreter: -e SCRIPT STATUS_FD PROGRAM ARGS...
PERL_INIT = r"""
my $fd = shift @ARGV;
open(my $status, ">&=", $fd) or exit 125;
my $pid = fork();
exit 126 unless defined $pid;
if ($pid == 0) {
    close($status);
    exec { $ARGV[0] } @ARGV;
    print STDERR "cannot run $ARGV[0]: $!\n";
    exit 127;
}
while (1) {
    my $got = waitpid($pid, 0);
    last if $got == $pid;
    exit 125 if $got == -1;
}
my $raw = $?;
syswrite($status, "$raw\n");
exit(($raw & 127) ? 128 + ($raw & 127) : ($raw >> 8));
"""
# The fallback: its exit status is 128+N for a death by signal N, but also for exit(128+N).
# Its own stderr ("Killed") goes to /dev/null, the program's not.
SHELL_INIT = ("/bin/sh", "-c", 'exec 3>&2 2>/dev/null; ("$@" 2>&3 3>&-); exit $?', "sh")
INSIDE_PATH = "/.greencoder-init"  # where bubblewrap shows the execute-only copy


@functools.lru_cache(maxsize=8)
def execute_only_perl(jobs: str) -> str | None:
    """An execute-only copy of perl in a folder of `jobs` owned by this process (reaped when we are
    gone); None without Perl."""
    found = shutil.which("perl", path="/usr/bin:/bin")
    if found is None:
        return None
    folder = make_owned_dir(Path(jobs), "pid1")
    remove_at_exit(folder)  # or reaped by the next start, after a kill
    os.chmod(folder, 0o711)
    copy = folder / "perl"
    shutil.copyfile(os.path.realpath(found), copy)
    os.chmod(copy, 0o111)
    return str(copy)


def init_argv(perl: str | None, status_fd: int | None, argv: list[str]) -> list[str]:
    """The command line that runs `argv` under the init: the trusted one when there is a perl copy
    and a status pipe, else the shell one."""
    if perl is not None and status_fd is not None:
        return [perl, "-e", PERL_INIT, str(status_fd), *argv]
    return [*SHELL_INIT, *argv]
