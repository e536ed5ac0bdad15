"""A tiny C helper, compiled once and cached, that replaces the two slow steps of a sandbox start.

- `launch`: the child's last steps on the host before it execs bubblewrap (join the run's cgroup,
  new session, rlimits, drop to the sandbox uid, parent-death signal). Done in Python they need a
  `preexec_fn`, which forbids vfork and runs the interpreter in the forked child (~4 ms, more in a
  big process such as `evaluate` with a model loaded); done here, Popen can vfork.
- `init`: the PID 1 of the sandbox (see pid1.py: it runs the program as its child, reaps it and
  writes its raw wait status to a pipe). Perl takes ~5 ms to start; this takes well under one.

The binary is execute-only (mode 0111), like the Perl copy: a process that execs a file it cannot
read is not dumpable, so the program cannot open the init's /proc/1/fd to forge the record. It is
cached in the jobs folder (ours, mode 0711, checked by ensure_jobs_dir) under a name that carries
the hash of its source, so every greencoder process reuses it; without a C compiler greencoder
falls back to the Python preexec and the Perl init.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

from .jobdirs import make_owned_dir, remove_tree

SOURCE = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <grp.h>
#include <unistd.h>

static long number(const char *text) {
    char *end;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno || *end) { fprintf(stderr, "greencoder helper: bad number '%s'\n", text); _exit(125); }
    return value;
}

/* init STATUS_FD PROGRAM ARGS...: run PROGRAM as our child, reap everything, report its raw status. */
static int init(int argc, char **argv) {
    if (argc < 4) return 125;
    int fd = (int)number(argv[2]);
    pid_t pid = fork();
    if (pid < 0) return 126;
    if (pid == 0) {
        close(fd);
        execvp(argv[3], argv + 3);
        fprintf(stderr, "cannot run %s: %s\n", argv[3], strerror(errno));
        _exit(127);
    }
    int status = 0;
    for (;;) {  /* PID 1 reaps orphans too; only the program's status counts */
        int got_status;
        pid_t got = waitpid(-1, &got_status, 0);
        if (got == pid) { status = got_status; break; }
        if (got < 0 && errno != EINTR) return 125;
    }
    char record[32];
    int length = snprintf(record, sizeof record, "%d\n", status);
    if (write(fd, record, (size_t)length) != length) return 125;
    return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

static int report_fd = 2;

static int fail(const char *what) {
    dprintf(report_fd, "greencoder helper: %s: %s\n", what, strerror(errno));
    return 125;
}

/* launch PARENT REPORT_FD UID GID NCGROUPS FILE... NLIMITS (RESOURCE SOFT HARD)... -- PROGRAM ARGS...
   UID/GID -1: keep ours. The order is the Python preexec's: cgroup, session, rlimits, ids, death
   signal. A failure is written to REPORT_FD, which a successful exec closes (close-on-exec). */
static int launch(int argc, char **argv) {
    int at = 2;
    if (argc < 8) return 125;
    pid_t parent = (pid_t)number(argv[at++]);
    report_fd = (int)number(argv[at++]);
    long uid = number(argv[at++]), gid = number(argv[at++]);
    long groups = number(argv[at++]);
    for (long i = 0; i < groups && at < argc; i++) {
        int fd = open(argv[at++], O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, "0", 1) != 1) return fail("cannot join the run's cgroup");
        close(fd);
    }
    if (at >= argc) return 125;
    long limits = number(argv[at++]);
    if (setsid() < 0) return fail("setsid");
    for (long i = 0; i < limits && at + 2 < argc; i++, at += 3) {
        struct rlimit value = {(rlim_t)number(argv[at + 1]), (rlim_t)number(argv[at + 2])};
        if (setrlimit((int)number(argv[at]), &value) < 0) return fail("setrlimit");
    }
    if (at + 1 >= argc || strcmp(argv[at], "--") != 0) { errno = EINVAL; return fail("bad command line"); }
    at++;
    if (gid >= 0 && (setgroups(0, NULL) < 0 || setgid((gid_t)gid) < 0)) return fail("cannot switch the group");
    if (uid >= 0 && setuid((uid_t)uid) < 0) return fail("cannot switch to the sandbox uid");
    if (uid >= 0 && (setuid(0) == 0 || getuid() != (uid_t)uid)) { errno = EPERM; return fail("the uid switch is not final"); }
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) return fail("parent-death signal");
    if (getppid() != parent) return 1;  /* greencoder died before the signal was armed */
    if (report_fd != 2) fcntl(report_fd, F_SETFD, FD_CLOEXEC);
    execvp(argv[at], argv + at);
    return fail(argv[at]);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "init") == 0) return init(argc, argv);
    if (argc > 1 && strcmp(argv[1], "launch") == 0) return launch(argc, argv);
    fprintf(stderr, "usage: greencoder-helper init|launch ...\n");
    return 125;
}
"""
INSIDE_PATH = "/.greencoder-init"  # where bubblewrap shows the helper (or the Perl copy)
DISABLE_ENV = "GREENCODER_NO_NATIVE_HELPER"  # set to 1 to use the Python preexec and the Perl init


