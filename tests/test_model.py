import numpy as np
import pytest

from speech.features import FeatureConfig
from speech.model import ModelSpec, build_model, load_model, preset, save_model
from speech.text import Vocabulary


@pytest.mark.parametrize("bidirectional", [True, False])
def test_a_clip_gives_the_same_logits_alone_or_in_a_padded_batch(bidirectional):
    config = preset("tiny", bidirectional=bidirectional)
    model = build_model(config, 29)
    rng = np.random.default_rng(0)
    lengths = np.array([101, 60, 33, 34], np.int32)
    batch = rng.standard_normal((4, 101, 26)).astype(np.float32)
    for i, n in enumerate(lengths):
        batch[i, n:] = 7.0  # garbage in the padding must not leak
    out = model({"features": batch, "lengths": lengths}).numpy()
    for i, n in enumerate(lengths):
        alone = model({"features": batch[i:i + 1, :n], "lengths": lengths[i:i + 1]}).numpy()[0]
        assert alone.shape[0] == config.output_length(int(n))
        np.testing.assert_allclose(alone, out[i, :alone.shape[0]], atol=1e-5)


def test_output_length_matches_the_network():
    config = preset("tiny")
    model = build_model(config, 29)
    for frames in (1, 2, 3, 50, 51):
        x = np.zeros((1, frames, 26), np.float32)
        assert model({"features": x, "lengths": np.array([frames], np.int32)}).shape[1] == config.output_length(frames)


def test_presets_and_bad_names():
    assert preset("tiny").lstm_units < preset("small").lstm_units < preset("large").lstm_units
    with pytest.raises(ValueError, match="unknown preset"):
        preset("huge")
    with pytest.raises(ValueError):
        preset("tiny", conv_kernel=4)


def test_model_folder_round_trip(tmp_path):
    spec = ModelSpec(FeatureConfig(n_mfcc=13), preset("tiny", num_features=13), Vocabulary(" abc"))
    model = spec.build()
    save_model(tmp_path, model, spec)
    loaded, loaded_spec = load_model(tmp_path)
    assert loaded_spec == spec
    x = np.random.default_rng(1).standard_normal((1, 20, 13)).astype(np.float32)
    lengths = np.array([20], np.int32)
    np.testing.assert_array_equal(model({"features": x, "lengths": lengths}),
                                  loaded({"features": x, "lengths": lengths}))
    assert loaded.output_shape[-1] == 5  # 4 characters + blank


def test_missing_model_folder_is_a_clear_error(tmp_path):
    from speech.errors import ModelError

    with pytest.raises(ModelError, match="not a model folder"):
        load_model(tmp_path)


def test_default_names_the_bundled_model_and_a_path_is_a_path(tmp_path, monkeypatch):
    from speech.errors import ModelError
    from speech.model import DEFAULT_MODEL_DIR, resolve_model_dir

    assert resolve_model_dir(None) == resolve_model_dir("default") == DEFAULT_MODEL_DIR
    monkeypatch.chdir(tmp_path)
    (tmp_path / "default").mkdir()  # an empty folder of that name: reached by a path, not by the bare name
    with pytest.raises(ModelError, match="not a model folder"):
        resolve_model_dir("./default")
