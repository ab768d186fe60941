"""runners/sort_of_clevr_evaluation.py against a fake fixed-batch model whose answers are
known question by question: the last partial batch is padded with its last question,
padding is never counted, and each question-type column is the accuracy of its own
questions (hand-counted)."""
import numpy as np
import pytest
import torch
from torch import nn

from runners.sort_of_clevr_data import Split
from runners.sort_of_clevr_evaluation import accuracies, predict

BATCH = 4


class FixedBatchModel(nn.Module):
    """Takes only batches of exactly ``BATCH`` (as the upstream RN, whose coordinate tensor
    is sized to the batch); answers the colour of the question (argmax of its one-hot [0:6])
    plus 6 times the image's id (the image's first pixel, 0 or 1 here), so every answer
    says which image and question it came from. Records every batch's (image id, colour)."""

    def __init__(self):
        super().__init__()
        self.batches = []

    def forward(self, images, questions):
        assert images.shape == (BATCH, 3, 75, 75) and questions.shape == (BATCH, 11)
        image_id = torch.round(images[:, 0, 0, 0] * 255).long()
        colour = questions[:, :6].argmax(1)
        self.batches.append(list(zip(image_id.tolist(), colour.tolist())))
        return nn.functional.one_hot(colour + 6 * image_id, 18).float()  # scores [B, 18]: only the argmax is read


def question(colour: int, relational: bool, subtype: int) -> np.ndarray:
    row = np.zeros(11, dtype=np.float32)
    row[colour], row[7 if relational else 6], row[8 + subtype] = 1, 1, 1
    return row


def images(n: int) -> np.ndarray:
    pictures = np.zeros((n, 75, 75, 3), dtype=np.uint8)
    pictures[:, 0, 0, 0] = np.arange(n)  # the image's id, seen by the model as its first pixel
    return pictures


def test_the_last_batch_is_padded_with_its_last_question_and_the_padding_is_dropped():
    pictures, image_index = images(2), np.array([0, 0, 0, 1, 1, 1])  # 6 questions: batches of 4 and 2 (+2 padding)
    questions = np.stack([question(colour, True, 0) for colour in (0, 1, 2, 3, 4, 5)])
    model = FixedBatchModel()
    answers = predict(model, pictures, image_index, questions, BATCH, torch.device("cpu"))
    assert answers.tolist() == [0, 1, 2, 9, 10, 11] and answers.dtype == np.int64
    assert model.batches == [[(0, 0), (0, 1), (0, 2), (1, 3)], [(1, 4), (1, 5), (1, 5), (1, 5)]]
    model = FixedBatchModel()  # one question: a single batch of it, three times repeated
    assert predict(model, pictures, image_index[5:], questions[5:], BATCH, torch.device("cpu")).tolist() == [11]
    assert model.batches == [[(1, 5)] * 4]
    model = FixedBatchModel()  # a whole number of batches: no padding
    assert predict(model, pictures, image_index[:4], questions[:4], BATCH, torch.device("cpu")).tolist() == [0, 1, 2, 9]
    assert model.batches == [[(0, 0), (0, 1), (0, 2), (1, 3)]]


def test_question_type_columns_are_the_accuracies_of_their_own_questions():
    """3 images x 3 relational questions (9: two 4-batches and one padded with 3 copies of the
    last) and 3 x 2 non-relational (6: one padded with 2 copies of the last). The model answers
    colour + 6 x image id; the stored answers make these right, by hand:

    relational  (image, colour, subtype, right?): (0,0,closest,y) (0,1,furthest,n) (0,2,count,y)
                (1,3,closest,n) (1,4,furthest,y) (1,5,count,y) (2,0,closest,n) (2,1,closest,n) (2,2,furthest,y)
      -> relational 5/9, closest 1/4, furthest 2/3, count 2/2
    non-relational: (0,0,y) (0,1,n) (1,2,n) (1,3,y) (2,4,n) (2,5,n) -> 2/6.
    Counting the padding (3 more wrong closest ones, 2 more wrong non-relational) would give
    5/12, 1/7, 2/8."""
    closest, furthest, count = 0, 1, 2
    rel = [[(0, closest, True), (1, furthest, False), (2, count, True)],
           [(3, closest, False), (4, furthest, True), (5, count, True)],
           [(0, closest, False), (1, closest, False), (2, furthest, True)]]
    norel = [[(0, True), (1, False)], [(2, False), (3, True)], [(4, False), (5, False)]]

    def answer(image, colour, right):
        return colour + 6 * image if right else (colour + 6 * image + 1) % 18

    split = Split(images=images(3),
                  rel_questions=np.array([[question(c, True, s) for c, s, _ in row] for row in rel]),
                  rel_answers=np.array([[answer(i, c, r) for c, _, r in row] for i, row in enumerate(rel)]),
                  norel_questions=np.array([[question(c, False, 0) for c, _ in row] for row in norel]),
                  norel_answers=np.array([[answer(i, c, r) for c, r in row] for i, row in enumerate(norel)]))
    model = FixedBatchModel()
    result = accuracies(model, split, BATCH, torch.device("cpu"))
    assert result == pytest.approx({"relational": 5 / 9, "closest": 1 / 4, "furthest": 2 / 3, "count": 1.0,
                                    "non_relational": 2 / 6})
    assert [len(batch) for batch in model.batches] == [4, 4, 4, 4, 4] and model.batches[2] == [(2, 2)] * 4
    assert model.batches[4] == [(2, 4), (2, 5), (2, 5), (2, 5)]
