"""Aliases: terms that mean the same thing, so a Chinese query finds an English-only item and
the other way round (芯片 ↔ chip), and a Taiwanese word finds the mainland one (晶片 → 芯片).

A query term that equals one member of a group also matches every other member. Groups
come from ``[search] aliases`` in the settings, added to the small default table below
unless ``default_aliases = false``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from bot.search.fold import fold

# The field's everyday pairs; each group is one meaning.
DEFAULT_ALIASES: tuple[tuple[str, ...], ...] = (
    ("扩散模型", "diffusion model", "diffusion"),
    ("芯片", "chip", "chips", "晶片"),
    ("大模型", "大语言模型", "llm", "llms", "large language model"),
    ("强化学习", "reinforcement learning", "rl"),
    ("智能体", "agent", "agents", "ai agent"),
    ("多模态", "multimodal"),
    ("开源", "open source", "open-source"),
    ("机器人", "robot", "robotics", "robots"),
    ("自动驾驶", "autonomous driving", "self-driving"),
    ("显卡", "gpu", "gpus"),
    ("算力", "compute"),
    ("推理", "inference", "reasoning"),
    ("训练", "training"),
    ("微调", "fine-tuning", "finetuning", "fine-tune"),
    ("量化", "quantization"),
    ("神经网络", "neural network"),
    ("深度学习", "deep learning"),
    ("机器学习", "machine learning"),
    ("人工智能", "artificial intelligence", "ai"),
    ("英伟达", "輝達"),
    ("数据集", "dataset", "datasets"),
    ("基准", "benchmark", "benchmarks"),
    ("具身智能", "embodied ai", "embodied intelligence"),
    ("软件", "software", "軟體"),
    ("内存", "memory", "記憶體"),
    # Taiwan and Hong Kong words for the same things (the characters fold on their own)
    ("人工智能", "人工智慧"),
    ("算法", "演算法", "algorithm"),
    ("网络", "網路"),
    ("视频", "影片", "video"),
    ("程序", "程式"),
    ("服务器", "伺服器", "server"),
    ("云计算", "雲端運算", "cloud computing"),
    ("大模型", "大型語言模型"),
    ("计算机视觉", "computer vision", "cv"),
    ("自然语言处理", "natural language processing", "nlp"),
    ("英伟达", "nvidia"),
    ("谷歌", "google"),
    ("微软", "microsoft"),
    ("苹果", "apple"),
)


class Aliases:
    """Folded term → the other members of its groups."""

    def __init__(self, groups: Iterable[Sequence[str]]) -> None:
        # groups that share a member are one meaning (人工智能 with "ai" and with 人工智慧)
        merged: list[list[str]] = []
        for group in groups:
            members = [" ".join(fold(m).split()) for m in group]
            members = [m for m in dict.fromkeys(members) if m]
            overlapping = [g for g in merged if set(g) & set(members)]
            for g in overlapping:
                merged.remove(g)
                members = [*g, *(m for m in members if m not in g)]
            merged.append(members)
        self._others: dict[str, list[str]] = {
            member: [m for m in members if m != member] for members in merged for member in members
        }

    @classmethod
    def from_settings(cls, groups: Iterable[Sequence[str]], *, defaults: bool = True) -> Aliases:
        return cls([*(DEFAULT_ALIASES if defaults else ()), *groups])

    def __call__(self, term: str) -> Sequence[str]:
        return self._others.get(term, ())

    def __len__(self) -> int:
        return len(self._others)
