"""Data: upload events, spend and survey files with a mapping step and a parsed preview, the load
report with rejected rows, the stage map editor, data health, and a reset to the sample data."""
from __future__ import annotations

import pandas as pd
import streamlit as st

import store
from store.errors import UserInputError
from store.mapping import ALIASES, REQUIRED
from store.stages import STAGES
from ui import format as fmt
from ui.components import data_table, empty_state, page_header
from ui.context import data_facts, data_version, db, db_path, frame_download, local_date, run, tr, write
from ui.filters import TIMEZONES
from ui.kpis import _module
from ui.safe import md_escape
from ui.uploads import (
    KINDS, auto_mapping, forget, guess_kind, headers_of, keep_only, max_upload_bytes, max_upload_mb, temp_path,
)

KIND_NAMES = {"events": ("Events", "事件"), "spend": ("Ad spend", "广告花费"), "survey": ("Survey", "问卷")}
NONE = "—"
STAGE_NAMES = {"acquisition": ("acquisition", "获客"), "activation": ("activation", "激活"),
               "retention": ("retention", "留存"), "revenue": ("revenue", "收入"), "referral": ("referral", "推荐"),
               "none": ("none", "无")}
OWNER_NAMES = {"marketing": ("marketing", "市场"), "operations": ("operations", "运营")}


def stage_name(stage) -> str:
    return tr(*STAGE_NAMES[stage]) if stage in STAGE_NAMES else str(stage)


def kind_name(kind: str) -> str:
    return tr(*KIND_NAMES[kind])


def mapping_editor(i: int, kind: str, headers: list[str]) -> dict[str, str | None]:
    """The detected mapping as an editable table; returns {canonical: header or None}."""
    detected = auto_mapping(kind, headers)
    table = pd.DataFrame({
        "column": list(ALIASES[kind]),
        "required": [c in REQUIRED[kind] for c in ALIASES[kind]],
        "header": [detected.get(c, NONE) for c in ALIASES[kind]],
    })
    edited = st.data_editor(
        table, key=f"data_map_{i}_{kind}", hide_index=True, width="stretch", disabled=["column", "required"],
        column_config={
            "column": st.column_config.TextColumn(tr("Column", "字段")),
            "required": st.column_config.CheckboxColumn(tr("Required", "必填")),
            "header": st.column_config.SelectboxColumn(tr("File header", "文件列名"), options=[NONE] + headers,
                                                       required=True),
        })
    return {c: (h if h and h != NONE else None) for c, h in zip(edited["column"], edited["header"])}


def preview(path: str, name: str, kind: str, mapping: dict, tz: str) -> pd.DataFrame | None:
    fn = getattr(store, "preview", None)
    if fn is None:
        return None
    _, rows = fn(path, kind, mapping=mapping, source_timezone=tz, rows=20, name=name, con=db())
    return rows


def show_report(r: dict) -> None:
    source = md_escape(r["source"])
    text = tr(f"**{source}** ({kind_name(r['kind'])}): {fmt.number(r['rows_read'])} rows read, "
              f"{fmt.number(r['loaded'])} loaded, {fmt.number(r['duplicates'])} duplicates skipped, "
              f"{fmt.number(r['replaced'])} earlier rows replaced, {fmt.number(r['rejected'])} rejected "
              f"in {r['seconds']:.1f} s.",
              f"**{source}**（{kind_name(r['kind'])}）：读取 {fmt.number(r['rows_read'])} 行，加载 "
              f"{fmt.number(r['loaded'])} 行，跳过重复 {fmt.number(r['duplicates'])} 行，替换旧行 "
              f"{fmt.number(r['replaced'])} 行，拒绝 {fmt.number(r['rejected'])} 行，用时 {r['seconds']:.1f} 秒。")
    (st.warning if r["rejected"] else st.success)(text)
    if r["rejected"]:
        with st.expander(tr(f"Rejected rows of {source}", f"{source} 的拒绝行")):
            data_table(r["rejected_samples"])
            frame_download(r["rejected_samples"], f"rejected_{r['source']}", key=f"data_rejected_csv_{r['load_id']}")


