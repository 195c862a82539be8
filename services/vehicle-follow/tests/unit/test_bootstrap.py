"""Start-up refuses a development SMS code key outside sandbox mode: codes are stored as
HMACs under SMS_CODE_SECRET, and the default is in this repository for anyone to read."""

from __future__ import annotations

import pytest
from cqcommon.settings import Settings
from cqfollow.bootstrap import InsecureSmsCodeSecretError, check_sms_code_secret

STRONG = "k" * 40


def test_the_default_sms_code_secret_is_refused_outside_sandbox_mode() -> None:
    with pytest.raises(InsecureSmsCodeSecretError, match="SMS_CODE_SECRET"):
        check_sms_code_secret(Settings(sandbox_mode=False))
    with pytest.raises(InsecureSmsCodeSecretError):
        check_sms_code_secret(Settings(sandbox_mode=False, sms_code_secret="short"))


def test_a_real_secret_or_sandbox_mode_starts() -> None:
    check_sms_code_secret(Settings(sandbox_mode=False, sms_code_secret=STRONG))
    check_sms_code_secret(Settings(sandbox_mode=True))
