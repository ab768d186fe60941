import math

from scipy import stats as scipy_stats

from runners.common.paper import Reported
from runners.common.stats import Metric, comparison_table, format_p, mean_std, welch_p

BASELINE = [0.50, 0.60, 0.55, 0.52]
SRN = [0.70, 0.75, 0.66]


def test_welch_matches_scipy_on_known_numbers():
    expected = scipy_stats.ttest_ind(SRN, BASELINE, equal_var=False).pvalue
    assert welch_p(SRN, BASELINE) == expected
    # Welch by hand: t = (m1 - m2) / sqrt(v1/n1 + v2/n2), Welch-Satterthwaite dof.
    (m1, s1), (m2, s2) = mean_std(SRN), mean_std(BASELINE)
    se2 = s1**2 / 3 + s2**2 / 4
    t = (m1 - m2) / math.sqrt(se2)
    dof = se2**2 / ((s1**2 / 3) ** 2 / 2 + (s2**2 / 4) ** 2 / 3)
    assert math.isclose(expected, 2 * scipy_stats.t.sf(abs(t), dof), rel_tol=1e-9)


def test_undefined_p_values():
    assert math.isnan(welch_p([1.0], [1.0, 2.0]))
    assert format_p(math.nan) == "n/a" and format_p(0.0001) == "<0.001" and format_p(0.04321) == "0.043"


def test_table_rows_are_arms():
    runs = {"baseline": [{"h1": v} for v in BASELINE], "SRN": [{"h1": v} for v in SRN]}
    table = comparison_table(runs, [Metric("h1", "1 step H@1", scale=100)]).splitlines()
    assert table[0] == "| arm | 1 step H@1 |"
    assert table[2] == "| baseline (n=4) | 54.2 ± 4.3 |"
    assert table[3] == "| SRN (n=3) | 70.3 ± 4.5 |"
    assert table[4] == f"| p, SRN vs baseline | {format_p(welch_p(SRN, BASELINE))} |"


def test_table_columns_are_arms():
    runs = {"baseline": [{"acc": 0.9}, {"acc": 0.8}], "SRN": [{"acc": 0.95}], "GRN": []}
    table = comparison_table(runs, [Metric("acc", "Relational", 100)], arms_as_rows=False).splitlines()
    assert table[0] == "|  | baseline (n=2) | SRN (n=1) | GRN (n=0) | p, SRN vs baseline | p, GRN vs baseline |"
    assert table[2] == "| Relational | 85.0 ± 7.1 | 95.0 ± 0.0 | - | n/a | n/a |"


def test_published_numbers_are_reference_lines_in_the_tables_units():
    runs = {"RN": [{"acc": 0.9, "count": 0.5}], "RN+SRN": [{"acc": 0.95, "count": 0.6}]}
    paper = {"RN": {"acc": Reported(95.1, 0.4)}, "RN+SRN": {"acc": Reported(96.9, None)}}
    metrics = [Metric("acc", "Relational", 100), Metric("count", "Count", 100)]
    rows = comparison_table(runs, metrics, reference="RN", paper=paper).splitlines()
    assert rows[-2:] == ["| paper: RN | 95.1 ± 0.4 | - |", "| paper: RN+SRN | 96.9 | - |"]
    columns = comparison_table(runs, metrics, reference="RN", arms_as_rows=False, paper=paper).splitlines()
    assert columns[0].endswith("| paper: RN | paper: RN+SRN |") and columns[2].endswith("| 95.1 ± 0.4 | 96.9 |")
