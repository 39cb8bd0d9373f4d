"""Refuse direct identifiers: by column name, and by what values look like.

Input must already be de-identified. The scan reads what a person would read, not what a
regular expression expects: every text is NFKC-normalised first (full-width digits and
signs, non-breaking spaces and other compatibility forms become their plain forms). It
stops the run, before anything is written, on

- a column whose name suggests a direct identifier, after splitting words run together or
  in camelCase (``nhsnumber``, ``dateofbirth``, ``DoB``, ``clientName``), and a header that
  is itself an identifier (an e-mail address, a person's name);
- any value that looks like an e-mail address (internationalised domains too), a UK or
  international phone number or an NHS number (10 digits passing the modulus-11 check)
  written with any common separator or prefix (spaces, dots, dashes, slashes, ``+44``,
  ``0044``, ``(0)``, ``NHS``), a UK postcode, or a US social security number;
- in a contract column, a value that does not look like a code: ids must be tokens (no
  spaces), labels short, and no value may read as a person's name or as prose
  (``pipeline.contract.TEXT_RULES``).

Messages name the file, column and line numbers but never echo the value: it is masked,
and so is any column or file name that does not itself pass the scan (``safe_label``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.contract import TEXT_RULES, ColumnSpec, TextRule
from pipeline.ingest.read import distinct_values

# Column-name tokens (after splitting on non-letters) that suggest a direct identifier.
IDENTIFIER_NAME_TOKENS = {
    "name",
    "names",
    "firstname",
    "forename",
    "surname",
    "lastname",
    "fullname",
    "email",
    "mail",
    "phone",
    "telephone",
    "mobile",
    "tel",
    "fax",
    "address",
    "street",
    "postcode",
    "postal",
    "zip",
    "zipcode",
    "dob",
    "birth",
    "birthdate",
    "birthday",
    "nhs",
    "ssn",
    "mrn",
    "passport",
    "licence",
    "license",
    "notes",
    "note",
    "freetext",
    "comment",
    "comments",
    "narrative",
}
# Identifier words as they are run together in column names (``nhsnumber``, ``dateofbirth``):
# searched in the name with separators removed. A curated list, not a dictionary segmenter:
# each entry is specific enough not to occur inside an ordinary analysis column's name.
RUN_TOGETHER_NAMES = (
    "nhsnumber",
    "nhsno",
    "dateofbirth",
    "birthdate",
    "emailaddress",
    "email",
    "clientname",
    "patientname",
    "personname",
    "firstname",
    "lastname",
    "fullname",
    "givenname",
    "familyname",
    "middlename",
    "maidenname",
    "forename",
    "surname",
    "homeaddress",
    "streetaddress",
    "postaladdress",
    "postcode",
    "zipcode",
    "phonenumber",
    "telephone",
    "mobilenumber",
    "mobileno",
    "nationalinsurance",
    "nino",
    "passportnumber",
    "hospitalnumber",
    "medicalrecord",
    "localpatientid",
    "socialsecurity",
    "freetext",
)
IDENTIFIER_NAME_PHRASES = (
    "date_of_birth",
    "free_text",
    "social_security",
    "medical_record",
    "hospital_number",
    "e_mail",
    "post_code",
    "zip_code",
    "local_patient",  # NHS data sets' LocalPatientId: the provider's own patient number
)

# RE2 patterns (pyarrow.compute) searched anywhere in a normalised cell.
VALUE_PATTERNS = {
    # Any characters but separators around the @ (internationalised domains too); kept to
    # ASCII classes, which RE2 compiles in microseconds (Unicode classes take milliseconds,
    # paid on every column of every table).
    "an e-mail address": (
        r"[^\s@<>,;:\"()\[\]]+@[^\s@<>,;:\"()\[\]]+\.[^\s@<>,;:\"()\[\].0-9]{2,}"
    ),
    "a UK postcode": (
        r"(?i)(?:^|[^A-Z0-9])(?:[A-PR-UWYZ][0-9][0-9A-HJKPSTUW]?"
        r"|[A-PR-UWYZ][A-HK-Y][0-9][0-9ABEHMNPRVWXY]?)\s*[0-9][ABD-HJLNP-UW-Z]{2}(?:[^A-Z0-9]|$)"
    ),
    "a US social security number": r"(?:^|[^0-9])[0-9]{3}-[0-9]{2}-[0-9]{4}(?:[^0-9]|$)",
    "a phone number": r"(?:^|[^0-9])\([0-9]{3}\)\s?[0-9]{3}[\-\s.][0-9]{4}(?:[^0-9]|$)",
}
PHONE = "a phone number"
NHS_NUMBER = "an NHS number"
NOT_A_CODE = "free text or a name where the contract expects a code"
KINDS = (
    "a direct identifier by its name",
    "a column name that is itself an identifier",
    *VALUE_PATTERNS,
    NHS_NUMBER,
    NOT_A_CODE,
)
"""Every kind of finding, in the order messages list them."""

# Nine or more digits written with separators: the candidates for phone and NHS numbers
# (RE2 prefilter; the candidates are then read digit by digit in Python).
_DIGITS_PREFILTER = r"[0-9](?:[\s.\-/()]{0,3}[0-9]){8,}"
# Every value pattern and the digits prefilter as one alternation: a value none of them
# matches fails it in a single RE2 pass (a pattern's own flags stay inside its group).
_ANY_VALUE_PATTERN = "|".join(f"(?:{p})" for p in (*VALUE_PATTERNS.values(), _DIGITS_PREFILTER))
_ISO_DATE_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:Z|[+-]\d{2}:?\d{2})?"
)
_DECIMAL = re.compile(r"\s*[-+]?(0|[1-9]\d*)\.\d+\s*")
_DIGIT_RUN = re.compile(r"(?<!\d)(\+|00)?(?:\(?\d\)?[\s.\-/]{0,2}){7,16}(?!\d)")
_UK_FIRST = set("1235789")  # UK numbers: 01, 02, 03, 05, 07, 08, 09 after the trunk 0


@dataclass(frozen=True)
class _Digits:
    phone: bool
    nhs: bool


def _read_digits(text: str) -> _Digits:
    """Whether one (normalised) text holds a UK or international phone number or an NHS
    number, in any common spelling: digits grouped by spaces, dots, dashes or slashes,
    ``+44``/``0044``/``(0)`` prefixes, ``NHS`` or ``tel:`` before the digits."""
    text = _ISO_DATE_TIME.sub(" ", text)  # dates and times are not phone numbers
    plain = _DECIMAL.fullmatch(text)
    signed_long = text.strip().startswith("+") and len(re.sub(r"\D", "", text)) >= 9
    phone = nhs = False
    if plain and not signed_long:  # a plain decimal: only its whole part could be one
        # ("+44.7700900000" is a phone number with a dot, not a decimal: measurements do
        # not carry a plus sign and nine digits) -- except an NHS number written with one
        # dot where its 3-3-4 grouping puts a gap ("943.4765919", "943476.5919"): ten
        # digits, the dot after the third or sixth, and a valid check digit
        whole, _, fraction = text.strip().lstrip("+-").partition(".")
        if len(whole) in (3, 6) and len(whole + fraction) == 10:
            nhs = bool(nhs_number_valid(np.array([[int(c) for c in whole + fraction]]))[0])
        text = plain.group(1)
    for m in _DIGIT_RUN.finditer(text):
        digits = re.sub(r"\D", "", m.group())
        international = m.group(1) is not None
        if international:
            number = digits[2:] if m.group(1) == "00" else digits
            if number.startswith("44"):
                national = number[2:]
                national = national[1:] if national.startswith("0") else national
                phone |= len(national) in (9, 10) and national[:1] in _UK_FIRST
            phone |= m.group(1) == "+" and 7 <= len(number) <= 15
        elif len(digits) in (10, 11) and digits[0] == "0" and digits[1] in _UK_FIRST:
            phone = True
        if len(digits) == 10:
            nhs |= bool(nhs_number_valid(np.array([[int(c) for c in digits]]))[0])
    return _Digits(phone, nhs)


# --- names and prose where the contract expects a code ---------------------------------

TITLES = {"dr", "mr", "mrs", "ms", "miss", "mx", "prof", "sir", "dame", "rev", "lady", "lord"}
"""Honorifics: one followed by a capitalised word reads as a person's name (``Dr Jane Roe``)."""

