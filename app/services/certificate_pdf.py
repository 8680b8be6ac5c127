"""The PDF of a certificate (志愿服务记录证明), drawn with ReportLab from its stored snapshot.

Chinese text goes through ReportLab's built-in CID font STSong-Light (Adobe's
Asian font pack names; the viewer supplies the glyphs), so nothing is downloaded
and no font file ships. The QR code is ReportLab's own vector widget, pointing to
the public verification page with the certificate's token.
"""
from __future__ import annotations

import io
from xml.sax.saxutils import escape

from flask_babel import gettext

from app.models import Certificate
from app.services import certificates

FONT = "STSong-Light"
QR_SIZE = 32 * 2.8346  # 32 mm in points


def _register_font() -> None:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont

    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))


def _text(value) -> str:
    """Snapshot text as Paragraph markup (escaped)."""
    return escape("" if value is None else str(value))


def _qr(url: str, size: float):
    from reportlab.graphics.barcode.qr import QrCodeWidget
    from reportlab.graphics.shapes import Drawing

    widget = QrCodeWidget(url, barLevel="M")
    x0, y0, x1, y1 = widget.getBounds()
    drawing = Drawing(size, size, transform=[size / (x1 - x0), 0, 0, size / (y1 - y0), 0, 0])
    drawing.add(widget)
    return drawing


