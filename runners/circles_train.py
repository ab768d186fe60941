"""Training and evaluation of a CircleAutoencoder (section 2.2): squared error summed over
pixels, Adam; test reconstruction error and the decomposition metric per circle count.
Batches go to the model's device."""
import numpy as np
import torch
from tqdm import tqdm

from runners.circles_data import MAX_CIRCLES, Circles
from runners.common.checkpoints import RunCheckpoint
from runners.circles_metric import decomposed, rates_by_count
from ported.circles import CircleAutoencoder


def to_float(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 [B, 3, 64, 64] in {0, 1} -> float [B, 3, 64, 64] on ``device``."""
    return images.to(device=device, dtype=torch.float32)


def train_step(model: CircleAutoencoder, optimizer: torch.optim.Optimizer, batch: torch.Tensor) -> torch.Tensor:
    """One optimiser step on ``batch`` float [B, 3, 64, 64]; returns the loss (squared error
    summed over pixels and the batch)."""
    reconstruction, _, _ = model(batch)
    loss = (reconstruction - batch).pow(2).sum()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss


def train(model: CircleAutoencoder, images: torch.Tensor, epochs: int, batch_size: int, lr: float,
          generator: torch.Generator, checkpoint: RunCheckpoint | None = None) -> list[float]:
    """Train on images uint8 [N, 3, 64, 64] (on the CPU) for ``epochs`` epochs of shuffled
    batches (the last, incomplete batch dropped; ``generator`` shuffles). The loss is the
    squared error summed over pixels and the batch; a refiner follows its schedule over the
    optimizer's steps (refiners.schedule). Returns the mean loss per image of each epoch,
    read from the device once per epoch (the bar shows it then). With ``checkpoint``, goes
    on from its last saved epoch and saves the loop's state at epoch ends (the model with
    its refiner's schedule counter, Adam, the shuffling generator and the losses so far)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    batches = len(images) // batch_size
    history, done = [], 0
    resumed = None if checkpoint is None else checkpoint.resume()
    if resumed is not None:
        model.load_state_dict(resumed.state["model"])
        optimizer.load_state_dict(resumed.state["optimizer"])
        generator.set_state(resumed.state["generator"])
        history, done = list(resumed.state["history"]), resumed.epoch
    with tqdm(total=epochs * batches, initial=done * batches, desc="train", unit="batch", leave=False) as bar:
        for epoch in range(done, epochs):
            model.train()
            order = torch.randperm(len(images), generator=generator)
            total = torch.zeros((), dtype=torch.float64, device=model.device)
            for b in range(batches):
                loss = train_step(model, optimizer, to_float(images[order[b * batch_size:(b + 1) * batch_size]],
                                                             model.device))
                total += loss.detach()  # float32 losses summed in float64, as Python floats would be
                bar.update()
            history.append(total.item() / (batches * batch_size))
            bar.set_postfix(epoch=epoch + 1, loss=f"{history[-1]:.1f}")
            if checkpoint is not None:
                checkpoint.epoch_end(epoch + 1, epochs, lambda: {
                    "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "generator": generator.get_state(), "history": history})
    return history


@torch.no_grad()
def evaluate(model: CircleAutoencoder, data: Circles, batch_size: int) -> dict:
    """Test metrics: ``reconstruction_error`` (squared error summed over pixels, mean over
    images), ``decomposed_<n>`` (fraction of the images with n circles that are decomposed,
    n = 0..10, NaN where there is none) and ``decomposed_all`` (over all images)."""
    model.eval()
    images = torch.from_numpy(data.images)
    counts = torch.from_numpy(data.counts.astype(np.int64))
    errors, success = [], []
    for start in range(0, len(images), batch_size):
        batch = to_float(images[start:start + batch_size], model.device)
        reconstruction, parts, _ = model(batch)
        errors.append((reconstruction - batch).pow(2).flatten(start_dim=1).sum(dim=1).cpu())
        success.append(decomposed(parts, counts[start:start + batch_size].to(model.device)).cpu())
    success = torch.cat(success).numpy()
    metrics = {"reconstruction_error": float(torch.cat(errors).mean()), "decomposed_all": float(success.mean())}
    for n, rate in rates_by_count(success, data.counts, MAX_CIRCLES).items():
        metrics[f"decomposed_{n}"] = rate
    return metrics
