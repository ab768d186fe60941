import pytest
import torch

from runners.common.cli import main_guard
from runners.common.errors import UsageError
from runners.common.device import cpu_name, device_name, resolve_device
from runners.registry import RUNNERS, runner_module
from tests.runners.commands import table_flags


def test_auto_takes_a_gpu_when_there_is_one_and_says_which(capsys):
    assert resolve_device("auto", cuda_count=0) == torch.device("cpu")
    assert "device auto -> cpu (0 GPU(s) visible)" in capsys.readouterr().err
    assert resolve_device("auto", cuda_count=2) == torch.device("cuda")


@pytest.mark.parametrize("text,count,expected", [
    ("cpu", 0, torch.device("cpu")), ("cuda", 1, torch.device("cuda")), ("cuda:1", 2, torch.device("cuda:1")),
])
def test_explicit_devices(text, count, expected):
    assert resolve_device(text, cuda_count=count) == expected


@pytest.mark.parametrize("text,count,message", [
    ("cuda", 0, "--device cuda: no CUDA device is available here; use --device cpu"),
    ("cuda:2", 2, "--device cuda:2: only 2 CUDA device(s) are available here"),
    ("tpu", 1, "--device tpu: expected auto, cpu, cuda or cuda:N"),
    ("cpu:1", 0, "--device cpu:1: expected auto, cpu, cuda or cuda:N"),
])
def test_unavailable_or_unknown_devices_are_usage_errors(text, count, message):
    with pytest.raises(UsageError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        resolve_device(text, cuda_count=count)




@pytest.mark.parametrize("runner", RUNNERS)
def test_every_runner_refuses_a_gpu_the_machine_lacks_in_one_line(runner, monkeypatch, capsys, tmp_path):
    """--device cuda:3 on a machine with two GPUs: one line, exit 2, before anything runs."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    module = runner_module(runner)
    with pytest.raises(SystemExit) as exit_:
        main_guard(lambda: module.main([*table_flags(runner), "--device", "cuda:3", "--out", str(tmp_path)]))
    assert exit_.value.code == 2
    assert capsys.readouterr().err == ("error: --device cuda:3: only 2 CUDA device(s) are available here; "
                                       "use --device cpu\n")


def test_a_cpu_is_named_by_its_model_and_the_vector_instructions_torch_uses_on_it(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Example CPU 9000\nflags\t\t: avx2\n\nprocessor\t: 1\n"
                       "model name\t: Example CPU 9000\n")
    capability = torch.backends.cpu.get_cpu_capability()
    assert cpu_name(cpuinfo) == f"CPU: Example CPU 9000 ({capability})"
    assert device_name(torch.device("cpu")) == cpu_name()
    assert device_name(torch.device("cpu")).endswith(f" ({capability})")
