"""Answers of a trained upstream RN on any number of questions, and accuracy per question type.

The upstream model only runs full batches (its coordinate tensor is sized to the batch),
so the last batch is padded by repeating its last question and the padding is dropped.
Predictions are the upstream's own: ``output.max(1)[1]`` of its forward, in eval mode,
with its output dropout as the upstream has it (active) unless the caller switched it
off with ``patches.relational_networks.output_dropout_off``.
"""
import numpy as np
import torch
from torch import nn

from runners.sort_of_clevr_data import Split, model_images

# Question vector: 6 colour one-hot, [6] non-relational / [7] relational, [8:11] subtype.
RELATIONAL_SUBTYPES = {"closest": 8, "furthest": 9, "count": 10}


@torch.no_grad()
def predict(model: nn.Module, images: np.ndarray, image_index: np.ndarray, questions: np.ndarray,
            batch_size: int, device: torch.device) -> np.ndarray:
    """Answer question i [11] about image ``image_index[i]`` of ``images`` (uint8
    [M, 75, 75, 3]) for every i; returns [N] answer indices."""
    model.eval()
    n = len(questions)
    answers = np.empty(n, dtype=np.int64)
    for start in range(0, n, batch_size):
        rows = np.arange(start, start + batch_size).clip(max=n - 1)
        output = model(model_images(images[image_index[rows]]).to(device), torch.from_numpy(questions[rows]).to(device))
        answers[start:start + batch_size] = output.max(1)[1].cpu().numpy()[: n - start]
    return answers


def accuracies(model: nn.Module, split: Split, batch_size: int, device: torch.device) -> dict[str, float]:
    """Fraction correct over every question of ``split``: relational, furthest, closest,
    count, non_relational."""
    result = {}
    for kind, name in (("rel", "relational"), ("norel", "non_relational")):
        questions, answers, image_index = split.questions(kind)
        correct = predict(model, split.images, image_index, questions, batch_size, device) == answers
        result[name] = float(correct.mean())
        if kind == "rel":
            for subtype, column in RELATIONAL_SUBTYPES.items():
                asked = questions[:, column] == 1
                result[subtype] = float(correct[asked].mean()) if asked.any() else float("nan")
    return result
