"""runners/reproduce.py: every part's plan, and a tiny reproduction of two runners whose
report sets our numbers beside the paper's."""
import json

import pytest
import yaml

from runners import reproduce
from tests.runners.test_circles import TINY as CIRCLES_TINY
from tests.runners.test_sort_of_clevr import COMMON as SOC_COMMON, TINY as SOC_TINY


@pytest.fixture
def tiny_configs(tmp_path):
    folder = tmp_path / "configs"
    folder.mkdir()
    (folder / "circles.yaml").write_text(yaml.safe_dump(CIRCLES_TINY))
    (folder / "sort_of_clevr.yaml").write_text(yaml.safe_dump({"common": SOC_COMMON, "smoke": SOC_TINY}))
    return folder


def test_the_dry_run_lists_every_table_of_the_paper(tmp_path, capsys):
    reproduce.main(["--preset", "paper", "--out", str(tmp_path / "out"), "--clutrr-data", "data.zip", "--dry-run"])
    plans = json.loads(capsys.readouterr().out)
    assert len(plans) == 9 and sum(title.startswith("C-SWM") for title in plans) == 4
    space_3 = plans["C-SWM, Space Invaders, K=3 (Table 3)"]
    assert space_3["command"].startswith("python runners/cswm.py --env space --k 3 --srn --preset paper")
    assert len(space_3["runs"]) == 20 and space_3["to_run"] == 20  # 2 arms x 10 seeds
    assert list(plans["Circles (Table 1)"]["arms"]) == ["baseline", "srn", "srn-s0-gradient"]
    assert list(plans["CLUTRR (section 3.3)"]["arms"]) == ["baseline", "srn", "grn"]
    assert "--clutter" in plans["Sort-of-CLEVR, cluttered background (appendix D.4)"]["command"]
    assert not (tmp_path / "out").exists()


def test_the_dry_run_shows_the_launch_each_part_will_use(tmp_path, capsys):
    reproduce.main(["--preset", "smoke", "--out", str(tmp_path / "out"), "--clutrr-data", "data.zip",
                    "--launcher", "local", "--jobs", "3", "--dry-run"])
    plans = json.loads(capsys.readouterr().out)
    assert {(plan["launch"]["launcher"], plan["launch"]["jobs"]) for plan in plans.values()} == {("local", 3)}
    assert all(plan["command"].endswith("--launcher local --jobs 3") for plan in plans.values())


def test_a_tiny_reproduction_reports_ours_beside_the_paper_and_resumes(tmp_path, tiny_configs, capsys):
    argv = ["--preset", "smoke", "--only", "circles", "sort_of_clevr", "--configs", str(tiny_configs),
            "--out", str(tmp_path / "out"), "--data-dir", str(tmp_path / "data")]
    reproduce.main(argv)
    report = (tmp_path / "out" / "REPRODUCTION.md").read_text()
    for title in ("## Circles (Table 1)", "## Sort-of-CLEVR (Table 2)", "## Sort-of-CLEVR, cluttered background",
                  "## Sort-of-CLEVR, the SRN evaluated with 0 inner steps"):
        assert title in report
    assert "| 1 circle: % decomposed |" in report and "| paper: srn | within 2 std |" in report
    assert "| Furthest |" in report and "95.9 ± 0.4 |" in report  # the paper's RN+SRN Furthest, Table 2
    assert "p, srn vs baseline: ours / paper" in report and "ours: srn zero steps (n=1)" in report
    assert "not comparable with the paper" in report and "python runners/circles.py --srn --preset smoke" in report
    capsys.readouterr()
    reproduce.main(argv)
    assert "not run (all runs were done)" in (tmp_path / "out" / "REPRODUCTION.md").read_text()
