"""A throw-away single-node SLURM cluster on localhost, for tests.

Everything lives under one temporary folder: slurm.conf, gres.conf, the munge key and
socket, state and spool folders, the daemons' logs and the job completion log. The
daemons (munged, slurmctld, slurmd) run in the foreground as children of this process
and are stopped by their PIDs; nothing under /etc or /run is touched. Clients (sbatch,
squeue, the Snakemake SLURM plugin) find the cluster through ``SLURM_CONF``
(`SlurmCluster.env`).

Settings that matter for Snakemake's SLURM plugin:

* no accounting (no slurmdbd): ``sacct`` cannot answer, so the plugin must poll with
  ``squeue`` (``--slurm-status-command squeue``), which sees finished jobs for
  ``MinJobAge`` seconds; it is set far above the test's length.
* ``JobCompType=jobcomp/filetxt``: slurmctld writes one line per finished job to
  `jobcomp_log` - the scheduler's own record of what ran, independent of Snakemake.
* partitions ``cpu`` (default) and ``gpu`` on the one node, matching
  profiles/slurm/partitions.yaml; the node has fake GPUs (``gres.conf`` pointing at empty
  files), enough for SLURM to allocate ``--gpus=1``; torch sees no CUDA.
* ``SlurmdParameters=config_overrides``: the node's CPUs and memory are taken from the
  config, not the hardware, so the profile's memory requests fit on a small machine.

Debian packages: slurmctld slurmd slurm-client munge (`install_packages`).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from helpers import debian

PACKAGES = ("slurmctld", "slurmd", "slurm-client", "munge")
BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "sinfo")


def unavailable_reason() -> str | None:
    """Why a cluster cannot be started here (None when it can, after `install_packages`)."""
    if not debian.missing(BINARIES):
        return None if os.geteuid() == 0 else "SLURM daemons need root here (slurmd runs jobs as their user)"
    return debian.unavailable_reason(BINARIES, PACKAGES)


def install_packages(timeout: float = 600) -> None:
    """apt-get install the Debian packages, only when a binary is missing."""
    debian.install(BINARIES, PACKAGES, timeout)


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _binary(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


class SlurmCluster:
    """``with SlurmCluster() as cluster:`` starts munged, slurmctld and slurmd; leaving the
    block stops exactly those three processes (SIGTERM, then SIGKILL) and removes the
    folder unless ``keep`` is set."""

    def __init__(self, cpus: int = 2, gpus: int = 2, real_memory_mb: int = 256000, keep: bool = False):
        self.cpus = cpus
        self.gpus = gpus
        self.real_memory_mb = real_memory_mb
        self.keep = keep
        self.processes: dict[str, subprocess.Popen] = {}
        # A short path: the munge socket path must stay under 108 bytes.
        self.root = Path(tempfile.mkdtemp(prefix="salaudit-slurm-"))
        self.conf = self.root / "etc" / "slurm.conf"
        self.jobcomp_log = self.root / "log" / "jobcomp.txt"
        self.munge_socket = self.root / "munge" / "munge.socket"
        self.hostname = socket.gethostname().split(".")[0]

    @property
    def env(self) -> dict[str, str]:
        return self.client_env(os.environ)

    def client_env(self, base: dict[str, str]) -> dict[str, str]:
        """``base`` plus what clients need to reach this cluster: ``SLURM_CONF``, and on
        PATH an `srun` that sets it again. Jobs inherit both (sbatch --export=ALL), but the
        Snakemake jobstep plugin strips every SLURM_* variable before its nested `srun`;
        on a real cluster srun then finds /etc/slurm/slurm.conf, here it would find nothing."""
        path = f"{self.root / 'bin'}{os.pathsep}{base.get('PATH', '')}"
        return {**base, "SLURM_CONF": str(self.conf), "PATH": path}

    # -- setup ---------------------------------------------------------------------------
    def write_config(self) -> None:
        for sub in ("etc", "munge", "state", "spool", "log", "bin"):
            (self.root / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
        key = self.root / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        ctld_port, slurmd_port = _free_ports(2)
        log = self.root / "log"
        self.conf.write_text("\n".join([
            "ClusterName=salaudit-test",
            f"SlurmctldHost={self.hostname}(127.0.0.1)",
            f"SlurmctldPort={ctld_port}",
            f"SlurmdPort={slurmd_port}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={self.munge_socket}",
            f"StateSaveLocation={self.root / 'state'}",
            f"SlurmdSpoolDir={self.root / 'spool'}",
            f"SlurmctldPidFile={self.root / 'state' / 'slurmctld.pid'}",
            f"SlurmdPidFile={self.root / 'spool' / 'slurmd.pid'}",
            f"SlurmctldLogFile={log / 'slurmctld.log'}",
            f"SlurmdLogFile={log / 'slurmd.log'}",
            "SlurmctldDebug=info",
            "SlurmdDebug=info",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/filetxt",
            f"JobCompLoc={self.jobcomp_log}",
            # finished jobs stay visible to squeue/scontrol (the plugin polls with squeue)
            "MinJobAge=86400",
            "MpiDefault=none",
            "MailProg=/bin/true",
            "ReturnToService=2",
            "SchedulerType=sched/backfill",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",
            "SlurmdParameters=config_overrides",
            "GresTypes=gpu",
            "InactiveLimit=0",
            "KillWait=5",
            "Waittime=0",
            f"NodeName={self.hostname} NodeAddr=127.0.0.1 CPUs={self.cpus} "
            f"RealMemory={self.real_memory_mb} Gres=gpu:{self.gpus} State=UNKNOWN",
            f"PartitionName=cpu Nodes={self.hostname} Default=YES MaxTime=INFINITE State=UP",
            f"PartitionName=gpu Nodes={self.hostname} MaxTime=INFINITE State=UP",
            "",
        ]))
        # two fake GPUs (so GPU jobs run two at a time, like CPU jobs): SLURM wants a device
        # file per GPU and only stat()s it; torch finds no CUDA and runs on the CPU
        devices = self.root / "dev"
        devices.mkdir(exist_ok=True)
        for index in range(self.gpus):
            (devices / f"gpu{index}").touch()
        (self.conf.parent / "gres.conf").write_text(f"Name=gpu File={devices}/gpu[0-{self.gpus - 1}]\n")
        bin_dir = self.root / "bin"
        bin_dir.mkdir(exist_ok=True)
        srun = bin_dir / "srun"
        srun.write_text(f'#!/bin/sh\nSLURM_CONF="{self.conf}" exec {_binary("srun")} "$@"\n')
        srun.chmod(0o755)

    def _start(self, name: str, command: list[str]) -> None:
        out = open(self.root / "log" / f"{name}.out", "wb")
        self.processes[name] = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                                stdin=subprocess.DEVNULL, env=self.env, cwd=self.root)
        out.close()

    def _wait(self, what: str, ready, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited with {process.returncode}:\n{self.logs()}")
            if ready():
                return
            time.sleep(0.5)
        raise RuntimeError(f"{what} not ready after {timeout} s:\n{self.logs()}")

    def start(self) -> None:
        self.write_config()
        munge = self.root / "munge"
        self._start("munged", [_binary("munged"), "--foreground", "--force",
                               f"--socket={self.munge_socket}", f"--key-file={munge / 'munge.key'}",
                               f"--pid-file={munge / 'munged.pid'}", f"--seed-file={munge / 'munged.seed'}",
                               f"--log-file={self.root / 'log' / 'munged.log'}"])
        self._wait("munged", self.munge_socket.exists, timeout=20)
        self._start("slurmctld", [_binary("slurmctld"), "-D", "-f", str(self.conf)])
        self._wait("slurmctld", lambda: self.run("scontrol", "ping", check=False).returncode == 0)
        self._start("slurmd", [_binary("slurmd"), "-D", "-f", str(self.conf)])
        self._wait("the node", lambda: self.run("sinfo", "-h", "-o", "%t", "-p", "cpu").stdout.strip() == "idle")

    # -- use -----------------------------------------------------------------------------
    def run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=60)
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)}: {result.stderr}")
        return result

    def jobs(self) -> list[dict[str, str]]:
        """Every job slurmctld remembers (all states, MinJobAge keeps finished ones), as
        `scontrol show job` key=value fields."""
        text = self.run("scontrol", "--oneliner", "show", "job").stdout
        return [_fields(line) for line in text.splitlines() if line.startswith("JobId=")]

    def completed(self) -> list[dict[str, str]]:
        """The job completion log: one record per finished job, written by slurmctld."""
        if not self.jobcomp_log.exists():
            return []
        return [_fields(line) for line in self.jobcomp_log.read_text().splitlines() if line.strip()]

    def logs(self) -> str:
        parts = []
        for path in sorted((self.root / "log").glob("*")):
            if path.is_file() and path != self.jobcomp_log:
                parts.append(f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}")
        return "\n".join(parts)

    # -- teardown ------------------------------------------------------------------------
    def stop(self) -> None:
        """Cancel what is still queued or running, stop the daemons this object started (by
        PID: slurmd, slurmctld, munged; SIGTERM, then SIGKILL), kill what jobs left behind,
        remove the folder."""
        if self.processes.get("slurmctld") and self.processes["slurmctld"].poll() is None:
            self.run("scancel", "--user", "root", check=False)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and self.run("squeue", "-h", "-t", "PD,R,CG", check=False).stdout.strip():
                time.sleep(1)
        for name in ("slurmd", "slurmctld", "munged"):
            process = self.processes.get(name)
            if process is None or process.poll() is not None:
                continue
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        self._kill_leftovers()
        if not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)

    def _kill_leftovers(self) -> None:
        """Processes that outlived the daemons: a job's slurmstepd, srun and commands. They
        all carry this cluster's SLURM_CONF in their environment (from our slurmd or our
        clients' environment); no other process does, as the path is new."""
        marker = f"SLURM_CONF={self.conf}".encode()
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit() or int(proc.name) == os.getpid():
                continue
            try:
                environ = (proc / "environ").read_bytes()
            except OSError:
                continue
            if marker in environ.split(b"\0"):
                try:
                    os.kill(int(proc.name), signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def __enter__(self) -> "SlurmCluster":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _fields(line: str) -> dict[str, str]:
    """'JobId=5 Name=x Comment=rule_a ...' -> dict (values never contain spaces here)."""
    fields = {}
    for item in line.split():
        key, sep, value = item.partition("=")
        if sep:
            fields[key] = value
    return fields
