"""The feed plan: which files the city sends, their headers, and the rows of each.

In: the ``City`` and one ``FeedSpec`` of ``FILES`` (department, file, dataset, format,
encoding, builder, row count, defect plan). Out: the plan parsed by ``parse_plan`` and the
rows of the file from ``_build_rows`` (dispatching to the builders of ``feeds_publicity`` and
``feeds_payment``), plus the header maps of the exports that do not use the catalog codes.
"""

from __future__ import annotations

import random
from typing import NamedTuple

from foundation.catalog import Dataset
from sample_city.defects import QUARANTINE_KINDS, excel_digits
from sample_city.entities import City, Entity
from sample_city.feeds_payment import (
    UTILITIES,
    build_housing_fund,
    build_social_insurance,
    build_tax,
    build_utility,
)
from sample_city.feeds_publicity import build_admin, build_licences, build_penalties
from sample_city.rows import Defect, Feed, Row
from transforms.identifiers import uscc_reasons

# 威海市生态环境局乳山分局 still exports with the pre-2019 template (old codes, Chinese headers).
PENALTY_OLD_HEADERS = {
    "CF_AJMC": "CF_AJMC",
    "CF_WSH": "处罚决定书文号",
    "CF_XDR_MC": "当事人名称",
    "CF_XDR_LB": "行政相对人类别",
    "CF_XDR_SHXYM": "社会信用代码",
    "CF_XDR_GSZC": "CF_XDR_GSDJ",
    "CF_FRDB": "CF_FR",
    "CF_XDR_ZJLX": "证件类型",
    "CF_XDR_ZJHM": "CF_SFZ",
    "CF_WFXW": "违法行为类型",
    "CF_SY": "主要违法事实",
    "CF_YJ": "处罚依据",
    "CF_CFLB": "处罚类别",
    "CF_NR": "处罚内容",
    "CF_NR_FK": "罚款金额",
    "CF_JDRQ": "处罚日期",
    "CF_YXQ": "处罚有效期",
    "CF_GSJZQ": "公示截止期",
    "CF_CFJG": "CF_XZJG",
    "CF_CFJGDM": "处罚机关代码",
    "CF_SJLY": "数据来源单位",
    "CF_SJLYDM": "数据来源单位统一社会信用代码",
    "BZ": "备注",
}
# An export from a transport system nobody mapped: nothing matches the catalog.
PENALTY_ENGLISH_HEADERS = {
    "CF_XDR_MC": "Party Name",
    "CF_XDR_LB": "Party Category",
    "CF_XDR_SHXYM": "Credit Code",
    "CF_XDR_ZJHM": "ID Number",
    "CF_WSH": "Decision No",
    "CF_WFXW": "Violation",
    "CF_SY": "Facts",
    "CF_YJ": "Legal Basis",
    "CF_CFLB": "Penalty Kind",
    "CF_NR": "Penalty Content",
    "CF_NR_FK": "Fine 10k CNY",
    "CF_JDRQ": "Decision Date",
    "CF_YXQ": "Valid Until",
    "CF_CFJG": "Authority",
    "CF_CFJGDM": "Authority Code",
    "CF_SJLY": "Source Unit",
    "CF_SJLYDM": "Source Unit Code",
}
REGISTER_HEADERS = {  # the market regulation register export uses Chinese headers
    "TYSHXYDM": "统一社会信用代码",
    "JGMC": "企业名称",
    "ZTLX": "主体类型",
    "FDDBR": "法定代表人",
    "CLRQ": "成立日期",
    "ZCZB": "注册资本（万元）",
    "DJJG": "登记机关",
    "DJZT": "登记状态",
    "ZS": "住所",
}
TAX_HEADERS = {  # Chinese names from the catalog
    "NSRSBH": "纳税人识别号",
    "NSRMC": "纳税人名称",
    "SZ": "税种",
    "SSQQ": "所属期起",
    "SSQZ": "所属期止",
    "YNSE": "应纳税额（万元）",
    "SJSE": "实缴税额（万元）",
    "QSE": "欠税额（万元）",
    "JKRQ": "缴款日期",
    "NSZT": "纳税状态",
}


class FeedSpec(NamedTuple):
    department: str
    file_name: str
    dataset: str
    fmt: str  # csv | xlsx | jsonl
    encoding: str  # utf-8-sig | utf-8 | gb18030 | utf-8+gb18030 | '' (xlsx)
    builder: str
    rows: int | None  # rows at entities=3000 (None: the register, one row per entity)
    plan: str  # "kind count [FIELD]; ..." -- count '*' = every row that fits


def parse_plan(plan: str) -> list[tuple[str, int | None, str | None]]:
    items = []
    for part in filter(None, (p.strip() for p in plan.split(";"))):
        kind, count, *field_code = part.split()
        items.append(
            (kind, None if count == "*" else int(count), field_code[0] if field_code else None)
        )
    return items


