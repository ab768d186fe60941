"""runners/common/paper.py: the published numbers file, and when a run may be compared
with them."""
import pytest
import yaml

from runners import circles, clutrr, cswm, sort_of_clevr
from runners.common.paper import NUMBERS_FILE, Reported, differences, flattened, paper_table, reference_note, reference_rows


def test_every_published_value_is_a_mean_and_a_std_with_a_source():
    numbers = yaml.safe_load(NUMBERS_FILE.read_text())
    assert set(numbers) == {"circles", "sort_of_clevr", "cswm", "clutrr"}

    def walk(node, source=None):
        source = node.get("source", source) if isinstance(node, dict) else source
        if isinstance(node, list):
            assert len(node) == 2 and isinstance(node[0], (int, float)) and (node[1] is None or node[1] >= 0)
            assert source is not None and {"document", "name", "trials"} <= source.keys()
            return 1
        return sum(walk(value, source) for key, value in node.items() if key != "source")
    assert walk(numbers) > 150


@pytest.mark.parametrize("runner, path, arm, key, value", [
    ("circles", ("table_1",), "srn", "decomposed_1", Reported(95.8, None)),
    ("sort_of_clevr", ("table_2",), "baseline", "robust_dataset", Reported(61.3, 6.2)),
    ("sort_of_clevr", ("zero_step_ablation",), "srn, 0 steps at test", "furthest", Reported(63, None)),
    ("cswm", ("table_3", "games", "space", 3), "srn", "h1_10", Reported(47.8, 7.9)),
    ("cswm", ("table_3", "games", "pong", 5), "baseline", "mrr_1", Reported(75.6, 1.0)),
    ("clutrr", ("section_3_3",), "grn", "best_234", Reported(56.1, None)),
])
def test_tables_are_read_with_their_source(runner, path, arm, key, value):
    table = paper_table(runner, *path)
    assert table.arms[arm][key] == value
    assert table.trials in (None, 5, 10) and table.citation.startswith(table.name)


def test_a_table_the_paper_lacks_is_a_key_error():
    with pytest.raises(KeyError):
        paper_table("cswm", "table_3", "games", "space", 2)  # no K=2 in the paper


def test_differences_name_each_setting_once_with_the_papers_value():
    ours = {"baseline": {"epochs": 3, "lr": 0.1}, "srn": {"epochs": 3, "refiner": {"steps": 5, "momentum": 0.0}}}
    paper = {"baseline": {"epochs": 50, "lr": 0.1}, "srn": {"epochs": 50, "refiner": {"steps": 5, "momentum": 0.5}}}
    assert differences(ours, paper) == ["epochs 3 (paper: 50)", "refiner.momentum 0.0 (paper: 0.5)"]
    assert differences(paper, paper) == []
    assert flattened({"a": {"b": {"c": 1}}, "d": 2}) == {"a.b.c": 1, "d": 2}
    table = paper_table("clutrr", "section_3_3")
    assert reference_rows(table, ["epochs 4 (paper: 51)"], {"baseline": "RN"}) == {}
    assert reference_rows(table, [], {"baseline": "RN"}) == {"RN": {"best_234": Reported(49.7, None)}}
    assert reference_note(table, ["epochs 4 (paper: 51)"]).endswith("not comparable: epochs 4 (paper: 51).")


@pytest.mark.parametrize("runner, flags", [(circles, ["--srn"]), (sort_of_clevr, ["--srn"]),
                                           (clutrr, ["--srn", "--grn"]), (cswm, ["--env", "space", "--k", "3", "--srn"])])
def test_the_paper_presets_run_the_official_inner_momentum(runner, flags):
    _, paper = runner.EXPERIMENT.paper_invocation(flags)
    assert paper.preset == "paper" and {refiner.momentum for refiner in paper.refiners.values()} == {0.5}
