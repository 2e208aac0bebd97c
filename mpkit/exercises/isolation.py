"""Where a submission runs: a bubblewrap sandbox, or (without one) a plain child process.

`detect` probes once per run. With ``bwrap`` a sandbox sees a read-only system (``/usr``), the Python
installation and the venv read-only, this mpkit read-only, one read-only folder of grader inputs and
a private size-capped ``/tmp``; nothing else: not the repository, not ``solutions/``, not other
submissions, not the grader's files or reports. It has its own network (no outside), PID, IPC and
UTS namespaces, runs as an unprivileged uid of its own, dies with the grader, and is capped in
memory and processes by a cgroup where the machine allows one (rlimits set inside cap every process).
"""
from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import mpkit

MPKIT_DIR = Path(mpkit.__file__).resolve().parent
INSIDE_IN, INSIDE_MPKIT = "/grader/in", "/opt/mpkit"


def python() -> str:
    """This interpreter by a path that exists inside the sandbox too: the venv's own folder, links resolved."""
    venv = os.path.join(os.path.realpath(sys.prefix), "bin", os.path.basename(sys.executable))
    return venv if os.path.exists(venv) else os.path.realpath(sys.executable)


@dataclass(frozen=True)
class Cgroups:
    """Per-sandbox caps through cgroup v1's memory, pids and (where present) cpu controllers, with the
    grader's own groups as parents."""

    parents: tuple[Path, ...]  # memory, pids[, cpu]

    @classmethod
    def probe(cls) -> Cgroups | None:
        if os.geteuid() != 0 or not Path("/proc/self/cgroup").exists():
            return None
        own = dict(line.strip().split(":", 2)[1:] for line in Path("/proc/self/cgroup").read_text().splitlines()
                   if line.count(":") >= 2)
        parents = tuple(Path("/sys/fs/cgroup", c, own[c].lstrip("/")) for c in ("memory", "pids", "cpu") if c in own)
        usable = tuple(p for p in parents if (p / "cgroup.procs").exists() and os.access(p, os.W_OK))
        return cls(usable) if usable[:2] == parents[:2] and len(usable) >= 2 else None

    def create(self, name: str, memory: int, pids: int, cpus: float) -> list[Path]:
        """Make the groups ``name``; their ``cgroup.procs`` files (the sandbox writes its pid there)."""
        for parent in self.parents:
            (parent / name).mkdir()
        (self.parents[0] / name / "memory.limit_in_bytes").write_text(str(memory))
        (self.parents[1] / name / "pids.max").write_text(str(pids))
        if len(self.parents) > 2 and (self.parents[2] / name / "cpu.cfs_quota_us").exists():
            (self.parents[2] / name / "cpu.cfs_period_us").write_text("100000")
            (self.parents[2] / name / "cpu.cfs_quota_us").write_text(str(int(cpus * 100000)))
        return [p / name / "cgroup.procs" for p in self.parents]

    def peak(self, name: str) -> int:
        """The sandbox's peak memory in bytes (0 if unknown)."""
        try:
            return int((self.parents[0] / name / "memory.max_usage_in_bytes").read_text())
        except (OSError, ValueError):
            return 0

    def remove(self, name: str) -> None:
        """Remove the groups once their processes are gone (the last ones may take a moment to be reaped)."""
        for parent in self.parents:
            for _ in range(50):
                try:
                    (parent / name).rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1)


@dataclass(frozen=True)
class Isolation:
    """How this run isolates submissions: ``kind`` is ``bwrap`` or ``none``; ``detail`` one line for the report."""

    kind: str
    detail: str
    bwrap: str = ""
    cgroups: Cgroups | None = None
    mounts: tuple[str, ...] = field(default_factory=tuple)


def _system_mounts() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    for etc in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives", "/etc/localtime",
                "/etc/fonts"):
        args += ["--ro-bind-try", etc, etc]
    roots = {os.path.realpath(p) for p in (sys.base_prefix, sys.prefix)}
    roots |= {os.path.dirname(os.path.realpath(sys.executable)).rsplit("/bin", 1)[0]}
    binds = [(r, r) for r in sorted(roots) if not r.startswith("/usr/")] + [(str(MPKIT_DIR), f"{INSIDE_MPKIT}/mpkit")]
    parents = sorted({str(p) for _, dest in binds for p in Path(dest).parents if str(p) != "/"}, key=len)
    for parent in parents + ["/grader"]:  # traversable by the sandbox's uid whatever the umask
        args += ["--perms", "0755", "--dir", parent]
    for src, dest in binds:
        args += ["--ro-bind", src, dest]
    return args


