"""`python -m fastloop doctor`: each check on a faked machine, then the real command."""
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from fastloop import __main__ as cli
from fastloop import doctor
from fastloop.doctor import FAIL, OK, WARN

ROOT = Path(__file__).resolve().parent.parent
CHECK_NAMES = ["python", "dpdk", "extension", "pmds", "tun", "hugepages", "privileges", "ip",
               "config"]


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTLOOP_")}
    env.update(extra)
    return env


def run_cli(*args, **env):
    return subprocess.run([sys.executable, "-m", "fastloop", *args], cwd=ROOT, env=clean_env(**env),
                          capture_output=True, text=True, timeout=120)


# ------------------------------------------------------------------------------ python, DPDK

def test_python_version():
    assert doctor.check_python((3, 11, 7))[0] == OK
    status, msg, fix = doctor.check_python((3, 9, 18))
    assert status == FAIL and "3.9.18" in msg and "3.10" in fix


def test_dpdk_pkgconfig_missing():
    status, msg, fix = doctor.check_dpdk_pkgconfig(None)
    assert status == FAIL and "libdpdk" in msg and "libdpdk-dev" in fix


def test_dpdk_pkgconfig_too_old():
    status, msg, fix = doctor.check_dpdk_pkgconfig("21.11.3")
    assert status == FAIL and "21.11.3" in msg and "22.11" in fix


def test_dpdk_pkgconfig_good():
    assert doctor.check_dpdk_pkgconfig("22.11.11") == (OK, "pkg-config finds DPDK 22.11.11", "")
    assert doctor.check_dpdk_pkgconfig("23.11.0-rc1")[0] == OK


def test_dpdk_linked_mismatch_asks_for_rebuild():
    status, msg, fix = doctor.check_dpdk_linked("DPDK 22.11.4", "23.11.1")
    assert status == FAIL and "23.11.1" in msg and "build_ext" in fix


def test_dpdk_linked_same_abi_other_patch_is_ok():
    status, msg, _ = doctor.check_dpdk_linked("DPDK 22.11.4", "22.11.11")
    assert status == OK and "22.11.4" in msg and "22.11.11" in msg


def test_dpdk_linked_not_built(monkeypatch):
    def not_built():
        raise ImportError("No module named 'fastloop.dev.eal'")
    monkeypatch.setattr(doctor, "linked_dpdk_version", not_built)
    status, msg, fix = doctor.check_dpdk_linked()
    assert status == FAIL and "not built" in msg and "build_ext --inplace" in fix


def test_dpdk_on_this_machine_matches():
    from fastloop.dev.eal import dpdk_version
    pc = doctor.pkg_config("--modversion")
    assert pc and dpdk_version() == f"DPDK {pc}"
    assert doctor.check_dpdk_pkgconfig()[0] == OK
    assert doctor.check_dpdk_linked() == (OK, f"extension runs on DPDK {pc}", "")


def test_version_tuple():
    assert doctor._version_tuple("DPDK 22.11.11") == (22, 11, 11)
    assert doctor._version_tuple("23.11.0-rc1") == (23, 11, 0)
    assert doctor._version_tuple("garbage") == ()


# ------------------------------------------------------------------------------ PMDs

def make_pmds(tmp_path, names, abi="23.0"):
    d = tmp_path / f"pmds-{abi}"
    d.mkdir()
    for n in names:
        (d / f"librte_{n}.so.23").write_bytes(b"")
    return d


def test_pmds_all_present(tmp_path):
    d = make_pmds(tmp_path, doctor.REQUIRED_PMDS)
    status, msg, _ = doctor.check_pmds(str(d))
    assert status == OK and str(d) in msg


def test_pmds_one_missing(tmp_path):
    d = make_pmds(tmp_path, ["net_tap", "net_ring", "net_af_packet"])
    status, msg, fix = doctor.check_pmds(str(d))
    assert status == FAIL and "net_memif" in msg and "net_tap" not in msg
    assert "librte-net-memif" in fix


def test_pmds_no_plugin_dir():
    status, msg, fix = doctor.check_pmds(None)
    assert status == FAIL and "pmds" in msg and "apt-get install" in fix


def test_find_pmds_dir_prefers_pkg_config_then_newest_glob(tmp_path):
    old = make_pmds(tmp_path, [], "22.0")
    new = make_pmds(tmp_path, [], "23.0")
    globs = [str(tmp_path / "pmds-*")]
    assert doctor.find_pmds_dir(str(old), globs) == str(old)
    assert doctor.find_pmds_dir("", globs) == str(new)
    assert doctor.find_pmds_dir(str(tmp_path / "gone"), globs) == str(new)
    assert doctor.find_pmds_dir("", [str(tmp_path / "nothing-*")]) is None


def test_pmds_on_this_machine():
    status, msg, _ = doctor.check_pmds()
    assert status == OK, msg
    d = doctor.find_pmds_dir()
    assert any(p.startswith("librte_net_tap.so") for p in os.listdir(d))


# ------------------------------------------------------------------------------ /dev/net/tun

