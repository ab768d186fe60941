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
    assert table[0] == "| arm | 1 step H@1 |" and table[1] == "|---|---|"
    assert table[2] == "| baseline (n=4) | 54.2 ± 4.3 |"
    assert table[3] == "| SRN (n=3) | 70.3 ± 4.5 |"
    assert table[4] == f"| p, SRN vs baseline | {format_p(welch_p(SRN, BASELINE))} |"


def test_table_columns_are_arms():
    runs = {"baseline": [{"acc": 0.9}, {"acc": 0.8}], "SRN": [{"acc": 0.95}], "GRN": []}
    table = comparison_table(runs, [Metric("acc", "Relational", 100)], arms_as_rows=False).splitlines()
    assert table[0] == "|  | baseline (n=2) | SRN (n=1) | GRN (n=0) | p, SRN vs baseline | p, GRN vs baseline |"
    assert table[1] == "|---|---|---|---|---|---|"
    assert table[2] == "| Relational | 85.0 ± 7.1 | 95.0 ± 0.0 | - | n/a | n/a |"


def test_a_metric_is_shown_as_measured_unless_it_says_its_scale():
    table = comparison_table({"baseline": [{"loss": 0.25}, {"loss": 0.35}]}, [Metric("loss", "loss", digits=2)])
    assert table.splitlines()[2] == "| baseline (n=2) | 0.30 ± 0.07 |"


def test_published_numbers_are_reference_lines_in_the_tables_units():
    runs = {"RN": [{"acc": 0.9, "count": 0.5}], "RN+SRN": [{"acc": 0.95, "count": 0.6}]}
    paper = {"RN": {"acc": Reported(95.1, 0.4)}, "RN+SRN": {"acc": Reported(96.9, None)}}
    metrics = [Metric("acc", "Relational", 100), Metric("count", "Count", 100)]
    rows = comparison_table(runs, metrics, reference="RN", paper=paper).splitlines()
    assert rows[-2:] == ["| paper: RN | 95.1 ± 0.4 | - |", "| paper: RN+SRN | 96.9 | - |"]
    columns = comparison_table(runs, metrics, reference="RN", arms_as_rows=False, paper=paper).splitlines()
    assert columns[0].endswith("| paper: RN | paper: RN+SRN |") and columns[2].endswith("| 95.1 ± 0.4 | 96.9 |")


def hand_mean_var(values):
    """Mean and sample variance (n - 1) by plain loops."""
    total = 0.0
    for value in values:
        total += value
    mean = total / len(values)
    squares = 0.0
    for value in values:
        squares += (value - mean) ** 2
    return mean, squares / (len(values) - 1)


def test_welch_p_is_welchs_test_by_hand():
    """a = [1, 2, 3, 4]: mean 2.5, s^2 = 5/3; b = [2, 4, 6, 8, 10]: mean 6, s^2 = 10.
    t = -3.5 / sqrt(5/12 + 2), Welch-Satterthwaite dof = (29/12)^2 / ((5/12)^2 / 3 + 2^2 / 4)."""
    a, b = [1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 6.0, 8.0, 10.0]
    (m1, v1), (m2, v2) = hand_mean_var(a), hand_mean_var(b)
    assert (m1, m2) == (2.5, 6.0) and math.isclose(v1, 5 / 3) and math.isclose(v2, 10.0)
    se2 = v1 / len(a) + v2 / len(b)
    t = (m1 - m2) / math.sqrt(se2)
    dof = se2**2 / ((v1 / len(a)) ** 2 / (len(a) - 1) + (v2 / len(b)) ** 2 / (len(b) - 1))
    assert math.isclose(t, -3.5 / math.sqrt(29 / 12)) and math.isclose(dof, (29 / 12) ** 2 / ((5 / 12) ** 2 / 3 + 1))
    p = 2 * scipy_stats.t.sf(abs(t), dof)
    assert math.isclose(welch_p(a, b), p, rel_tol=1e-9) and math.isclose(welch_p(b, a), p, rel_tol=1e-9)
    assert format_p(welch_p(a, b)) == "0.069"  # t = -2.2514, dof = 5.5207
    assert math.isnan(welch_p(a, [3.0])) and math.isnan(welch_p([], b))


def test_mean_std_is_the_sample_std_by_hand():
    values = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]  # mean 5, squared deviations sum to 32
    mean, std = mean_std(values)
    assert mean == 5.0 and math.isclose(std, math.sqrt(32 / 7))  # ddof=1 (the population std is 2)
    assert mean_std([0.3]) == (0.3, 0.0)
    assert mean_std([1.0, 3.0]) == (2.0, math.sqrt(2.0))


def test_format_p_three_decimals_and_its_floor():
    assert format_p(0.001) == "0.001" and format_p(0.000999) == "<0.001" and format_p(0.0) == "<0.001"
    assert format_p(0.01249) == "0.012" and format_p(0.5) == "0.500" and format_p(0.99951) == "1.000"
    assert format_p(1.0) == "1.000" and format_p(float("nan")) == "n/a"


def test_welch_p_is_undefined_when_neither_arm_varies():
    """scipy answers 0.0 for two constant arms of different means (every seed of a smoke
    run at the same accuracy): the report must say n/a, as for the paper's numbers."""
    assert math.isnan(welch_p([0.5, 0.5], [0.7, 0.7])) and format_p(welch_p([0.5, 0.5], [0.7, 0.7])) == "n/a"
    assert welch_p([0.5, 0.5], [0.7, 0.8]) < 1  # one arm varies: defined
