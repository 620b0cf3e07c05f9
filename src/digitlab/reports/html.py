"""The report as files: its PNGs, report.json, and one HTML page that needs nothing else
(images as data: URIs, styles inline, no scripts, nothing fetched from the network)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import time
from collections.abc import Iterable, Sequence
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from digitlab import __version__
from digitlab.checkpoints.shipped import is_shipped
from digitlab.files import atomic_path, output_dir, write_json, write_text
from digitlab.reports.calibration import ECE_BINS
from digitlab.reports.plots import plot_digits, plot_performance, plot_reliability
from digitlab.reports.report import WILD_FILE
from digitlab.training.figures import plot_confusion

if TYPE_CHECKING:
    from digitlab.reports.report import Example, Report
    from digitlab.training.runs import RunRecord

THUMBNAIL_SCALE = 3  # 28×28 digits shown at 84×84, pixels kept sharp

STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em;
       color: #222; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.8em 0; }
th, td { padding: 0.2em 0.7em; text-align: right; border-bottom: 1px solid #eee; }
th:first-child, td:first-child { text-align: left; }
img.figure { max-width: 100%; height: auto; }
.digits { display: flex; flex-wrap: wrap; gap: 8px; }
figure.digit { margin: 0; text-align: center; font-size: 12px; width: 92px; }
figure.digit img { image-rendering: pixelated; border: 1px solid #ccc; display: block; margin: auto; }
figure.digit.explained { width: 184px; }
figure.digit.explained img { display: inline-block; margin: 0 2px; }
.note { color: #555; } code { background: #f4f4f4; padding: 0 0.3em; }
.big { font-size: 1.3em; font-weight: 600; }
"""


def png_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def thumbnail_uri(pixels: np.ndarray, scale: int = THUMBNAIL_SCALE) -> str:
    """A uint8 H×W digit as an upscaled PNG data: URI."""
    image = Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8))
    return image_uri(image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST))


