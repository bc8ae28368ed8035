"""A single-node Slurm cluster on loopback for the tests: its own munge, slurmctld and slurmd, in a temp folder.

    cluster = Cluster.start(tmp_dir)      # munged + slurmctld + slurmd, partition `debug`, this machine's CPUs
    env = cluster.env()                   # os.environ + SLURM_CONF: give it to sbatch/scontrol and to `repro`
    cluster.stop()                        # stops exactly the three daemons it started, by PID

Nothing of the machine's own munge or Slurm set-up is read or touched: every key, socket, port, spool and log
lives under the temp folder. Needs root (slurmd runs as root, munged as the `munge` user) and Debian's
`slurm-wlm` + `munge` packages; `missing()` says why a cluster cannot start here.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

PARTITION = "debug"
DAEMONS = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "scontrol")


def missing() -> str | None:
    """Why no cluster can start on this machine, or None."""
    absent = [name for name in DAEMONS if not shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")]
    if absent:
        return f"Slurm/munge not installed ({', '.join(absent)} not found): apt-get install slurm-wlm munge"
    if os.geteuid() != 0:
        return "the test cluster's slurmd must run as root"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _which(name: str) -> str:
    return shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") or name


def _memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    return 4096


@dataclass
class Cluster:
    root: Path
    conf: Path
    host: str
    cpus: int
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    def env(self, base: dict | None = None) -> dict:
        return {**(os.environ if base is None else base), "SLURM_CONF": str(self.conf)}

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(argv, env=self.env(), capture_output=True, text=True, check=check, timeout=60)

    def job(self, job_id: str) -> dict:
        """`scontrol show job` as a dict (JobState, Reason, ExitCode...); {} once Slurm has forgotten the job."""
        out = self.run("scontrol", "show", "job", "-o", str(job_id), check=False)
        return dict(word.split("=", 1) for word in out.stdout.split() if "=" in word) if out.returncode == 0 else {}

    # ---------------------------------------------------------------------------------------- start / stop

    @classmethod
    def start(cls, root: Path) -> Cluster:
        root = Path(root)
        cpus = os.cpu_count() or 1
        cluster = cls(root=root, conf=root / "slurm.conf", host=socket.gethostname().split(".")[0], cpus=cpus)
        try:
            cluster._start_munge()
            cluster._write_conf()
            cluster._start_slurm()
            cluster._wait_ready()
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def _start_munge(self) -> None:
        m = self.root / "munge"
        for sub, mode in (("etc", 0o700), ("lib", 0o700), ("log", 0o700), ("run", 0o755)):
            (m / sub).mkdir(parents=True, exist_ok=True)
            (m / sub).chmod(mode)
        m.chmod(0o755)
        self.root.chmod(0o755)
        key = m / "etc" / "munge.key"
        subprocess.run([_which("mungekey"), "--create", "--keyfile", str(key)], check=True, capture_output=True)
        key.chmod(0o400)
        subprocess.run(["chown", "-R", "munge:munge", str(m)], check=True)
        self.munge_socket = m / "run" / "munge.socket"
        argv = ["setpriv", "--reuid=munge", "--regid=munge", "--init-groups", _which("munged"), "--foreground", f"--key-file={key}",
                f"--socket={self.munge_socket}", f"--pid-file={m / 'run' / 'munged.pid'}",
                f"--log-file={m / 'log' / 'munged.log'}", f"--seed-file={m / 'lib' / 'munged.seed'}"]
        self._spawn("munged", argv)
        self._wait_for(lambda: self.munge_socket.exists(), "munged's socket", "munged")

    def _write_conf(self) -> None:
        for sub in ("state", "spool", "log"):
            (self.root / sub).mkdir(exist_ok=True)
        self.ctld_port, self.slurmd_port = _free_port(), _free_port()
        memory = max(512, _memory_mb() * 3 // 4)
        self.conf.write_text("\n".join([
            "ClusterName=repro-test",
            f"SlurmctldHost={self.host}(127.0.0.1)",
            f"SlurmctldPort={self.ctld_port}",
            f"SlurmdPort={self.slurmd_port}",
            "SlurmUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={self.munge_socket}",
            f"StateSaveLocation={self.root / 'state'}",
            f"SlurmdSpoolDir={self.root / 'spool'}",
            f"SlurmctldPidFile={self.root / 'slurmctld.pid'}",
            f"SlurmdPidFile={self.root / 'slurmd.pid'}",
            f"SlurmctldLogFile={self.root / 'log' / 'slurmctld.log'}",
            f"SlurmdLogFile={self.root / 'log' / 'slurmd.log'}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_CPU",
            "MpiDefault=none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "EnforcePartLimits=ALL",       # a job asking for more than exists is refused, not pending for ever
            "ReturnToService=2",
            "KillWait=5",                  # seconds between SIGTERM and SIGKILL at a time limit
            "MinJobAge=600",               # finished jobs stay visible to `scontrol show job` for the whole run
            "SchedulerParameters=sched_interval=2",
            "GresTypes=gpu",
            # the harness asks `--gpus-per-node N`; this CPU node offers that many count-only "gpu" slots
            f"NodeName={self.host} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={memory} Gres=gpu:{self.cpus} "
            "State=UNKNOWN",
            f"PartitionName={PARTITION} Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
            "",
        ]))
        devices = self.root / "dev"
        devices.mkdir(exist_ok=True)
        for i in range(self.cpus):
            (devices / f"fakegpu{i}").touch()
        (self.root / "gres.conf").write_text(
            f"AutoDetect=off\nNodeName={self.host} Name=gpu File={devices}/fakegpu[0-{self.cpus - 1}]\n")

    def _start_slurm(self) -> None:
        env = self.env()
        self._spawn("slurmctld", [_which("slurmctld"), "-D", "-i", "-f", str(self.conf)], env)
        self._spawn("slurmd", [_which("slurmd"), "-D", "-f", str(self.conf)], env)

    def _wait_ready(self) -> None:
        def node_idle():
            out = self.run("sinfo", "-h", "-o", "%t", check=False)
            return out.returncode == 0 and out.stdout.strip() in ("idle", "idle~")
        self._wait_for(node_idle, "an idle node", "slurmctld", timeout=60)

    def _spawn(self, name: str, argv: list[str], env: dict | None = None) -> None:
        log = open(self.root / f"{name}.stdout", "ab")   # noqa: SIM115  (held by the daemon until it exits)
        self.procs[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                                            start_new_session=True)
        log.close()

    def _wait_for(self, ready, what: str, daemon: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode} while waiting for {what}: "
                                       f"{self.log_tail(name)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"no {what} after {timeout:.0f} s: {self.log_tail(daemon)}")
            time.sleep(0.2)

    def log_tail(self, name: str, lines: int = 15) -> str:
        texts = []
        for path in (self.root / f"{name}.stdout", self.root / "log" / f"{name}.log",
                     self.root / "munge" / "log" / f"{name}.log"):
            if path.exists():
                texts += path.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(texts)

    def stop(self) -> None:
        """Stop the daemons this cluster started (by PID), slurmd first; SIGKILL whatever ignores SIGTERM."""
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self.procs.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
