import numpy as np
import pytest
from scipy.ndimage import binary_dilation, label

from runners import circles_data as dataset
from runners.circles_data import IMAGE_SIZE, MAX_CIRCLES, MAX_RADIUS, DataError, disc, render


@pytest.fixture(scope="module")
def data():
    return dataset.generate(seed=3, split="train", size=300)


def scenes(data):
    for image, circles, count in zip(data.images, data.circles, data.counts):
        yield image, circles[:count].astype(int), circles[count:], count


def test_counts_radii_and_colours_span_the_specification(data):
    assert data.images.shape == (300, 3, IMAGE_SIZE, IMAGE_SIZE) and data.images.dtype == np.uint8
    assert set(np.unique(data.images)) == {0, 1} and not data.images[:, 2].any()  # blue never drawn
    assert set(data.counts) == set(range(MAX_CIRCLES + 1))
    drawn = np.concatenate([circles for _, circles, _, _ in scenes(data)])
    assert set(drawn[:, 2]) == set(range(1, MAX_RADIUS + 1)) and set(drawn[:, 3]) == {0, 1}


def test_every_circle_lies_inside_the_image(data):
    for _, circles, _, _ in scenes(data):
        x, y, r = circles[:, 0], circles[:, 1], circles[:, 2]
        assert (x - r >= 0).all() and (x + r < IMAGE_SIZE).all() and (y - r >= 0).all() and (y + r < IMAGE_SIZE).all()


def test_same_colour_circles_neither_overlap_nor_touch_and_other_colours_may(data):
    crossings = 0
    for _, circles, _, _ in scenes(data):
        for i, (xi, yi, ri, ci) in enumerate(circles):
            for xj, yj, rj, cj in circles[i + 1:]:
                if ci == cj:
                    grown = binary_dilation(disc(xi, yi, ri), structure=np.ones((3, 3)))
                    assert not (grown & disc(xj, yj, rj)).any()
                else:
                    crossings += bool((disc(xj, yj, rj) & disc(xi, yi, ri)).any())
    assert crossings > 0


def test_images_agree_with_their_ground_truth(data):
    for image, circles, unused, count in scenes(data):
        assert len(circles) == count and (unused == -1).all()
        for colour in (0, 1):  # every 8-connected blob of a channel is one circle
            assert label(image[colour], structure=np.ones((3, 3)))[1] == (circles[:, 3] == colour).sum()
        np.testing.assert_array_equal(image, render(circles))
        for x, y, r, colour in circles:
            assert image[colour][disc(x, y, r)].all()


def test_deterministic_prefix_consistent_and_split_dependent(data):
    again = dataset.generate(seed=3, split="train", size=120)
    for name in ("images", "circles", "counts"):
        np.testing.assert_array_equal(getattr(again, name), getattr(data, name)[:120])
    assert not np.array_equal(dataset.generate(seed=4, split="train", size=120).images, again.images)
    assert not np.array_equal(dataset.generate(seed=3, split="test", size=120).images, again.images)


def test_cache_is_written_then_reused(tmp_path, monkeypatch):
    first = dataset.load_or_generate(tmp_path, seed=1, split="test", size=20)
    assert dataset.cache_path(tmp_path, 1, "test", 20).exists()
    monkeypatch.setattr(dataset, "generate", lambda *a, **k: pytest.fail("regenerated a cached dataset"))
    second = dataset.load_or_generate(tmp_path, seed=1, split="test", size=20)
    for name in ("images", "circles", "counts"):
        np.testing.assert_array_equal(getattr(second, name), getattr(first, name))


def test_a_failed_cache_write_keeps_the_old_cache_and_leaves_no_temporary(tmp_path, monkeypatch):
    dataset.load_or_generate(tmp_path, seed=1, split="test", size=20)
    path = dataset.cache_path(tmp_path, 1, "test", 20)
    before = path.read_bytes()

    def fail(handle, **arrays):
        handle.write(b"half a dataset")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(dataset.np, "savez", fail)
    with pytest.raises(DataError, match="cannot write the dataset cache .*No space left on device; pass another --data-dir"):
        dataset.save(dataset.generate(seed=1, split="test", size=20), path, 1, "test")
    assert path.read_bytes() == before and sorted(p.name for p in path.parent.iterdir()) == [path.name]


@pytest.mark.parametrize("damage", ["truncated", "flipped byte", "edited pixel", "another dataset"])
def test_damaged_cache_is_refused_in_one_line(tmp_path, damage):
    dataset.load_or_generate(tmp_path, seed=1, split="test", size=20)
    path = dataset.cache_path(tmp_path, 1, "test", 20)
    content = bytearray(path.read_bytes())
    if damage == "truncated":
        path.write_bytes(content[: len(content) // 2])
    elif damage == "flipped byte":
        content[len(content) // 2] ^= 0xFF
        path.write_bytes(content)
    elif damage == "edited pixel":  # a well-formed file whose images no longer match their checksum
        stored = dict(np.load(path))
        stored["images"][0] ^= 1
        np.savez(path, **stored)
    else:
        dataset.save(dataset.generate(seed=2, split="test", size=20), path, 2, "test")
    with pytest.raises(DataError, match="is corrupt") as error:
        dataset.load_or_generate(tmp_path, seed=1, split="test", size=20)
    assert "\n" not in str(error.value) and "delete it" in str(error.value)