def image_uri(image: Image.Image) -> str:
    """A PIL image as a PNG data: URI."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return png_uri(buffer.getvalue())


def _cell(value: Any) -> str:
    return escape(value if isinstance(value, str) else json.dumps(value, default=str))


def _table(header: Sequence[str] | None, rows: Iterable[Sequence[Any]]) -> str:
    """A table of `rows`; no header row when `header` is None (a list of names and values)."""
    names = "".join(f"<th>{_cell(h)}</th>" for h in header or ())
    head = f"<thead><tr>{names}</tr></thead>" if header is not None else ""
    body = "".join("<tr>" + "".join(f"<td>{_cell(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table>{head}<tbody>{body}</tbody></table>"


def _figure(images: dict[str, bytes], name: str, alt: str) -> str:
    return (f'<img class="figure" id="{escape(name.removesuffix(".png"))}" alt="{escape(alt)}" '
            f'src="{png_uri(images[name])}">')


def _digits(report: Report, examples: Sequence[Example], css_class: str, why: bool = False) -> str:
    """Thumbnails with captions; with `why`, each beside its explanation (report.why)."""
    cells = []
    for e in examples:
        # Class names come from the checkpoint: data, escaped like every other caption.
        caption = (f"true {escape(e.true)} → {escape(e.predicted)}<br>{100 * e.confidence:.1f}% · "
                   f"#{e.index}")
        title = f"test digit {e.index}: true {e.true}, read as {e.predicted} ({100 * e.confidence:.2f}%)"
        images = (f'<img class="{css_class}" alt="{escape(title)}" title="{escape(title)}" '
                  f'src="{thumbnail_uri(report.test_images[e.index].numpy())}">')
        explained = report.why.get(e.index) if why else None
        if explained is not None:
            says = f"why {e.predicted}: red strokes for it, blue against it"
            images += (f'<img class="why" alt="{escape(says)}" title="{escape(says)}" '
                       f'src="{image_uri(explained.view_overlay(THUMBNAIL_SCALE))}">')
        wide = " explained" if explained is not None else ""
        cells.append(f'<figure class="digit{wide}">{images}<figcaption>{caption}</figcaption></figure>')
    return f'<div class="digits">{"".join(cells)}</div>'


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def _summary(report: Report) -> str:
    stats, cal = report.evaluation.stats, report.calibration
    wrong = stats.total - stats.correct
    rows = [
        ("test images", f"{stats.total:,}"),
        ("accuracy", f"{_pct(stats.accuracy)} ({stats.correct:,} right, {wrong:,} wrong)"),
        ("test loss (mean NLL)", f"{stats.loss:.4f} ({cal.test_loss_scaled:.4f} with temperature)"),
        (f"expected calibration error ({ECE_BINS} bins)", f"{_pct(cal.test.ece)} as trained, "
         f"{_pct(cal.test_scaled.ece)} with temperature {cal.temperature:.3f}"),
        ("confidences given by classify and serve",
         "as trained" if report.checkpoint.temperature == 1.0 else
         f"with the temperature stored in the checkpoint, {report.checkpoint.temperature:.3f}"),
    ]
    return _table(None, rows)


def _per_class(report: Report) -> str:
    rows = [(r["class"], r["support"], _pct(r["precision"]), _pct(r["recall"]), f"{r['f1']:.4f}")
            for r in report.evaluation.to_dict()["per_class"]]
    return _table(("class", "test images", "precision", "recall", "F1"), rows)


def _pairs(report: Report) -> str:
    if not report.pairs:
        return "<p>No digit was misread.</p>"
    parts = [f"<h3>{escape(p.true)} read as {escape(p.predicted)}: {p.count} time{'s' * (p.count != 1)}</h3>"
             + _digits(report, p.examples, "pair") for p in report.pairs]
    return "".join(parts)


def _shown(report: Report) -> str:
    shown, total = len(report.mistakes), report.mistakes_total
    return f"All {shown}" if shown == total else f"The {shown} most confident of the {total}"


def _gallery(report: Report) -> str:
    if not report.mistakes:
        return "<p>No digit was misread.</p>"
    return (f"<p>{_shown(report)} misread test digits, most confident first: the true class, what "
            "the model read, its confidence (as trained) and the digit's index in the test split. "
            "Beside each, why it read what it did: the strokes whose hiding (4×4-pixel squares, in "
            "turn) lowers that answer's probability most are red, those that argue against it "
            "blue.</p>"
            + _digits(report, report.mistakes, "mistake", why=True))


def _calibration(report: Report, images: dict[str, bytes]) -> str:
    cal = report.calibration
    end = cal.validation_start + cal.validation_size - 1
    held = {
        True: "The model was not trained on these images.",
        False: "This model was trained on these images too, so the temperature is fitted on data "
               "it has seen: treat it as an estimate (train with <code>--val-split "
               f"{cal.validation_size}</code> to hold them out).",
        None: "The checkpoint does not record which training images it saw; a model trained on "
              "the whole training split (as <code>digitlab train</code> does by default) has seen "
              "these, and the temperature is then only an estimate.",
    }[cal.held_out]
    rows = [("validation NLL", f"{cal.validation_nll:.4f}", f"{cal.validation_nll_scaled:.4f}"),
            ("test NLL", f"{report.evaluation.stats.loss:.4f}", f"{cal.test_loss_scaled:.4f}"),
            (f"test ECE ({ECE_BINS} bins)", _pct(cal.test.ece), _pct(cal.test_scaled.ece))]
    return (
        f"<p>Temperature scaling divides the logits by one number, <span class=big>T = "
        f"{cal.temperature:.3f}</span>, fitted for the lowest NLL on the validation split: training "
        f"images {cal.validation_start:,}–{end:,} (the last {cal.validation_size:,}). {held} "
        "The test split is only measured, never fitted on. T changes confidences, never the "
        "predicted class.</p>"
        + _table(("", "as trained", f"T = {cal.temperature:.3f}"), rows)
        + _figure(images, "reliability.png", "reliability diagrams before and after temperature scaling")
    )


def _wild(report: Report) -> str:
    if report.wild is None:
        shipped = is_shipped(report.path)
        model = "default" if shipped else str(report.path)
        out = WILD_FILE if shipped else str(report.path.parent / WILD_FILE)
        return ("<p>No in-the-wild results. Measure them (a few minutes on a CPU; "
                "<code>--per-condition 50</code> for a quick look) and run the report again:</p>"
                f"<pre><code>digitlab bench wild --model {escape(model)} --json {escape(out)}\n"
                f"digitlab report {escape(model)} --wild {escape(out)}</code></pre>")
    rows = []
    for condition, scores in report.wild["results"].items():
        robust, naive, plain = scores.get("robust", {}), scores.get("naive"), scores.get("plain")
        rows.append((condition, robust.get("n", ""), _pct(naive["accuracy"]) if naive else "—",
                     _pct(plain["accuracy"]) if plain else "—",
                     _pct(robust["accuracy"]) if "accuracy" in robust else "—"))
    return (f"<p>From <code>{escape(str(report.wild_source))}</code> (model "
            f"{escape(str(report.wild.get('model') or 'packaged default'))}, seed "
            f"{escape(str(report.wild.get('seed')))}): test digits re-rendered as canvases, ink, "
            "photos and scans, read through the tutorial's naive preprocessing, the plain MNIST "
            "recipe and digitlab's.</p>"
            + _table(("condition", "images", "naive", "plain", "digitlab"), rows))


def _training(report: Report, images: dict[str, bytes]) -> str:
    parts = []
    if "curves.png" in images and report.run is not None:
        parts.append(f"<p>From <code>{escape(str(report.run.path))}</code>.</p>"
                     + _figure(images, "curves.png", "training loss and test accuracy"))
    else:
        parts.append("<p>Training curves are not available: the checkpoint has no run folder "
                     "beside it and carries no history (a packed model drops it).</p>")
    if report.run is not None:
        parts.append(_real_folders(report.run, report.checkpoint.epoch))
    if report.training_record:
        parts.append("<h3>Training record</h3>"
                     + _table(None, report.training_record.items()))
    return "".join(parts)


def _real_folders(run: RunRecord, epoch: int) -> str:
    """Accuracy on each `train --val-real` folder at the checkpoint's epoch and at the last."""
    judged = [e for e in run.history.epochs if e.real]
    if not judged:
        return ""
    at = next((e for e in judged if e.epoch == epoch), None)
    last = judged[-1]
    chosen = last.selection(run.data.select_by if run.data is not None else None)
    by = {"real": "their mean accuracy", "val": "validation accuracy", "test": "test accuracy"}
    rows = [(name, _pct(at.real[name]) if at and at.real and name in at.real else "—",
             _pct(accuracy)) for name, accuracy in (last.real or {}).items()]
    header = ("folder", f"epoch {epoch} (this checkpoint)", f"epoch {last.epoch} (last)")
    return ("<h3>Real folders</h3><p>Labelled real digits the run was judged by every epoch and "
            f"never trained on; best.pt was picked by {by[chosen]}.</p>" + _table(header, rows))


