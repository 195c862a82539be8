"""R-PAY-8: the receipt (缴款凭证) of a paid decision as an A4 PDF.

The layout, the embedded CJK font and the deterministic metadata are the shared toolkit's
(``cqcommon.pdf``: why fpdf2 and WenQuanYi Micro Hei, and what a document costs, ~0.3 s
of CPU, so a caller on an event loop renders in a worker thread); this adapter only says
what a receipt prints: the issuer, the title, the receipt's rows and the notes.

The output is deterministic: the PDF's creation date is ``receipt.issued_at`` and
nothing else varies, so the same receipt always gives the same bytes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Final

from cqcommon.pdf import (
    CONTENT_TYPE,
    FONT_PACKAGE,
    DocumentMeta,
    Gap,
    LabelTable,
    Notes,
    TitleLine,
    font_path,
    render_pdf,
)

from cqpayment.domain.receipts import ISSUER_ZH, TITLE_ZH, Receipt, receipt_rows

# re-exported: the receipt tests locate the font through this adapter
__all__ = ["CONTENT_TYPE", "FONT_PACKAGE", "PdfReceiptRenderer", "font_path"]

_NOTES: Final = (
    "金额单位：人民币元。时间均为北京时间。",
    "本凭证根据缴款记录生成，可凭缴款编号或处罚决定书编号重新打印，内容不变。",
)


class PdfReceiptRenderer:
    """Renders a ``Receipt`` to PDF bytes (the receipt port's adapter).

    A paid receipt never changes and the same receipt gives the same bytes, so the last
    ``cached`` documents are kept, keyed by the whole receipt (the masked version another
    payer sees is another key): downloading a receipt again costs nothing, where each
    rendering takes ~0.25 s of CPU and holds the GIL. ~20 KB each.
    """

    content_type: Final = CONTENT_TYPE

    def __init__(self, *, cached: int = 256) -> None:
        self._cached = cached
        self._documents: OrderedDict[Receipt, bytes] = OrderedDict()
        self._lock = threading.Lock()  # render runs in a worker thread
        self.rendered = 0  # documents laid out (not served from the cache)

    def render(self, receipt: Receipt) -> bytes:
        with self._lock:
            document = self._documents.get(receipt)
            if document is not None:
                self._documents.move_to_end(receipt)
                return document
        document = self._render(receipt)
        with self._lock:
            self.rendered += 1
            self._documents[receipt] = document
            self._documents.move_to_end(receipt)
            while len(self._documents) > self._cached:
                self._documents.popitem(last=False)
        return document

    def _render(self, receipt: Receipt) -> bytes:
        meta = DocumentMeta(
            title=f"{TITLE_ZH} {receipt.decision_no}",
            author=ISSUER_ZH,
            subject=TITLE_ZH,
            creator="cqpayment",
            created_at=receipt.issued_at,
        )
        return render_pdf(
            meta,
            [
                TitleLine(ISSUER_ZH, size=15, height=9),
                TitleLine(TITLE_ZH, size=20, height=12),
                Gap(6),
                LabelTable(receipt_rows(receipt)),
                Gap(6),
                Notes(_NOTES),
            ],
        )
