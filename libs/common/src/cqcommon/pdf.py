"""The PDF toolkit of every printable document (R-PAY-8 receipts, R-ADJ-7 decision notices):
one A4 page layout with the Simplified Chinese font embedded, built from a few blocks
(centred title lines, a bordered label/value table, paragraphs, small notes).

Library: fpdf2. It is pure Python (no Cairo, no system libraries), typed, embeds a
*subset* of a TrueType font as a ``FontFile2`` stream with a ``ToUnicode`` map, so the
Chinese text is both printable anywhere and extractable (copy, search, tests read it back
with pypdf); it also lets us pin the creation date, which makes the output deterministic.
ReportLab can embed TrueType subsets too, but its open-source toolkit is larger, untyped
and needs more code for a simple table.

Font: WenQuanYi Micro Hei (文泉驿微米黑; its name table says Apache-2.0), a TrueType
collection of about 5 MB shipped by the PyPI package ``paperang-p2-fonts-cjk`` and located
through ``importlib.resources``, so no system font is assumed. It has 20,932 CJK unified
ideographs, far more than GB 2312's 6,763, so names such as 堃 or 喆 print. Noto Sans SC
from PyPI (``pylopdf-fonts-zh-cn``) was tried: it is CFF-based OpenType, which fpdf2
embeds, but its text extracts with NUL bytes between characters, so a copied decision
number would be wrong.

Cost: about 0.3 s of CPU per document, mostly fontTools parsing the tables of a font of
49,531 glyphs. The font file is located once per process (``font_path``); the parsed font
is not shared between documents because fpdf2's subsetting edits it in place, so each
document parses its own copy, measuring only the characters it prints (``unicode_range``:
``render_pdf`` collects them from the blocks first), which saves about a fifth. A caller
on an event loop renders through ``render_off_loop``: one worker thread per process for
documents (``asyncutil.OwnThread``), apart from the default executor's few threads
(min(32, cores + 4)) that every other ``to_thread`` shares; a burst of downloads then
queues for that thread instead of taking them all.

Deterministic: the creation date is ``DocumentMeta.created_at`` (an instant of the
document's own facts, never the clock) and nothing else varies, so the same facts always
give the same bytes.
"""

from __future__ import annotations

import functools
import importlib.resources
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from cqcommon.asyncutil import OwnThread
from cqcommon.clock import SHANGHAI

if TYPE_CHECKING:
    from fpdf import FPDF

#: The distribution that ships the font, and the file inside its package.
FONT_PACKAGE: Final = "paperang_p2_fonts_cjk"
FONT_RESOURCE: Final = ("fonts", "wqy-microhei.ttc")
#: Face 0 of the collection is WenQuanYi Micro Hei (face 1 is its monospaced twin).
FONT_FACE: Final = 0
FAMILY: Final = "wqy-microhei"

CONTENT_TYPE: Final = "application/pdf"

#: A4 portrait with 20 mm margins: the printable width every block uses.
_MARGIN_MM: Final = 20
_WIDTH_MM: Final = 170


#: the process's one thread for laying out documents (made on first use)
_DOCUMENTS: Final = OwnThread("pdf")


async def render_off_loop(fn: Callable[..., bytes], *args: Any) -> bytes:
    """``fn(*args)`` on the documents' thread: off the event loop, one document at a
    time, never on the default executor's threads that other blocking calls need."""
    return await _DOCUMENTS.run(fn, *args)


@functools.cache
def font_path() -> Path:
    """The font file inside the installed package (resolved once per process).

    A wheel installs as plain files, so the resource is a real path fpdf2 can open; a
    zipped install is refused rather than extracted to a temporary file on every start.
    """
    resource = importlib.resources.files(FONT_PACKAGE).joinpath(*FONT_RESOURCE)
    path = Path(str(resource))
    if not path.is_file():
        raise RuntimeError(f"{FONT_PACKAGE} is not installed as files: {resource!s}")
    return path


@dataclass(frozen=True)
class DocumentMeta:
    """The PDF's document information; ``created_at`` (aware) pins its creation date."""

    title: str
    author: str
    subject: str
    creator: str
    created_at: datetime

    def __post_init__(self) -> None:
        if self.created_at.tzinfo is None:
            raise ValueError("created_at must be timezone-aware")


