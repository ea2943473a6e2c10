"""The short replies in Chinese and English (long ones are templates), and the reader's language."""

from __future__ import annotations

from bot.domain import IncomingMessage

# (Chinese, English)
TEXTS: dict[str, tuple[str, str]] = {
    "subscribed": (
        "已订阅每日AI简报。发送 {prefix}unsubscribe 退订。",
        "Subscribed to the daily AI brief. {prefix}unsubscribe to stop.",
    ),
    "already_subscribed": ("你已经订阅了。", "You are already subscribed."),
    "unsubscribed": ("已退订。", "Unsubscribed."),
    "not_subscribed": ("你还没有订阅。", "You are not subscribed."),
    "group_admin_only": (
        "只有群管理员可以为本群订阅或退订。",
        "Only a chat administrator can (un)subscribe this chat.",
    ),
    "not_admin": ("此命令仅限管理员使用。", "This command is for admins only."),
    "no_brief": ("还没有可发送的简报。", "There is no brief yet."),
    "empty_query": ("请在关键词前加上命令，例如：{example}", "Send a keyword, e.g. {example}"),
    "bad_query": (
        "没有可以搜索的词，请换一个关键词试试。",
        "That query has no words to search for; try a keyword.",
    ),
    "no_results": ("没有找到与「{query}」相关的内容。", "No items match “{query}”."),
    "unknown_command": (
        "没有 {command} 这个命令，发送 {help} 查看可用命令。",
        "There is no {command} command; {help} lists them.",
    ),
    "already_sent": (
        "{date} 的简报已于 {time} 发到本群，标题如下：",
        "The brief of {date} was sent here at {time}. Its headlines:",
    ),
    "next_page": ("下一页 ▶", "Next ▶"),
    "previous_page": ("◀ 上一页", "◀ Previous"),
    "more_hint": (
        "发送 {prefix}更多 查看后续结果，发送序号查看全文。",
        "Send {prefix}more for the next results, or a number for the whole item.",
    ),
    "no_more": ("没有更多结果了。", "There are no more results."),
    "expired": ("这组结果已过期，请重新搜索。", "These results have expired; search again."),
    "bad_date": ("日期格式应为 YYYY-MM-DD。", "Dates look like YYYY-MM-DD."),
    "sending": ("开始发送 {date} 的简报…", "Sending the brief of {date}…"),
    "approved": (
        "已批准 {date} 的简报，定时发送将照此内容发出。",
        "Approved the brief of {date}: the schedule will send it as it is now.",
    ),
    "approve_failed": ("无法批准：{error}", "Cannot approve: {error}"),
    "sent": (
        "{date} 简报发送完成：成功 {sent}，失败 {failed}，跳过 {skipped}，待发 {pending}。",
        "Brief of {date} done: sent {sent}, failed {failed}, skipped {skipped}, pending {pending}.",
    ),
    "unresolved": ("未找到的群：{names}", "Groups not found: {names}"),
    "send_failed": ("发送失败：{error}", "Send failed: {error}"),
    # a reader's choices: topics, time, time zone, pause
    "topics_set": (
        "已订阅，只推送与这些关键词相关的条目：{topics}。没有相关条目的日子不推送。"
        "发送 {prefix}unsubscribe 关键词 取消其中一个。",
        "Subscribed to items about: {topics}. A day with none sends nothing. "
        "{prefix}unsubscribe WORD drops one.",
    ),
    "topics_none": (
        "你订阅的是每天的全部条目。只想看某些内容？发送 {prefix}subscribe 芯片 开源",
        "You get every item. Only some? Send {prefix}subscribe chip open-source",
    ),
    "topics_list": (
        "你的关键词：{topics}。只推送相关条目；没有相关条目的日子不推送。",
        "Your topics: {topics}. Only matching items are sent; a day with none sends nothing.",
    ),
    "topic_removed": ("已取消关键词：{removed}。", "Dropped: {removed}."),
    # these two follow "topic_removed" in the same line
    "topics_left": ("还在订阅：{topics}。", " Still following: {topics}."),
    "topics_all_removed": (
        "已没有关键词，今后推送每天的全部条目。",
        " No topics left: you get every item again.",
    ),
    "topic_not_found": ("你没有订阅关键词「{topics}」。", "You do not follow “{topics}”."),
    "bad_topic": (
        "「{topic}」里没有可以匹配的词，请换一个关键词。",
        "“{topic}” has no word to match; try another keyword.",
    ),
    "too_many_topics": ("最多订阅 {max} 个关键词。", "At most {max} topics."),
    "subscribe_first": (
        "请先发送 {prefix}subscribe 订阅。",
        "Subscribe first: {prefix}subscribe",
    ),
    "time_usage": (
        "用法：{prefix}time 07:30（24 小时制）；{prefix}time off 恢复统一时间。",
        "Usage: {prefix}time 07:30 (24-hour clock); {prefix}time off for everyone's time.",
    ),
    "time_set": ("好的，每天 {time}（{zone}）推送。", "Done: every day at {time} ({zone})."),
    "time_ask_zone": (
        "时区按 {zone} 计算。不在这个时区？发送 {prefix}tz 加你的时区，例如 {prefix}tz Europe/Berlin",
        "That is {zone} time. Elsewhere? Send {prefix}tz with your zone, "
        "e.g. {prefix}tz Europe/Berlin",
    ),
    "time_cleared": (
        "已恢复统一推送时间（{time}，{zone}）。",
        "Back to everyone's time ({time}, {zone}).",
    ),
    "tz_usage": (
        "用法：{prefix}tz 时区，例如 {prefix}tz Asia/Shanghai、Europe/Berlin、America/New_York",
        "Usage: {prefix}tz ZONE, e.g. {prefix}tz Asia/Shanghai, Europe/Berlin, America/New_York",
    ),
    "tz_unknown": (
        "不认识时区「{zone}」。请用 IANA 名称，例如 Asia/Shanghai、Europe/Berlin、America/New_York。",
        "Unknown time zone “{zone}”. Use an IANA name such as Asia/Shanghai, Europe/Berlin "
        "or America/New_York.",
    ),
    "tz_set": (
        "时区已设为 {zone}（当地现在 {now}）。",
        "Time zone set to {zone} (now {now} there).",
    ),
    "tz_pick_time": (
        "发送 {prefix}time 07:30 选择每天推送的时间。",
        "Send {prefix}time 07:30 to choose your time of day.",
    ),
    "pause_usage": (
        "用法：{prefix}pause 7d（天）、2w（周）或日期 2026-12-24；{prefix}resume 恢复。",
        "Usage: {prefix}pause 7d (days), 2w (weeks) or a date like 2026-12-24; "
        "{prefix}resume to resume.",
    ),
    "pause_too_long": ("最长暂停 {days} 天。", "A pause lasts at most {days} days."),
    "pause_past": ("这个日期已经过去了。", "That date has passed."),
    "paused": (
        "已暂停推送，{until} 起恢复。发送 {prefix}resume 提前恢复。",
        "Paused until {until}. {prefix}resume resumes now.",
    ),
    "resumed": ("已恢复推送。", "Resumed."),
    "not_paused": ("推送没有暂停。", "The brief is not paused."),
    "settings_title": ("我的订阅", "My subscription"),
    "settings_not_subscribed": (
        "尚未订阅。发送 {prefix}subscribe，或只订阅关键词：{prefix}subscribe 芯片 开源",
        "Not subscribed. Send {prefix}subscribe, or for keywords only: "
        "{prefix}subscribe chip open-source",
    ),
    "settings_all_items": ("内容：每天全部条目", "Content: every item"),
    "settings_topics": ("内容：只推送 {topics} 相关条目", "Content: only items about {topics}"),
    "settings_own_time": ("时间：每天 {time}（{zone}）", "Time: every day at {time} ({zone})"),
    "settings_schedule": (
        "时间：统一时间 {schedule}（{zone}）",
        "Time: everyone's time, {schedule} ({zone})",
    ),
    "settings_paused": ("已暂停，{until} 起恢复", "Paused until {until}"),
    "settings_how": (
        "{prefix}subscribe 关键词 · {prefix}unsubscribe 关键词 · {prefix}time 07:30 · "
        "{prefix}tz Europe/Berlin · {prefix}pause 7d · {prefix}resume",
        "{prefix}subscribe WORD · {prefix}unsubscribe WORD · {prefix}time 07:30 · "
        "{prefix}tz Europe/Berlin · {prefix}pause 7d · {prefix}resume",
    ),
    # buttons under /start, a subscription and the settings
    "button_subscribe": ("订阅", "Subscribe"),
    "button_unsubscribe": ("退订", "Unsubscribe"),
    "button_latest": ("最新一期", "Latest"),
    "button_settings": ("设置", "Settings"),
}


def say(key: str, lang: str, **values: object) -> str:
    zh, en = TEXTS[key]
    return (en if lang == "en" else zh).format(**values)


def language_of(message: IncomingMessage) -> str:
    return "en" if (message.language or "").lower().startswith("en") else "zh"