_SERVICE_WORDS_TEXT = """
    a an and of for the in on at to with by from or not no yes via per
    cbt ipt emdr dit ebt ba gsh pwp cfd ccbt ict cat act dbt mbct pe eft
    cognitive behavioural behavioral therapy therapies therapist psychotherapy psychological
    psychology counselling counseling counsellor depression anxiety anxious depressive
    interpersonal dynamic brief guided self help selfhelp high low intensity step stepped
    activation behaviour behavior exposure response prevention trauma focused focussed
    group individual couples couple family online digital computerised computerized
    mindfulness based relaxation problem solving stress management sleep insomnia panic
    social phobia health ocd ptsd gad mixed disorder obsessive compulsive post traumatic
    generalised generalized psychoeducation psychoeducational course courses workshop
    class classes programme program employment support advice signposting assessment
    review telephone phone video text message letter app face in person person inperson
    session sessions appointment appointments attended attend did cancelled canceled
    client service patient clinician therapist late notice arrived seen
    referral referred discharged discharge completed complete dropped out declined moved
    away still open other unknown not stated none partial full work caregiving transport
    financial male female non binary nonbinary prefer say
    site clinic team hub service services north south east west central city county
    primary care community hospital centre center nhs trust local area
    date number id code type status score rating end start first last name notes
    modality duration homework agenda alliance barrier reported reason band gender
    presenting planned measure instrument goal goals set achieved direction channel
    responded contact contacts episode episodes
    """