page_header("Data", "数据")
facts = data_facts()
if facts["events"] + facts["spend"] + facts["survey"] == 0:
    empty_state("The database is empty: upload files below, or load the bundled sample data.",
                "数据库为空：请在下方上传文件，或加载内置示例数据。")
    if st.button(tr("Load sample data", "加载示例数据"), key="data_load_sample", type="primary"):
        with st.spinner(tr("Loading sample data…", "正在加载示例数据…")), write() as con:
            store.load_sample_data(con)
        st.rerun()

# ---------------------------------------------------------------- upload with a mapping step
st.header(tr("Upload files", "上传文件"))
st.caption(tr("Events (CSV, .csv.gz, Parquet), ad spend and survey files (CSV, XLSX, Parquet); several at once. "
              "Check the detected column mapping and the parsed preview before loading: nothing is written until "
              "you press Load.",
              "事件（CSV、.csv.gz、Parquet）、广告花费和问卷文件（CSV、XLSX、Parquet），可一次选择多个。加载前请检查"
              "自动识别的列映射和解析预览：按下“加载”之前不会写入任何数据。"))
gen = st.session_state.setdefault("data_upload_gen", 0)
uploads = st.file_uploader(tr("Files", "文件"), accept_multiple_files=True, key=f"data_upload_{gen}",
                           type=["csv", "gz", "parquet", "xlsx", "tsv", "txt"])
tz = st.selectbox(tr("Time zone of times without an offset", "无时区偏移的时间所在时区"), TIMEZONES,
                  key="data_source_tz",
                  help=tr("Times written with an offset (e.g. +08:00 or Z) keep their own.",
                          "带偏移（如 +08:00 或 Z）的时间按其自身偏移解析。"))
keep_only([up.file_id for up in uploads or []])
plans = []
for i, up in enumerate(uploads or []):
    with st.container(border=True):
        st.subheader(md_escape(up.name))
        if up.size > max_upload_bytes():
            st.error(tr(f"This file is {fmt.number(up.size / 2**20, 1)} MB, over the {fmt.number(max_upload_mb())} MB "
                        "upload limit, so it was refused. Split it, or raise server.maxUploadSize.",
                        f"此文件为 {fmt.number(up.size / 2**20, 1)} MB，超过上传上限 {fmt.number(max_upload_mb())} MB，"
                        "已被拒绝。请拆分文件，或调大 server.maxUploadSize。"))
            continue
        try:
            path = temp_path(up)
            headers = headers_of(path, up.name)
        except UserInputError as exc:
            st.error(md_escape(str(exc)))
            continue
        kind = st.selectbox(tr("File contains", "文件内容"), KINDS, index=KINDS.index(guess_kind(up.name, headers)),
                            format_func=kind_name, key=f"data_kind_{i}")
        st.caption(tr("Detected mapping (edit a row to fix it): canonical column → header in your file. "
                      "Unmapped headers are kept as event properties.",
                      "自动识别的映射（可编辑修正）：标准字段 → 文件列名。未映射的列作为事件属性保留。"))
        mapping = mapping_editor(i, kind, headers)
        try:
            store.detect_mapping(kind, headers, mapping, up.name)
            rows = preview(path, up.name, kind, mapping, tz)
        except UserInputError as exc:
            st.error(md_escape(str(exc)))
            continue
        if rows is not None:
            st.caption(tr("Parsed preview (first 20 rows); a reason marks a row that would be rejected.",
                          "解析预览（前 20 行）；有 reason 的行将被拒绝。"))
            data_table(rows, key=f"data_preview_{i}")
        plans.append((up, path, kind, mapping))