# fmt: off
FILES: list[FeedSpec] = [
    FeedSpec("market_regulation", "legal_entity_register_2022.csv", "legal_entity", "csv",
             "utf-8-sig", "register_market", None,
             "uscc_check_digit 4; uscc_excel_damage 2; wrong_kind_registration_number 3; "
             "wrong_kind_org_code 2; uscc_placeholder 1; required_missing 3 JGMC; "
             "invalid_date 3; value_not_allowed 3; invalid_amount 2; duplicate_row 3; "
             "uscc_fullwidth 2; uscc_lowercase 2; uscc_spaced 2; date_alt_format 4; "
             "amount_thousands 3; amount_unit 2"),
    FeedSpec("civil_affairs", "社会组织法人登记信息_2022.xlsx", "legal_entity", "xlsx", "",
             "register_civil", None,
             "uscc_check_digit 1; value_not_allowed 1 DJZT; uscc_spaced 1"),
    FeedSpec("approval", "行政许可信息_2022年.xlsx", "admin_license", "xlsx", "", "licence", 1200,
             "uscc_check_digit 3; uscc_excel_damage 2; wrong_kind_registration_number 2; "
             "wrong_kind_org_code 1; uscc_placeholder 1; rid_check_digit 2; required_missing 3; "
             "invalid_date 2; value_not_allowed 3; date_order 3; duplicate_row 2; "
             "uscc_fullwidth 1; uscc_lowercase 2; date_alt_format 3"),
    FeedSpec("market_regulation", "xzxk_scjg_2022.csv", "admin_license", "csv", "utf-8",
             "licence", 600,
             "uscc_check_digit 2; wrong_kind_org_code 2; required_missing 2; value_not_allowed 1; "
             "date_order 2; invalid_date 1; duplicate_row 1; ragged_row 1; formula_text 1; "
             "uscc_spaced 2; date_alt_format 2; uscc_check_digit 1 XK_XKJGDM"),
    FeedSpec("health", "health_licence_2022.jsonl", "admin_license", "jsonl", "utf-8",
             "licence", 250,
             "uscc_check_digit 1; rid_check_digit 1; required_missing 2; date_order 1; "
             "duplicate_row 1; uscc_lowercase 1; date_alt_format 1"),
    FeedSpec("market_regulation", "xzcf_scjg_2022.csv", "admin_penalty", "csv", "utf-8-sig",
             "penalty", 350,
             "uscc_check_digit 3; uscc_excel_damage 2; wrong_kind_registration_number 2; "
             "wrong_kind_org_code 2; uscc_placeholder 2; rid_check_digit 2; required_missing 3; "
             "invalid_date 2; value_not_allowed 2; invalid_amount 2; date_order 3; ragged_row 2; "
             "undecodable_bytes 1; uscc_fullwidth 2; uscc_lowercase 1; uscc_spaced 2; "
             "date_alt_format 3; formula_text 1; amount_unit 2; uscc_check_digit 1 CF_SJLYDM; "
             "duplicate_row 2"),
    # 威海市生态环境局乳山分局: GB18030, the pre-2019 template (old codes, Chinese headers)
    FeedSpec("ecology_environment", "环境行政处罚_2022.csv", "admin_penalty", "csv", "gb18030",
             "penalty_old", 150,
             "uscc_check_digit 2; required_missing 1; date_order 1; value_not_allowed 1; "
             "date_alt_format 2; amount_unit 1; duplicate_row 1"),
    # every all-digit code in this workbook is an Excel number (15 significant digits)
    FeedSpec("urban_management", "penalty_zhzf_2022.xlsx", "admin_penalty", "xlsx", "",
             "penalty_numeric", 200,
             "uscc_excel_numeric *; rid_check_digit 1; invalid_date 1; required_missing 1; "
             "uscc_fullwidth 1"),
    FeedSpec("tax", "税务行政处罚_2022.jsonl", "admin_penalty", "jsonl", "utf-8", "penalty", 120,
             "uscc_check_digit 1; wrong_kind_org_code 1; invalid_amount 1; date_alt_format 1; "
             "uscc_fullwidth 1"),
    # English headers nobody mapped: the whole file is rejected (unrecognized_header)
    FeedSpec("transport", "transport_penalty_export.csv", "admin_penalty", "csv", "utf-8",
             "penalty_english", 40, ""),
    FeedSpec("tax", "nashui_2022.csv", "tax_payment", "csv", "utf-8", "tax", 5600,
             "uscc_check_digit 4; uscc_excel_damage 3; wrong_kind_registration_number 2; "
             "wrong_kind_org_code 2; uscc_placeholder 1; required_missing 2; invalid_date 2; "
             "value_not_allowed 2; invalid_amount 2; date_order 3; ragged_row 1; amount_unit 2; "
             "date_alt_format 3; uscc_spaced 2; duplicate_row 3"),
    FeedSpec("human_resources", "shebao_2022H1.csv", "social_insurance", "csv", "utf-8",
             "si_hr", 2500,
             "uscc_check_digit 2; uscc_excel_damage 2; required_missing 2; value_not_allowed 2; "
             "invalid_amount 1; uscc_lowercase 1; duplicate_row 2"),
    FeedSpec("tax", "社会保险费_2022H2.csv", "social_insurance", "csv", "utf-8-sig",
             "si_tax", 2500,
             "uscc_check_digit 2; uscc_placeholder 1; value_not_allowed 1; uscc_fullwidth 1; "
             "amount_unit 1; duplicate_row 1"),
    FeedSpec("housing_fund", "gjj_jc_2022.jsonl", "housing_fund", "jsonl", "utf-8",
             "housing_fund", 2400,
             "uscc_check_digit 2; wrong_kind_registration_number 1; wrong_kind_org_code 1; "
             "required_missing 2; value_not_allowed 2; invalid_amount 2; uscc_spaced 1; "
             "duplicate_row 2"),
    # UTF-8 with a few lines in GB18030 (each line decodes on its own)
    FeedSpec("water_supply", "utility_water_2022.csv", "utility_payment", "csv",
             "utf-8+gb18030", "water_supply", 1500,
             "uscc_check_digit 2; value_not_allowed 1; invalid_amount 1; gb18030_line 4; "
             "amount_thousands 2; ragged_row 1; duplicate_row 1"),
    FeedSpec("power_supply", "utility_power_2022.xlsx", "utility_payment", "xlsx", "",
             "power_supply", 1500,
             "uscc_check_digit 2; uscc_excel_damage 2; required_missing 1; amount_thousands 2; "
             "duplicate_row 1"),
    FeedSpec("gas_supply", "燃气缴费_2022.csv", "utility_payment", "csv", "gb18030",
             "gas_supply", 900,
             "uscc_check_digit 1; value_not_allowed 1; invalid_amount 1; amount_unit 2; "
             "uscc_lowercase 1"),
    FeedSpec("heat_supply", "heat_utility_2022.jsonl", "utility_payment", "jsonl", "utf-8",
             "heat_supply", 600,
             "uscc_check_digit 1; wrong_kind_org_code 1; amount_thousands 1; duplicate_row 1"),
    FeedSpec("ecology_environment", "xzqz_2022.csv", "admin_enforcement", "csv", "utf-8-sig",
             "admin", 120,
             "uscc_check_digit 1; rid_check_digit 1; required_missing 1; invalid_date 1; "
             "value_not_allowed 1; date_alt_format 1; formula_text 1"),
    FeedSpec("urban_management", "行政强制_2022.jsonl", "admin_enforcement", "jsonl", "utf-8",
             "admin", 150,
             "uscc_check_digit 1; uscc_placeholder 1; invalid_date 1; date_alt_format 1; "
             "duplicate_row 1"),
    FeedSpec("civil_affairs", "xzqr_mz_2022.jsonl", "admin_confirmation", "jsonl", "utf-8",
             "admin", 150,
             "rid_check_digit 2; required_missing 1; value_not_allowed 1; date_alt_format 1"),
    FeedSpec("human_resources", "行政确认_2022.xlsx", "admin_confirmation", "xlsx", "",
             "admin", 150,
             "rid_check_digit 1; uscc_check_digit 1; invalid_date 1; duplicate_row 1"),
    FeedSpec("human_resources", "xzcj_rs_2022.csv", "admin_adjudication", "csv", "utf-8",
             "admin", 120,
             "uscc_check_digit 1; wrong_kind_registration_number 1; value_not_allowed 1; "
             "ragged_row 1; date_alt_format 1"),
    FeedSpec("market_regulation", "adjudication_scjg_2022.xlsx", "admin_adjudication", "xlsx",
             "", "admin", 100,
             "uscc_check_digit 1; required_missing 1; invalid_date 1"),
    FeedSpec("emergency", "xzjl_yj_2022.xlsx", "admin_reward", "xlsx", "", "admin", 120,
             "uscc_check_digit 1; value_not_allowed 1; duplicate_row 1"),
    FeedSpec("market_regulation", "reward_scjg_2022.jsonl", "admin_reward", "jsonl", "utf-8",
             "admin", 150,
             "uscc_check_digit 1; rid_check_digit 1; required_missing 1; uscc_lowercase 1"),
    FeedSpec("market_regulation", "xzjc_scjg_2022.csv", "admin_inspection", "csv", "utf-8-sig",
             "admin", 200,
             "uscc_check_digit 2; uscc_excel_damage 1; value_not_allowed 2; invalid_date 1; "
             "uscc_spaced 1; date_alt_format 1; duplicate_row 1"),
    FeedSpec("emergency", "inspection_yj_2022.csv", "admin_inspection", "csv", "utf-8",
             "admin", 150,
             "uscc_check_digit 1; wrong_kind_org_code 1; required_missing 1; formula_text 1"),
]
# fmt: on


