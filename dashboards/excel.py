"""Tables as an Excel workbook (.xlsx), one sheet per table, numbers as numbers and dates as dates.

Written with the standard library (an .xlsx is a zip of a few XML parts, ECMA-376): the
dashboards need only to write a plain workbook, and a writer here keeps the download working
whatever spreadsheet package is installed. Reading it back is left to pandas + openpyxl (tests).
"""

from __future__ import annotations

import io
import math
import re
import zipfile
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from xml.sax.saxutils import escape

import pandas as pd

MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

_EPOCH = datetime(1899, 12, 30)  # Excel's day 0 (with its 1900 leap-year quirk already folded in)
_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")  # control characters XML 1.0 refuses
_SHEET_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")
_STYLE_DATE, _STYLE_DATETIME = 1, 2

_XML = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_PACKAGE_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
_DOCUMENT_RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_OFFICE = "application/vnd.openxmlformats-officedocument.spreadsheetml"
_CONTENT_TYPES = (
    _XML + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    f'<Override PartName="/xl/workbook.xml" ContentType="{_OFFICE}.sheet.main+xml"/>'
    f'<Override PartName="/xl/styles.xml" ContentType="{_OFFICE}.styles+xml"/>'
    "{sheets}</Types>"
)
_ROOT_RELS = (
    _XML + f'<Relationships xmlns="{_PACKAGE_RELS}">'
    f'<Relationship Id="rId1" Type="{_DOCUMENT_RELS}/officeDocument" Target="xl/workbook.xml"/>'
    "</Relationships>"
)
# cell styles: 0 general, 1 a date, 2 a date and time, 3 the header row (bold)
_STYLES = (
    _XML + f'<styleSheet xmlns="{_MAIN}">'
    '<numFmts count="2"><numFmt numFmtId="164" formatCode="yyyy-mm-dd"/>'
    '<numFmt numFmtId="165" formatCode="yyyy-mm-dd hh:mm:ss"/></numFmts>'
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="4"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs>'
    "</styleSheet>"
)
_STYLE_HEADER = 3


def _column_letters(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(65 + remainder) + letters
    return letters


def _serial(moment: datetime) -> float:
    if moment.tzinfo is not None:  # Excel has no time zones: store the UTC wall time
        moment = pd.Timestamp(moment).tz_convert("UTC").tz_localize(None).to_pydatetime()
    return (moment - _EPOCH).total_seconds() / 86400


def _text(value: str) -> str:
    return escape(_ILLEGAL.sub("", value))


def _cell(reference: str, value: Any) -> str:
    """One cell's XML, or "" for an empty value (None, NaN, NaT)."""
    if value is None or value is pd.NaT or value is pd.NA:
        return ""
    if hasattr(value, "item") and not isinstance(value, str | bytes):  # numpy scalars
        value = value.item()
    if isinstance(value, bool):
        return f'<c r="{reference}" t="b"><v>{int(value)}</v></c>'
    if isinstance(value, int | float | Decimal):
        number = float(value)
        if math.isnan(number) or not math.isfinite(number):
            return ""
        return f'<c r="{reference}"><v>{int(value) if isinstance(value, int) else repr(number)}</v></c>'
    if isinstance(value, datetime):  # pandas Timestamps are datetimes
        if isinstance(value, pd.Timestamp) and pd.isna(value):
            return ""
        whole = value.hour == value.minute == value.second == value.microsecond == 0 and value.tzinfo is None
        style = _STYLE_DATE if whole else _STYLE_DATETIME
        return f'<c r="{reference}" s="{style}"><v>{_serial(value)!r}</v></c>'
    if isinstance(value, date):
        serial = _serial(datetime(value.year, value.month, value.day))
        return f'<c r="{reference}" s="{_STYLE_DATE}"><v>{serial!r}</v></c>'
    return _string(reference, str(value))


def _string(reference: str, text: str, style: int = 0) -> str:
    styled = f' s="{style}"' if style else ""
    return f'<c r="{reference}" t="inlineStr"{styled}><is><t xml:space="preserve">{_text(text)}</t></is></c>'


def _sheet(frame: pd.DataFrame) -> str:
    columns = [_column_letters(index) for index in range(len(frame.columns))]
    header = "".join(
        _string(f"{letter}1", str(name), _STYLE_HEADER)
        for letter, name in zip(columns, frame.columns, strict=True)
    )
    lines = [f'<row r="1">{header}</row>']
    for number, values in enumerate(frame.itertuples(index=False, name=None), start=2):
        cells = "".join(
            _cell(f"{letter}{number}", value) for letter, value in zip(columns, values, strict=True)
        )
        lines.append(f'<row r="{number}">{cells}</row>')
    return (
        _XML + f'<worksheet xmlns="{_MAIN}">'
        '<sheetViews><sheetView workbookViewId="0"><pane ySplit="1" topLeftCell="A2" state="frozen"/>'
        "</sheetView></sheetViews>"
        f"<sheetData>{''.join(lines)}</sheetData></worksheet>"
    )


def sheet_names(titles: list[str]) -> list[str]:
    """Excel's sheet names for table titles: at most 31 characters, none of []:*?/\\, unique."""
    names: list[str] = []
    for title in titles:
        base = _SHEET_FORBIDDEN.sub(" ", _ILLEGAL.sub("", str(title))).strip().strip("'")[:31] or "Sheet"
        name, suffix = base, 2
        while name.lower() in {existing.lower() for existing in names}:
            tail = f" ({suffix})"
            name, suffix = base[: 31 - len(tail)] + tail, suffix + 1
        names.append(name)
    return names


def workbook(tables: Mapping[str, pd.DataFrame]) -> bytes:
    """An .xlsx with one sheet per table (in order, named by its title), header row first."""
    if not tables:
        raise ValueError("a workbook needs at least one table")
    names = sheet_names(list(tables))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        overrides = "\n".join(
            f'<Override PartName="/xl/worksheets/sheet{number}.xml" ContentType="{_OFFICE}.worksheet+xml"/>'
            for number in range(1, len(names) + 1)
        )
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES.format(sheets=overrides))
        archive.writestr("_rels/.rels", _ROOT_RELS)
        sheets = "".join(
            f'<sheet name="{escape(name, {chr(34): "&quot;"})}" sheetId="{number}" r:id="rId{number}"/>'
            for number, name in enumerate(names, start=1)
        )
        archive.writestr(
            "xl/workbook.xml",
            _XML + f'<workbook xmlns="{_MAIN}" xmlns:r="{_DOCUMENT_RELS}">'
            f"<sheets>{sheets}</sheets></workbook>",
        )
        relations = "".join(
            f'<Relationship Id="rId{number}" Type="{_DOCUMENT_RELS}/worksheet" '
            f'Target="worksheets/sheet{number}.xml"/>'
            for number in range(1, len(names) + 1)
        )
        styles_id = len(names) + 1
        archive.writestr(
            "xl/_rels/workbook.xml.rels",
            _XML + f'<Relationships xmlns="{_PACKAGE_RELS}">{relations}'
            f'<Relationship Id="rId{styles_id}" Type="{_DOCUMENT_RELS}/styles" Target="styles.xml"/>'
            "</Relationships>",
        )
        archive.writestr("xl/styles.xml", _STYLES)
        for number, frame in enumerate(tables.values(), start=1):
            archive.writestr(f"xl/worksheets/sheet{number}.xml", _sheet(frame))
    return buffer.getvalue()
