"""R-ADJ-7: the decision notice (处罚决定书 / 处理通知书) as an A4 PDF, on the shared toolkit
(``cqcommon.pdf``: the embedded CJK font, the layout, deterministic metadata).

Rendering costs about 0.3 s of CPU (fontTools parsing the font), so ``render`` runs it on
the documents' thread (``cqcommon.pdf.render_off_loop``): the gRPC server's event loop keeps
serving and the default executor's threads stay free.
"""

from __future__ import annotations

from typing import Final

from cqcommon.pdf import (
    CONTENT_TYPE,
    DocumentMeta,
    Gap,
    LabelTable,
    Notes,
    Paragraphs,
    TitleLine,
    render_off_loop,
    render_pdf,
)

from cqadjudication.domain.notices import (
    AUTHORITY_ZH,
    NOTICE_ZH,
    NoticeFacts,
    authority_lines,
    created_at,
    notice_paragraphs,
    notice_rows,
    title,
)

_NOTES: Final = (
    "时间均为北京时间。本决定书的全部内容以公安交通管理信息系统记录为准，可凭决定书编号重新打印。",
)


def render_notice(facts: NoticeFacts) -> bytes:
    """The notice's PDF bytes (blocking: ~0.3 s of CPU)."""
    heading = title(facts)
    meta = DocumentMeta(
        title=f"{heading} {facts.decision_no}",
        author=AUTHORITY_ZH,
        subject=NOTICE_ZH,
        creator="cqadjudication",
        created_at=created_at(facts),
    )
    return render_pdf(
        meta,
        [
            TitleLine(AUTHORITY_ZH, size=15, height=9),
            TitleLine(heading, size=18, height=11),
            TitleLine(f"编号：{facts.decision_no}", size=11, height=7),
            Gap(4),
            LabelTable(notice_rows(facts)),
            Gap(4),
            Paragraphs(notice_paragraphs(facts)),
            Gap(6),
            Paragraphs(authority_lines(facts)),
            Gap(4),
            Notes(_NOTES),
        ],
    )


class PdfNoticeRenderer:
    """The ``NoticeRenderer`` port's adapter."""

    content_type: str = CONTENT_TYPE

    async def render(self, facts: NoticeFacts) -> bytes:
        return await render_off_loop(render_notice, facts)