SERVICE_WORDS = frozenset(_SERVICE_WORDS_TEXT.split())
"""Words of therapy, service and column labels: two capitalised words count as a person's
name only when neither is one of these (``Guided Self Help`` is a label, ``John Smith`` is
not). A site label of two place-name words is refused too: codes are asked for."""

_WORD = re.compile(r"[^\W\d_]+(?:['’\-][^\W\d_]+)*")
_CAPITALISED = re.compile(r"[^\W\d_a-z][^\W\d_A-Z]+(?:['’\-][^\W\d_]+)*")
_SENTENCE = re.compile(r"[,;:!?]\s|\.\s+\w|\s-\s\w+\s\w+\s\w+")


def reads_as_name_or_prose(text: str, rule: TextRule) -> bool:
    """Whether a (normalised, trimmed) value reads as a person's name or as free text
    rather than a code or short label: longer than the rule allows, more words than it
    allows, sentence punctuation, an honorific before a capitalised word, or two
    capitalised words neither of which is a service word."""
    if len(text) > rule.max_length:
        return True
    if rule.pattern is not None and re.fullmatch(rule.pattern, text) is None:
        return True
    words = _WORD.findall(text)
    if len(words) > rule.max_words or _SENTENCE.search(text):
        return True
    pairs = re.findall(r"(?=(?:^|\s)([^\s]+)\s+([^\s]+))", text)
    for first, second in pairs:
        a, b = first.rstrip(".,"), second.rstrip(".,")
        if a.lower() in TITLES and _CAPITALISED.fullmatch(b):
            return True
        if (
            _CAPITALISED.fullmatch(a)
            and _CAPITALISED.fullmatch(b)
            and a.lower() not in SERVICE_WORDS
            and b.lower() not in SERVICE_WORDS
        ):
            return True
    return False


def normalise(text: str) -> str:
    """NFKC: full-width and other compatibility forms become their plain forms."""
    return unicodedata.normalize("NFKC", text)


@dataclass(frozen=True)
class IdentifierFinding:
    file: str
    column: str
    kind: str
    lines: tuple[int, ...]
    masked_example: str
    position: int | None = None
    """1-based place of the column in the header (names a column whose name is masked)."""

    def message(self) -> str:
        where = ", ".join(map(str, self.lines[:5]))
        more = f" and {len(self.lines) - 5} more" if len(self.lines) > 5 else ""
        place = f" (column {self.position} of the header)" if self.position else ""
        column = f"{safe_label(self.file)}, column '{safe_label(self.column)}'{place}"
        if not self.lines:
            return f"{column}: {self.kind} ({self.masked_example})."
        return (
            f"{column}: {len(self.lines)} value(s) look like {self.kind} "
            f"(e.g. {self.masked_example}; line(s) {where}{more})."
        )


def mask(value: str) -> str:
    """Keep the first character and the length; hide the rest."""
    text = str(value)
    return (text[:1] + "*" * (len(text) - 1)) if text else ""


_LABEL_CHARS = re.compile(r"[\w .\-()/#+&]{1,48}")
_LABEL_RULE = TextRule("label of the input", "a file or column name", 48, 6, None)


