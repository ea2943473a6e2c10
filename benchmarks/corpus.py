"""A deterministic corpus of AI-news items (mostly Chinese, some English) for benchmarks.

Every item is built from vocabularies by one seeded random stream, so the same ``count`` and
``seed`` give the same items, day by day: about 90 a day, ending on :data:`LAST_DAY`, which
at 100,000 items spans three years. Besides the ordinary vocabulary the corpus holds
:data:`RARE_WORDS` (each in a handful of items), :data:`COMMON_TERMS` (each in well over 30%
of the items) and none of :data:`NO_HIT_WORDS`.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import string
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from bot.domain import Item, Link

LAST_DAY = dt.date(2026, 11, 27)
ITEMS_PER_DAY = 90
SEED = 20261127
ENGLISH_SHARE = 0.15

# In about 3-5 items each, whatever the corpus size (so a search for one is very selective).
RARE_WORDS = ("忆阻器", "量子退火", "脉冲神经网络", "光子计算", "zephyrine")
# In no item: the vocabularies below contain none of these.
NO_HIT_WORDS = ("珠穆朗玛", "长颈鹿", "蜂鸟", "xylophone")
# Many templates say 发布, and 模型 is part of many field words: each ends up in about half
# of the items (the benchmark prints the measured share).
COMMON_TERMS = ("发布", "模型")

# fmt: off
VOCABULARY: dict[str, tuple[str, ...]] = {
    "company": (
        "OpenAI", "谷歌", "DeepMind", "Anthropic", "Meta", "微软", "英伟达", "百度", "阿里巴巴",
        "腾讯", "字节跳动", "华为", "智谱", "月之暗面", "深度求索", "商汤", "地平线", "小米",
        "特斯拉", "苹果", "AMD", "英特尔", "寒武纪", "摩尔线程", "零一万物", "MiniMax",
        "阶跃星辰", "百川智能", "Mistral", "xAI", "宇树科技", "智元机器人", "蔚来", "理想汽车",
        "芯原股份",
    ),
    "company_en": (
        "OpenAI", "Google DeepMind", "Anthropic", "Meta", "Microsoft", "NVIDIA", "AMD", "Intel",
        "Apple", "Amazon", "Mistral AI", "xAI", "Hugging Face", "Cohere", "Tesla", "Figure AI",
        "Alibaba", "ByteDance", "Horizon Robotics", "Baidu",
    ),
    "model": (
        "GPT-5", "o5-mini", "Llama 4", "Gemini 3 Pro", "Claude Opus 5", "Qwen3-Max",
        "DeepSeek-V4", "Kimi K3", "GLM-5", "文心5.0", "混元T2", "豆包1.8", "Grok 5", "Sora 2",
        "Mistral Large 3", "Phi-5", "Llama 4 Scout", "Qwen3-VL",
    ),
    "chip": ("H200", "B300", "GB300", "MI400", "TPU v7", "昇腾910C", "思元690", "Gaudi 4"),
    "precision": ("FP4", "FP8", "INT4", "BF16"),
    "field": (
        "芯片", "大模型", "强化学习", "扩散模型", "多模态", "机器人", "自动驾驶", "开源", "推理",
        "训练", "算力", "智能体", "具身智能", "端侧部署", "长上下文", "检索增强生成", "模型蒸馏",
        "量化", "对齐", "视频生成", "语音合成", "代码生成", "世界模型", "人形机器人", "数据中心",
        "混合专家", "智能汽车", "云计算", "文生图", "图像理解",
    ),
    "field_en": (
        "Transformer", "VR", "diffusion", "chip", "agent", "reinforcement learning", "robotics",
        "inference", "multimodal", "open-source", "humanoid robots", "self-driving",
        "long-context", "quantization", "agents", "chip design",
    ),
    "task": (
        "数学推理", "代码补全", "图像理解", "长文档问答", "机器翻译", "工具调用", "网页浏览",
        "蛋白质结构预测", "路径规划", "车载语音助手",
    ),
    "benchmark": (
        "MMLU-Pro", "SWE-bench", "GPQA", "AIME 2025", "HumanEval", "LiveCodeBench", "ARC-AGI-2",
        "C-Eval", "MathVista",
    ),
    "method": (
        "新的注意力机制", "稀疏激活方法", "课程学习策略", "自博弈训练框架", "在线偏好优化",
        "分层规划方法", "一致性蒸馏", "流匹配算法", "推测解码", "低秩适配",
    ),
    "method_en": (
        "sparse attention", "speculative decoding", "flow matching", "self-play",
        "low-rank adaptation", "test-time scaling", "BN-free training", "mixture of experts",
    ),
    "industry": ("医疗", "金融", "教育", "制造业", "物流", "游戏", "法律", "零售", "农业"),
    "univ": (
        "清华大学", "北京大学", "上海交通大学", "浙江大学", "斯坦福大学", "MIT",
        "卡内基梅隆大学", "香港大学", "中国科学院",
    ),
    "arch": ("Transformer", "混合专家（MoE）", "状态空间模型", "扩散 Transformer", "稠密"),
    "platform": ("GitHub", "Hugging Face", "魔搭社区", "GitCode"),
    "feature": (
        "推理速度提升一倍", "支持百万 token 上下文", "价格下调八成", "多模态能力全面升级",
        "首次支持实时语音", "编程能力大幅提升", "可在手机端运行",
    ),
    "feature_en": (
        "a 1M-token context window", "native tool use", "real-time voice", "lower prices",
        "on-device inference", "better coding skills",
    ),
    "thing": ("训练框架", "推理引擎", "数据集", "评测基准", "机器人操作系统", "智能体框架"),
    "thing_en": ("a training framework", "an inference engine", "a dataset", "an agent toolkit"),
    "n": ("2", "3", "4", "5", "8", "10", "16", "32"),
    "pct": ("15", "20", "30", "40", "50", "60", "75"),
    "amount": ("5", "10", "20", "50", "100", "300"),
    "k": ("32", "128", "256", "1000"),
}

ZH_TITLES = (
    "{company}发布{model}，{feature}",
    "{company}正式发布新一代{field}芯片，性能提升{n}倍",
    "{company}开源{thing}，助力{field}研究",
    "{model}在{benchmark}上刷新纪录，{task}能力大幅提升",
    "{company}推出基于{chip}的{field}平台，{precision}推理成本降低{pct}%",
    "论文：{method}让{field}训练效率提升{n}倍",
    "{company}完成{amount}亿元融资，加码{field}",
    "{company}与{company}达成合作，共同推进{field}落地",
    "研究者提出{method}，{field}的{task}误差降低{pct}%",
    "{company}发布{field}白皮书：{industry}将是下一个主战场",
    "{company}上线{model}，面向{industry}行业开放 API",
    "{univ}团队开源{field}模型，性能比肩{model}",
)

ZH_SENTENCES = (
    "据介绍，{model}采用{arch}架构，在{task}任务上超过了{model}。",
    "该模型已在{platform}上开源，支持{k}K 上下文。",
    "团队使用{n}千张{chip}完成训练，推理成本下降{pct}%。",
    "业内人士认为，这将推动{field}在{industry}领域的落地。",
    "论文作者来自{univ}和{company}，代码和权重均已公开。",
    "新版本在{field}和{field}方面均有改进，并支持{precision}推理。",
    "{company}在发布会上表示，{field}仍是公司未来三年的重点投入方向。",
    "此次发布的还有配套的{thing}，开发者可以免费试用。",
    "有分析指出，{chip}的供应仍是制约{field}发展的主要因素。",
    "新一代产品采用芯粒（小芯片）设计，由{company}负责封装。",
    "官方称其在{benchmark}上得分提升{pct}%，但第三方评测尚未发布。",
    "该研究提出的{method}也适用于{field}和{task}。",
)

EN_TITLES = (
    "{company_en} releases {model} with {feature_en}",
    "{company_en} unveils a {chip} successor, claims {n}x faster {field_en}",
    "Paper: {method_en} makes {field_en} cheaper to train",
    "{company_en} open-sources {thing_en} for {field_en}",
    "Why {field_en} is the next battleground for {company_en}",
    "{model} tops {benchmark}, but {field_en} remains hard",
)

EN_SENTENCES = (
    "The model was trained on {n}k {chip} GPUs and serves inference in {precision}.",
    "Researchers replace BN layers with a learned scale and report gains on {benchmark}.",
    "The {field_en} agent beats {model} on {benchmark} by {pct} points.",
    "A VR demo shows the system steering a robot arm in real time.",
    "Code and weights are on {platform} under an Apache-2.0 licence.",
    "{company_en} says {method_en} cut its training bill by {pct}%.",
    "Analysts expect {field_en} and {field_en} to dominate the next {n} years.",
)

SECTIONS = ("行业动态", "论文", "开源项目", "产品发布", "投融资", "观点")
TAGS = (
    "大模型", "芯片", "开源", "机器人", "自动驾驶", "多模态", "强化学习", "融资", "论文",
    "智能体", "LLM", "GPU", "具身智能", "AI 安全",
)
NEWS_SITES = (
    "https://www.jiqizhixin.com/articles",
    "https://www.qbitai.com/news",
    "https://36kr.com/p",
    "https://www.leiphone.com/category/ai",
    "https://techcrunch.com/ai",
    "https://www.theverge.com/ai",
)
CODE_ORGS = ("openai", "google-deepmind", "meta-llama", "QwenLM", "deepseek-ai", "THUDM")
# fmt: on


class _Pick(Mapping[str, str]):
    """A template's slots, each filled with a fresh random word of its vocabulary."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def __getitem__(self, slot: str) -> str:
        return self.rng.choice(VOCABULARY[slot])

    def __iter__(self) -> Iterator[str]:
        return iter(VOCABULARY)

    def __len__(self) -> int:
        return len(VOCABULARY)