def _columns(ds: Dataset, drop: tuple[str, ...] = ("CF_AJMC",)) -> list[str]:
    return [c for c in ds.field_codes if c not in drop]


def build_register(entities: list[Entity], spares: list[Entity]) -> list[Row]:
    rows = []
    for entity in sorted(entities + spares, key=lambda e: (e.founded, e.uscc)):
        rows.append(
            Row(
                values={
                    "TYSHXYDM": entity.uscc,
                    "JGMC": entity.name,
                    "ZTLX": entity.kind,
                    "FDDBR": entity.rep.name,
                    "CLRQ": entity.founded.isoformat(),
                    "ZCZB": entity.capital,
                    "DJJG": entity.registrar,
                    "DJZT": entity.status,
                    "ZS": entity.address,
                },
                entity=entity,
                spare=entity in spares,
            )
        )
    return rows


def _build_rows(
    city: City, rng: random.Random, builder: str, dept: str, ds: Dataset, n: int, plan: list[tuple]
) -> list[Row]:
    firms = [e for e in city.firms if e.kind in ("企业", "个体工商户")]
    if builder in ("register_market", "register_civil"):
        spare_count = sum(count or 0 for kind, count, _ in plan if kind in QUARANTINE_KINDS)
        if builder == "register_market":
            spares = [city.spare_company() for _ in range(spare_count)]
            return build_register(city.market_register, spares)
        spares = [city.spare_social_org() for _ in range(spare_count)]
        return build_register(city.civil_register, spares)
    if builder == "licence":
        return build_licences(city, rng, dept, n, city.firms + city.orgs)
    if builder in ("penalty", "penalty_old", "penalty_english"):
        return build_penalties(city, rng, dept, n, firms)
    if builder == "penalty_numeric":
        # Excel turned every all-digit code into a number; the numeric ones are placed by the plan.
        safe = [e for e in firms if not e.all_digits]
        rows = build_penalties(city, rng, dept, n, safe)
        digits = [
            e for e in firms if e.all_digits and uscc_reasons(excel_digits(float(int(e.uscc))))
        ]
        legal = [r for r in rows if r.entity is not None]
        for row in rng.sample(legal, min(len(legal), max(2, len(rows) // 10), len(digits))):
            entity = rng.choice(digits)
            _reassign(row, "CF", entity)
        return rows
    if builder == "tax":
        return build_tax(city, rng, n)
    if builder == "si_hr":
        pool = [e for i, e in enumerate(city.active) if i % 2 == 0 and e.kind != "社会组织"]
        return build_social_insurance(city, rng, n, (1, 6), pool)
    if builder == "si_tax":
        pool = [e for i, e in enumerate(city.active) if i % 2 == 1 and e.kind != "社会组织"]
        return build_social_insurance(city, rng, n, (7, 12), pool)
    if builder == "housing_fund":
        return build_housing_fund(city, rng, n)
    if builder in UTILITIES:
        return build_utility(city, rng, builder, n)
    if builder == "admin":
        return build_admin(city, rng, ds.id, dept, n, firms + city.orgs[:5])
    raise ValueError(builder)


def _reassign(row: Row, prefix: str, entity: Entity) -> None:
    row.values[f"{prefix}_XDR_MC"] = entity.name
    row.values[f"{prefix}_XDR_LB"] = entity.subject_type
    row.values[f"{prefix}_XDR_SHXYM"] = entity.uscc
    if row.values.get(f"{prefix}_FRDB"):
        row.values[f"{prefix}_FRDB"] = entity.rep.name
        row.values[f"{prefix}_FR_ZJHM"] = entity.rep.rid
    row.entity = entity


def dress(feed: Feed, builder: str) -> None:
    """Headers, line ends and rejection of the template's export (both generators)."""
    if builder == "penalty_old":
        feed.columns = list(PENALTY_OLD_HEADERS)
        feed.headers = PENALTY_OLD_HEADERS
        feed.newline = "\r\n"
    elif builder == "penalty_english":
        feed.columns = list(PENALTY_ENGLISH_HEADERS)
        feed.headers = PENALTY_ENGLISH_HEADERS
        feed.rejected = True
        for row in feed.rows:
            row.defect = Defect("unrecognized_header", "", "unrecognized_header", "quarantine")
    elif builder == "register_market":
        feed.headers = REGISTER_HEADERS
        feed.newline = "\r\n"
    elif builder == "tax":
        feed.headers = TAX_HEADERS
    elif feed.encoding == "gb18030":
        feed.newline = "\r\n"
