"""Every manifest says where it came from: the tool's git commit and whether its tree was dirty, the
libraries' versions and the machine, so a result can be traced to the code that made it."""

from __future__ import annotations

import subprocess
from importlib.metadata import version
from pathlib import Path

from nxm_deploy import origin
from nxm_deploy.manifest import provenance

REPO = Path(__file__).resolve().parents[1]


def test_provenance_names_the_commit_the_libraries_and_the_machine():
    facts = provenance()
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode == 0:  # a checkout (CI's clone, a developer's): the commit it runs from
        assert facts["source"]["commit"] == head.stdout.strip()
        status = subprocess.run(["git", "-C", str(REPO / "nxm_deploy"), "status", "--porcelain", "--", "."],
                                capture_output=True, text=True).stdout  # fmt: skip
        assert facts["source"]["dirty"] is bool(status.strip())
    libs = facts["libraries"]
    assert libs["torch"] == version("torch") and libs["transformers"] == version("transformers")
    assert libs["onnx"] == version("onnx") and libs["nxm_deploy"] == facts["tool_version"]
    assert facts["machine"]["logical_cores"] >= 1 and facts["machine"]["cpu"]


def test_outside_a_checkout_the_commit_is_unknown_not_wrong(monkeypatch, tmp_path):
    origin.source_revision.cache_clear()
    monkeypatch.setattr(origin, "_SOURCE", tmp_path)  # an installed wheel: no .git above it
    try:
        assert origin.source_revision() == {"commit": None, "dirty": None}
    finally:
        origin.source_revision.cache_clear()


def test_the_machine_names_the_thread_count_a_cpu_result_depends_on():
    # Training at 2 threads instead of 1 sums in another order; a base-size MRPC dense run moved
    # 0.9 F1 that way, so a run must say which count made it.
    import torch

    before = torch.get_num_threads()
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            assert origin.machine()["torch_threads"] == n
    finally:
        torch.set_num_threads(before)


def test_the_machine_tells_two_cpu_generations_apart_where_the_model_name_does_not(tmp_path):
    # A cloud VM names every AMD CPU "AMD EPYC"; family/model/stepping tell Zen 4 from Zen 5, whose
    # kernels may differ (a CPU result is only comparable on the same one).
    block = ("processor\t: {n}\nvendor_id\t: AuthenticAMD\ncpu family\t: {fam}\nmodel\t\t: {model}\n"
             "model name\t: AMD EPYC\nstepping\t: 1\nflags\t\t: fpu avx2 avx512f\n\n")  # fmt: skip
    info = tmp_path / "cpuinfo"
    info.write_text(block.format(n=0, fam=26, model=2) + block.format(n=1, fam=25, model=17))
    assert origin.cpu_model(info) == "AMD EPYC"
    assert origin.cpu_id(info) == "family 26 model 2 stepping 1"  # the first processor's
    info.write_text("processor\t: 0\nmodel name\t: Some CPU\n")  # no family: not guessed
    assert origin.cpu_id(info) is None and origin.cpu_model(info) == "Some CPU"
    assert origin.cpu_id(tmp_path / "absent") is None


def test_the_machine_names_the_instruction_set_torch_dispatches_to():
    import torch

    assert origin.machine()["cpu_isa"] == torch.backends.cpu.get_cpu_capability()
