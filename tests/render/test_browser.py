"""Scored-folder pages opened in headless Chromium, as a person would see them.

Each test renders a real page with ``hamfeat score DIR --html`` and opens it in Chromium
(DevTools protocol over a pipe, :mod:`chromium`): the screenshot is not blank and shows the
cyan mask outlines, every ``<img>`` decoded, and the console has no error (the page's
Content-Security-Policy turns any attempt to load something from outside into one). Without a
Chromium binary the tests skip, except in CI (``CI=true``), where they fail: ``.ci/run``
installs Debian's ``chromium``.
"""

from __future__ import annotations

from _html_data import generated, real, run  # noqa: F401 - fixtures
from chromium import open_page


def _check(report, n_images: int) -> None:
    rgb = report.rgb()
    assert rgb.shape[0] >= 900 and rgb.shape[1] == 1280
    assert rgb.std() > 10, "blank screenshot"
    # the cyan mask outlines are on screen (R low, G and B high)
    cyan = (rgb[..., 0] < 90) & (rgb[..., 1] > 200) & (rgb[..., 2] > 200)
    assert cyan.sum() > 200, f"no mask outline visible ({cyan.sum()} cyan pixels)"
    assert len(report.images) == n_images, report.images
    assert not report.broken_images, report.broken_images
    assert all(i["width"] > 0 and i["height"] > 0 for i in report.images)
    assert not report.errors, report.errors


def test_generated_page_in_browser(browser, generated, tmp_path):  # noqa: F811
    page = tmp_path / "page.html"
    p = run(
        "score",
        str(generated["folder"]),
        "--model",
        str(generated["model"]),
        "-o",
        str(tmp_path / "s.csv"),
        "--html",
        str(page),
        env=generated["env"],
    )
    assert p.returncode == 1, p.stderr  # the corrupt file
    report = open_page(page, chromium=browser)
    _check(report, n_images=5)
    (tmp_path / "shot.png").write_bytes(report.screenshot)


def test_real_page_in_browser(browser, real, tmp_path):  # noqa: F811
    page = tmp_path / "page.html"
    p = run(
        "score",
        str(real["folder"]),
        "--model",
        str(real["model"]),
        "-o",
        str(tmp_path / "s.csv"),
        "--html",
        str(page),
        env=real["env"],
    )
    assert p.returncode == 0, p.stderr
    report = open_page(page, chromium=browser, max_height=8000)
    _check(report, n_images=len(real["images"]))


def test_checker_catches_broken_images_and_errors(browser, generated, tmp_path):  # noqa: F811
    """The checks can fail: a corrupt embedded image and a blocked outside load are seen."""
    page = tmp_path / "page.html"
    p = run(
        "score",
        str(generated["folder"]),
        "--model",
        str(generated["model"]),
        "-o",
        str(tmp_path / "s.csv"),
        "--html",
        str(page),
        env=generated["env"],
    )
    assert p.returncode == 1
    html = page.read_text()
    head = 'src="data:image/jpeg;base64,'
    i = html.index(head) + len(head)
    html = html[:i] + "AAAA" + html[i + 400 :]  # one thumbnail corrupted
    html = html.replace("</main>", '<img src="https://example.org/x.png" alt="x"></main>')
    bad = tmp_path / "bad.html"
    bad.write_text(html)
    report = open_page(bad, chromium=browser)
    assert len(report.broken_images) == 2
    assert any("Content Security Policy" in e for e in report.errors), report.errors
    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><html><head><title>x</title></head><body></body></html>")
    assert open_page(blank, chromium=browser).rgb().std() < 1