def bwrap_command(iso: Isolation, in_dir: Path, env: dict[str, str], tmp_bytes: int) -> tuple[list[str], int]:
    """The command that runs the runner in a fresh sandbox, and the uid it runs as."""
    uid = 200_000 + secrets.randbelow(1_000_000_000)
    cmd = [iso.bwrap, "--die-with-parent", "--new-session", "--unshare-ipc", "--unshare-pid", "--unshare-net",
           "--unshare-uts", "--unshare-cgroup-try", "--hostname", "sandbox", "--clearenv"]
    for key, value in env.items():
        cmd += ["--setenv", key, value]
    cmd += [*iso.mounts, "--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--size", str(tmp_bytes),
            "--tmpfs", "/tmp", "--ro-bind", str(in_dir), INSIDE_IN, "--chdir", "/tmp"]
    runner = [python(), "-m", "mpkit.exercises._runner", INSIDE_IN]
    if os.geteuid() == 0:  # namespaces as root, then the real uid of the sandbox: unprivileged, no capabilities
        cmd += ["--", shutil.which("setpriv") or "/usr/bin/setpriv", f"--reuid={uid}", f"--regid={uid}",
                "--clear-groups", "--no-new-privs", "--bounding-set=-all", "--inh-caps=-all", "--", *runner]
    else:  # an ordinary user: a user namespace; the sandbox runs as that user, without capabilities
        uid = os.getuid()
        cmd[1:1] = ["--unshare-user", "--disable-userns", "--cap-drop", "ALL"]
        cmd += ["--", *runner]
    return cmd, uid


def in_cgroups(procs: list[Path], cmd: list[str]) -> list[str]:
    """``cmd``, started inside the groups whose ``cgroup.procs`` files are ``procs`` (before it can fork)."""
    script = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 97; shift; done; shift; exec "$@"'
    return ["/bin/sh", "-c", script, "sh", *map(str, procs), "--", *cmd]


def _probe(bwrap: str, mounts: tuple[str, ...]) -> str:
    """Empty if a sandbox starts here and Python runs in it, else why not."""
    iso = Isolation("bwrap", "", bwrap, None, mounts)
    probe = Path(os.environ.get("TMPDIR", "/tmp"), f"mpkit-probe-{os.getpid()}")
    probe.mkdir(exist_ok=True)
    try:
        cmd, _ = bwrap_command(iso, probe, {"PATH": "/usr/bin:/bin"}, 2**20)
        cmd = cmd[:cmd.index(python())] + [python(), "-I", "-S", "-c", "pass"]
        done = subprocess.run(cmd, capture_output=True, timeout=60, check=False)
        return "" if done.returncode == 0 else done.stderr.decode(errors="replace").strip()[:300]
    except (OSError, subprocess.TimeoutExpired) as err:
        return str(err)
    finally:
        probe.rmdir()


def detect(requested: str = "auto") -> Isolation:
    """The isolation for this run: ``bwrap`` when it works here, else ``none``; ``requested`` may force
    either (``bwrap`` raises `RuntimeError` when it is not available)."""
    bwrap = shutil.which("bwrap") or ""
    why = "bubblewrap (bwrap) is not installed" if not bwrap else ""
    if requested == "none":
        why = "isolation switched off (--isolation none)"
    elif bwrap and os.geteuid() == 0 and not shutil.which("setpriv"):
        why = "setpriv (util-linux) is missing"
    mounts = tuple(_system_mounts())
    if not why:
        why = _probe(bwrap, mounts)
    if why:
        if requested == "bwrap":
            raise RuntimeError(f"no sandbox: {why}")
        return Isolation("none", f"none ({why}): the notebook runs with the grader's own rights")
    version = subprocess.run([bwrap, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    cgroups = Cgroups.probe()
    caps = "memory, processes and CPU per sandbox (cgroup)" if cgroups and len(cgroups.parents) > 2 else \
        "memory and processes per sandbox (cgroup)" if cgroups else "memory and processes per process (rlimit)"
    return Isolation("bwrap", f"bwrap ({version}): no network, read-only system, private /tmp, own PID namespace, "
                     f"unprivileged uid; {caps}", bwrap, cgroups, mounts)
