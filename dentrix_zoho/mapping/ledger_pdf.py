"""The guarantor's full ledger history as a PDF, attached to the guarantor's Contact.

The statement names the account by its Source_System_ID, not by the person: the
PDF hangs off that person's record anyway, and core PDF fonts cannot print every
name a practice holds (CJK, Vietnamese).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from fpdf import FPDF


@dataclass(frozen=True)
class LedgerLine:
    day: dt.date | None
    code: str
    description: str
    amount: Decimal
    provider: str = ""


def _latin1(text: str) -> str:
    return text.encode("latin-1", "replace").decode("latin-1")


def render_ledger_pdf(
    out_path: Path,
    *,
    account_ref: str,
    practice_name: str,
    as_of: dt.date,
    lines: Sequence[LedgerLine],
    balance_due: Decimal | None = None,
) -> Path:
    """Write the statement; the running balance is the sum of amounts (payments are negative)."""
    pdf = FPDF(orientation="P", unit="mm", format="Letter")
    pdf.set_compression(True)
    pdf.set_creation_date(dt.datetime.combine(as_of, dt.time(), tzinfo=dt.UTC))  # reproducible bytes
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 13)
    pdf.cell(0, 8, _latin1(f"{practice_name}: ledger history"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    pdf.cell(0, 5, _latin1(f"Account {account_ref}  -  as of {as_of.isoformat()}"), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    # One fixed-width cell per line: fpdf2 spends its time per cell, and statements are long.
    pdf.set_font("Courier", "B", 8)
    pdf.cell(0, 5, f"{'Date':<11}{'Code':<7}{'Description':<52}{'Prov.':<7}{'Amount':>12}",
             border="B", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Courier", "", 8)
    running = Decimal("0.00")
    for line in sorted(lines, key=lambda ln: (ln.day or dt.date.min)):
        running += line.amount
        text = (f"{line.day.isoformat() if line.day else '':<11}{line.code[:6]:<7}{line.description[:51]:<52}"
                f"{line.provider[:6]:<7}{line.amount:>12,.2f}")
        pdf.cell(0, 4, _latin1(text), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_font("Helvetica", "B", 9)
    pdf.cell(0, 6, f"Sum of ledger lines: {running:,.2f}", new_x="LMARGIN", new_y="NEXT")
    if balance_due is not None:
        pdf.cell(0, 6, f"Balance due (aging): {balance_due:,.2f}", new_x="LMARGIN", new_y="NEXT")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(out_path))
    return out_path
