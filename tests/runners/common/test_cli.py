import re
import subprocess
import sys
import textwrap

import pytest

from patches.vendor import PROJECT_ROOT
from runners.common.cli import ArgumentParser, add_common_arguments
from runners.common.errors import UsageError


def parser():
    p = ArgumentParser()
    add_common_arguments(p, "toy")
    return p


@pytest.mark.parametrize("argv,match", [
    (["--seeds", "0"], "--seeds: must be an integer >= 1, got 0"),
    (["--steps", "1001"], "--steps: must be an integer in [0, 1000], got 1001"),
    (["--inner-lr", "-1"], "--inner-lr: must be a finite number > 0, got -1.0"),
    (["--inner-lr", "inf"], "--inner-lr: must be a finite number > 0, got inf"),
    (["--momentum", "1"], "--momentum: must be a finite number in [0, 1), got 1.0"),
    (["--backprop", "some"], "--backprop: invalid choice: 'some'"),
    (["--seeds", "abc"], "argument --seeds: expected an integer, got 'abc'"),
    (["--inner-lr", "fast"], "argument --inner-lr: expected a number, got 'fast'"),
    (["--bogus"], "unrecognized arguments: --bogus"),
])
def test_bad_arguments_raise_usage_errors(argv, match):
    with pytest.raises(UsageError, match=re.escape(match)):
        parser().parse_args(argv)


def test_defaults_come_from_the_preset():
    args = parser().parse_args([])
    assert args.preset == "auto" and args.seeds is None and args.threads is None and str(args.out) == "results/toy"
    assert args.device == "auto" and args.config is None and not args.dry_run and not args.srn and not args.grn
    assert (args.steps, args.inner_lr, args.momentum, args.backprop, args.hidden) == (None,) * 5


SCRIPT = textwrap.dedent("""
    import sys
    from runners.common.cli import main_guard
    from runners.common.errors import UsageError
    from patches.vendor import UpstreamError
    from srn import InnerLossNotFinite
    def main():
        kind = sys.argv[1]
        if kind == "usage":
            raise UsageError("unknown env 'tennis'")
        if kind == "upstream":
            raise UpstreamError("vendor/c-swm is at commit abc but the project pins def")
        if kind == "interrupt":
            raise KeyboardInterrupt
        if kind == "diverged":
            raise InnerLossNotFinite("inner loss is not finite at step 2 of 5 (inf); lower the inner learning rate")
    main_guard(main)
""")


@pytest.mark.parametrize("kind,code,line", [
    ("usage", 2, "error: unknown env 'tennis'"),
    ("upstream", 2, "error: vendor/c-swm is at commit abc but the project pins def"),
    ("interrupt", 130, "interrupted: finished runs are saved; run the same command again to resume"),
    ("diverged", 3, "error: training diverged: inner loss is not finite at step 2 of 5 (inf); lower the inner "
                    "learning rate; finished runs are saved"),
    ("ok", 0, ""),
])
def test_main_guard_prints_one_line_and_exits(kind, code, line):
    result = subprocess.run([sys.executable, "-c", SCRIPT, kind], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert result.returncode == code
    assert result.stderr.strip() == line and "Traceback" not in result.stderr


def test_a_setting_shared_by_kinds_gives_each_kinds_own_help():
    helps = {action.dest: action.help for action in parser()._actions}
    assert helps["steps"] == "inner steps r (srn, grn); attention iterations T (the paper: 3) (slot-attention)"
    assert helps["inner_lr"] == "inner learning rate (srn, grn)"
    assert helps["schedule"].endswith("(srn, grn, slot-attention)")