def test_tun_missing_fails_with_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(doctor, "TUN_PATH", str(tmp_path / "tun"))
    status, msg, fix = doctor.check_tun()
    assert status == FAIL and "missing" in msg
    assert "modprobe tun" in fix and "--device /dev/net/tun" in fix


def test_tun_missing_is_a_warning_when_not_needed(tmp_path):
    status, msg, _ = doctor.check_tun(str(tmp_path / "tun"), needed=False)
    assert status == WARN and "only the tap" in msg


def test_tun_not_openable(tmp_path):
    # a directory exists but cannot be opened read-write, even by root
    status, msg, fix = doctor.check_tun(str(tmp_path))
    assert status == FAIL and "cannot be opened" in msg and fix


def test_tun_on_this_machine():
    assert doctor.check_tun() == (OK, "/dev/net/tun opens", "")


# ------------------------------------------------------------------------------ hugepages

def meminfo(tmp_path, total=None, free=None):
    lines = ["MemTotal:       16303144 kB", "AnonHugePages:         0 kB"]
    if total is not None:
        lines += [f"HugePages_Total:   {total}", f"HugePages_Free:    {free}"]
    lines.append("Hugepagesize:       2048 kB")
    p = tmp_path / "meminfo"
    p.write_text("\n".join(lines) + "\n")
    return str(p)


def test_no_hugepages_is_a_warning(tmp_path, monkeypatch):
    monkeypatch.setattr(doctor, "MEMINFO", meminfo(tmp_path, 0, 0))
    status, msg, fix = doctor.check_hugepages()
    assert status == WARN and "--no-huge" in msg and "nr_hugepages" in fix


def test_hugepage_lines_absent_is_a_warning(tmp_path):
    assert doctor.check_hugepages(meminfo(tmp_path))[0] == WARN


def test_hugepages_all_used_is_a_warning(tmp_path):
    status, msg, _ = doctor.check_hugepages(meminfo(tmp_path, 512, 0))
    assert status == WARN and "512" in msg


def test_hugepages_free(tmp_path):
    status, msg, _ = doctor.check_hugepages(meminfo(tmp_path, 512, 100))
    assert status == OK and "100 of 512" in msg


def test_meminfo_unreadable_is_a_warning(tmp_path):
    assert doctor.check_hugepages(str(tmp_path / "none"))[0] == WARN


# ------------------------------------------------------------------------------ privileges

def proc_status(tmp_path, cap_eff):
    p = tmp_path / "status"
    p.write_text(f"Name:\tpython\nUid:\t1000\t1000\t1000\t1000\nCapInh:\t0000000000000000\n"
                 f"CapEff:\t{cap_eff:016x}\n")
    return str(p)


BOTH = 1 << doctor.CAP_NET_ADMIN | 1 << doctor.CAP_SYS_ADMIN


