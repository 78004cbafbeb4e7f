"""Quarantine reason codes: the machine-readable contract, with the Chinese message reviewers read.

A row-level reason is stored as ``code`` or ``code:FIELD`` (the field code it concerns).
File-level reasons apply to every row of a rejected file.
"""

from __future__ import annotations

# Reading the file (row level).
READ_REASONS = {
    "ragged_row": "列数与表头不一致",
    "undecodable_bytes": "含无法识别的字符编码（非UTF-8/GB18030）",
    "malformed_json": "不是合法的JSON对象",
    "unclosed_quote": "引号未闭合：字段以引号开始但在行末未结束，已在行末截断",
}

# Whole-file problems: every row of the file is quarantined with this reason.
FILE_REASONS = {
    "unrecognized_header": "表头无一能与归集目录字段对应",
    "missing_required_column": "缺少必填列",
    "duplicate_header": "多个表头对应同一字段",
    "empty_file": "空文件",
    "unknown_dataset": "无法确定所属数据集",
    "unsafe_file_name": "文件名含非法字符",
    "unsupported_format": "不支持的文件格式",
    "unreadable_file": "文件已损坏，无法读取",
    "not_a_feed": "不是数据表格文件（如PDF、压缩包、图片、网页）",
    "utf16_without_bom": "文件为缺少BOM的UTF-16编码，无法可靠识别",
    "password_protected": "文件设有打开密码，无法读取",
    "broken_json": "JSON格式错误，无法拆分为记录",
    "no_data_sheet": "工作簿中没有可读取的数据表",
    "unsafe_link": "收到的是符号链接，不是文件（链接不被跟随）",
    "not_a_regular_file": "不是普通文件（管道、套接字或设备）",
}

# Field values (row level, with the field code).
VALUE_REASONS = {
    "required_missing": "必填项为空",
    "value_not_allowed": "取值不在规定范围",
    "invalid_date": "日期无法识别",
    "invalid_amount": "金额无法识别",
    "invalid_integer": "整数无法识别",
    "out_of_range": "数值超出合理范围",
    "field_too_long": "字段超长",
    "date_order": "起始日期晚于截止日期",
    "duplicate_row": "同一批次内重复记录",
}

# Cross-checks against the register of the issuing authorities (法人基础信息).
REGISTER_REASONS = {
    "not_in_register": "统一社会信用代码不在法人基础信息库中",
    "name_mismatch": "名称与法人基础信息库登记名称不一致",
}

# Credit repair (信用修复) naming a published record: see warehouse/public_records.py.
REPAIR_REASONS = {
    "repair_unknown_record": "所修复的信息在库中不存在（原决定书文号、信息类别或主体不符）",
    "repair_before_minimum": "修复决定早于该信息最短公示期届满之日",
    "repair_not_repairable": "该信息按规定不可提前修复（须公示期满）",
}

# Identifier checks (GB 32100-2015, GB 11714, GB 11643); see transforms/identifiers.py.
CODE_REASONS = {
    "uscc_length": "统一社会信用代码长度不是18位",
    "uscc_charset": "统一社会信用代码含非法字符（I、O、Z、S、V或其他）",
    "uscc_authority_category": "登记管理部门代码与机构类别代码不匹配",
    "uscc_division": "登记管理机关行政区划码不存在",
    "uscc_org_check": "主体标识码（组织机构代码）校验位错误",
    "uscc_check_digit": "统一社会信用代码校验位错误",
    "uscc_placeholder": "统一社会信用代码为占位符（全零等）",
    "uscc_excel_damage": "统一社会信用代码疑被Excel截断（末尾为000）",
    "wrong_kind_registration_number": "填入的是15位工商注册号，不是统一社会信用代码",
    "wrong_kind_org_code": "填入的是9位组织机构代码，不是统一社会信用代码",
    "wrong_kind_resident_id": "填入的是公民身份号码，不是统一社会信用代码",
    "org_length": "组织机构代码长度错误",
    "org_charset": "组织机构代码含非法字符",
    "org_check_digit": "组织机构代码校验位错误",
    "rid_length": "公民身份号码长度错误",
    "rid_charset": "公民身份号码含非法字符",
    "rid_division": "公民身份号码地址码不存在",
    "rid_birth_date": "公民身份号码出生日期无效",
    "rid_check_digit": "公民身份号码校验位错误",
}

ALL_REASONS: dict[str, str] = {**READ_REASONS, **FILE_REASONS, **VALUE_REASONS, **REGISTER_REASONS,
                               **REPAIR_REASONS, **CODE_REASONS}


def reason_code(reason: str) -> str:
    """``uscc_check_digit:CF_XDR_SHXYM`` -> ``uscc_check_digit``."""
    return reason.split(":", 1)[0]


def message_zh(reasons: list[str], field_names: dict[str, str] | None = None) -> str:
    """Chinese message for a list of reasons, naming the field in Chinese when known."""
    parts = []
    for reason in reasons:
        code, _, field = reason.partition(":")
        text = ALL_REASONS.get(code, code)
        if field:
            label = (field_names or {}).get(field, field)
            text = f"{label}：{text}"
        parts.append(text)
    return "；".join(parts)