def safe_label(text: str) -> str:
    """A name taken from the input (a file or column name) as it may be shown: unchanged
    when it is short, plain and passes the same scan as values, else masked."""
    norm = normalise(str(text))
    if (
        _LABEL_CHARS.fullmatch(norm)
        and not _text_findings(norm)
        and not reads_as_name_or_prose(norm, _LABEL_RULE)
    ):
        return norm
    return mask(norm)


def _text_findings(text: str) -> list[str]:
    """The identifier kinds one normalised text holds (a file or column name): the same
    RE2 patterns as for values, on a one-element array."""
    arr = pa.array([text], type=pa.string())
    kinds = [k for k, pattern in VALUE_PATTERNS.items() if _regex_hits(arr, pattern)[0]]
    digits = _read_digits(text)
    if digits.phone and PHONE not in kinds:
        kinds.append(PHONE)
    if digits.nhs:
        kinds.append(NHS_NUMBER)
    return kinds


def suspicious_column_name(name: str) -> bool:
    """Whether a column's name suggests a direct identifier: a word of the list after
    splitting on separators and camelCase, a known phrase, or identifier words run together
    (``nhsnumber``, ``dateofbirth``, ``DoB``)."""
    text = normalise(str(name))
    spaced = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", text)  # NHSNumber → NHS_Number
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", spaced)  # dateOfBirth → date_Of_Birth
    norm = re.sub(r"[^a-z0-9]+", "_", spaced.lower()).strip("_")
    plain = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")  # DoB → dob
    tokens = set(norm.split("_")) | set(plain.split("_"))
    compact = re.sub(r"[^a-z]+", "", text.lower())
    return (
        bool(tokens & IDENTIFIER_NAME_TOKENS)
        or any(p in norm or p in plain for p in IDENTIFIER_NAME_PHRASES)
        or any(word in compact for word in RUN_TOGETHER_NAMES)
    )


def nhs_number_valid(digits: np.ndarray) -> np.ndarray:
    """Modulus-11 check for an (n, 10) array of digits (vectorised)."""
    weights = np.arange(10, 1, -1)
    total = (digits[:, :9] * weights).sum(axis=1)
    check = 11 - total % 11
    check = np.where(check == 11, 0, check)
    return (check != 10) & (check == digits[:, 9])


def _as_text(values: pd.Series) -> pa.Array | None:
    """Cell texts as an NFKC-normalised Arrow string array. Whole numbers stored as floats
    (an integer column with gaps) are written as integers; other numbers, booleans and
    dates cannot hold an identifier and are skipped."""
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_datetime64_any_dtype(values):
        return None
    if pd.api.types.is_float_dtype(values):
        whole = values[np.isfinite(values) & (values == np.floor(values)) & (values.abs() < 1e15)]
        values = whole.astype("int64").astype("string").reindex(values.index)
    arr = pa.array(values.astype("string"), type=pa.string(), from_pandas=True)
    return pc.utf8_normalize(arr, "NFKC")


def _regex_hits(arr: pa.Array, pattern: str) -> np.ndarray:
    return pc.fill_null(pc.match_substring_regex(arr, pattern), False).to_numpy(
        zero_copy_only=False
    )


def _code_misfits(arr: pa.Array, rule: TextRule, known: set[str]) -> np.ndarray:
    """Positions of distinct values that break a column's text rule (names, prose, or for
    tokens anything but a token). Values the column knows (its allowed values and codes,
    normalised) are never flagged."""
    texts = pc.utf8_trim_whitespace(arr)
    length = pc.fill_null(pc.utf8_length(texts), 0).to_numpy(zero_copy_only=False)
    if rule.pattern is None:  # labels: only values with two words or a long text can misfit
        suspect = _regex_hits(texts, r"[^\s]\s+[^\s]") | (length > rule.max_length)
    else:  # tokens: RE2 finds the misfits at national scale
        fits = _regex_hits(texts, f"^(?:{rule.pattern})$") & (length <= rule.max_length)
        suspect = ~fits & pc.is_valid(texts).to_numpy(zero_copy_only=False) & (length > 0)
    out = []
    for i in np.flatnonzero(suspect):
        text = texts[int(i)].as_py()
        if _label_key(text) in known:
            continue
        if rule.pattern is not None or reads_as_name_or_prose(text, rule):
            out.append(int(i))
    return np.asarray(out, dtype=int)


def _label_key(text: str) -> str:
    """A value as the parser compares category spellings (trimmed, lower-case, separators
    as one underscore)."""
    return re.sub(r"[\s\-_]+", "_", text.strip().lower())


