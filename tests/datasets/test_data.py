"""Data set discovery and validation (``hamfeat.datasets.ham10000``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import make_ham_folder, synthetic_lesion, write_jpeg, write_mask
from hamfeat.datasets.discovery import list_images
from hamfeat.datasets.ham10000 import CLASSES, find_data_dir, load_dataset
from hamfeat.errors import DatasetError
from hamfeat.imageio import read_image, read_mask

COLUMNS = ["image_id", "lesion_id", "dx", "image_path", "mask_path"]


def messages(ds) -> str:
    return "\n".join(str(p) for p in ds.problems)


def test_released_layout(ham_folder: Path) -> None:
    ds = load_dataset(ham_folder, strict=True)
    assert list(ds.table.columns[:5]) == COLUMNS
    assert {"dx_type", "age", "sex", "localization"} <= set(ds.table.columns)
    assert len(ds) == 6 and ds.problems == []
    assert list(ds.table["image_id"]) == sorted(ds.table["image_id"])
    assert ds.table["mask_path"].notna().all()
    parts = {Path(p).parent.name for p in ds.table["image_path"]}
    assert parts == {"HAM10000_images_part_1", "HAM10000_images_part_2"}
    assert ds.table["age"].dtype.kind == "f"
    # paths point at the right files
    row = ds.table.iloc[0]
    assert Path(row.image_path).name == f"{row.image_id}.jpg"
    assert Path(row.mask_path).name == f"{row.image_id}_segmentation.png"


@pytest.mark.parametrize(
    ("image_dirs", "mask_dir"),
    [((), "masks"), (("images",), "masks"), (("HAM10000_images",), None), ((), "segmentations")],
)
def test_other_layouts(tmp_path: Path, image_dirs, mask_dir) -> None:
    root = make_ham_folder(tmp_path / "d", 4, image_dirs=image_dirs, mask_dir=mask_dir)
    ds = load_dataset(root, strict=True)
    assert len(ds) == 4
    assert ds.table["mask_path"].notna().all() == (mask_dir is not None)


def test_dataverse_tab_metadata(ham_folder: Path) -> None:
    csv = ham_folder / "HAM10000_metadata.csv"
    tab = csv.read_text().replace(",", "\t")
    csv.unlink()
    (ham_folder / "HAM10000_metadata.tab").write_text(tab)
    assert len(load_dataset(ham_folder, strict=True)) == 6


def test_isic2018_ground_truth(tmp_path: Path) -> None:
    root = make_ham_folder(
        tmp_path / "isic", 7, image_dirs=("ISIC2018_Task3_Test_Images",), mask_dir=None
    )
    (root / "HAM10000_metadata.csv").unlink()
    cols = ["MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC"]
    dx = ["nv", "mel", "bkl", "bcc", "akiec", "vasc", "df"]
    lines = ["image," + ",".join(cols)]
    for i, d in enumerate(dx):
        lines.append(f"ISIC_{i:07d}," + ",".join("1.0" if c.lower() == d else "0.0" for c in cols))
    (root / "ISIC2018_Task3_Test_GroundTruth.csv").write_text("\n".join(lines) + "\n")
    ds = load_dataset(root)
    assert list(ds.table["dx"]) == dx
    # no lesion groupings: each image is its own lesion, and a warning says so
    assert list(ds.table["lesion_id"]) == list(ds.table["image_id"])
    assert "no lesion_id" in messages(ds) and not ds.errors
    (root / "ISIC2018_Task3_Test_LesionGroupings.csv").write_text(
        "image,lesion_id,diagnosis_confirm_type\n"
        + "".join(f"ISIC_{i:07d},HAM_{i // 3:07d},histo\n" for i in range(7))
    )
    ds = load_dataset(root, strict=True)
    assert ds.table["lesion_id"].nunique() == 3 and ds.problems == []


def test_isic2018_bad_onehot_row(tmp_path: Path) -> None:
    root = make_ham_folder(tmp_path / "isic", 2, image_dirs=(), mask_dir=None)
    (root / "HAM10000_metadata.csv").unlink()
    (root / "ISIC2018_Task3_Training_GroundTruth.csv").write_text(
        "image,MEL,NV,BCC,AKIEC,BKL,DF,VASC\n"
        "ISIC_0000000,0,1,0,0,0,0,0\nISIC_0000001,1,1,0,0,0,0,0\n"
    )
    ds = load_dataset(root)
    assert list(ds.table["image_id"]) == ["ISIC_0000000"]
    assert "2 positive classes" in messages(ds)
    with pytest.raises(DatasetError, match="problem"):
        load_dataset(root, strict=True)


def test_missing_columns_is_fatal_and_names_file(ham_folder: Path) -> None:
    csv = ham_folder / "HAM10000_metadata.csv"
    csv.write_text(csv.read_text().replace("lesion_id,", "lesion,"))
    with pytest.raises(DatasetError, match=r"HAM10000_metadata.csv: missing column\(s\) lesion_id"):
        load_dataset(ham_folder)


def test_no_labels_points_at_readme(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="data/README"):
        load_dataset(tmp_path / "empty")


def test_every_bad_row_reported_and_rest_kept(ham_folder: Path) -> None:
    csv = ham_folder / "HAM10000_metadata.csv"
    extra = (
        "HAM_9,ISIC_0000001,mel,histo,50,male,back\n"  # duplicate id
        "HAM_8,ISIC_0000077,nv,histo,50,male,back\n"  # no file
        "HAM_7,ISIC_0000003,melanoma,histo,50,male,back\n"  # unknown dx (and duplicate)
    )
    csv.write_text(csv.read_text() + extra)
    # a file without metadata, a corrupt file, an empty file, a mask of the wrong size
    img, _ = synthetic_lesion()
    write_jpeg(ham_folder / "HAM10000_images_part_1" / "ISIC_0000099.jpg", img)
    (ham_folder / "HAM10000_images_part_2" / "ISIC_0000005.jpg").write_bytes(b"garbage")
    (ham_folder / "HAM10000_images_part_1" / "ISIC_0000004.jpg").write_bytes(b"")
    write_mask(
        ham_folder / "HAM10000_segmentations_lesion_tschandl" / "ISIC_0000002_segmentation.png",
        np.ones((10, 10), bool),
    )
    ds = load_dataset(ham_folder)
    text = messages(ds)
    assert "duplicate image_id ISIC_0000001" in text
    assert "no image file for ISIC_0000077" in text
    assert "unknown dx 'melanoma'" in text
    assert "ISIC_0000099.jpg: image has no row" in text
    assert "ISIC_0000005.jpg: not an image file" in text
    assert "ISIC_0000004.jpg: empty image file" in text
    assert "ISIC_0000002_segmentation.png: mask is 10x10 but its image is 60x45" in text
    # every problem line names a file
    assert all(p.path for p in ds.problems)
    assert set(ds.table["image_id"]) == {
        "ISIC_0000000",
        "ISIC_0000001",
        "ISIC_0000002",
        "ISIC_0000003",
    }
    assert pd.isna(ds.table.set_index("image_id").loc["ISIC_0000002", "mask_path"])
    assert ds.table.set_index("image_id").loc["ISIC_0000001", "dx"] == "mel"  # first row kept
    with pytest.raises(DatasetError) as err:
        load_dataset(ham_folder, strict=True)
    assert len(err.value.problems) == len(ds.problems)


def test_duplicate_file_across_parts(ham_folder: Path) -> None:
    src = ham_folder / "HAM10000_images_part_1" / "ISIC_0000000.jpg"
    shutil.copy(src, ham_folder / "HAM10000_images_part_2" / "ISIC_0000000.jpg")
    ds = load_dataset(ham_folder)
    assert "duplicate image for ISIC_0000000" in messages(ds)
    assert len(ds) == 6


def test_find_data_dir_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HAMFEAT_DATA", raising=False)
    with pytest.raises(DatasetError, match="data/README"):
        find_data_dir()
    (tmp_path / "data" / "HAM10000").mkdir(parents=True)
    assert find_data_dir() == Path("data/HAM10000")
    monkeypatch.setenv("HAMFEAT_DATA", str(tmp_path))
    assert find_data_dir() == tmp_path
    with pytest.raises(DatasetError, match="not found"):
        find_data_dir(tmp_path / "nope")


def test_list_images(tmp_path: Path) -> None:
    img, _ = synthetic_lesion()
    write_jpeg(tmp_path / "b.JPG", img)
    write_jpeg(tmp_path / "sub" / "c.jpeg", img)
    (tmp_path / "notes.txt").write_text("x")
    files, problems = list_images(tmp_path)
    assert [f.name for f in files] == ["b.JPG"]
    assert "notes.txt: not a .jpg" in str(problems[0])
    files, _ = list_images(tmp_path, recursive=True)
    assert [f.name for f in files] == ["b.JPG", "c.jpeg"]
    with pytest.raises(DatasetError):
        list_images(tmp_path / "missing")


def test_real_dataset(ham_dir: Path) -> None:
    ds = load_dataset(ham_dir, strict=True)
    assert len(ds) == 10015 and ds.table["lesion_id"].nunique() == 7470
    assert set(ds.table["dx"]) == set(CLASSES)
    assert ds.table["mask_path"].notna().all()
    assert ds.table["dx"].value_counts()["nv"] == 6705


def test_real_inverted_palette_masks_load_right_way_round(ham_dir: Path) -> None:
    """402 real masks are palette PNGs mapping index 0 to white: luminance reading is right."""
    inverted = []
    for p in sorted((ham_dir / "masks").glob("*.png")):
        with Image.open(p) as im:
            if im.mode == "P" and im.getpalette()[:3] == [255, 255, 255]:
                inverted.append(p)
    assert len(inverted) == 402
    darker, raw_darker = 0, 0
    for p in inverted[::8]:  # 51 of them
        image_id = p.name.replace("_segmentation.png", "")
        gray = read_image(ham_dir / "images" / f"{image_id}.jpg").mean(axis=2)
        mask = read_mask(p, gray.shape)
        raw = np.array(Image.open(p)) != 0  # what reading palette indices would give
        assert np.array_equal(mask, ~raw)
        darker += gray[mask].mean() < gray[~mask].mean()
        raw_darker += gray[raw].mean() < gray[~raw].mean()
    n = len(inverted[::8])
    # lesions are darker than the surrounding skin: true for (nearly) all, with the right reading
    assert darker >= 0.9 * n, f"only {darker}/{n} luminance-read masks are darker inside"
    assert raw_darker <= 0.1 * n
