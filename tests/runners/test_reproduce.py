"""runners/reproduce.py: every part's plan, and a tiny reproduction of two runners whose
report sets our numbers beside the paper's."""
import json

import pytest

from runners import reproduce


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


def test_without_a_gpu_the_default_is_smoke_and_the_device_is_resolved_once(tmp_path, capsys):
    """A laptop's plain `python runners/reproduce.py` plans the smoke presets on the CPU (not
    10-seed, 500-epoch C-SWM runs) and says so once, not once per part."""
    reproduce.main(["--out", str(tmp_path / "out"), "--clutrr-data", "data.zip", "--dry-run"])
    printed = capsys.readouterr()
    plans = json.loads(printed.out)
    assert {(plan["preset"], plan["device"]) for plan in plans.values()} == {("smoke", "cpu")}
    assert all("--preset smoke --device cpu" in plan["command"] for plan in plans.values())
    assert printed.err.count("device auto -> cpu") == 1 and printed.err.count("preset auto -> smoke") == 1


def test_jobs_per_gpu_reaches_every_part_and_slurm_leaves_the_device_to_the_jobs(tmp_path, capsys, monkeypatch):
    reproduce.main(["--out", str(tmp_path / "out"), "--clutrr-data", "data.zip", "--launcher", "local",
                    "--jobs-per-gpu", "2", "--dry-run"])
    plans = json.loads(capsys.readouterr().out)
    assert all(plan["command"].endswith("--launcher local --jobs-per-gpu 2") for plan in plans.values())
    assert {plan["launch"]["jobs_per_gpu"] for plan in plans.values()} == {2}
    reproduce.main(["--out", str(tmp_path / "out"), "--clutrr-data", "data.zip", "--launcher", "slurm",
                    "--partition", "gpu", "--only", "circles", "--dry-run"])
    [plan] = json.loads(capsys.readouterr().out).values()
    assert (plan["preset"], plan["device"]) == ("paper", "cuda") and "--device" not in plan["command"]


@pytest.mark.slow
def test_a_tiny_reproduction_reports_ours_beside_the_paper_and_resumes(tmp_path, capsys):
    argv = ["--preset", "tiny", "--only", "circles", "sort_of_clevr",
            "--out", str(tmp_path / "out"), "--data-dir", str(tmp_path / "data")]
    reproduce.main(argv)
    forecast = capsys.readouterr().out.split("\n\n=== ")[0]
    assert "forecast, training steps one run at a time (not data generation or evaluation):" in forecast
    for part in ("Circles (Table 1): 4 run(s) to do, about ", "Sort-of-CLEVR (Table 2): 2 run(s) to do, about ",
                 "Sort-of-CLEVR, cluttered background (appendix D.4): 2 run(s) to do, about "):
        assert part in forecast and "(one training step per arm measured here on cpu)" in forecast
    assert "the SRN evaluated with 0 inner steps" not in forecast  # it shares Table 2's command
    report = (tmp_path / "out" / "REPRODUCTION.md").read_text()
    for title in ("## Circles (Table 1)", "## Sort-of-CLEVR (Table 2)", "## Sort-of-CLEVR, cluttered background",
                  "## Sort-of-CLEVR, the SRN evaluated with 0 inner steps"):
        assert title in report
    assert "| 1 circle: % decomposed |" in report and "| paper: srn | within 2 std |" in report
    assert "| Furthest |" in report and "95.9 ± 0.4 |" in report  # the paper's RN+SRN Furthest, Table 2
    assert "p, srn vs baseline: ours / paper" in report and "ours: srn at 0 steps (n=1)" in report
    assert "not comparable with the paper" in report and "python runners/circles.py --srn --preset tiny" in report
    capsys.readouterr()
    reproduce.main(argv)
    assert "not run (all runs were done)" in (tmp_path / "out" / "REPRODUCTION.md").read_text()


# The report's statistics against hand-computed values. The paper's arms below (5 trials):
# srn 97.0 ± 0.5, baseline 95.0 ± 1.0, grn 96.0 ± 2.0.
PAPER_ARMS = {"baseline": (95.0, 1.0), "srn": (97.0, 0.5), "grn": (96.0, 2.0)}


def paper_like_table(trials=5):
    from runners.common.paper import PaperTable, Reported
    return PaperTable("Table X", "neurips", trials,
                      {arm: {"acc": Reported(mean, std)} for arm, (mean, std) in PAPER_ARMS.items()})


def hand_welch_from_stats(m1, s1, m2, s2, n):
    """Two-sided Welch p from means, stds and n trials each: t and the Welch-Satterthwaite dof by hand."""
    from scipy import stats as scipy_stats
    v1, v2 = s1**2 / n, s2**2 / n
    t = (m1 - m2) / (v1 + v2) ** 0.5
    dof = (v1 + v2) ** 2 / (v1**2 / (n - 1) + v2**2 / (n - 1))
    return t, dof, 2 * scipy_stats.t.sf(abs(t), dof)


def test_within_is_the_papers_mean_plus_or_minus_two_std_inclusive():
    from runners.common.paper import Reported
    paper = Reported(10.0, 0.5)  # the band is [9, 11]
    assert [reproduce.within(ours, paper) for ours in (10.0, 10.75, 9.25, 11.0, 9.0)] == ["yes"] * 5  # 1.5 std in
    assert [reproduce.within(ours, paper) for ours in (11.01, 8.99, 12.0, -10.0)] == ["no"] * 4
    assert reproduce.within(10.0, Reported(10.0, None)) == "n/a" and reproduce.within(10.0, Reported(9.0, 0.0)) == "no"


