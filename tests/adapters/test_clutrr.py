"""The CLUTRR adapter beyond the shared adapter checks: z is what encoding each sentence
alone gives, masked padding is inert, and the padding ablations differ from the baseline."""
import pytest
import torch

from adapters import clutrr as adapter
from adapters.clutrr import install
from refiners.descent import DescentSettings
from tests.adapters.adapter_case import case_settings
from tests.clutrr_world import batch_loss, build_model, one_thread, world


def test_z_is_the_mean_cell_state_of_each_sentence_encoded_alone():
    model, _ = build_model(DescentSettings("srn", 1, 0.001))
    model.eval()
    with torch.no_grad(), one_thread():
        batch_loss(model)
        reader = model.encoder.reader  # RefinedSentReader
        lstm, embedding = reader.reader.reader.lstm, reader.reader.reader.embedding
        batch = world().batch
        expected = []
        for story, lengths in zip(batch.s_inp, batch.sent_lengths):
            cells = []
            for sentence, length in zip(story, lengths):
                if length:
                    _, (_, c) = lstm(embedding(sentence[:length].unsqueeze(0)))
                    cells.append(torch.cat([c[-2, 0], c[-1, 0]]))
            expected.append(torch.stack(cells).mean(0))
    assert reader.last_z.shape == (batch.batch_size, 200)
    assert torch.allclose(reader.last_z, torch.stack(expected), atol=1e-6)
    assert any(0 in lengths for lengths in batch.sent_lengths)  # stories of different lengths


STEPS3 = {"srn": dict(steps=3, inner_lr=0.001), "grn": dict(steps=3, inner_lr=0.0005, hidden=256)}


@pytest.mark.parametrize("kind", adapter.ADAPTER.kinds())
def test_masked_refinement_equals_refining_the_set_padded_to_20(kind):
    """For every kind: refining the batch's s positions (what "masked" computes) is the same
    function as refining the set zero-padded to 20 with the mask; the pad elements stay zero."""
    model, refiner = build_model(case_settings(kind, STEPS3))
    reader = model.encoder.reader
    model.eval()
    with torch.no_grad(), one_thread():
        objects, _ = reader.reader(world().batch.clone())
        real = torch.tensor(world().batch.sent_lengths) > 0
        z = torch.randn(objects.shape[0], 200)
        s = objects.shape[1]
        padded = torch.nn.functional.pad(objects, (0, 0, 0, 20 - s))
        mask = torch.nn.functional.pad(real, (0, 20 - s))
        short = refiner(objects, z, real, features=objects, feature_mask=real, edges0=torch.ones(len(z), s, s)).set
        long = refiner(padded, z, mask, features=padded, feature_mask=mask, edges0=torch.ones(len(z), 20, 20)).set
    refinement = (short - objects).abs().max()
    assert refinement > 1e-4  # it refines
    # the same function: bit for bit on most batches, on some within float32 noise of the
    # inner steps (seen: 1e-5 against a refinement of 1.5e-3); unmasked pads would move it
    # by as much as the refinement itself
    assert (long[:, :s] - short).abs().max() < 0.02 * refinement
    assert torch.equal(long[:, s:], torch.zeros_like(long[:, s:]))
    assert torch.equal(long[:, :s][~real], objects[~real])  # the upstream's own zero rows too


@pytest.mark.parametrize("padding", ["naive", "zeroed"])
def test_unmasked_padding_changes_the_model_even_without_refinement(padding):
    baseline, _ = build_model()
    padded, _ = build_model(DescentSettings("srn", 0, 0.001), padding=padding)
    assert not torch.equal(batch_loss(padded.train())[0], batch_loss(baseline.train())[0])


def test_options_are_checked():
    model, _ = build_model()
    with pytest.raises(ValueError, match="padding must be one of"):
        install(model.encoder, DescentSettings("srn", 1, 0.1, seed=0), padding="none")
    with pytest.raises(ValueError, match="z is the LSTM's cell state, 200 wide"):
        install(model.encoder, DescentSettings("srn", 1, 0.1, embedding=100, seed=0))
