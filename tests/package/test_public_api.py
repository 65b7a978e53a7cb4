"""The public API: every name of ``hamfeat.__all__`` resolves, as the README uses them."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

import hamfeat


def test_every_public_name_resolves() -> None:
    for name in hamfeat.__all__:
        assert getattr(hamfeat, name) is not None, name
    assert "patchkm" in hamfeat.model_names("multilabel")


def test_unknown_name_is_an_attribute_error() -> None:
    try:
        hamfeat.no_such_name  # noqa: B018
    except AttributeError as e:
        assert "no_such_name" in str(e)
    else:
        raise AssertionError("no AttributeError")


def test_readme_example_on_generated_images(tmp_path) -> None:
    """The README's Python API lines, on a folder made here."""
    import cv2

    rng = np.random.default_rng(0)
    (tmp_path / "images").mkdir()
    rows = []
    for i in range(3):
        img = np.full((150, 200, 3), (200, 150, 130), np.uint8)
        cv2.circle(img, (100, 75), 30 + 5 * i, (90, 60, 40), -1)
        img = np.clip(img + rng.normal(0, 5, img.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(str(tmp_path / "images" / f"ISIC_{i:07d}.jpg"), img)
        rows.append(f"HAM_{i:07d},ISIC_{i:07d},nv,histo,30,male,back")
    (tmp_path / "HAM10000_metadata.csv").write_text(
        "lesion_id,image_id,dx,dx_type,age,sex,localization\n" + "\n".join(rows) + "\n")
    from hamfeat import FeatureExtractor, load_dataset, make_model

    ds = load_dataset(tmp_path)
    ext = FeatureExtractor(families=["color", "shape"])
    X = ext.fit_transform(ds.table.head(2))
    assert X.shape == (2, len(ext.get_feature_names_out()))
    assert ext.get_feature_names_out()[0] == "color_rgb_r_mean"
    assert make_model("lr").steps[-1][0]


def test_import_hamfeat_is_cheap() -> None:
    """``import hamfeat`` loads no feature, model or evaluation code until a name is used."""
    code = ("import sys, hamfeat; heavy = [m for m in ('hamfeat.pipeline', 'hamfeat.models', "
            "'hamfeat.evaluation', 'numba', 'sklearn') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