@dataclass(frozen=True)
class TitleLine:
    """One centred line (an issuer's name, a document title, a number under it)."""

    text: str
    size: float = 20
    height: float = 12


@dataclass(frozen=True)
class Gap:
    """Vertical space, in millimetres."""

    mm: float


@dataclass(frozen=True)
class LabelTable:
    """A bordered two-column table: a shaded label column and its values. Long values wrap
    at any character (Chinese has no spaces)."""

    rows: Sequence[tuple[str, str]]
    label_width: float = 42
    size: float = 11


@dataclass(frozen=True)
class Paragraphs:
    """Left-aligned paragraphs that wrap at any character (the body of a notice)."""

    lines: Sequence[str]
    size: float = 10.5
    height: float = 6


@dataclass(frozen=True)
class Notes:
    """Small print under the table (units, how the document may be reprinted)."""

    lines: Sequence[str]
    size: float = 9
    height: float = 5


Block = TitleLine | Gap | LabelTable | Paragraphs | Notes


def _texts(blocks: Sequence[Block], meta: DocumentMeta) -> Iterator[str]:
    yield meta.title
    for block in blocks:
        if isinstance(block, TitleLine):
            yield block.text
        elif isinstance(block, LabelTable):
            for label, value in block.rows:
                yield label
                yield value
        elif isinstance(block, Paragraphs | Notes):
            yield from block.lines


def render_pdf(meta: DocumentMeta, blocks: Sequence[Block]) -> bytes:
    """One A4 document of ``blocks`` in order, with the CJK font subset it needs."""
    # imported on the first document: fpdf2 and fontTools cost about a second of CPU at
    # every service start, and most processes never print
    from fpdf import FPDF

    pdf = FPDF(orientation="portrait", unit="mm", format="A4")
    # fixed by the document's facts, never the clock: the same facts give the same bytes
    pdf.set_creation_date(meta.created_at.astimezone(SHANGHAI))
    pdf.set_lang("zh-CN")
    pdf.set_title(meta.title)
    pdf.set_author(meta.author)
    pdf.set_subject(meta.subject)
    pdf.set_creator(meta.creator)
    pdf.set_margins(left=_MARGIN_MM, top=_MARGIN_MM, right=_MARGIN_MM)
    pdf.set_auto_page_break(auto=True, margin=_MARGIN_MM)
    pdf.add_font(
        FAMILY,
        fname=font_path(),
        collection_font_number=FONT_FACE,
        # only what this document prints: fpdf2 then measures ~100 glyphs, not 30,000
        unicode_range=sorted({ord(ch) for text in _texts(blocks, meta) for ch in text}),
    )
    pdf.add_page()
    for block in blocks:
        _draw(pdf, block)
    return bytes(pdf.output())


def _draw(pdf: FPDF, block: Block) -> None:
    from fpdf.enums import Align, TableCellFillMode, WrapMode, XPos, YPos

    if isinstance(block, TitleLine):
        pdf.set_font(FAMILY, size=block.size)
        pdf.cell(
            w=0, h=block.height, text=block.text, align=Align.C, new_x=XPos.LMARGIN, new_y=YPos.NEXT
        )
    elif isinstance(block, Gap):
        pdf.ln(block.mm)
    elif isinstance(block, LabelTable):
        pdf.set_font(FAMILY, size=block.size)
        with pdf.table(
            col_widths=(block.label_width, _WIDTH_MM - block.label_width),
            width=_WIDTH_MM,
            first_row_as_headings=False,
            text_align=(Align.L, Align.L),
            line_height=7,
            padding=(1.5, 3),
            wrapmode=WrapMode.CHAR,
            cell_fill_color=(235, 235, 235),
            # the label column (index 0; fpdf2 counts it as an even column)
            cell_fill_mode=TableCellFillMode.EVEN_COLUMNS,
        ) as table:
            for label, value in block.rows:
                table.row((label, value))
    else:
        pdf.set_font(FAMILY, size=block.size)
        for line in block.lines:
            pdf.multi_cell(
                w=0,
                h=block.height,
                text=line,
                wrapmode=WrapMode.CHAR,
                new_x=XPos.LMARGIN,
                new_y=YPos.NEXT,
            )
