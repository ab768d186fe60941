import math

import numpy as np
import torch

from runners.circles_data import disc
from runners.circles_metric import decomposed, non_empty_elements, rates_by_count


def element_images(*drawings):
    """One image [4, 3, 64, 64] per list of (value, channel, x, y, radius) discs per element."""
    images = torch.zeros(len(drawings), 4, 3, 64, 64)
    for b, elements in enumerate(drawings):
        for n, discs in enumerate(elements):
            for value, channel, x, y, radius in discs:
                images[b, n, channel][torch.from_numpy(disc(x, y, radius))] = value
    return images


def test_an_element_is_non_empty_when_any_value_exceeds_a_tenth():
    parts = element_images(
        [[(0.9, 0, 10, 10, 3)], [(0.1, 1, 30, 30, 5)], [(0.11, 2, 40, 40, 0)], []],  # 0.1 itself is empty
        [[(0.05, 0, 10, 10, 20)], [(0.06, 1, 10, 10, 20)], [], [(1.0, 1, 50, 50, 2), (0.2, 0, 5, 5, 1)]],
    )
    assert non_empty_elements(parts).tolist() == [[True, False, True, False], [False, False, False, True]]


def test_decomposed_when_non_empty_elements_match_the_circle_count():
    one_each = [[(1.0, 0, 10, 10, 4)], [(1.0, 1, 40, 40, 6)], [], []]
    two_in_one = [[(1.0, 0, 10, 10, 4), (1.0, 1, 40, 40, 6)], [], [], []]
    split = [[(1.0, 0, 10, 10, 4)], [(0.5, 0, 12, 10, 2)], [(1.0, 1, 40, 40, 6)], []]
    parts = element_images(one_each, two_in_one, split, [[], [], [], []])
    counts = torch.tensor([2, 2, 2, 0])
    assert decomposed(parts, counts).tolist() == [True, False, False, True]


def test_rates_by_count():
    success = np.array([True, False, True, True, False])
    counts = np.array([1, 1, 2, 2, 3])
    rates = rates_by_count(success, counts, max_count=4)
    assert rates[1] == 0.5 and rates[2] == 1.0 and rates[3] == 0.0
    assert math.isnan(rates[0]) and math.isnan(rates[4])