def test_paper_p_is_welchs_test_of_the_papers_arms_by_hand():
    """srn vs baseline: t = 2 / sqrt(0.25/5 + 1/5) = 4, dof = 0.25^2 / ((0.05^2 + 0.2^2) / 4) = 100/17,
    p = 0.0074; grn vs baseline: t = 1, p = 0.357; srn vs grn: p = 0.333 (so a wrong arm shows)."""
    table = paper_like_table()
    t, dof, p = hand_welch_from_stats(97.0, 0.5, 95.0, 1.0, 5)
    assert abs(t - 4.0) < 1e-12 and abs(dof - 100 / 17) < 1e-9 and abs(p - 0.0074135) < 1e-6
    assert reproduce.paper_p(table, "srn", "baseline", "acc") == "0.007"  # Student's t would be 0.004, one-sided 0.004
    assert reproduce.paper_p(table, "grn", "baseline", "acc") == f"{hand_welch_from_stats(96.0, 2.0, 95.0, 1.0, 5)[2]:.3f}" \
        == "0.357"
    assert reproduce.paper_p(table, "srn", "grn", "acc") == f"{hand_welch_from_stats(97.0, 0.5, 96.0, 2.0, 5)[2]:.3f}" \
        == "0.333"
    # the trials count: 20 trials each, t = 1 / sqrt(4/20 + 1/20) = 2, dof = 0.25^2 / ((0.2^2 + 0.05^2) / 19) = 475/17
    assert hand_welch_from_stats(96.0, 2.0, 95.0, 1.0, 20)[:2] == pytest.approx((2.0, 475 / 17))
    assert reproduce.paper_p(paper_like_table(20), "grn", "baseline", "acc") == \
        f"{hand_welch_from_stats(96.0, 2.0, 95.0, 1.0, 20)[2]:.3f}" == "0.055"
    assert reproduce.paper_p(table, "srn", "gnn", "acc") == "n/a" and reproduce.paper_p(table, "srn", "baseline", "x") == "n/a"
    assert reproduce.paper_p(paper_like_table(None), "srn", "baseline", "acc") == "n/a"


class FakeStore:
    """ResultStore.table's answer for given runs: arm -> one metrics dict per seed."""

    def __init__(self, runs):
        self.runs = runs

    def table(self, arms, seeds):
        return {arm: self.runs[arm][: len(seeds)] for arm in arms}


def test_the_report_row_sets_each_arm_beside_its_own_paper_arm_and_p_against_the_reference():
    """Ours (x 100): baseline 92.0 ± 1.0 (3 paper stds below its 95 ± 1: "no"), srn 97.6 ± 0.6
    (1.2 paper stds above 97 ± 0.5: "yes"; 5.2 baseline stds: it would be "no" against the
    baseline's paper arm), grn 99.5 ± 0.5 (1.75 paper stds above 96 ± 2: "yes", "no" in a 1-std band);
    ours' p is Welch's by hand on the three seeds, the paper's from its stats (5 trials)."""
    from runners.common.stats import Metric
    ours = {"baseline": [0.91, 0.92, 0.93], "srn": [0.97, 0.976, 0.982], "grn": [0.99, 0.995, 1.0]}
    part = reproduce.Part("Toy", "circles", (), paper_like_table, (Metric("acc", "Acc", scale=100),),
                          (reproduce.Column("baseline", "baseline"), reproduce.Column("srn", "srn"),
                           reproduce.Column("grn", "grn")))
    plan = {"seeds": [0, 1, 2], "arms": {arm: {"arm": arm} for arm in ours}}
    store = FakeStore({arm: [{"acc": value} for value in values] for arm, values in ours.items()})
    report = reproduce.part_report(part, plan, store, "python runners/circles.py", None, "paper")

    def ours_p(arm):
        means, variances = {}, {}
        for name in (arm, "baseline"):
            values = ours[name]
            means[name] = sum(values) / 3
            variances[name] = sum((value - means[name]) ** 2 for value in values) / 2
        return hand_welch_from_stats(means[arm], variances[arm] ** 0.5, means["baseline"], variances["baseline"] ** 0.5, 3)[2]

    assert (f"{ours_p('srn'):.3f}", f"{ours_p('grn'):.3f}") == ("0.003", "0.002")  # t = 8.32, 11.62; dof = 3.27, 2.94
    header, _, row = report.split("\n")[4:7]
    assert header == ("| metric | ours: baseline (n=3) | paper: baseline | within 2 std | ours: srn (n=3) | paper: srn | "
                      "within 2 std | ours: grn (n=3) | paper: grn | within 2 std | p, srn vs baseline: ours / paper | "
                      "p, grn vs baseline: ours / paper |")
    assert row == (f"| Acc | 92.0 ± 1.0 | 95.0 ± 1.0 | no | 97.6 ± 0.6 | 97.0 ± 0.5 | yes | 99.5 ± 0.5 | 96.0 ± 2.0 | yes | "
                   f"{ours_p('srn'):.3f} / 0.007 | {ours_p('grn'):.3f} / 0.357 |")