if plans and st.button(tr(f"Load {len(plans)} file(s)", f"加载 {len(plans)} 个文件"), type="primary", key="data_load"):
    loaders = {"events": store.load_events, "spend": store.load_spend, "survey": store.load_survey}
    bar = st.progress(0.0, text=tr("Loading…", "正在加载…"))
    reports, loaded_ids = [], []
    with write() as con:
        for n, (up, path, kind, mapping) in enumerate(plans):
            bar.progress(n / len(plans), text=tr(f"Loading {md_escape(up.name)}…", f"正在加载 {md_escape(up.name)}…"))
            explicit = {c: h for c, h in mapping.items()}
            try:
                kwargs = {"source_timezone": tz} if kind == "events" else {}
                r = loaders[kind](con, path, mapping=explicit, name=up.name, **kwargs)
            except UserInputError as exc:
                st.session_state.setdefault("data_errors", []).append(str(exc))
                continue
            loaded_ids.append(up.file_id)
            reports.append({"source": r.source, "kind": r.kind, "rows_read": r.rows_read, "loaded": r.loaded,
                            "duplicates": r.duplicates, "replaced": r.replaced, "rejected": r.rejected,
                            "seconds": r.seconds, "load_id": r.load_id, "rejected_samples": r.rejected_samples})
    bar.progress(1.0, text=tr("Done.", "完成。"))
    st.session_state["data_reports"] = reports
    forget(loaded_ids)
    if len(loaded_ids) == len(plans):
        st.session_state["data_upload_gen"] = gen + 1  # empty the uploader
    st.rerun()  # the sidebar's filter options and every cached metric follow the new data version

for message in st.session_state.pop("data_errors", []):
    st.error(md_escape(message))
if st.session_state.get("data_reports"):
    st.subheader(tr("Load report", "加载报告"))
    for r in st.session_state["data_reports"]:
        show_report(r)

# ---------------------------------------------------------------- stage map
stages = _module("stages")
st.header(tr("Stage map", "阶段映射"))
if stages is not None and facts["events"]:
    current = run(stages.stage_map)
    current = current.assign(owner=[tr(*OWNER_NAMES[o]) if o in OWNER_NAMES else "" for o in current["owner"]],
                             guessed_stage=[stage_name(g) for g in current["guessed_stage"]])
    st.caption(tr("Which AARRR stage each event belongs to (owner follows the stage). Guessed from the event name "
                  "when first loaded; change a stage and save.",
                  "每个事件所属的 AARRR 阶段（负责方由阶段决定）。首次加载时按事件名推测；修改阶段后保存。"))
    edited = st.data_editor(
        current, key="data_stage_map", hide_index=True, width="stretch",
        disabled=[c for c in current.columns if c != "stage"],
        column_config={"event_name": st.column_config.TextColumn(tr("Event", "事件")),
                       "stage": st.column_config.SelectboxColumn(tr("Stage", "阶段"), options=list(STAGES),
                                                                 format_func=stage_name, required=True),
                       "owner": st.column_config.TextColumn(tr("Owner", "负责方")),
                       "events": st.column_config.NumberColumn(tr("Events", "事件数"), format="localized"),
                       "guessed_stage": st.column_config.TextColumn(tr("Guessed stage", "推测阶段"))})
    changed = {e: s for e, s, old in zip(edited["event_name"], edited["stage"], current["stage"]) if s != old}
    if st.button(tr("Save stage map", "保存阶段映射"), key="data_stage_save", disabled=not changed):
        try:
            with write() as con:
                stages.set_stage_map(con, changed)
        except UserInputError as exc:
            st.error(md_escape(str(exc)))
        else:
            st.session_state["data_stage_saved"] = len(changed)
            st.session_state.pop("data_stage_map", None)
            st.rerun()
    saved = st.session_state.pop("data_stage_saved", 0)
    if saved:
        st.success(tr(f"Saved {saved} stage change(s).", f"已保存 {saved} 处阶段修改。"))
else:
    empty_state("Load events to edit which AARRR stage each event belongs to.", "加载事件后即可编辑各事件所属的 AARRR 阶段。")