def _fill(template: str, rng: random.Random) -> str:
    # format_map looks each slot up separately, so "{company}与{company}" names two companies
    return template.format_map(_Pick(rng))


@dataclass
class CorpusStats:
    """What the generator made, counted as it went."""

    items: int = 0
    chinese: int = 0
    days: int = 0
    first_day: dt.date | None = None
    last_day: dt.date | None = None


def day_count(count: int) -> int:
    return max(1, math.ceil(count / ITEMS_PER_DAY))


def rare_placements(count: int, seed: int = SEED) -> dict[int, str]:
    """Which item indices carry a rare word: 3-5 items per word, spread over the corpus."""
    rng = random.Random(seed + 1)
    placed: dict[int, str] = {}
    for word in RARE_WORDS:
        for index in rng.sample(range(count), min(count, rng.randint(3, 5))):
            placed.setdefault(index, word)
    return placed


def generate_days(
    count: int, *, seed: int = SEED, stats: CorpusStats | None = None
) -> Iterator[list[Item]]:
    """``count`` items, one list per day, oldest day first, about 90 a day up to LAST_DAY."""
    rng = random.Random(seed)
    rare = rare_placements(count, seed)
    days = day_count(count)
    first = LAST_DAY - dt.timedelta(days=days - 1)
    index = 0
    for offset in range(days):
        day = first + dt.timedelta(days=offset)
        in_day = min(ITEMS_PER_DAY, count - index) if offset < days - 1 else count - index
        items = []
        for position in range(in_day):
            english = rng.random() < ENGLISH_SHARE
            items.append(_item(rng, day, position, index, english, rare.get(index)))
            index += 1
        if stats is not None:
            stats.items += len(items)
            stats.chinese += sum(1 for item in items if _is_chinese(item.title))
            stats.days += 1
            stats.first_day = stats.first_day or day
            stats.last_day = day
        yield items


