"""Rows of the double-publicity (双公示) and other administrative decision feeds.

In: the ``City``, a seeded generator, a department and a row count. Out: ``Row`` lists for
licences (``build_licences``), penalties (``build_penalties``) and the five other kinds of
administrative management information (``build_admin``: enforcement, confirmation,
adjudication, reward, inspection), numbered by decision date, with their templates
(``LICENCES``, ``PENALTIES``, ``ADMIN``).
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal

from sample_city.entities import (
    NATURAL,
    RUSHAN,
    City,
    Entity,
    Person,
    _add_years,
    _rand_date,
    _zh_date,
    fmt_amount,
)
from sample_city.rows import Row


def _subject_values(prefix: str, subject: Entity | Person, with_rep: bool) -> dict[str, object]:
    """行政相对人 fields of the double-publicity pattern (prefix CF / XK / QZ / ...)."""
    if isinstance(subject, Person):
        return {
            f"{prefix}_XDR_MC": subject.name,
            f"{prefix}_XDR_LB": NATURAL,
            f"{prefix}_XDR_ZJLX": "身份证",
            f"{prefix}_XDR_ZJHM": subject.rid,
        }
    values: dict[str, object] = {
        f"{prefix}_XDR_MC": subject.name,
        f"{prefix}_XDR_LB": subject.subject_type,
        f"{prefix}_XDR_SHXYM": subject.uscc,
    }
    if with_rep:
        values[f"{prefix}_FRDB"] = subject.rep.name
        values[f"{prefix}_FR_ZJLX"] = "身份证"
        values[f"{prefix}_FR_ZJHM"] = subject.rep.rid
    return values


def _numbered(
    rows: list[tuple[date, dict]], rng: random.Random, prefix: str, wsh_field: str
) -> list[dict]:
    """Sort by decision date and give decision numbers like 乳市监罚〔2022〕123号."""
    rows.sort(key=lambda item: item[0])
    number = rng.randint(1, 40)
    out = []
    for _, values in rows:
        number += rng.choice((1, 1, 1, 2, 3))  # gaps: numbers used by decisions of other kinds
        values[wsh_field] = f"{prefix}〔2022〕{number}号"
        out.append(values)
    return out


def _pick_subject(city: City, rng: random.Random, person_share: float, pool: list[Entity]):
    return city.person(rng) if rng.random() < person_share else rng.choice(pool)


PenaltyTemplate = tuple[str, str, str, list[str], tuple[float, float]]

PENALTIES: dict[str, tuple[str, float, list[PenaltyTemplate]]] = {
    # department: (decision-number prefix, share of natural persons, templates
    #   (违法行为类型, 违法事实, 处罚依据, 处罚类别, fine range in 万元))
    "market_regulation": (
        "乳市监罚",
        0.1,
        [
            (
                "经营超过保质期的食品",
                "在其经营场所销售超过保质期的食品",
                "《中华人民共和国食品安全法》第一百二十四条第一款第（五）项",
                ["罚款", "没收违法所得"],
                (0.5, 5),
            ),
            (
                "销售不合格产品",
                "销售经抽样检验不合格的产品",
                "《中华人民共和国产品质量法》第四十九条",
                ["罚款", "没收违法所得"],
                (0.2, 3),
            ),
            (
                "使用未经定期检验的特种设备",
                "使用未经定期检验的电梯",
                "《中华人民共和国特种设备安全法》第八十四条第（一）项",
                ["罚款"],
                (3, 30),
            ),
            (
                "发布虚假广告",
                "通过微信公众号发布含有虚假内容的广告",
                "《中华人民共和国广告法》第五十五条第一款",
                ["罚款"],
                (1, 10),
            ),
            (
                "不按规定明码标价",
                "销售商品未按规定明码标价",
                "《中华人民共和国价格法》第四十二条",
                ["警告"],
                (0, 0),
            ),
            (
                "未取得食品经营许可从事食品经营活动",
                "未取得食品经营许可从事食品销售",
                "《中华人民共和国食品安全法》第一百二十二条第一款",
                ["没收违法所得", "罚款"],
                (0.5, 5),
            ),
        ],
    ),
    "ecology_environment": (
        "威环乳罚字",
        0.05,
        [
            (
                "超标排放大气污染物",
                "超过大气污染物排放标准排放大气污染物",
                "《中华人民共和国大气污染防治法》第九十九条第（二）项",
                ["罚款"],
                (10, 100),
            ),
            (
                "未批先建",
                "建设项目环境影响报告表未经批准擅自开工建设",
                "《中华人民共和国环境影响评价法》第三十一条第一款",
                ["罚款"],
                (5, 50),
            ),
            (
                "未按规定贮存危险废物",
                "未按照国家环境保护标准贮存危险废物",
                "《中华人民共和国固体废物污染环境防治法》第一百一十二条第一款第（六）项",
                ["罚款"],
                (10, 100),
            ),
            (
                "未按规定设置排污口",
                "未按照规定设置排污口",
                "《中华人民共和国水污染防治法》第八十四条第二款",
                ["罚款"],
                (2, 20),
            ),
        ],
    ),
    "urban_management": (
        "乳综执罚",
        0.4,
        [
            (
                "擅自设置户外广告",
                "未经批准擅自设置大型户外广告设施",
                "《城市市容和环境卫生管理条例》第三十六条第（四）项",
                ["罚款"],
                (0.05, 0.5),
            ),
            (
                "擅自占用城市道路",
                "未经批准擅自占用城市道路堆放物料",
                "《城市道路管理条例》第四十二条第（二）项",
                ["罚款"],
                (0.1, 2),
            ),
            (
                "违法建设",
                "未取得建设工程规划许可证进行建设",
                "《中华人民共和国城乡规划法》第六十四条",
                ["罚款"],
                (1, 20),
            ),
            (
                "随意倾倒建筑垃圾",
                "随意倾倒、抛撒建筑垃圾",
                "《城市建筑垃圾管理规定》第二十六条",
                ["罚款"],
                (0.5, 5),
            ),
        ],
    ),
    "transport": (
        "乳交罚",
        0.6,
        [
            (
                "未取得道路运输经营许可擅自从事道路运输经营",
                "未取得道路运输经营许可擅自从事道路客运经营",
                "《中华人民共和国道路运输条例》第六十三条",
                ["罚款", "没收违法所得"],
                (1, 10),
            ),
            (
                "车辆超限运输",
                "驾驶车货总重超过限定标准的车辆在公路上行驶",
                "《公路安全保护条例》第六十四条",
                ["罚款"],
                (0.1, 3),
            ),
            (
                "未按规定维护和检测运输车辆",
                "未按照规定对营运车辆进行综合性能检测",
                "《中华人民共和国道路运输条例》第七十条第一款",
                ["罚款"],
                (0.1, 0.3),
            ),
        ],
    ),
    "tax": (
        "乳税简罚",
        0.05,
        [
            (
                "未按照规定期限办理纳税申报",
                "未按照规定期限办理增值税纳税申报",
                "《中华人民共和国税收征收管理法》第六十二条",
                ["罚款"],
                (0.02, 0.2),
            ),
            (
                "未按规定开具发票",
                "应开具而未开具发票",
                "《中华人民共和国发票管理办法》第三十五条第（一）项",
                ["罚款"],
                (0.05, 1),
            ),
            (
                "丢失发票",
                "丢失增值税普通发票",
                "《中华人民共和国发票管理办法》第三十六条",
                ["罚款"],
                (0.01, 0.3),
            ),
        ],
    ),
}


def _yuan(rng: random.Random, lo: float, hi: float) -> int:
    return max(100, round(rng.uniform(lo, hi) * 100) * 100)  # whole hundreds of yuan


def build_penalties(
    city: City, rng: random.Random, dept: str, n: int, pool: list[Entity]
) -> list[Row]:
    prefix, person_share, templates = PENALTIES[dept]
    agency, agency_name = city.agencies[dept], city.catalog.department(dept).name_zh
    drafts = []
    for _ in range(n):
        subject = _pick_subject(city, rng, person_share, pool)
        wfxw, fact, basis, kinds, (lo, hi) = rng.choice(templates)
        decided = _rand_date(rng, date(2022, 1, 4), date(2022, 12, 30), workday=True)
        until = _add_years(decided, 1)
        values = _subject_values(
            "CF", subject, with_rep=isinstance(subject, Entity) and rng.random() < 0.6
        )
        content = []
        if "警告" in kinds:
            content.append("警告")
        if "没收违法所得" in kinds:
            gains = _yuan(rng, 0.01, max(lo, 0.05))
            values["CF_NR_WFFF"] = fmt_amount(Decimal(gains) / 10000)
            content.append(f"没收违法所得人民币{gains}元")
        if "罚款" in kinds:
            fine = _yuan(rng, lo, hi)
            values["CF_NR_FK"] = fmt_amount(Decimal(fine) / 10000)
            content.append(f"罚款人民币{fine}元")
        committed = decided - timedelta(days=rng.randint(20, 120))
        values.update(
            CF_WFXW=wfxw,
            CF_SY=f"经查，当事人于{_zh_date(committed)}{fact}。",
            CF_YJ=basis,
            CF_CFLB=rng.choice(("、", ";", "；")).join(kinds),
            CF_NR="，".join(content),
            CF_JDRQ=decided.isoformat(),
            CF_YXQ=until.isoformat(),
            CF_GSJZQ=until.isoformat(),
            CF_CFJG=agency_name,
            CF_CFJGDM=agency,
            CF_SJLY=agency_name,
            CF_SJLYDM=agency,
            CF_AJMC=f"{subject.name}{wfxw}案",  # pre-2019 field, only the old template carries it
        )
        drafts.append((decided, values))
    numbered = _numbered(drafts, rng, prefix, "CF_WSH")
    return [Row(values=v, entity=_entity_of(city, v, "CF")) for v in numbered]


def _entity_of(city: City, values: dict, prefix: str) -> Entity | None:
    code = values.get(f"{prefix}_XDR_SHXYM")
    return city.by_code.get(code) if code else None


LICENCES = {
    # department: (decision-number prefix, share of natural persons, templates
    #   (许可证书名称, 许可类别, 许可内容, years valid, numbering style, for persons))
    "approval": (
        "乳审服许",
        0.06,
        [
            (
                "食品经营许可证",
                "普通",
                "预包装食品（含冷藏冷冻食品）销售，散装食品（不含冷藏冷冻食品）销售",
                5,
                "JY",
                False,
            ),
            ("公共场所卫生许可证", "普通", "住宿场所", 4, "WS", False),
            ("建筑工程施工许可证", "普通", "准予办公楼及附属工程施工", 3, "SG", False),
            ("危险化学品经营许可证", "普通", "危险化学品经营（不带储存设施）", 3, "WH", False),
            ("道路运输经营许可证", "普通", "道路普通货物运输", 4, "YS", False),
            ("城市建筑垃圾处置核准", "核准", "同意建筑垃圾运输处置", 1, "HZ", False),
            ("取水许可证", "普通", "取用地下水，年取水量2万立方米", 5, "QS", False),
            ("道路运输从业人员从业资格证", "认可", "经营性道路货物运输驾驶员", 6, "CY", True),
        ],
    ),
    "market_regulation": (
        "乳市监许",
        0.0,
        [
            ("特种设备使用登记证", "登记", "电梯使用登记", 5, "TS", False),
            ("食品小作坊登记证", "登记", "食品小作坊生产：糕点、熟肉制品", 3, "XZF", False),
            ("食品生产许可证", "普通", "水产制品（干制水产品）生产", 5, "SC", False),
        ],
    ),
    "health": (
        "乳卫许",
        0.15,
        [
            ("公共场所卫生许可证", "普通", "美容美发场所", 4, "WS", False),
            ("医疗机构执业许可证", "普通", "诊疗科目：内科、外科、医学检验科", 5, "YL", False),
            ("放射诊疗许可证", "普通", "X射线影像诊断", 4, "FS", False),
            ("医师执业证书", "认可", "执业类别：临床；执业范围：内科专业", 5, "YS", True),
        ],
    ),
}


def _licence_number(rng: random.Random, style: str, decided: date, seq: int) -> str:
    if style == "JY":
        return f"JY{rng.choice('12')}{RUSHAN}{seq:07d}"
    if style == "SC":
        return f"SC{rng.randint(101, 131)}{RUSHAN}{seq:05d}"
    if style == "SG":
        return f"{RUSHAN}{decided:%Y%m%d}{seq:04d}"
    if style == "YS":
        return f"1{rng.randint(10, 99)}{RUSHAN}{decided.year}{seq:05d}"
    labels = {
        "WS": "鲁卫公证字",
        "WH": "鲁威乳危化经字",
        "YS": "鲁交运管许可威字",
        "HZ": "乳建垃核字",
        "QS": "取水（鲁威乳）字",
        "CY": "从业资格证字",
        "TS": "梯11鲁K",
        "XZF": "鲁食小作坊登字",
        "YL": "PDY",
        "FS": "鲁卫放证字",
    }
    return f"{labels.get(style, style)}〔{decided.year}〕第{RUSHAN}{seq:05d}号"


def build_licences(
    city: City, rng: random.Random, dept: str, n: int, pool: list[Entity]
) -> list[Row]:
    prefix, person_share, templates = LICENCES[dept]
    agency, agency_name = city.agencies[dept], city.catalog.department(dept).name_zh
    firm_templates = [t for t in templates if not t[5]]
    person_templates = [t for t in templates if t[5]] or firm_templates
    drafts = []
    for seq in range(1, n + 1):
        subject = _pick_subject(city, rng, person_share, pool)
        is_person = isinstance(subject, Person)
        zs, lb, content, years, style, _ = rng.choice(
            person_templates if is_person else firm_templates
        )
        decided = _rand_date(rng, date(2022, 1, 4), date(2022, 12, 30), workday=True)
        start = decided + timedelta(days=rng.choice((0, 0, 0, 1, 3)))
        values = _subject_values("XK", subject, with_rep=not is_person and rng.random() < 0.7)
        values.update(
            XK_XKWS=rng.choice(("准予行政许可决定书", "行政许可决定书")),
            XK_XKLB=lb,
            XK_XKZS=zs,
            XK_XKBH=_licence_number(rng, style, decided, seq + rng.randint(0, 9) * 1000),
            XK_NR=content,
            XK_JDRQ=decided.isoformat(),
            XK_YXQZ=start.isoformat(),
            XK_YXQZI=_add_years(start, years).isoformat(),
            XK_XKJG=agency_name,
            XK_XKJGDM=agency,
            XK_ZT=rng.choice(("有效", "有效", "有效", "1")),
            XK_LYDW=agency_name,
            XK_LYDWDM=agency,
        )
        drafts.append((decided, values))
    return [
        Row(values=v, entity=_entity_of(city, v, "XK"))
        for v in _numbered(drafts, rng, prefix, "XK_WSH")
    ]


ADMIN = {
    # (dataset, department): (field prefix, decision-number prefix, group size,
    #   templates (category, content, share of natural persons))
    ("admin_enforcement", "ecology_environment"): (
        "QZ",
        "威环乳查",
        1,
        [
            ("查封场所、设施或者财物", "对超标排放污染物的生产设施予以查封，查封期限三十日", 0.0),
            ("扣押财物", "对非法转移的危险废物予以扣押", 0.2),
        ],
    ),
    ("admin_enforcement", "urban_management"): (
        "QZ",
        "乳综执强",
        1,
        [
            ("查封场所、设施或者财物", "查封违法建设施工现场", 0.3),
            ("代履行", "对逾期未拆除的违法建设实施代履行拆除", 0.5),
            ("排除妨碍、恢复原状", "责令排除占道妨碍，恢复原状", 0.4),
        ],
    ),
    ("admin_confirmation", "civil_affairs"): (
        "QR",
        "乳民确",
        1,
        [
            ("身份确认", "最低生活保障对象认定", 1.0),
            ("身份确认", "特困人员认定", 1.0),
            ("资格确认", "社会组织年度检查结论：合格", 0.0),
        ],
    ),
    ("admin_confirmation", "human_resources"): (
        "QR",
        "乳人社工认",
        1,
        [
            ("法律事实确认", "工伤认定：认定为工伤", 1.0),
            ("资格确认", "职业技能等级认定：中级工", 1.0),
            ("资格确认", "劳务派遣单位年度经营情况报告审核", 0.0),
        ],
    ),
    ("admin_adjudication", "human_resources"): (
        "CJ",
        "乳劳人仲案字",
        1,
        [
            ("其他", "劳动争议裁决：用人单位支付拖欠工资", 0.5),
            ("损害赔偿裁决", "工伤保险待遇争议裁决：支付一次性伤残补助金", 0.5),
        ],
    ),
    ("admin_adjudication", "market_regulation"): (
        "CJ",
        "乳市监裁",
        1,
        [
            ("侵权纠纷裁决", "注册商标专用权侵权纠纷裁决：责令立即停止侵权行为", 0.1),
            ("权属纠纷裁决", "企业名称争议裁决：责令变更企业名称", 0.0),
        ],
    ),
    ("admin_reward", "emergency"): (
        "JL",
        "乳应急奖",
        6,
        [
            ("通报表扬", "2022年度安全生产工作先进单位", 0.0),
            ("发放奖金", "安全生产非法违法行为举报奖励", 1.0),
        ],
    ),
    ("admin_reward", "market_regulation"): (
        "JL",
        "乳市监奖",
        8,
        [
            ("授予荣誉称号", "守合同重信用企业", 0.0),
            ("通报表扬", "放心消费示范单位", 0.0),
            ("发放奖金", "食品安全违法行为举报奖励", 1.0),
        ],
    ),
    ("admin_inspection", "market_regulation"): (
        "JC",
        "乳市监检",
        1,
        [
            ("合格", "食品安全日常监督检查", 0.0),
            ("基本合格", "食品安全日常监督检查", 0.0),
            ("责令整改", "特种设备安全监督检查", 0.0),
            ("不合格", "“双随机、一公开”抽查：产品质量", 0.0),
            ("合格", "“双随机、一公开”抽查：登记事项", 0.05),
        ],
    ),
    ("admin_inspection", "emergency"): (
        "JC",
        "乳应急检",
        1,
        [
            ("合格", "安全生产执法检查", 0.0),
            ("责令整改", "安全生产执法检查：责令限期整改事故隐患", 0.0),
            ("基本合格", "危险化学品专项检查", 0.0),
        ],
    ),
}


def build_admin(
    city: City, rng: random.Random, dataset: str, dept: str, n: int, pool: list[Entity]
) -> list[Row]:
    prefix, wsh_prefix, group, templates = ADMIN[(dataset, dept)]
    agency, agency_name = city.agencies[dept], city.catalog.department(dept).name_zh
    societies = [e for e in city.orgs if e.kind == "社会组织"]
    decisions: list[
        tuple[date, list[dict]]
    ] = []  # one decision may name several subjects (rewards)
    total = 0
    while total < n:
        lb, content, person_share = rng.choice(templates)
        decided = _rand_date(rng, date(2022, 1, 4), date(2022, 12, 30), workday=True)
        size = min(n - total, rng.randint(1, group))
        candidates = societies if "社会组织" in content else pool
        subjects: list[Entity | Person] = []
        while len(subjects) < size:
            subject = city.person(rng) if rng.random() < person_share else rng.choice(candidates)
            if subject not in subjects:
                subjects.append(subject)
        group_rows = []
        for subject in subjects:
            values = _subject_values(prefix, subject, with_rep=False)
            values.update(
                {
                    f"{prefix}_LB": lb,
                    f"{prefix}_NR": content,
                    f"{prefix}_JDRQ": decided.isoformat(),
                    f"{prefix}_JG": agency_name,
                    f"{prefix}_JGDM": agency,
                    f"{prefix}_SJLY": agency_name,
                    f"{prefix}_SJLYDM": agency,
                }
            )
            group_rows.append(values)
        decisions.append((decided, group_rows))
        total += size
    decisions.sort(key=lambda item: item[0])
    number = rng.randint(1, 30)
    rows = []
    for _, group_rows in decisions:
        number += rng.choice((1, 1, 2))
        for values in group_rows:
            values[f"{prefix}_WSH"] = f"{wsh_prefix}〔2022〕{number}号"
            rows.append(Row(values=values, entity=_entity_of(city, values, prefix)))
    return rows