def render(certificate: Certificate, verify_url: str) -> bytes:
    """The certificate as PDF bytes: holder, service content, training and honors, the
    issuer's names, number and date, and the QR code to ``verify_url``."""
    from reportlab.lib import colors
    from reportlab.lib.enums import TA_CENTER
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    _register_font()
    snapshot = certificates.snapshot_of(certificate)
    holder = snapshot.get("holder") or {}
    body = ParagraphStyle("body", fontName=FONT, fontSize=10.5, leading=15, wordWrap="CJK")
    small = ParagraphStyle("small", parent=body, fontSize=8.5, leading=11)
    heading = ParagraphStyle("heading", parent=body, fontSize=12.5, leading=18, spaceBefore=8, spaceAfter=4)
    title = ParagraphStyle("title", parent=body, fontSize=20, leading=28, alignment=TA_CENTER, spaceAfter=2)
    subtitle = ParagraphStyle("subtitle", parent=body, fontSize=11, alignment=TA_CENTER, spaceAfter=8)
    warning = ParagraphStyle("warning", parent=body, textColor=colors.red, fontSize=12, alignment=TA_CENTER)

    def p(value, style=body):
        return Paragraph(_text(value), style)

    grid = TableStyle([
        ("FONTNAME", (0, 0), (-1, -1), FONT),
        ("GRID", (0, 0), (-1, -1), 0.5, colors.grey),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("BACKGROUND", (0, 0), (-1, 0), colors.whitesmoke),
    ])

    def table(header, rows, widths):
        data = [[p(h, small) for h in header]] + [[p(c, small) for c in row] for row in rows]
        result = Table(data, colWidths=widths, repeatRows=1)
        result.setStyle(grid)
        return result

    period = snapshot.get("period") or {}
    if period.get("from") or period.get("to"):
        period_text = f"{period.get('from') or '…'} — {period.get('to') or '…'}"
    else:
        period_text = gettext("No limit")
    story = [p(gettext("Volunteer Service Record Certificate"), title)]
    if certificate.kind == certificates.KIND_SUMMARY:
        story.append(p(gettext("Record summary of all approved service records"), subtitle))
    else:
        story.append(Spacer(1, 6))
    if certificate.is_withdrawn:
        story.append(p(gettext("This certificate has been withdrawn and is no longer valid."), warning))
        story.append(Spacer(1, 6))
    words = {"name": holder.get("name", ""), "issuer": snapshot.get("issuer", certificate.issuer),
             "hours": snapshot.get("total_hours", "")}
    if certificate.kind == certificates.KIND_SUMMARY:
        story.append(p(gettext("This is to certify that, according to the records of %(issuer)s, %(name)s has "
                               "%(hours)s approved volunteer service hours in total.", **words)))
    else:
        story.append(p(gettext("This is to certify that %(name)s took part in volunteer service recorded by "
                               "%(issuer)s, with %(hours)s approved service hours in total.", **words)))
    story.append(Spacer(1, 6))
    facts = [
        (gettext("Real name"), holder.get("name")),
        (gettext("ID type"), holder.get("id_type_label")),
        (gettext("ID number"), holder.get("id_number_masked")),
        (gettext("Volunteer number"), holder.get("volunteer_no")),
        (gettext("Service period"), period_text),
        (gettext("Total service hours"), gettext("%(hours)s hours", hours=snapshot.get("total_hours", ""))),
    ]
    if snapshot.get("purpose"):
        facts.append((gettext("Purpose"), snapshot.get("purpose")))
    fact_table = Table([[p(k), p(v)] for k, v in facts], colWidths=[35 * mm, 135 * mm])
    fact_table.setStyle(TableStyle([("FONTNAME", (0, 0), (-1, -1), FONT),
                                    ("GRID", (0, 0), (-1, -1), 0.5, colors.grey),
                                    ("BACKGROUND", (0, 0), (0, -1), colors.whitesmoke)]))
    story.append(fact_table)

    story.append(p(gettext("Service content"), heading))
    records = snapshot.get("records") or []
    if certificate.kind == certificates.KIND_SUMMARY:
        story.append(table(
            [gettext("Project"), gettext("Position"), gettext("Volunteer group"), gettext("Service date"),
             gettext("Hours")],
            [[r.get("project"), r.get("position"), r.get("group"), r.get("served_on"), r.get("hours")]
             for r in records], [48 * mm, 30 * mm, 43 * mm, 25 * mm, 24 * mm]))
    else:
        story.append(table(
            [gettext("Project"), gettext("Position"), gettext("Service date"), gettext("Hours")],
            [[r.get("project"), r.get("position"), r.get("served_on"), r.get("hours")] for r in records],
            [72 * mm, 49 * mm, 25 * mm, 24 * mm]))

    story.append(p(gettext("Training"), heading))
    trainings = snapshot.get("trainings") or []
    if trainings:
        story.append(table([gettext("Training"), gettext("Organiser"), gettext("Date"), gettext("Hours")],
                           [[t.get("title"), t.get("organiser"), t.get("trained_on"), t.get("hours")]
                            for t in trainings], [62 * mm, 59 * mm, 25 * mm, 24 * mm]))
    else:
        story.append(p(gettext("None recorded."), small))

    story.append(p(gettext("Honors"), heading))
    honors = snapshot.get("honors") or []
    if honors:
        story.append(table([gettext("Title"), gettext("Level"), gettext("Awarding body"),
                            gettext("Document number"), gettext("Date")],
                           [[h.get("title"), h.get("level_label"), h.get("awarding_body"), h.get("document_no"),
                             h.get("awarded_on")] for h in honors],
                           [48 * mm, 20 * mm, 45 * mm, 32 * mm, 25 * mm]))
    else:
        story.append(p(gettext("None recorded."), small))

    story.append(Spacer(1, 10))
    signature = [
        (gettext("Issuer"), snapshot.get("issuer", certificate.issuer)),
        (gettext("Person in charge"), snapshot.get("person_in_charge") or "—"),
        (gettext("Handler"), snapshot.get("handler") or "—"),
        (gettext("Contact"), snapshot.get("contact") or "—"),
        (gettext("Certificate number"), certificate.number),
        (gettext("Issued on"), snapshot.get("issued_on", certificate.issued_on.isoformat())),
    ]
    left = Table([[p(k), p(v)] for k, v in signature], colWidths=[28 * mm, 95 * mm])
    left.setStyle(TableStyle([("FONTNAME", (0, 0), (-1, -1), FONT), ("VALIGN", (0, 0), (-1, -1), "TOP")]))
    qr = Table([[_qr(verify_url, QR_SIZE)], [p(gettext("Scan to verify"), small)]], colWidths=[QR_SIZE + 6])
    qr.setStyle(TableStyle([("ALIGN", (0, 0), (-1, -1), "CENTER")]))
    story.append(Table([[left, qr]], colWidths=[125 * mm, 45 * mm],
                       style=TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")])))
    story.append(Spacer(1, 4))
    story.append(p(gettext("Verify at %(url)s", url=verify_url), small))

    buffer = io.BytesIO()
    doc = SimpleDocTemplate(buffer, pagesize=A4, leftMargin=20 * mm, rightMargin=20 * mm, topMargin=18 * mm,
                            bottomMargin=18 * mm, title=gettext("Volunteer Service Record Certificate"),
                            author=_text(snapshot.get("issuer", certificate.issuer)),
                            subject=certificate.number)
    doc.build(story)
    return buffer.getvalue()