# ---------------------------------------------------------------- data health
@st.cache_data(ttl=3600, max_entries=16, show_spinner=False)
def file_health(version: int, path: str | None) -> pd.DataFrame:
    """One row per loaded file: rows and users, and the span of its events or spend dates (UTC)."""
    return db().execute("""
        WITH ev AS (SELECT source_file, count(*) AS rows, count(DISTINCT user_key) AS users,
                           min(event_time) AS first, max(event_time) AS last FROM events GROUP BY source_file),
             sp AS (SELECT source_file, count(*) AS rows, min(date) AS first, max(date) AS last
                    FROM spend GROUP BY source_file),
             sv AS (SELECT source_file, count(*) AS rows FROM survey GROUP BY source_file),
             ld AS (SELECT source_file, kind, max(loaded_at) AS loaded_at, sum(rejected) AS rejected
                    FROM loads GROUP BY source_file, kind)
        SELECT ld.source_file, ld.kind, coalesce(ev.rows, sp.rows, sv.rows, 0) AS rows, ev.users,
               coalesce(ev.first, CAST(sp.first AS TIMESTAMP)) AS first,
               coalesce(ev.last, CAST(sp.last AS TIMESTAMP)) AS last, ld.rejected, ld.loaded_at
        FROM ld
        LEFT JOIN ev ON ld.kind = 'events' AND ev.source_file = ld.source_file
        LEFT JOIN sp ON ld.kind = 'spend' AND sp.source_file = ld.source_file
        LEFT JOIN sv ON ld.kind = 'survey' AND sv.source_file = ld.source_file
        ORDER BY ld.loaded_at
    """).df()


st.header(tr("Data health", "数据健康"))
c = st.columns(4)
c[0].metric(tr("Events", "事件"), fmt.number(facts["events"]))
c[1].metric(tr("Users", "用户"), fmt.number(facts["users"]))
c[2].metric(tr("Spend rows", "花费行"), fmt.number(facts["spend"]))
c[3].metric(tr("Survey ratings", "问卷评分"), fmt.number(facts["survey"]))
health = file_health(data_version(), db_path())
if health.empty:
    empty_state("No files loaded yet.", "尚未加载任何文件。")
else:
    view_tz = st.session_state.get("flt_timezone", "UTC")
    shown = health.assign(
        kind=[kind_name(k) for k in health["kind"]],
        first=[fmt.date(local_date(t, view_tz)) for t in health["first"]],
        last=[fmt.date(local_date(t, view_tz)) for t in health["last"]])
    shown.columns = [tr("File", "文件"), tr("Kind", "类型"), tr("Rows", "行数"), tr("Users", "用户数"),
                     tr("First date", "起始日期"), tr("Last date", "结束日期"), tr("Rejected", "拒绝行"),
                     tr("Loaded at (UTC)", "加载时间 (UTC)")]
    data_table(shown, key="data_health_table")
    st.caption(tr(f"Dates are local dates in {view_tz} (spend dates as given).",
                  f"日期为 {view_tz} 的本地日期（花费日期按文件原值）。"))
econ = _module("economics")
if econ is not None and facts["spend"]:
    summary = run(econ.spend_coverage_summary)
    coverage = run(econ.spend_coverage)
    unmatched = coverage[~coverage["matched"].astype(bool)]
    share = summary["matched_share"].iloc[0] if len(summary) else None
    st.markdown(tr(f"**Spend matched to campaigns seen in events:** {fmt.pct(share)} of "
                   f"{fmt.money(summary['total_spend'].iloc[0])}; {len(unmatched)} unmatched spend key(s).",
                   f"**与事件中活动匹配的花费：** {fmt.money(summary['total_spend'].iloc[0])} 中的 {fmt.pct(share)}；"
                   f"{len(unmatched)} 个未匹配的花费键。"))
    if len(unmatched):
        data_table(unmatched, key="data_unmatched_table")
        frame_download(unmatched, "unmatched_spend_keys", key="data_unmatched_csv")

# ---------------------------------------------------------------- reset
st.header(tr("Reset", "重置"))
sure = st.checkbox(tr("I understand this deletes every loaded file and stage-map edit.",
                      "我了解这会删除所有已加载的文件和阶段映射修改。"), key="data_reset_confirm")
if st.button(tr("Reset to sample data", "重置为示例数据"), key="data_reset", disabled=not sure):
    with st.spinner(tr("Reloading the sample data…", "正在重新加载示例数据…")), write() as con:
        store.reset_to_sample_data(con)
    st.session_state["data_reports"] = []
    st.session_state.pop("data_reset_confirm", None)
    st.rerun()
