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
}


def say(key: str, lang: str, **values: object) -> str:
    zh, en = TEXTS[key]
    return (en if lang == "en" else zh).format(**values)


def language_of(message: IncomingMessage) -> str:
    return "en" if (message.language or "").lower().startswith("en") else "zh"