def test_non_root_without_capabilities_fails(tmp_path, monkeypatch):
    monkeypatch.setattr(doctor.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(doctor, "PROC_STATUS", proc_status(tmp_path, 0))
    status, msg, fix = doctor.check_privileges()
    assert status == FAIL and "uid 1000" in msg
    assert "CAP_NET_ADMIN" in msg and "CAP_SYS_ADMIN" in msg
    assert "root" in fix and "setcap" in fix


def test_non_root_with_capabilities_is_ok(tmp_path):
    status, msg, _ = doctor.check_privileges(1000, proc_status(tmp_path, BOTH))
    assert status == OK and "uid 1000" in msg


def test_non_root_with_one_capability_names_the_other(tmp_path):
    status, msg, _ = doctor.check_privileges(1000, proc_status(tmp_path, 1 << doctor.CAP_NET_ADMIN))
    assert status == FAIL and "CAP_SYS_ADMIN" in msg and "CAP_NET_ADMIN" not in msg


def test_root_in_a_container_without_net_admin_fails(tmp_path):
    status, msg, fix = doctor.check_privileges(0, proc_status(tmp_path, 1 << doctor.CAP_SYS_ADMIN))
    assert status == FAIL and "CAP_NET_ADMIN" in msg and "--cap-add NET_ADMIN" in fix


def test_capabilities_unreadable(tmp_path):
    assert doctor.check_privileges(0, str(tmp_path / "none"))[0] == OK
    assert doctor.check_privileges(1000, str(tmp_path / "none"))[0] == FAIL


# ------------------------------------------------------------------------------ ip, config

def test_ip_tool_missing():
    status, msg, fix = doctor.check_ip_tool(lambda name: None)
    assert status == FAIL and "iproute2" in fix
    assert doctor.check_ip_tool(lambda name: None, needed=False)[0] == WARN


def test_ip_tool_present():
    assert doctor.check_ip_tool(lambda name: "/sbin/ip") == (OK, "ip (iproute2) at /sbin/ip", "")


def test_config_good():
    status, msg, _ = doctor.check_config({"FASTLOOP_IFACE": "memif:/run/x.sock"})
    assert status == OK and "iface=memif:/run/x.sock" in msg


def test_config_bad_prints_the_config_error():
    status, msg, fix = doctor.check_config({"FASTLOOP_MTU": "huge"})
    assert status == FAIL and msg.startswith("FASTLOOP_MTU='huge'") and "576 to 65000" in msg
    assert fix


# ------------------------------------------------------------------------------ run_checks

def test_run_checks_names_and_shape():
    ok, results = doctor.run_checks()
    assert [r.name for r in results] == CHECK_NAMES
    assert all(r.status in (OK, WARN, FAIL) for r in results)
    assert ok == all(r.status != FAIL for r in results)


def test_run_checks_fails_on_a_fail_but_not_on_a_warning(monkeypatch):
    monkeypatch.setattr(doctor, "check_hugepages", lambda: (WARN, "w", "x"))
    monkeypatch.setattr(doctor, "check_ip_tool", lambda needed=True: (OK, "ip", ""))
    monkeypatch.setattr(doctor, "check_tun", lambda needed=True: (OK, "tun", ""))
    assert doctor.run_checks()[0] is True
    monkeypatch.setattr(doctor, "check_tun", lambda needed=True: (FAIL, "no tun", "modprobe tun"))
    ok, results = doctor.run_checks()
    assert ok is False
    tun = next(r for r in results if r.name == "tun")
    assert tun.line() == "FAIL tun        no tun -> fix: modprobe tun"


def test_run_checks_reports_a_crashing_check(monkeypatch):
    def boom():
        raise RuntimeError("kaput")
    monkeypatch.setattr(doctor, "check_python", boom)
    ok, results = doctor.run_checks()
    assert ok is False
    assert results[0].status == FAIL and "kaput" in results[0].message


def test_tun_and_ip_only_needed_for_tap(tmp_path, monkeypatch):
    monkeypatch.setattr(doctor, "TUN_PATH", str(tmp_path / "tun"))
    monkeypatch.setattr(doctor.shutil, "which", lambda name: None)
    monkeypatch.setenv("FASTLOOP_IFACE", "memif:/run/x.sock")
    res = {r.name: r.status for r in doctor.run_checks()[1]}
    assert res["tun"] == WARN and res["ip"] == WARN
    monkeypatch.setenv("FASTLOOP_IFACE", "tap:fl9")
    res = {r.name: r.status for r in doctor.run_checks()[1]}
    assert res["tun"] == FAIL and res["ip"] == FAIL


def test_ok_line_hides_the_fix():
    assert doctor.Result("x", OK, "fine", "never shown").line() == "ok   x          fine"


# ------------------------------------------------------------------------------ the command

def test_doctor_command_passes_on_this_machine():
    p = run_cli("doctor")
    assert p.returncode == 0, p.stdout + p.stderr
    lines = p.stdout.splitlines()
    assert len(lines) == len(CHECK_NAMES)
    assert [line.split()[1] for line in lines] == CHECK_NAMES
    assert all(line.split()[0] in (OK, WARN) for line in lines), p.stdout
    assert "ready" in p.stderr


def test_doctor_command_bad_iface_fails_naming_the_variable():
    p = run_cli("doctor", FASTLOOP_IFACE="token-ring:0")
    assert p.returncode == 1
    config = next(line for line in p.stdout.splitlines() if line.split()[1] == "config")
    assert config.startswith("FAIL") and "FASTLOOP_IFACE='token-ring:0'" in config
    assert "memif:/path/to.sock" in config            # the accepted forms
    assert "NOT ready" in p.stderr


def test_doctor_probe_starts_eal_and_a_ring_pair():
    p = run_cli("doctor", "--probe")
    assert p.returncode == 0, p.stdout + p.stderr
    probe = p.stdout.splitlines()[-1]
    assert probe.startswith("ok   probe") and "--no-pci" in probe
    assert "mempool fastloop_mbufs: 16383 mbufs" in probe and "0 in use" in probe


def test_doctor_probe_reports_an_eal_failure():
    p = run_cli("doctor", "--probe", FASTLOOP_EAL_ARGS="--no-such-eal-option")
    assert p.returncode == 1
    probe = p.stdout.splitlines()[-1]
    assert probe.startswith("FAIL probe") and "--no-such-eal-option" in probe


def test_cli_requires_a_command():
    p = run_cli()
    assert p.returncode == 2 and "COMMAND" in p.stderr


def test_up_is_dispatched_lazily_to_cli_up(monkeypatch):
    seen = []
    fake = types.ModuleType("fastloop.cli_up")
    fake.main = lambda args: seen.append(args) or 7
    monkeypatch.setitem(sys.modules, "fastloop.cli_up", fake)
    assert cli.main(["up", "--duration", "0.5"]) == 7
    assert seen[0].command == "up" and seen[0].duration == 0.5


def test_doctor_does_not_import_cli_up():
    p = subprocess.run([sys.executable, "-c",
                        "import sys; from fastloop.__main__ import main; main(['doctor']); "
                        "print('fastloop.cli_up' in sys.modules)"],
                       cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=120)
    assert p.stdout.splitlines()[-1] == "False"