def known_spellings(values: Iterable[str]) -> set[str]:
    """Allowed values and codes of a column, as ``_code_misfits`` compares them."""
    return {_label_key(str(v)) for v in values}


def scan_values(
    values: pd.Series,
    lines: pd.Series,
    factorized: tuple[np.ndarray, pd.Series] | None = None,
    rule: TextRule | None = None,
    known: set[str] | None = None,
) -> list[tuple[str, np.ndarray, str]]:
    """(kind, line numbers, masked example) for every identifier kind found in a column.

    Patterns run once per distinct value (RE2 via pyarrow, on NFKC-normalised text), then
    hits map back to rows. ``factorized``: the column's ``distinct_values``, if already
    computed. ``rule``: the contract's text rule for the column (None for a column outside
    the contract), with the values it ``known``s.
    """
    if len(values) == 0:
        return []
    codes, uniques = factorized if factorized is not None else distinct_values(values)
    arr = _as_text(uniques)
    if arr is None or len(arr) == 0:
        return []
    found = []

    def report(kind: str, unique_hits: np.ndarray) -> None:
        rows = np.flatnonzero(np.isin(codes, unique_hits))
        if rows.size == 0:
            return
        found.append((kind, lines.to_numpy()[rows], mask(arr[int(unique_hits[0])].as_py())))

    # One pass of every pattern at once over all distinct values; each pattern then runs
    # only on the values that pass (usually none: an id column is millions of them).
    maybe = np.flatnonzero(_regex_hits(arr, _ANY_VALUE_PATTERN))
    suspects = arr.take(pa.array(maybe, type=pa.int64()))

    def hits(pattern: str) -> np.ndarray:
        return maybe[_regex_hits(suspects, pattern)]

    for kind, pattern in VALUE_PATTERNS.items():
        if kind == PHONE:
            continue  # reported with the other phone spellings below
        hit = hits(pattern)
        if hit.size:
            report(kind, hit)
    us_phone = hits(VALUE_PATTERNS[PHONE])
    candidate = hits(_DIGITS_PREFILTER)
    read = [_read_digits(arr[int(i)].as_py()) for i in candidate]
    phone = candidate[[d.phone for d in read]] if read else candidate[:0]
    phone = np.union1d(phone, us_phone)
    if phone.size:
        report(PHONE, phone)
    nhs = candidate[[d.nhs for d in read]] if read else candidate[:0]
    if nhs.size:
        report(NHS_NUMBER, nhs)
    if rule is not None:
        misfits = _code_misfits(arr, rule, known or set())
        if misfits.size:
            report(NOT_A_CODE, misfits)
    return found


def find_identifiers(
    file: str,
    frame: pd.DataFrame,
    lines: pd.Series,
    distinct: Callable[[str], tuple[np.ndarray, pd.Series]] | None = None,
    specs: dict[str, ColumnSpec] | None = None,
    known: dict[str, set[str]] | None = None,
) -> list[IdentifierFinding]:
    """Every identifier-like column name and value in one table (contract and extra columns).
    ``distinct``: the columns' distinct values by name (``RawTable.distinct``), shared with
    the parser so each column is factorised once. ``specs``: the contract columns of the
    table, whose values must also look like codes (``TEXT_RULES``); ``known``: per column,
    the spellings it accepts (allowed values and codes), never flagged as free text."""
    findings = []
    specs = specs or {}
    known = known or {}
    for position, column in enumerate(frame.columns, start=1):
        name = str(column)
        header_kinds = _text_findings(normalise(name))
        if header_kinds:
            findings.append(
                IdentifierFinding(
                    file,
                    name,
                    "a column name that is itself an identifier",
                    (),
                    f"looks like {header_kinds[0]}; values not inspected",
                    position,
                )
            )
            continue
        if suspicious_column_name(name):
            findings.append(
                IdentifierFinding(
                    file,
                    name,
                    "a direct identifier by its name",
                    (),
                    "values not inspected",
                    position,
                )
            )
            continue
        factorized = distinct(column) if distinct is not None else None
        spec = specs.get(name)
        rule = TEXT_RULES[spec.kind] if spec is not None and spec.kind in TEXT_RULES else None
        for kind, hit_lines, example in scan_values(
            frame[column], lines, factorized, rule, known.get(name)
        ):
            findings.append(
                IdentifierFinding(
                    file, name, kind, tuple(int(x) for x in hit_lines), example, position
                )
            )
    return findings
