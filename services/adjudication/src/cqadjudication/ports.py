"""Ports (typing.Protocol) the adjudication use cases depend on."""

from __future__ import annotations

from typing import Protocol

from cqadjudication.domain.violations import Violation, ViolationReport


class ViolationRepository(Protocol):
    async def find_vehicle(self, plate_type: str, plate_number: str) -> str | None: ...

    async def find_licence(self, licence_no: str) -> str | None: ...

    async def code_description(self, code: str) -> str | None: ...

    async def add(
        self,
        violation_id: str,
        report: ViolationReport,
        vehicle_id: str,
        licence_id: str | None,
        description_zh: str,
    ) -> bool:
        """Insert; False when (source_system, source_record_id) already exists."""
        ...

    async def by_source(self, source_system: str, source_record_id: str) -> tuple[Violation, str]:
        """The violation recorded for a source record and the fingerprint it was recorded with."""
        ...

    async def get(self, violation_id: str) -> Violation | None: ...
