"""Money as the warehouse keeps it: exact decimals in a known ISO 4217 currency.

Saleor sends amounts as JSON floats (`{"amount": 54.0, "currency": "USD"}`); they are turned into
Decimals through their shortest string form and rounded to the currency's minor unit, so sums
such as "lines plus shipping" compare to the cent instead of to a float's last bit.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

# Active ISO 4217 currency codes (funds, precious metals and test codes left out: nobody prices
# a product in them). Minor units are 2 except where listed.
_ACTIVE = """
AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD
CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF
GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP
LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB
PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL
THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG
"""
_ZERO_DECIMALS = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF"
_THREE_DECIMALS = "BHD IQD JOD KWD LYD OMR TND"

MINOR_UNITS: dict[str, int] = {
    code: 0 if code in _ZERO_DECIMALS.split() else 3 if code in _THREE_DECIMALS.split() else 2
    for code in _ACTIVE.split()
}
CURRENCIES = frozenset(MINOR_UNITS)


class MoneyError(ValueError):
    """An amount or currency that is not money the platform can store."""


def is_currency(code: Any) -> bool:
    return isinstance(code, str) and code in CURRENCIES


def quantum(currency: str) -> Decimal:
    """The smallest unit of `currency` (0.01 for USD, 1 for JPY)."""
    return Decimal(1).scaleb(-MINOR_UNITS.get(currency, 2))


def to_decimal(amount: Any, currency: str) -> Decimal:
    """A JSON number as an exact Decimal in `currency`'s minor unit."""
    if isinstance(amount, bool) or not isinstance(amount, int | float | str | Decimal):
        raise MoneyError(f"amount {amount!r} is not a number")
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        raise MoneyError(f"amount {amount!r} is not a number") from None
    if not value.is_finite():
        raise MoneyError(f"amount {amount!r} is not a finite number")
    return value.quantize(quantum(currency), rounding=ROUND_HALF_UP)


def money(obj: Any, where: str = "money") -> tuple[Decimal, str]:
    """Saleor's `Money` object (`{"amount", "currency"}`) as (Decimal, currency).

    An unknown currency code is kept as sent (and rounded to cents): whether it is a real ISO
    4217 code is for the asset checks to judge, with the row in front of them, not a reason to
    drop the page it came in."""
    if not isinstance(obj, dict):
        raise MoneyError(f"{where}: expected a Money object, got {type(obj).__name__}")
    currency = obj.get("currency")
    if not isinstance(currency, str) or not currency.strip():
        raise MoneyError(f"{where}: missing currency")
    return to_decimal(obj.get("amount"), currency), currency.strip()