def _is_chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def _item(
    rng: random.Random, day: dt.date, position: int, index: int, english: bool, rare: str | None
) -> Item:
    if english:
        title = _fill(rng.choice(EN_TITLES), rng)
        sentences = [_fill(t, rng) for t in rng.sample(EN_SENTENCES, rng.randint(1, 3))]
        if rare:
            sentences.append(f"The authors also point to {rare} as a future direction.")
        summary = " ".join(sentences)
    else:
        title = _fill(rng.choice(ZH_TITLES), rng)
        sentences = [_fill(t, rng) for t in rng.sample(ZH_SENTENCES, rng.randint(1, 3))]
        if rare:
            sentences.append(f"文章还提到了{rare}方向的最新进展。")
        summary = "".join(sentences)
    return Item(
        date=day,
        title=title,
        summary=summary,
        links=_links(rng, day, index),
        tags=tuple(rng.sample(TAGS, rng.randint(1, 3))),
        section=rng.choice(SECTIONS),
        position=position,
    )


def _links(rng: random.Random, day: dt.date, index: int) -> tuple[Link, ...]:
    """原文 always; 论文地址 and 代码 sometimes; every URL unique to its item."""
    links = [Link("原文", f"{rng.choice(NEWS_SITES)}/{day:%Y%m%d}/{index:06d}")]
    extra: Sequence[str] = rng.choice(((), ("论文地址",), ("代码",), ("论文地址", "代码")))
    for label in extra:
        if label == "论文地址":
            links.append(Link(label, f"https://arxiv.org/abs/{day:%y%m}.{index:05d}"))
        else:
            slug = "".join(rng.choices(string.ascii_lowercase, k=6))
            links.append(Link(label, f"https://github.com/{rng.choice(CODE_ORGS)}/{slug}-{index}"))
    return tuple(links)