def render_html(report: Report, images: dict[str, bytes]) -> str:
    """The whole page; `images` maps the figure files' names to their PNG bytes."""
    c = report.checkpoint
    title = f"digitlab report: {report.path.name}"
    sections = [
        ("Summary", _summary(report)),
        ("Per class", _per_class(report)),
        ("Confusion matrix", _figure(images, "confusion.png", "confusion matrix")),
        ("Most confused pairs", _pairs(report)),
        ("Misread test digits", _gallery(report)),
        ("Calibration", _calibration(report, images)),
        ("In the wild", _wild(report)),
        ("Training", _training(report, images)),
    ]
    body = "".join(f'<h2 id="{name.lower().replace(" ", "-")}">{escape(name)}</h2>{html}'
                   for name, html in sections)
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f'<meta http-equiv="Content-Security-Policy" content="{report_policy()}">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style>'
        f"</head><body><h1>{escape(title)}</h1><p class=note><code>{escape(str(report.path))}</code>: "
        f"{escape(c.model_name)} on {escape(c.dataset)}, epoch {c.epoch}; report by digitlab "
        f"{__version__} on {time.strftime('%Y-%m-%d %H:%M')}</p>{body}</body></html>\n"
    )


def report_policy() -> str:
    """The page's Content-Security-Policy: no script at all, its one style block by its hash,
    images only from the data: URIs it carries; the page opens offline."""
    digest = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
    return (f"default-src 'none'; script-src 'none'; style-src 'sha256-{digest}'; img-src data:; "
            "base-uri 'none'; form-action 'none'")


def figure_png(fig: Figure, dpi: int = 110) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def write_html_report(report: Report, out_dir: str | os.PathLike[str]) -> Path:
    """Write the PNGs, report.json and report.html (the PNGs inlined) into `out_dir`, each file
    atomically and the page last; return the page's path."""
    out = Path(out_dir)
    stats, cal = report.evaluation.stats, report.calibration
    figures = {
        "confusion.png": plot_confusion(stats.confusion.numpy(), report.evaluation.classes,
                                        f"{report.path.name}: accuracy {100 * stats.accuracy:.2f}%"),
        "reliability.png": plot_reliability([
            ("test, as trained", cal.test), (f"test, temperature {cal.temperature:.3f}", cal.test_scaled),
        ]),
    }
    if report.mistakes:
        figures["mistakes.png"] = plot_digits(
            [report.test_images[m.index].numpy() for m in report.mistakes],
            [f"{m.true}→{m.predicted} {100 * m.confidence:.0f}% #{m.index}" for m in report.mistakes],
            f"{_shown(report)} misread test digits, most confident first (true→read, confidence, index)",
        )
    if report.run is not None:
        figures["curves.png"] = plot_performance([report.run])
    images = {name: figure_png(fig) for name, fig in figures.items()}
    page = out / "report.html"
    with output_dir(out):
        for stale in {"mistakes.png", "curves.png"} - figures.keys():  # from an earlier report here
            (out / stale).unlink(missing_ok=True)
        for name, png in images.items():
            with atomic_path(out / name) as tmp:
                tmp.write_bytes(png)
        write_json(out / "report.json", report.to_dict())
        write_text(page, render_html(report, images))
    return page
