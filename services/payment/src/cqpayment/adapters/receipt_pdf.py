"""R-PAY-8: the receipt (缴款凭证) of a paid decision as an A4 PDF.

Library: fpdf2 (pinned in services/payment/pyproject.toml). It is pure Python (no
Cairo, no system libraries), actively maintained, typed (``py.typed``), embeds a
*subset* of a TrueType font as a ``FontFile2`` stream with a ``ToUnicode`` map, so
the Chinese text is both printable anywhere and extractable (copy, search, the tests
read it back with pypdf); it also lets us pin the creation date, which makes the output
deterministic. ReportLab can embed TrueType subsets too, but its open-source toolkit is
larger, untyped and needs more code for a simple table.

Font: WenQuanYi Micro Hei (文泉驿微米黑; its name table says Apache-2.0), a TrueType
collection of about 5 MB shipped by the PyPI package ``paperang-p2-fonts-cjk`` and
located through ``importlib.resources``, so no system font is assumed. It has 20,932
CJK unified ideographs, far more than GB 2312's 6,763, so names such as 堃 or 喆 print. Noto Sans SC from PyPI (``pylopdf-fonts-zh-cn``) was tried:
it is CFF-based OpenType, which fpdf2 embeds, but its text extracts with NUL bytes
between characters, so a copied decision number would be wrong.

Cost: about 0.3 s of CPU per receipt, mostly fontTools parsing the tables of a font of
49,531 glyphs. The font file is located once per process (``font_path``); the parsed
font is not shared between documents because fpdf2's subsetting edits it in place, so
each document parses its own copy, measuring only the characters that receipt prints
(``unicode_range``), which saves about a fifth. A caller on an event loop should render
in a worker thread.

The output is deterministic: the PDF's creation date is ``receipt.issued_at`` and
nothing else varies, so the same receipt always gives the same bytes.
"""

from __future__ import annotations

import functools
import importlib.resources
from pathlib import Path
from typing import Final

from cqcommon.clock import SHANGHAI
from fpdf import FPDF
from fpdf.enums import Align, TableCellFillMode, WrapMode, XPos, YPos

from cqpayment.domain.receipts import ISSUER_ZH, TITLE_ZH, Receipt, receipt_rows

#: The distribution that ships the font, and the file inside its package.
FONT_PACKAGE: Final = "paperang_p2_fonts_cjk"
FONT_RESOURCE: Final = ("fonts", "wqy-microhei.ttc")
#: Face 0 of the collection is WenQuanYi Micro Hei (face 1 is its monospaced twin).
_FONT_FACE: Final = 0
_FAMILY: Final = "wqy-microhei"

CONTENT_TYPE: Final = "application/pdf"

_NOTES: Final = (
    "金额单位：人民币元。时间均为北京时间。",
    "本凭证根据缴款记录生成，可凭缴款编号或处罚决定书编号重新打印，内容不变。",
)


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


class PdfReceiptRenderer:
    """Renders a ``Receipt`` to PDF bytes (the receipt port's adapter)."""

    content_type: Final = CONTENT_TYPE

    def render(self, receipt: Receipt) -> bytes:
        rows = receipt_rows(receipt)
        texts = [ISSUER_ZH, TITLE_ZH, *_NOTES, *(part for row in rows for part in row)]

        pdf = FPDF(orientation="portrait", unit="mm", format="A4")
        # fixed by the receipt, never the clock: the same receipt gives the same bytes
        pdf.set_creation_date(receipt.issued_at.astimezone(SHANGHAI))
        pdf.set_lang("zh-CN")
        pdf.set_title(f"{TITLE_ZH} {receipt.decision_no}")
        pdf.set_author(ISSUER_ZH)
        pdf.set_subject(TITLE_ZH)
        pdf.set_creator("cqpayment")
        pdf.set_margins(left=20, top=20, right=20)
        pdf.set_auto_page_break(auto=True, margin=20)
        pdf.add_font(
            _FAMILY,
            fname=font_path(),
            collection_font_number=_FONT_FACE,
            # only what this receipt prints: fpdf2 then measures ~100 glyphs, not 30,000
            unicode_range=sorted({ord(ch) for text in texts for ch in text}),
        )
        pdf.add_page()

        pdf.set_font(_FAMILY, size=15)
        pdf.cell(w=0, h=9, text=ISSUER_ZH, align=Align.C, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_font(_FAMILY, size=20)
        pdf.cell(w=0, h=12, text=TITLE_ZH, align=Align.C, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(6)

        pdf.set_font(_FAMILY, size=11)
        with pdf.table(
            col_widths=(42, 128),
            width=170,
            first_row_as_headings=False,
            text_align=(Align.L, Align.L),
            line_height=7,
            padding=(1.5, 3),
            # Chinese has no spaces: wrap a long place or description at any character
            wrapmode=WrapMode.CHAR,
            cell_fill_color=(235, 235, 235),
            # the label column (index 0; fpdf2 counts it as an even column)
            cell_fill_mode=TableCellFillMode.EVEN_COLUMNS,
        ) as table:
            for label, value in rows:
                table.row((label, value))

        pdf.ln(6)
        pdf.set_font(_FAMILY, size=9)
        for note in _NOTES:
            pdf.multi_cell(
                w=0, h=5, text=note, wrapmode=WrapMode.CHAR, new_x=XPos.LMARGIN, new_y=YPos.NEXT
            )
        return bytes(pdf.output())
