"""The shared PDF toolkit (cqcommon.pdf) that prints receipts (R-PAY-8) and decision notices
(R-ADJ-7): every block's text extracts back with pypdf, the CJK font is an embedded subset
of the PyPI package's font, and the bytes depend only on the facts (creation date included)."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from cqcommon.pdf import (
    CONTENT_TYPE,
    Block,
    DocumentMeta,
    Gap,
    LabelTable,
    Notes,
    Paragraphs,
    TitleLine,
    font_path,
    render_pdf,
)
from pypdf import PdfReader

META = DocumentMeta(
    title="公安交通管理简易程序处罚决定书 5000001234567890",
    author="重庆市公安局交通管理局",
    subject="处罚决定书",
    creator="cqtest",
    created_at=datetime(2026, 11, 20, 16, 0, tzinfo=UTC),  # 2026-11-21 00:00 in Chongqing
)
BLOCKS: list[Block] = [
    TitleLine("重庆市公安局交通管理局", size=15, height=9),
    TitleLine("处罚决定书"),
    Gap(4),
    LabelTable([("编号", "5000001234567890"), ("被处罚人", "欧阳堃"), ("地点", "解放碑" * 40)]),
    Paragraphs(["被处罚人应当自收到本决定书之日起十五日内缴纳罚款。"]),
    Notes(["金额单位：人民币元。"]),
]


@pytest.fixture(scope="module")
def pdf() -> bytes:
    return render_pdf(META, BLOCKS)


def _text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def test_every_block_extracts_back(pdf: bytes) -> None:
    text = _text(pdf)
    for needle in (
        "重庆市公安局交通管理局",
        "处罚决定书",
        "5000001234567890",
        "欧阳堃",
        "十五日内",
    ):
        assert needle in text
    assert "金额单位" in text
    assert text.replace("\n", "").count("解放碑") == 40  # the long value wrapped, nothing lost


def test_the_font_is_an_embedded_subset_of_the_package_font(pdf: bytes) -> None:
    resources: Any = PdfReader(io.BytesIO(pdf)).pages[0]["/Resources"]
    fonts = [f.get_object() for f in resources["/Font"].values()]
    assert len(fonts) == 1
    descendant = fonts[0]["/DescendantFonts"][0].get_object()
    # a subset's name: a 6-letter tag, "+", the face's own name
    assert str(fonts[0]["/BaseFont"]).endswith("+WenQuanYiMicroHei")
    assert "/FontFile2" in descendant["/FontDescriptor"]
    assert "/ToUnicode" in fonts[0]
    assert len(pdf) < 100_000 < font_path().stat().st_size
    assert "/usr/share/fonts" not in str(font_path())


def test_metadata_comes_from_the_facts_and_the_bytes_repeat(pdf: bytes) -> None:
    info: Any = PdfReader(io.BytesIO(pdf)).metadata
    assert info["/Title"] == META.title
    assert info["/Author"] == META.author
    assert info["/CreationDate"].startswith("D:20261121000000+08")
    assert render_pdf(META, BLOCKS) == pdf
    # the same instant in another zone is the same document
    same = DocumentMeta(
        **{**META.__dict__, "created_at": META.created_at.astimezone(timezone(timedelta(hours=-5)))}
    )
    assert render_pdf(same, BLOCKS) == pdf
    assert CONTENT_TYPE == "application/pdf"


def test_a_naive_creation_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        DocumentMeta("t", "a", "s", "c", datetime(2026, 1, 1))


async def test_documents_render_on_their_own_thread_one_at_a_time() -> None:
    """``render_off_loop``: while a document is being laid out, work on the default
    executor (every other ``to_thread``) still gets a thread, and a second document waits
    for the first instead of taking another thread."""
    import asyncio
    import threading

    from cqcommon.pdf import render_off_loop

    release = threading.Event()
    running: list[str] = []
    overlap: list[bool] = []

    def slow(name: str) -> bytes:
        overlap.append(bool(running))
        running.append(name)
        release.wait(5)
        running.remove(name)
        return name.encode()

    first = asyncio.create_task(render_off_loop(slow, "a"))
    second = asyncio.create_task(render_off_loop(slow, "b"))
    await asyncio.sleep(0.05)
    # the documents' thread is busy; the default executor is not
    assert await asyncio.wait_for(asyncio.to_thread(lambda: "polled"), 2) == "polled"
    assert running == ["a"]
    release.set()
    assert [await first, await second] == [b"a", b"b"]
    assert overlap == [False, False]