def _compiler() -> str | None:
    for name in ("cc", "gcc", "clang"):
        found = shutil.which(name, path="/usr/local/bin:/usr/bin:/bin")
        if found is not None:
            return found
    return None


def _usable(path: Path) -> bool:
    """Ours, a plain file, execute-only: what we built and nobody changed."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISREG(info.st_mode) and info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) == 0o111


@functools.lru_cache(maxsize=8)
def native_helper(jobs: str) -> str | None:
    """The cached helper binary in `jobs` (built on first use), or None: not Linux, no C compiler,
    the build failed, or GREENCODER_NO_NATIVE_HELPER=1."""
    if sys.platform != "linux" or os.environ.get(DISABLE_ENV, "") not in ("", "0"):
        return None
    digest = hashlib.sha256(SOURCE.encode()).hexdigest()[:16]
    final = Path(jobs) / f"native-{digest}"
    if _usable(final / "helper"):
        return str(final / "helper")
    compiler = _compiler()
    if compiler is None:
        return None
    try:
        folder = make_owned_dir(Path(jobs), "build")
    except OSError:
        return None
    try:
        (folder / "helper.c").write_text(SOURCE)
        for static in (["-static"], []):  # static starts faster (no loader); not every libc has libc.a
            built = subprocess.run([compiler, "-O2", *static, "-o", str(folder / "helper"), str(folder / "helper.c")],
                                   capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
            if built.returncode == 0:
                break
        else:
            return None
        os.unlink(folder / "helper.c")
        os.chmod(folder / "helper", 0o111)
        os.chmod(folder, 0o711)
        if os.path.lexists(final) and not _usable(final / "helper"):
            remove_tree(final)  # a stale or damaged copy
        try:
            os.rename(folder, final)  # atomic; a concurrent builder's copy, if it won, is as good
        except OSError:
            pass
        return str(final / "helper") if _usable(final / "helper") else None
    except (OSError, subprocess.SubprocessError):
        return None
    finally:
        remove_tree(folder)


def launch_argv(helper: str, parent: int, report_fd: int, uid: int | None, gid: int | None, cgroup_procs: list[str],
                rlimits: list[tuple[int, tuple[int, int]]], argv: list[str]) -> list[str]:
    """The helper's command line that does the preexec steps and then execs `argv`; a failure
    before that exec is written to `report_fd`."""
    limits = [str(part) for kind, (soft, hard) in rlimits for part in (kind, _rlim(soft), _rlim(hard))]
    return [helper, "launch", str(parent), str(report_fd), str(-1 if uid is None else uid), str(-1 if gid is None else gid),
            str(len(cgroup_procs)), *cgroup_procs, str(len(rlimits)), *limits, "--", *argv]


def _rlim(value: int) -> int:
    import resource

    return -1 if value == resource.RLIM_INFINITY else value  # RLIM_INFINITY is (rlim_t)-1
